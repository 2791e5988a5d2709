"""A fleet of virtual relays, the network that hears them and its webhook deliveries.

Sans-IO, like the codec: this module turns seeds and a virtual clock into the exact HTTP bodies
and headers KPN Things, The Things Stack or ChirpStack would POST, and nothing else. The async
runner (``simulate_run``) only sends them. Each hop is the real code of the project, so a
delivery that arrives at the webhook has been through the same steps as one from a device in
the field:

    EmotionStream -> Aggregator (windows, ledger, pacing) -> encode -> build_frame (AES, MIC)
    -> NetworkServer.receive (parse, FCnt, MIC, decrypt) -> raw-payload SenML
    -> delivery_body (legacy or merged layout) -> message_token (SHA-256 body || secret)

or, for the other networks, the uplink message of The Things Stack or the ``up`` event of
ChirpStack with the application's token in ``Authorization``.

Why identities and keys derive from the seed: a run can be repeated exactly, and the test that
checks a stored reading against what was sent can rebuild everything from two integers.
"""

from __future__ import annotations

import hashlib
import heapq
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol

from .aggregator import Aggregator, RelayConfig, Uplink
from .errors import EncodeError, VerificationError
from .networks import NETWORKS, Network, chirpstack, ttn
from .networks.kpn import delivery_body, message_token, raw_payload_records
from .simulator import EmotionStream, Observation, StreamConfig, observation_frames

if TYPE_CHECKING:  # pragma: no cover - typing only
    from .lorawan import DataFrame

__all__ = [
    "DEFAULT_APPLICATIONS",
    "DEFAULT_PLUG_UUID",
    "DEFAULT_SECRET",
    "DEFAULT_TOKEN",
    "ChirpStackIntegration",
    "Delivery",
    "Destination",
    "DeviceIdentity",
    "Fleet",
    "FleetConfig",
    "KpnDestination",
    "NetworkServer",
    "TtnWebhook",
    "VirtualDevice",
    "destination_of",
    "device_identity",
]

#: The destination the simulator signs for unless told otherwise. Demo values: the webhook
#: refuses them outside ``environment=dev`` (they contain "example").
DEFAULT_PLUG_UUID = "5e1a7e00-0000-4000-8000-00000000e0e0"
DEFAULT_SECRET = "Example-Shared-Secret-For-Simulation-0001!"
#: The token The Things Stack or ChirpStack sends as ``Authorization: Bearer``, and the
#: application it belongs to, unless told otherwise (demo values, refused outside dev too).
DEFAULT_TOKEN = "Example-Network-Token-For-Simulation-0001"
DEFAULT_APPLICATIONS: dict[Network, str] = {
    "kpn": DEFAULT_PLUG_UUID,
    "ttn": "lora-emotion-demo",
    "chirpstack": "5e1a7e00-0000-4000-8000-00000000c5c5",
}

LayoutChoice = Literal["legacy", "merged", "alternate"]

# DevAddr of NetID 000000/000001 (experimental and private networks: LoRaWAN Backend Interfaces
# 1.0 §13): the 7-bit NwkID prefix is 0, so addresses 0x00000000-0x01FFFFFF are safe to invent.
_DEV_ADDR_BASE = 0x00EE_0000
# DevEUIs start with 02 (the locally administered bit of an EUI-64) and "EE" for emotion.
_DEV_EUI_PREFIX = 0x02EE


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceIdentity:
    """What the network knows about a device activated by personalisation (ABP)."""

    index: int
    dev_eui: str
    dev_addr: int
    nwk_s_key: bytes = field(repr=False)
    app_s_key: bytes = field(repr=False)


def device_identity(index: int, *, seed: int = 0) -> DeviceIdentity:
    """The identity of virtual device ``index`` of fleet ``seed``: DevEUI, DevAddr, session keys.

    Raises:
        EncodeError: ``index`` outside 0..65535 (the DevAddr block holds 65 536 devices).
    """
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index <= 0xFFFF:
        raise EncodeError("must be an integer 0..65535", field="index")

    def key(purpose: str) -> bytes:
        return hashlib.sha256(f"lora-emotion/{seed}/{index}/{purpose}".encode()).digest()[:16]

    return DeviceIdentity(
        index=index,
        dev_eui=f"{_DEV_EUI_PREFIX:04X}{seed & 0xFFFF:04X}{index:08X}",
        dev_addr=_DEV_ADDR_BASE + index,
        nwk_s_key=key("nwk"),
        app_s_key=key("app"),
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class FleetConfig:
    """A fleet: how many relays, what they see, how they send, where it is delivered.

    Attributes:
        devices: number of virtual relays, 1..65536.
        seed: seeds every stream and derives every identity.
        stream: the emotion model of every device (each device gets its own seed).
        relay: the relay settings of every device.
        lorawan: wrap each payload in a real LoRaWAN frame and open it network-side.
        layout: SenML layout of the deliveries; ``alternate`` switches per uplink.
        plug_uuid: the ``Things-Plug-UUID`` header.
        secret: the destination's shared secret the body is signed with.
        network: who delivers: ``kpn`` (SenML, signed), ``ttn`` (uplink messages) or
            ``chirpstack`` (``up`` events).
        token: the bearer token of The Things Stack's or ChirpStack's requests.
        application: their application id (None: the network's demo application).
        epoch_s: Unix time of virtual time 0 (uplink base times are ``epoch_s + t``).
        stagger: boot the devices spread over one window so their uplinks do not align.

    Raises:
        EncodeError: a setting out of range.
    """

    devices: int = 3
    seed: int = 0
    stream: StreamConfig = field(default_factory=StreamConfig)
    relay: RelayConfig = field(default_factory=RelayConfig)
    lorawan: bool = True
    layout: LayoutChoice = "alternate"
    plug_uuid: str = DEFAULT_PLUG_UUID
    secret: str = field(default=DEFAULT_SECRET, repr=False)
    epoch_s: float = 1_700_000_000.0
    stagger: bool = True
    network: Network = "kpn"
    token: str = field(default=DEFAULT_TOKEN, repr=False)
    application: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.devices, bool) or not isinstance(self.devices, int):
            raise EncodeError("must be an integer", field="devices")
        if not 1 <= self.devices <= 0x10000:
            raise EncodeError("must be 1..65536", field="devices")
        if self.layout not in ("legacy", "merged", "alternate"):
            raise EncodeError(f"unknown layout {self.layout!r}", field="layout")
        if self.stream.label_set != self.relay.label_set:
            raise EncodeError("the stream and the relay use different label sets", field="stream")
        if self.network not in NETWORKS:
            raise EncodeError(f"unknown network {self.network!r}", field="network")


@dataclass(frozen=True, slots=True, kw_only=True)
class Delivery:
    """One HTTP request the network would make for one uplink.

    Attributes:
        t_ms: virtual time of the uplink.
        device: the device's index in the fleet.
        dev_eui: its DevEUI.
        fcnt: the uplink's 32-bit frame counter.
        uplink: what the relay sent (message, port, payload).
        phy: the LoRaWAN frame on air, or None without ``lorawan``.
        base_time: the SenML base time of the delivery (Unix seconds).
        body: the request body, exactly as signed.
        headers: the request headers, token included.
    """

    t_ms: int
    device: int
    dev_eui: str
    fcnt: int
    uplink: Uplink
    phy: bytes | None
    base_time: float
    body: bytes
    headers: dict[str, str]


class NetworkServer:
    """The network side of ABP sessions: checks and decrypts frames, tracks frame counters.

    Args:
        identities: the devices it knows.
    """

    def __init__(self, identities: list[DeviceIdentity]) -> None:
        from . import lorawan  # only when frames are used: needs the 'lorawan' extra

        self._lorawan = lorawan
        self._by_addr = {identity.dev_addr: identity for identity in identities}
        self._last_fcnt: dict[int, int] = {}

    def receive(self, phy: bytes) -> tuple[DeviceIdentity, DataFrame]:
        """Open an uplink frame: find the session, check the MIC, decrypt the payload.

        Returns:
            The device and the plaintext frame.

        Raises:
            DecodeError: not a LoRaWAN data frame.
            VerificationError: an unknown DevAddr, a MIC that does not verify, a replayed or
                too distant frame counter.
        """
        parsed = self._lorawan.parse_frame(phy)
        identity = self._by_addr.get(parsed.dev_addr)
        if identity is None:
            raise VerificationError(f"unknown DevAddr {parsed.dev_addr:08X}")
        last = self._last_fcnt.get(parsed.dev_addr)
        frame = self._lorawan.open_frame(
            phy, nwk_s_key=identity.nwk_s_key, app_s_key=identity.app_s_key, last_fcnt=last
        )
        if last is not None and frame.fcnt <= last:
            raise VerificationError(f"frame counter {frame.fcnt} replays {last}")
        self._last_fcnt[parsed.dev_addr] = frame.fcnt
        return identity, frame


class Destination(Protocol):
    """Where a network delivers: builds the request for one uplink."""

    def request(
        self, dev_eui: str, payload: bytes, fport: int, *, fcnt: int, base_time: float, layout: str
    ) -> tuple[bytes, dict[str, str]]:
        """The body and headers of the delivery of one raw uplink."""
        ...


class KpnDestination:
    """KPN Things' side of an HTTPS destination: builds and signs the requests.

    Args:
        plug_uuid: the destination's id, sent as ``Things-Plug-UUID``.
        secret: the shared secret.
    """

    def __init__(self, *, plug_uuid: str, secret: str) -> None:
        self.plug_uuid = plug_uuid
        self._secret = secret

    def request(
        self,
        dev_eui: str,
        payload: bytes,
        fport: int,
        *,
        fcnt: int = 0,
        base_time: float,
        layout: str,
    ) -> tuple[bytes, dict[str, str]]:
        """The body and headers of the delivery of one raw uplink (KPN sends no counter).

        Raises:
            EncodeError: a bad DevEUI, port, base time or layout.
        """
        body = delivery_body(
            dev_eui,
            raw_payload_records(payload, fport),
            base_time=base_time,
            layout=layout,  # type: ignore[arg-type]
        )
        headers = {
            "Content-Type": "application/json",
            "Things-Plug-UUID": self.plug_uuid,
            "Things-Message-Token": message_token(body, self._secret),
            # Seen on real deliveries; a receiver must not trip over it.
            "things-device-barcode": "NULL",
        }
        return body, headers


def _bearer(token: str) -> dict[str, str]:
    return {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}


class TtnWebhook:
    """The Things Stack's side of an application webhook: uplink messages with a custom header.

    Args:
        application_id: the application the devices belong to.
        token: sent as ``Authorization: Bearer``, as the webhook form's custom header would.
    """

    def __init__(self, *, application_id: str, token: str) -> None:
        self.application_id = application_id
        self._token = token

    def request(
        self, dev_eui: str, payload: bytes, fport: int, *, fcnt: int, base_time: float, layout: str
    ) -> tuple[bytes, dict[str, str]]:
        """The uplink message of one raw uplink (``layout`` is KPN's; unused here).

        Raises:
            EncodeError: a bad DevEUI, port or frame counter.
        """
        body = ttn.message_body(
            dev_eui=dev_eui,
            fport=fport,
            payload=payload,
            fcnt=fcnt,
            time=base_time,
            application_id=self.application_id,
        )
        # The Things Stack names its cluster in every webhook request.
        return body, {**_bearer(self._token), "X-Tts-Domain": "eu1.cloud.thethings.network"}


class ChirpStackIntegration:
    """ChirpStack's side of an HTTP integration: ``up`` events with a custom header.

    Args:
        application_id: the application's UUID.
        token: sent as ``Authorization: Bearer``, as the integration's headers would.
        seed: makes the events' deduplication ids repeatable across runs of one fleet.
    """

    def __init__(self, *, application_id: str, token: str, seed: int = 0) -> None:
        self.application_id = application_id
        self._token = token
        self._seed = seed

    def deduplication_id(self, dev_eui: str, fcnt: int) -> str:
        """The UUID ChirpStack would give this uplink (a version-4 layout, derived)."""
        digest = bytearray(hashlib.sha256(f"{self._seed}/{dev_eui}/{fcnt}".encode()).digest()[:16])
        digest[6] = (digest[6] & 0x0F) | 0x40
        digest[8] = (digest[8] & 0x3F) | 0x80
        text = digest.hex()
        return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"

    def request(
        self, dev_eui: str, payload: bytes, fport: int, *, fcnt: int, base_time: float, layout: str
    ) -> tuple[bytes, dict[str, str]]:
        """The ``up`` event of one raw uplink (``layout`` is KPN's; unused here).

        Raises:
            EncodeError: a bad DevEUI, port or frame counter.
        """
        body = chirpstack.event_body(
            dev_eui=dev_eui,
            fport=fport,
            payload=payload,
            fcnt=fcnt,
            time=base_time,
            deduplication_id=self.deduplication_id(dev_eui, fcnt),
            application_id=self.application_id,
        )
        return body, _bearer(self._token)


def destination_of(config: FleetConfig) -> Destination:
    """The destination ``config``'s network delivers to."""
    application = config.application or DEFAULT_APPLICATIONS[config.network]
    if config.network == "ttn":
        return TtnWebhook(application_id=application, token=config.token)
    if config.network == "chirpstack":
        return ChirpStackIntegration(
            application_id=application, token=config.token, seed=config.seed
        )
    return KpnDestination(plug_uuid=config.plug_uuid, secret=config.secret)


class VirtualDevice:
    """One relay: an emotion stream feeding an aggregator, with a frame counter.

    Args:
        identity: its DevEUI, DevAddr and keys.
        stream: what its host model reports.
        relay: its aggregation and airtime settings.
        boot_ms: when it boots (virtual time).
    """

    def __init__(
        self, identity: DeviceIdentity, *, stream: EmotionStream, relay: RelayConfig, boot_ms: int
    ) -> None:
        self.identity = identity
        self.stream = stream
        self.aggregator = Aggregator(relay, boot_ms=boot_ms)
        self.fcnt = 0

    def feed(self, observation: Observation) -> list[Uplink]:
        """Hand one observation's frames to the relay, then let it decide, as ``loop()`` does."""
        aggregator, t = self.aggregator, observation.t_ms
        for frame in observation_frames(observation, aggregator.config.label_set):
            aggregator.handle_frame(t, frame)
        return aggregator.poll(t)

    def step(self) -> list[Uplink]:
        """Run one frame of the stream through the relay."""
        return self.feed(self.stream.next())


class Fleet:
    """Many relays on one virtual clock, producing their network's deliveries in time order.

    Args:
        config: the fleet.
    """

    def __init__(self, config: FleetConfig | None = None) -> None:
        self.config = cfg = config or FleetConfig()
        window_ms = cfg.relay.window_s * 1000
        self.devices: list[VirtualDevice] = []
        for index in range(cfg.devices):
            identity = device_identity(index, seed=cfg.seed)
            boot = (index * window_ms) // cfg.devices if cfg.stagger else 0
            stream = EmotionStream(cfg.stream, seed=_stream_seed(cfg.seed, index), start_ms=boot)
            self.devices.append(
                VirtualDevice(identity, stream=stream, relay=cfg.relay, boot_ms=boot)
            )
        identities = [device.identity for device in self.devices]
        self.network = NetworkServer(identities) if cfg.lorawan else None
        self.destination = destination_of(cfg)
        self.uplinks = 0

    def _deliver(self, device: VirtualDevice, uplink: Uplink) -> Delivery:
        cfg = self.config
        identity = device.identity
        fcnt = device.fcnt
        device.fcnt += 1
        phy: bytes | None = None
        fport, payload = uplink.fport, uplink.payload
        if self.network is not None:
            from .lorawan import DataFrame, MType, build_frame

            frame = DataFrame(
                mtype=MType.UNCONFIRMED_UP,
                dev_addr=identity.dev_addr,
                fcnt=fcnt,
                adr=True,
                fport=fport,
                frm_payload=payload,
            )
            phy = build_frame(frame, nwk_s_key=identity.nwk_s_key, app_s_key=identity.app_s_key)
            heard, opened = self.network.receive(phy)
            assert heard is identity and opened.fport is not None
            fport, payload = opened.fport, opened.frm_payload
        layout = cfg.layout
        if layout == "alternate":
            layout = "legacy" if self.uplinks % 2 == 0 else "merged"
        self.uplinks += 1
        base_time = round(cfg.epoch_s + uplink.t_ms / 1000, 3)
        body, headers = self.destination.request(
            identity.dev_eui, payload, fport, fcnt=fcnt, base_time=base_time, layout=layout
        )
        return Delivery(
            t_ms=uplink.t_ms,
            device=identity.index,
            dev_eui=identity.dev_eui,
            fcnt=fcnt,
            uplink=uplink,
            phy=phy,
            base_time=base_time,
            body=body,
            headers=headers,
        )

    def deliveries(self, *, until_ms: int | None = None) -> Iterator[Delivery]:
        """Deliveries of every device, in the order the frames that caused them happened.

        Args:
            until_ms: stop once every device's clock has passed this virtual time; None runs
                forever (bound the iteration yourself).

        Yields:
            One delivery per uplink.
        """
        heap = [(device.stream.t_ms, index) for index, device in enumerate(self.devices)]
        heapq.heapify(heap)
        while heap:
            t_ms, index = heap[0]
            if until_ms is not None and t_ms > until_ms:
                return
            device = self.devices[index]
            uplinks = device.step()
            heapq.heapreplace(heap, (device.stream.t_ms, index))
            for uplink in uplinks:
                yield self._deliver(device, uplink)


def _stream_seed(seed: int, index: int) -> int:
    return int.from_bytes(hashlib.sha256(f"stream/{seed}/{index}".encode()).digest()[:8], "big")
