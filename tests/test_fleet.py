"""Virtual relays to signed KPN deliveries: identities, frames, network side, bodies, headers."""

from __future__ import annotations

import itertools

import pytest

from lora_emotion.aggregator import RelayConfig
from lora_emotion.errors import EncodeError, VerificationError
from lora_emotion.fleet import (
    DEFAULT_SECRET,
    Delivery,
    Fleet,
    FleetConfig,
    NetworkServer,
    device_identity,
)
from lora_emotion.lorawan import DataFrame, MType, build_frame
from lora_emotion.messages import Mode, Status
from lora_emotion.networks.kpn import parse_delivery, verify_token
from lora_emotion.senml import decode_json
from lora_emotion.uplink import message_records

FAST = RelayConfig(mode=Mode.READING, window_s=5, budget=False, status_interval_min=0)


def take(config: FleetConfig, n: int) -> list[Delivery]:
    return list(itertools.islice(Fleet(config).deliveries(), n))


def test_identities_are_deterministic_distinct_and_well_formed() -> None:
    a, b = device_identity(0, seed=1), device_identity(1, seed=1)
    assert device_identity(0, seed=1) == a
    assert a.dev_eui != b.dev_eui and a.dev_addr != b.dev_addr and a.app_s_key != b.app_s_key
    assert device_identity(0, seed=2).nwk_s_key != a.nwk_s_key
    assert len(a.dev_eui) == 16 and int(a.dev_eui, 16) >> 56 == 0x02  # locally administered
    assert len(a.nwk_s_key) == len(a.app_s_key) == 16
    assert a.dev_addr >> 25 == 0  # NwkID 0: experimental / private networks
    assert "nwk_s_key" not in repr(a)
    with pytest.raises(EncodeError):
        device_identity(70_000)


def test_every_delivery_is_signed_and_decodes_to_what_the_relay_sent() -> None:
    deliveries = take(FleetConfig(devices=3, relay=FAST), 40)
    assert {d.device for d in deliveries} == {0, 1, 2}
    for delivery in deliveries:
        assert verify_token(
            delivery.body, delivery.headers["Things-Message-Token"], [DEFAULT_SECRET]
        )
        assert delivery.headers["Content-Type"] == "application/json"
        parsed = parse_delivery(delivery.body, now=delivery.base_time)
        assert parsed.dev_eui == delivery.dev_eui
        assert parsed.decode_status == "ok"
        assert parsed.fport == delivery.uplink.fport
        assert parsed.payload == delivery.uplink.payload
        decoded = [(m.name, m.value, m.string_value) for m in parsed.measurements]
        expected = [
            (r.n, None if r.v is None else float(r.v), r.vs)
            for r in message_records(delivery.uplink.message)
        ]
        assert [d for d in decoded if d[0] not in ("payload", "port")] == expected


def test_both_layouts_are_delivered_alternately() -> None:
    deliveries = take(FleetConfig(devices=2, relay=FAST), 6)
    first_records = [decode_json(d.body)[0] for d in deliveries]
    legacy = [r.n is None for r in first_records]  # a record holding only bn and bt
    assert legacy == [True, False] * 3
    only_legacy = take(FleetConfig(devices=2, relay=FAST, layout="legacy"), 4)
    assert all(decode_json(d.body)[0].n is None for d in only_legacy)


def test_frames_are_real_lorawan_and_bodies_do_not_depend_on_them() -> None:
    framed = take(FleetConfig(devices=2, relay=FAST, seed=9), 20)
    plain = take(FleetConfig(devices=2, relay=FAST, seed=9, lorawan=False), 20)
    assert [d.body for d in framed] == [d.body for d in plain]
    assert all(d.phy is None for d in plain)
    for delivery in framed:
        assert delivery.phy is not None
        assert delivery.phy[0] == MType.UNCONFIRMED_UP << 5
        # FRMPayload sits between FPort (byte 8, no FOpts) and the MIC, encrypted.
        assert delivery.phy[8] == delivery.uplink.fport
        assert delivery.phy[9:-4] != delivery.uplink.payload
    per_device = [d.fcnt for d in framed if d.device == 0]
    assert per_device == list(range(len(per_device)))


def test_deliveries_come_in_time_order_with_base_times_from_the_epoch() -> None:
    config = FleetConfig(devices=4, relay=FAST, epoch_s=1_600_000_000.0)
    deliveries = take(config, 60)
    times = [d.t_ms for d in deliveries]
    # Uplinks leave at window ends; devices are stepped one frame at a time in clock order.
    assert all(b >= a - config.stream.frame_interval_ms for a, b in itertools.pairwise(times))
    for delivery in deliveries:
        assert delivery.base_time == pytest.approx(1_600_000_000.0 + delivery.t_ms / 1000)


def test_staggered_boots_spread_the_devices_over_a_window() -> None:
    def boots(deliveries: list[Delivery]) -> list[int]:
        return [d.t_ms for d in deliveries if d.uplink.kind == "status"]

    # Without a join the boot status goes out at the boot second itself.
    assert boots(take(FleetConfig(devices=5, relay=FAST), 5)) == [0, 1000, 2000, 3000, 4000]
    assert boots(take(FleetConfig(devices=5, relay=FAST, stagger=False), 5)) == [0] * 5


def test_a_fleet_starts_with_a_status_message_per_device() -> None:
    deliveries = take(FleetConfig(devices=3), 12)
    first = {}
    for delivery in deliveries:
        first.setdefault(delivery.device, delivery)
    assert sorted(first) == [0, 1, 2]
    for device, delivery in first.items():
        assert isinstance(delivery.uplink.message, Status)
        # The join comes first (no delivery: it is not an uplink of data), then the status
        # once the join request's off-time (100 x 1483 ms at SF12) has passed; devices boot a
        # third of a window apart.
        assert delivery.t_ms == device * 20_000 + 149_000


def test_until_bounds_the_virtual_time() -> None:
    deliveries = list(Fleet(FleetConfig(devices=2, relay=FAST)).deliveries(until_ms=60_000))
    assert deliveries and max(d.t_ms for d in deliveries) <= 60_000


def _frame(identity_index: int, fcnt: int, *, seed: int = 0, key: bytes | None = None) -> bytes:
    identity = device_identity(identity_index, seed=seed)
    frame = DataFrame(
        mtype=MType.UNCONFIRMED_UP,
        dev_addr=identity.dev_addr,
        fcnt=fcnt,
        fport=16,
        frm_payload=b"\x01\x02",
    )
    return build_frame(frame, nwk_s_key=key or identity.nwk_s_key, app_s_key=identity.app_s_key)


def test_network_server_opens_frames_and_refuses_replays_forgeries_and_strangers() -> None:
    network = NetworkServer([device_identity(0), device_identity(1)])
    identity, frame = network.receive(_frame(0, 0))
    assert identity.index == 0 and frame.frm_payload == b"\x01\x02" and frame.fport == 16
    network.receive(_frame(0, 1))
    with pytest.raises(VerificationError, match="replays"):
        network.receive(_frame(0, 1))
    with pytest.raises(VerificationError, match="MIC"):
        network.receive(_frame(1, 0, key=bytes(16)))
    with pytest.raises(VerificationError, match="unknown DevAddr"):
        network.receive(_frame(5, 0))


@pytest.mark.parametrize(
    ("changes", "field"),
    [({"devices": 0}, "devices"), ({"layout": "other"}, "layout")],
)
def test_bad_fleet_settings_name_the_field(changes: dict[str, object], field: str) -> None:
    with pytest.raises(EncodeError) as caught:
        FleetConfig(**changes)  # type: ignore[arg-type]
    assert caught.value.field == field
