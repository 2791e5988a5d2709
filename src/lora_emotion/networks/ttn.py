"""The Things Stack (TTN v3) webhook messages, sans-IO: take apart and build.

The Things Stack POSTs one JSON message per event of an application: an uplink
(``uplink_message``), a join (``join_accept``), downlink acknowledgements and so on, each in
the protobuf JSON mapping (snake_case names; fields at their default value omitted, so an
FPort or frame counter of 0 is absent; ``frm_payload`` base64; times RFC 3339 with
nanoseconds). It signs nothing: the webhook form's custom headers carry the receiver's token,
checked by the webhook before anything here runs.

Why an uplink is identified by (DevEUI, session key id, frame counter): that is what The Things
Stack itself treats as one uplink, and it is the same on every attempt of a webhook retry,
whereas ``received_at`` and the correlation ids are the Application Server's. A rejoin starts a
new session and counts from 0 again, which the session key id tells apart. A console-simulated
uplink reuses a real one's counter, so the simulation flag is part of the key too.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import urlsplit

from ..errors import DecodeError, EncodeError
from .fields import (
    Fields,
    dev_eui_of,
    format_time,
    load_object,
    lora_rate,
    parse_time,
    plain_time,
    strongest_gateway,
)
from .uplink import NetworkUplink, OtherEvent, RadioMetadata

__all__ = ["MESSAGE_TYPES", "DownlinkRequest", "downlink_request", "message_body", "parse_message"]

#: The message fields of an application webhook other than ``uplink_message``; a message names
#: its type by carrying one of them.
MESSAGE_TYPES: Final = (
    "join_accept",
    "downlink_ack",
    "downlink_nack",
    "downlink_sent",
    "downlink_failed",
    "downlink_queued",
    "downlink_queue_invalidated",
    "location_solved",
    "service_data",
    "uplink_normalized",
)
_MAX_FCNT: Final = 2**32 - 1
_DURATION_RE: Final = re.compile(r"(\d{1,12})(?:\.(\d{1,9}))?s")
_DEV_EUI_RE: Final = re.compile(r"[0-9A-Fa-f]{16}")
# The downlink queue operation paths of an application webhook (The Things Stack's
# "Scheduling Downlinks"): what X-Downlink-Push and X-Downlink-Replace carry.
_QUEUE_PATH_RE: Final = re.compile(
    r"/api/v3/as/applications/[^/]+/webhooks/[^/]+/devices/[^/]+/down/(push|replace)"
)
_PRIORITIES: Final = frozenset(
    {"LOWEST", "LOW", "BELOW_NORMAL", "NORMAL", "ABOVE_NORMAL", "HIGH", "HIGHEST"}
)
_WHAT: Final = "a The Things Stack webhook message"


def _airtime(fields: Fields, name: str) -> float | None:
    text = fields.text(name)
    if text is None:
        return None
    match = _DURATION_RE.fullmatch(text)
    if match is None:
        raise DecodeError(f"{text!r} is not a duration like '1.155072s'", field=fields.where(name))
    return float(text[:-1])


def _radio(message: Fields) -> RadioMetadata:
    gateways = message.objects("rx_metadata")
    best: tuple[float, Fields] | None = None
    for gateway in gateways:
        rssi = gateway.number("rssi")
        if rssi is None:
            rssi = gateway.number("channel_rssi")
        if rssi is not None and (best is None or rssi > best[0]):
            best = (rssi, gateway)
    settings = message.object("settings", required=False)
    lora = settings.object("data_rate", required=False).object("lora", required=False)
    return RadioMetadata(
        rssi=None if best is None else best[0],
        snr=None if best is None else best[1].number("snr"),
        gateway_id=None
        if best is None
        else best[1].object("gateway_ids", required=False).text("gateway_id"),
        gateways=len(gateways) or None,
        spreading_factor=lora.integer("spreading_factor", low=5, high=12, default=None),
        bandwidth_hz=lora.integer("bandwidth", low=1, high=10_000_000, default=None),
        frequency_hz=settings.integer("frequency", low=1, high=10_000_000_000, default=None),
        airtime_s=_airtime(message, "consumed_airtime"),
    )


def _uplink(document: Fields, ids: Fields, application: str, *, now: float) -> NetworkUplink:
    message = document.object("uplink_message")
    eui = dev_eui_of(ids.text("dev_eui", required=True), field=ids.where("dev_eui"))
    fport = message.integer("f_port", low=0, high=255)
    fcnt = message.integer("f_cnt", low=0, high=_MAX_FCNT)
    payload = message.base64("frm_payload")
    simulated = document.flag("simulated")
    received = message.text("received_at")
    if received is not None:
        time = parse_time(received, field=message.where("received_at"))
    elif document.has("received_at"):
        received = document.text("received_at")
        time = parse_time(received, field=document.where("received_at"))
    else:
        time = now
    session = message.text("session_key_id")
    if session:
        key = f"{eui}/session/{session}/{fcnt}"
    else:
        # Without a session key id (some simulated uplinks): the Application Server's own id
        # of the uplink, which a webhook retry carries unchanged.
        ids_of_uplink = [
            c
            for c in (document.document.get("correlation_ids") or [])
            if isinstance(c, str) and c.startswith("as:up:")
        ]
        if ids_of_uplink:
            key = f"{eui}/{ids_of_uplink[0]}"
        elif received is not None:
            key = f"{eui}/at/{received}/{fcnt}"
        else:
            raise DecodeError(
                "an uplink needs a session_key_id, an as:up: correlation id or received_at "
                "to be told apart from the next",
                field=message.where("session_key_id"),
            )
    if simulated:
        key += "/simulated"
    return NetworkUplink(
        network="ttn",
        dev_eui=eui,
        time=time,
        fport=fport or 0,
        payload=payload if fport else b"",
        fcnt=fcnt,
        idempotency_key=key,
        application=application,
        device_name=ids.text("device_id"),
        radio=_radio(message),
        simulated=simulated,
    )


def _plain_radio(message: dict[str, Any]) -> RadioMetadata | None:
    gateways = message.get("rx_metadata", ())
    strongest = strongest_gateway(gateways, ("rssi", "channel_rssi"))
    if strongest is None:
        return None
    best, best_rssi, snr = strongest
    gateway_id = None
    if best is not None:
        ids = best.get("gateway_ids")
        if ids is not None:
            if type(ids) is not dict:
                return None
            gateway_id = ids.get("gateway_id")
            if gateway_id is not None and type(gateway_id) is not str:
                return None
    settings = message.get("settings")
    spreading_factor = bandwidth = frequency = None
    if settings is not None:
        if type(settings) is not dict:
            return None
        data_rate = settings.get("data_rate")
        if data_rate is not None and type(data_rate) is not dict:
            return None
        lora = None if data_rate is None else data_rate.get("lora")
        if lora is not None:
            rate = lora_rate(lora, "spreading_factor")
            if rate is None:
                return None
            spreading_factor, bandwidth = rate
        frequency = settings.get("frequency")
        if frequency is not None:
            if type(frequency) is str and frequency.isdigit() and len(frequency) <= 11:
                frequency = int(frequency)
            if not (type(frequency) is int and 1 <= frequency <= 10**10):
                return None
    airtime = message.get("consumed_airtime")
    if airtime is not None:
        if type(airtime) is not str or _DURATION_RE.fullmatch(airtime) is None:
            return None
        airtime = float(airtime[:-1])
    return RadioMetadata(
        rssi=best_rssi,
        snr=snr,
        gateway_id=gateway_id,
        gateways=len(gateways) or None,
        spreading_factor=spreading_factor,
        bandwidth_hz=bandwidth,
        frequency_hz=frequency,
        airtime_s=airtime,
    )


def _plain_uplink(document: dict[str, Any]) -> NetworkUplink | None:
    """The uplink of a message in the shape The Things Stack sends, read in one pass.

    Why a second reader: :func:`_uplink` checks each field through :class:`Fields`, which is
    where the error messages come from, but cost about as much CPU as the rest of a delivery.
    This one reads the common shape directly and returns ``None`` at the first thing it does
    not expect (a missing session key id, a field of another type, a time in another zone),
    never raising; :func:`_uplink` then reads the message or explains what is wrong.
    ``tests/networks/test_ttn.py`` checks that both agree wherever this one answers.
    """
    ids = document.get("end_device_ids")
    message = document.get("uplink_message")
    if type(ids) is not dict or type(message) is not dict:
        return None
    application_ids = ids.get("application_ids")
    if type(application_ids) is not dict:
        return None
    application = application_ids.get("application_id")
    eui = ids.get("dev_eui")
    device_id = ids.get("device_id")
    session = message.get("session_key_id")
    fport = message.get("f_port", 0)
    fcnt = message.get("f_cnt", 0)
    simulated = document.get("simulated", False)
    if not (
        type(application) is str
        and application
        and type(eui) is str
        and _DEV_EUI_RE.fullmatch(eui)
        and (device_id is None or type(device_id) is str)
        and type(session) is str
        and session
        and type(fport) is int
        and 0 <= fport <= 255
        and type(fcnt) is int
        and 0 <= fcnt <= _MAX_FCNT
        and type(simulated) is bool
    ):
        return None
    time = plain_time(message.get("received_at"))
    radio = _plain_radio(message)
    if time is None or radio is None:
        return None
    payload = b""
    text = message.get("frm_payload")
    if text is not None:
        if type(text) is not str or len(text) % 4:
            return None
        try:
            payload = binascii.a2b_base64(text, strict_mode=True)
        except ValueError:  # binascii.Error, or text that is not ASCII
            return None
    eui = eui.upper()
    return NetworkUplink(
        network="ttn",
        dev_eui=eui,
        time=time,
        fport=fport,
        payload=payload if fport else b"",
        fcnt=fcnt,
        idempotency_key=f"{eui}/session/{session}/{fcnt}" + ("/simulated" if simulated else ""),
        application=application,
        device_name=device_id,
        radio=radio,
        simulated=simulated,
    )


def parse_message(body: bytes | str, *, now: float) -> NetworkUplink | OtherEvent:
    """Take a (verified) webhook message of The Things Stack apart.

    Args:
        body: the request body.
        now: the receiver's clock, the uplink's time when the message carries none.

    Returns:
        The uplink of an ``uplink_message``; an :class:`OtherEvent` named after the message
        field for every other message type.

    Raises:
        DecodeError: not JSON, or a field missing or of the wrong type, named by its path
            (``end_device_ids.dev_eui``, ``uplink_message.f_port`` ...).
    """
    loaded = load_object(body, what=_WHAT)
    if "uplink_message" in loaded:
        plain = _plain_uplink(loaded)
        if plain is not None:
            return plain
    return _parse(loaded, now=now)


def _parse(loaded: dict[str, Any], *, now: float) -> NetworkUplink | OtherEvent:
    """:func:`parse_message` field by field: the general reader, and the error messages."""
    document = Fields(loaded)
    ids = document.object("end_device_ids")
    application = ids.object("application_ids").text("application_id", required=True)
    assert application is not None
    if document.has("uplink_message"):
        return _uplink(document, ids, application, now=now)
    for name in MESSAGE_TYPES:
        if document.has(name):
            _check_shared_fields(document, ids)
            return OtherEvent(network="ttn", event=name, application=application)
    raise DecodeError(
        "no uplink_message nor any other message type (" + ", ".join(MESSAGE_TYPES) + ")",
        field="body",
    )


def _check_shared_fields(document: Fields, ids: Fields) -> None:
    """Check the fields every message type shares with uplink messages, where it has them.

    A message that is not stored is still refused (422) when a field it carries is not what
    The Things Stack would send.
    """
    ids.text("device_id")
    if ids.has("dev_eui"):
        dev_eui_of(ids.text("dev_eui"), field=ids.where("dev_eui"))
    if document.has("received_at"):
        parse_time(document.text("received_at"), field="received_at")
    document.flag("simulated")


def message_body(
    *,
    dev_eui: str,
    fport: int,
    payload: bytes,
    fcnt: int,
    time: float,
    application_id: str = "lora-emotion",
    device_id: str | None = None,
    session_key_id: str = "AAAAAAAAAAAAAAAAAAAAAA==",
    gateways: Sequence[tuple[str, float, float]] = (("lora-emotion-gw", -97.0, 7.25),),
    spreading_factor: int = 7,
    airtime_s: float | None = None,
    simulated: bool = False,
) -> bytes:
    """The body The Things Stack would POST for one uplink, as compact JSON.

    Fields at their protobuf default are left out, as The Things Stack leaves them out (no
    ``f_port`` for FPort 0, no ``f_cnt`` for counter 0, no ``frm_payload`` when empty).

    Args:
        dev_eui: 16 hex digits.
        fport: 0..255.
        payload: the FRMPayload.
        fcnt: the frame counter.
        time: when the network received it (seconds since the epoch).
        application_id, device_id: the end device's identifiers.
        session_key_id: base64 id of the session.
        gateways: (gateway id, RSSI, SNR) of each gateway that heard it.
        spreading_factor: the uplink's SF.
        airtime_s: consumed airtime, when known.
        simulated: mark it as the console marks a simulated uplink.

    Raises:
        EncodeError: a bad DevEUI, FPort or frame counter.
    """
    try:
        eui = dev_eui_of(dev_eui, field="dev_eui")
    except DecodeError as exc:
        raise EncodeError(exc.reason, field="dev_eui") from None
    if isinstance(fport, bool) or not 0 <= fport <= 255:
        raise EncodeError(f"{fport!r} is not an FPort 0..255", field="fport")
    if isinstance(fcnt, bool) or not 0 <= fcnt <= _MAX_FCNT:
        raise EncodeError(f"{fcnt!r} is not a 32-bit frame counter", field="fcnt")
    stamp = format_time(time)
    message: dict[str, Any] = {"session_key_id": session_key_id}
    if fport:
        message["f_port"] = fport
    if fcnt:
        message["f_cnt"] = fcnt
    if payload:
        message["frm_payload"] = base64.b64encode(payload).decode("ascii")
    message["rx_metadata"] = [
        {
            "gateway_ids": {"gateway_id": gateway},
            "time": stamp,
            "rssi": rssi,
            "channel_rssi": rssi,
            "snr": snr,
            "received_at": stamp,
        }
        for gateway, rssi, snr in gateways
    ]
    message["settings"] = {
        "data_rate": {
            "lora": {
                "bandwidth": 125000,
                "spreading_factor": spreading_factor,
                "coding_rate": "4/5",
            }
        },
        "frequency": "868100000",
        "time": stamp,
    }
    message["received_at"] = stamp
    if airtime_s is not None:
        message["consumed_airtime"] = f"{airtime_s:.6f}s"
    document: dict[str, Any] = {
        "end_device_ids": {
            "device_id": device_id or f"eui-{eui.lower()}",
            "application_ids": {"application_id": application_id},
            "dev_eui": eui,
        },
        "correlation_ids": [f"as:up:{eui}{fcnt:010d}"],
        "received_at": stamp,
        "uplink_message": message,
    }
    if simulated:
        document["simulated"] = True
    return json.dumps(document, separators=(",", ":")).encode("utf-8")


@dataclass(frozen=True, slots=True)
class DownlinkRequest:
    """An HTTP request that queues a downlink at The Things Stack.

    Attributes:
        url: the device's downlink queue URL (``.../down/push`` or ``.../down/replace``).
        headers: ``Authorization: Bearer <API key>`` and the content type.
        body: the JSON body.
    """

    url: str
    headers: dict[str, str] = field(repr=False)
    body: bytes


def downlink_request(
    queue_url: str,
    api_key: str,
    payload: bytes,
    *,
    fport: int,
    priority: str = "NORMAL",
    confirmed: bool = False,
) -> DownlinkRequest:
    """The request that pushes (or replaces the queue with) one downlink, as TTS documents it.

    ``queue_url`` is what The Things Stack sends in ``X-Downlink-Push`` (or
    ``X-Downlink-Replace``) with every webhook message of the device: its cluster, application,
    webhook and device are in the path. ``api_key`` needs the right to write downlinks
    (``X-Downlink-Apikey`` carries such a key when the webhook has one).

    Raises:
        EncodeError: a URL that is not such a queue URL (or not https, except on loopback), an
            empty key, an FPort outside 1..223, an unknown priority or an empty payload.
    """
    parts = urlsplit(queue_url)
    loopback = parts.hostname in ("127.0.0.1", "::1", "localhost")
    if parts.scheme not in ("https", "http") or (parts.scheme == "http" and not loopback):
        raise EncodeError(f"{queue_url!r} is not an https URL", field="queue_url")
    if not _QUEUE_PATH_RE.fullmatch(parts.path):
        raise EncodeError(
            f"{parts.path!r} is not a downlink queue path "
            "(/api/v3/as/applications/<app>/webhooks/<webhook>/devices/<device>/down/push)",
            field="queue_url",
        )
    if not api_key.strip():
        raise EncodeError("an API key with the right to write downlinks is needed", field="api_key")
    if isinstance(fport, bool) or not isinstance(fport, int) or not 1 <= fport <= 223:
        raise EncodeError(f"{fport!r} is not an application FPort 1..223", field="fport")
    if priority not in _PRIORITIES:
        raise EncodeError(
            f"{priority!r} is not one of {', '.join(sorted(_PRIORITIES))}", field="priority"
        )
    if not payload:
        raise EncodeError("a downlink needs a payload", field="payload")
    downlink: dict[str, Any] = {
        "f_port": fport,
        "frm_payload": base64.b64encode(payload).decode("ascii"),
        "priority": priority,
    }
    if confirmed:
        downlink["confirmed"] = True
    return DownlinkRequest(
        url=queue_url,
        headers={
            "Authorization": f"Bearer {api_key.strip()}",
            "Content-Type": "application/json",
        },
        body=json.dumps({"downlinks": [downlink]}, separators=(",", ":")).encode("utf-8"),
    )
