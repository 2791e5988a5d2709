"""The uplink every network adapter produces, and the delivery the store keeps for it.

Why one shape: storage, deduplication, the read API, metrics and alerts should not care which
network server heard a device. The Things Stack and ChirpStack each POST their own JSON; their
adapters reduce it to a :class:`NetworkUplink` (device, time, FPort, payload, radio metadata,
the network's own idempotency key) and :func:`delivery_of` decodes the payload with the same
code KPN's raw-payload deliveries go through, so an uplink stores the same readings whichever
network delivered it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from ..errors import DecodeError
from ..labels import DEFAULT_REGISTRY, LabelRegistry
from .kpn import DEVEUI_URN_PREFIX, Delivery, payload_measurements

__all__ = [
    "NETWORKS",
    "Network",
    "NetworkUplink",
    "OtherEvent",
    "RadioMetadata",
    "delivery_of",
    "dev_eui_urn",
]

Network = Literal["kpn", "ttn", "chirpstack"]
NETWORKS: Final[tuple[Network, ...]] = ("kpn", "ttn", "chirpstack")


def dev_eui_urn(dev_eui: str) -> str:
    """The device URN the store files a DevEUI under, on every network: KPN's own form."""
    return f"{DEVEUI_URN_PREFIX}{dev_eui.upper()}"


@dataclass(frozen=True, slots=True, kw_only=True)
class RadioMetadata:
    """What the network says about how the uplink was heard, where it says it.

    Attributes:
        rssi: the best gateway's RSSI, dBm.
        snr: that gateway's SNR, dB.
        gateways: how many gateways heard the uplink.
        spreading_factor: LoRa SF 5..12.
        bandwidth_hz: LoRa bandwidth.
        frequency_hz: the uplink channel.
        airtime_s: time on air the network computed.
        gateway_id: the best gateway's id.
    """

    rssi: float | None = None
    snr: float | None = None
    gateways: int | None = None
    spreading_factor: int | None = None
    bandwidth_hz: int | None = None
    frequency_hz: int | None = None
    airtime_s: float | None = None
    gateway_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The fields that are known, by name."""
        return {
            name: getattr(self, name) for name in self.__slots__ if getattr(self, name) is not None
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class NetworkUplink:
    """One uplink as any network delivered it.

    Attributes:
        network: who delivered it.
        dev_eui: 16 upper-case hex digits.
        time: when the network received it, seconds since the Unix epoch.
        fport: its FPort; 0 for a frame without application payload.
        payload: the FRMPayload (empty on FPort 0).
        fcnt: the uplink frame counter, when the network gives it.
        idempotency_key: what identifies this uplink on its network, whichever attempt or
            gateway delivered it (ChirpStack's ``deduplicationId``; The Things Stack's
            session, frame counter and simulation flag).
        application: the network's application id (selects the credentials).
        device_name: the network's own name for the device, when it has one.
        radio: gateway and radio metadata.
        simulated: an uplink the network's console simulated, not one heard on air.
    """

    network: Network
    dev_eui: str
    time: float
    fport: int
    payload: bytes
    idempotency_key: str
    fcnt: int | None = None
    application: str | None = None
    device_name: str | None = None
    radio: RadioMetadata = field(default_factory=RadioMetadata)
    simulated: bool = False

    @property
    def device(self) -> str:
        """The device URN the store files this uplink under."""
        return dev_eui_urn(self.dev_eui)

    @property
    def dedup_key(self) -> str:
        """The store's unique key: SHA-256 of the network and its idempotency key.

        The network is part of it so that two networks' keys can never collide, and the hash
        gives every network's key the store column's fixed width.
        """
        text = f"{self.network}\x1f{self.idempotency_key}"
        return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()

    def metadata(self) -> dict[str, Any]:
        """What the store keeps beside the readings: counter, radio, names, simulation flag.

        Not the network itself: the store has a column for that.
        """
        out: dict[str, Any] = {}
        if self.fcnt is not None:
            out["fcnt"] = self.fcnt
        if self.application is not None:
            out["application"] = self.application
        if self.device_name is not None:
            out["device_name"] = self.device_name
        out.update(self.radio.as_dict())
        if self.simulated:
            out["simulated"] = True
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class OtherEvent:
    """A message that is not an uplink (a join, an acknowledgement, a log line ...).

    The webhook answers it 2xx and counts it, so the network does not mark the integration as
    failing, and stores nothing.

    Attributes:
        network: who sent it.
        event: its type as the network names it (``join``, ``join_accept``, ``txack`` ...).
        application: the application id in it, when there is one.
    """

    network: Network
    event: str
    application: str | None = None


def delivery_of(
    uplink: NetworkUplink, *, now: float, registry: LabelRegistry = DEFAULT_REGISTRY
) -> Delivery:
    """The delivery the store keeps for ``uplink``, its payload decoded.

    A payload that does not decode leaves ``decode_status="error"`` and the message, never an
    exception: the uplink is still stored, raw, as KPN's are. A frame on FPort 0 carries no
    application payload and is kept as kind ``other``.

    Args:
        uplink: from an adapter.
        now: the receiver's clock, for records without a time.
        registry: the label sets compact payloads are decoded with.
    """
    device = uplink.device
    if uplink.fport == 0:
        return Delivery(
            device=device,
            dev_eui=uplink.dev_eui,
            event_time=uplink.time,
            kind="other",
            decode_status="none",
            decode_error=None,
            fport=0,
            payload=uplink.payload,
            measurements=(),
            dedup_key=uplink.dedup_key,
        )
    error = None
    try:
        measurements = tuple(
            payload_measurements(
                uplink.payload,
                uplink.fport,
                device=device,
                time=uplink.time,
                now=now,
                registry=registry,
            )
        )
    except DecodeError as exc:
        measurements, error = (), str(exc)
    return Delivery(
        device=device,
        dev_eui=uplink.dev_eui,
        event_time=uplink.time,
        kind="payload",
        decode_status="ok" if error is None else "error",
        decode_error=error,
        fport=uplink.fport,
        payload=uplink.payload,
        measurements=measurements,
        dedup_key=uplink.dedup_key,
    )
