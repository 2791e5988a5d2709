"""ChirpStack v4 HTTP-integration events, sans-IO: take apart and build.

ChirpStack POSTs every event of an application to one URL, naming the event in the query
string (``?event=up``, ``join``, ``ack``, ``txack``, ``log``, ``status``, ``location``,
``integration``). With the default JSON marshaler the body is the protobuf JSON mapping of
``integration.UplinkEvent`` and its siblings: camelCase names, fields at their default value
omitted (an FPort or frame counter of 0 is absent), ``data`` base64, ``devEui`` lower-case hex.
It signs nothing: the integration's custom headers carry the receiver's token, checked by the
webhook before anything here runs.

Why ``deduplicationId`` is the idempotency key: ChirpStack gives one uplink heard by several
gateways one such id after its de-duplication window, and an event that is posted again carries
it unchanged; the frame counter alone would merge two sessions' uplinks after a rejoin.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Sequence
from typing import Any, Final

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

__all__ = ["EVENTS", "UPLINK_EVENT", "event_body", "parse_event"]

UPLINK_EVENT: Final = "up"
#: Every event type ChirpStack v4's HTTP integration posts.
EVENTS: Final = ("up", "join", "ack", "txack", "log", "status", "location", "integration")
_MAX_FCNT: Final = 2**32 - 1
_DEV_EUI_RE: Final = re.compile(r"[0-9A-Fa-f]{16}")
_WHAT: Final = "a ChirpStack integration event"


def _radio(document: Fields) -> RadioMetadata:
    gateways = document.objects("rxInfo")
    best: tuple[float, Fields] | None = None
    for gateway in gateways:
        rssi = gateway.number("rssi")
        if rssi is not None and (best is None or rssi > best[0]):
            best = (rssi, gateway)
    tx = document.object("txInfo", required=False)
    lora = tx.object("modulation", required=False).object("lora", required=False)
    return RadioMetadata(
        rssi=None if best is None else best[0],
        snr=None if best is None else best[1].number("snr"),
        gateway_id=None if best is None else best[1].text("gatewayId"),
        gateways=len(gateways) or None,
        spreading_factor=lora.integer("spreadingFactor", low=5, high=12, default=None),
        bandwidth_hz=lora.integer("bandwidth", low=1, high=10_000_000, default=None),
        frequency_hz=tx.integer("frequency", low=1, high=10_000_000_000, default=None),
    )


def _plain_radio(document: dict[str, Any]) -> RadioMetadata | None:
    gateways = document.get("rxInfo", ())
    strongest = strongest_gateway(gateways, ("rssi",))
    if strongest is None:
        return None
    best, best_rssi, snr = strongest
    gateway_id = None
    if best is not None:
        gateway_id = best.get("gatewayId")
        if gateway_id is not None and type(gateway_id) is not str:
            return None
    tx = document.get("txInfo")
    spreading_factor = bandwidth = frequency = None
    if tx is not None:
        if type(tx) is not dict:
            return None
        modulation = tx.get("modulation")
        if modulation is not None and type(modulation) is not dict:
            return None
        lora = None if modulation is None else modulation.get("lora")
        if lora is not None:
            rate = lora_rate(lora, "spreadingFactor")
            if rate is None:
                return None
            spreading_factor, bandwidth = rate
        frequency = tx.get("frequency")
        if frequency is not None and not (type(frequency) is int and 1 <= frequency <= 10**10):
            return None
    return RadioMetadata(
        rssi=best_rssi,
        snr=snr,
        gateway_id=gateway_id,
        gateways=len(gateways) or None,
        spreading_factor=spreading_factor,
        bandwidth_hz=bandwidth,
        frequency_hz=frequency,
    )


def _plain_uplink(document: dict[str, Any]) -> NetworkUplink | None:
    """The uplink of an ``up`` event in the shape ChirpStack sends, read in one pass.

    As in :mod:`.ttn`: the field-by-field reader (:func:`_parse`) is where the error messages
    come from and costs as much CPU as the rest of a delivery; this one reads the common shape
    directly and returns ``None`` at the first thing it does not expect, never raising.
    ``tests/networks/test_chirpstack.py`` checks that both agree wherever this one answers.
    """
    info = document.get("deviceInfo")
    if type(info) is not dict:
        return None
    application = info.get("applicationId")
    key = document.get("deduplicationId")
    eui = info.get("devEui")
    name = info.get("deviceName")
    fport = document.get("fPort", 0)
    fcnt = document.get("fCnt", 0)
    if not (
        type(application) is str
        and application
        and type(key) is str
        and key
        and type(eui) is str
        and _DEV_EUI_RE.fullmatch(eui)
        and (name is None or type(name) is str)
        and type(fport) is int
        and 0 <= fport <= 255
        and type(fcnt) is int
        and 0 <= fcnt <= _MAX_FCNT
    ):
        return None
    time = plain_time(document.get("time"))
    radio = _plain_radio(document)
    if time is None or radio is None:
        return None
    payload = b""
    if fport:
        text = document.get("data")
        if text is not None:
            if type(text) is not str or len(text) % 4:
                return None
            try:
                payload = binascii.a2b_base64(text, strict_mode=True)
            except ValueError:  # binascii.Error, or text that is not ASCII
                return None
    return NetworkUplink(
        network="chirpstack",
        dev_eui=eui.upper(),
        time=time,
        fport=fport,
        payload=payload,
        fcnt=fcnt,
        idempotency_key=key,
        application=application,
        device_name=name,
        radio=radio,
    )


def parse_event(body: bytes | str, *, event: str | None, now: float) -> NetworkUplink | OtherEvent:
    """Take a (verified) ChirpStack HTTP-integration event apart.

    Args:
        body: the request body (JSON marshaler).
        event: the ``event`` query parameter.
        now: the receiver's clock, the uplink's time when the event carries none.

    Returns:
        The uplink of an ``up`` event; an :class:`OtherEvent` for every other event type.

    Raises:
        DecodeError: no ``event`` parameter, not JSON, or a field missing or of the wrong type,
            named by its path (``deviceInfo.devEui``, ``fPort`` ...).
    """
    if not event:
        raise DecodeError(
            "missing; ChirpStack names the event in the query string (?event=up)",
            field="query parameter 'event'",
        )
    loaded = load_object(body, what=_WHAT)
    if event == UPLINK_EVENT:
        plain = _plain_uplink(loaded)
        if plain is not None:
            return plain
    return _parse(loaded, event=event, now=now)


def _parse(loaded: dict[str, Any], *, event: str, now: float) -> NetworkUplink | OtherEvent:
    """:func:`parse_event` field by field: the general reader, and the error messages."""
    document = Fields(loaded)
    info = document.object("deviceInfo", required=event == UPLINK_EVENT)
    if event != UPLINK_EVENT:
        _check_shared_fields(document, info)
        return OtherEvent(network="chirpstack", event=event, application=info.text("applicationId"))
    application = info.text("applicationId", required=True)
    key = document.text("deduplicationId", required=True)
    assert key is not None
    eui = dev_eui_of(info.text("devEui", required=True), field=info.where("devEui"))
    fport = document.integer("fPort", low=0, high=255) or 0
    stamp = document.text("time")
    return NetworkUplink(
        network="chirpstack",
        dev_eui=eui,
        time=now if stamp is None else parse_time(stamp, field="time"),
        fport=fport,
        payload=document.base64("data") if fport else b"",
        fcnt=document.integer("fCnt", low=0, high=_MAX_FCNT),
        idempotency_key=key,
        application=application,
        device_name=info.text("deviceName"),
        radio=_radio(document),
    )


def _check_shared_fields(document: Fields, info: Fields) -> None:
    """Check the fields an event shares with ``up`` events, where it has them.

    An event that is not stored is still refused (422) when a field it carries is not what
    ChirpStack would send: it is not from ChirpStack, or not from the version this reads.
    """
    for name in ("applicationId", "deviceName"):
        info.text(name)
    if info.has("devEui"):
        dev_eui_of(info.text("devEui"), field=info.where("devEui"))
    document.text("deduplicationId")
    if document.has("time"):
        parse_time(document.text("time"), field="time")
    document.integer("fCnt", low=0, high=_MAX_FCNT)
    document.integer("fPort", low=0, high=255)
    document.base64("data")
    _radio(document)


def event_body(
    *,
    dev_eui: str,
    fport: int,
    payload: bytes,
    fcnt: int,
    time: float,
    deduplication_id: str,
    application_id: str = "00000000-0000-4000-8000-00000000e0e0",
    device_name: str | None = None,
    gateways: Sequence[tuple[str, float, float]] = (("0016c001ff1e0e0e", -97.0, 7.25),),
    spreading_factor: int = 7,
) -> bytes:
    """The body ChirpStack's JSON marshaler would POST for one ``up`` event.

    Fields at their protobuf default are left out, as ChirpStack leaves them out.

    Args:
        dev_eui: 16 hex digits (written lower-case, as ChirpStack does).
        fport: 0..255.
        payload: the FRMPayload.
        fcnt: the frame counter.
        time: when the network received it (seconds since the epoch).
        deduplication_id: the event's UUID.
        application_id: the application's UUID.
        device_name: the device's name in ChirpStack.
        gateways: (gateway id, RSSI, SNR) of each gateway that heard it.
        spreading_factor: the uplink's SF.

    Raises:
        EncodeError: a bad DevEUI, FPort or frame counter.
    """
    try:
        eui = dev_eui_of(dev_eui, field="dev_eui").lower()
    except DecodeError as exc:
        raise EncodeError(exc.reason, field="dev_eui") from None
    if isinstance(fport, bool) or not 0 <= fport <= 255:
        raise EncodeError(f"{fport!r} is not an FPort 0..255", field="fport")
    if isinstance(fcnt, bool) or not 0 <= fcnt <= _MAX_FCNT:
        raise EncodeError(f"{fcnt!r} is not a 32-bit frame counter", field="fcnt")
    stamp = format_time(time, zulu=False)
    document: dict[str, Any] = {
        "deduplicationId": deduplication_id,
        "time": stamp,
        "deviceInfo": {
            "tenantId": "52f14cd4-c6f1-4fbd-8f87-4025e1d49242",
            "tenantName": "ChirpStack",
            "applicationId": application_id,
            "applicationName": "lora-emotion",
            "deviceProfileName": "lora-emotion relay",
            "deviceName": device_name or f"relay-{eui}",
            "devEui": eui,
            "tags": {},
        },
        "devAddr": "00ee0000",
        "adr": True,
        "dr": 12 - spreading_factor,
    }
    if fcnt:
        document["fCnt"] = fcnt
    if fport:
        document["fPort"] = fport
    document["confirmed"] = False
    if payload:
        document["data"] = base64.b64encode(payload).decode("ascii")
    document["rxInfo"] = [
        {
            "gatewayId": gateway,
            "uplinkId": 1000 + index,
            "gwTime": stamp,
            "rssi": int(rssi),
            "snr": snr,
            "context": "AAAAAA==",
            "crcStatus": "CRC_OK",
        }
        for index, (gateway, rssi, snr) in enumerate(gateways)
    ]
    document["txInfo"] = {
        "frequency": 868100000,
        "modulation": {
            "lora": {"bandwidth": 125000, "spreadingFactor": spreading_factor, "codeRate": "CR_4_5"}
        },
    }
    return json.dumps(document, separators=(",", ":")).encode("utf-8")
