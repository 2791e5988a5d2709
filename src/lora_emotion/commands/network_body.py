"""``lora-emotion decode --network ttn|chirpstack|kpn FILE``: a saved webhook body as SenML.

The body goes through the very adapter and decoder the webhook runs, so what this prints is
what the webhook would store for it: the readings as a SenML pack with the device's base name
and the uplink's time, and (on stderr) what the network said about the uplink.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path

from ..errors import DecodeError
from ..labels import LabelRegistry
from ..networks import NetworkUplink, delivery_of
from ..networks.chirpstack import UPLINK_EVENT, parse_event
from ..networks.kpn import PAYLOAD_NAME, PORT_NAME, Delivery, Measurement, parse_delivery
from ..networks.ttn import parse_message
from ..senml import Record

__all__ = ["NETWORK_CHOICES", "read_body", "records_of_body"]

NETWORK_CHOICES = ("ttn", "chirpstack", "kpn")


def read_body(path: str) -> bytes:
    """The bytes of ``path``, or of standard input for ``-``.

    Raises:
        DecodeError: the file cannot be read.
    """
    if path == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise DecodeError(f"cannot read {path}: {exc.strerror}", field="FILE") from None


def _record(item: Measurement, base_time: float | None) -> Record:
    return Record(
        n=item.name,
        u=item.unit,
        v=item.value,
        vs=item.string_value,
        vb=item.bool_value,
        vd=item.data_value,
        s=item.sum,
        # Exact: two times of one uplink are within a factor of two of each other, so their
        # difference is a double (Sterbenz), and bt + t gives the time back bit for bit.
        t=None if base_time is None or item.time == base_time else item.time - base_time,
        ut=item.update_time,
    )


def _describe(uplink: NetworkUplink) -> str:
    parts = [f"{uplink.network} uplink of {uplink.dev_eui}", f"FPort {uplink.fport}"]
    parts += [f"{name} {value}" for name, value in uplink.metadata().items()]
    return ", ".join(parts)


def records_of_body(
    network: str, body: bytes, *, registry: LabelRegistry, now: float | None = None
) -> tuple[list[Record], str]:
    """The readings the webhook would store for ``body`` of ``network``, and a description.

    Returns:
        The records (the first with the device's base name and the uplink's base time) and one
        line saying what the body was.

    Raises:
        DecodeError: the body is malformed, is no uplink (a join, an acknowledgement ...), or
            its payload does not decode.
    """
    clock = time.time() if now is None else now
    delivery: Delivery
    if network == "kpn":
        delivery = parse_delivery(body, now=clock, registry=registry)
        description = f"kpn {delivery.kind} delivery of {delivery.device}"
    else:
        adapted = (
            parse_message(body, now=clock)
            if network == "ttn"
            else parse_event(body, event=UPLINK_EVENT, now=clock)
        )
        if not isinstance(adapted, NetworkUplink):
            raise DecodeError(
                f"a {adapted.event} message, not an uplink: nothing to decode", field="FILE"
            )
        delivery = delivery_of(adapted, now=clock, registry=registry)
        description = _describe(adapted)
    if delivery.decode_status == "error":
        raise DecodeError(delivery.decode_error or "the payload does not decode", field="payload")
    readings = [
        m
        for m in delivery.measurements
        if m.origin != "kpn" or m.name not in (PAYLOAD_NAME, PORT_NAME)
    ]
    base_time = delivery.event_time
    records = [_record(item, base_time) for item in readings]
    if records:
        records[0] = dataclasses.replace(records[0], bn=delivery.device + ":", bt=base_time)
    return records, description
