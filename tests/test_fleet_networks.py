"""The simulated fleet posting as The Things Stack and ChirpStack: same uplinks, their shapes."""

from __future__ import annotations

import pytest

from lora_emotion.errors import EncodeError
from lora_emotion.fleet import DEFAULT_TOKEN, ChirpStackIntegration, Fleet, FleetConfig
from lora_emotion.networks import NetworkUplink, delivery_of
from lora_emotion.networks.chirpstack import parse_event
from lora_emotion.networks.credentials import presented_token
from lora_emotion.networks.kpn import parse_delivery
from lora_emotion.networks.ttn import parse_message

NOW = 1_800_000_000.0


def _deliveries(network: str, count: int = 40) -> list:  # type: ignore[type-arg]
    fleet = Fleet(FleetConfig(devices=3, seed=5, network=network))  # type: ignore[arg-type]
    return [d for _, d in zip(range(count), fleet.deliveries(), strict=False)]


@pytest.mark.parametrize("network", ["ttn", "chirpstack"])
def test_every_uplink_stores_what_the_kpn_fleet_stores(network: str) -> None:
    kpn = _deliveries("kpn")
    other = _deliveries(network)
    assert [d.uplink for d in other] == [d.uplink for d in kpn]
    for sent, reference in zip(other, kpn, strict=True):
        adapted = (
            parse_message(sent.body, now=NOW)
            if network == "ttn"
            else parse_event(sent.body, event="up", now=NOW)
        )
        assert isinstance(adapted, NetworkUplink)
        assert adapted.fcnt == sent.fcnt
        assert adapted.dev_eui == sent.dev_eui
        stored = delivery_of(adapted, now=NOW)
        expected = parse_delivery(reference.body, now=NOW)
        assert stored.decode_status == expected.decode_status == "ok"
        assert stored.measurements == tuple(
            m for m in expected.measurements if m.origin == "payload"
        )
        assert presented_token(sent.headers["Authorization"], None) == DEFAULT_TOKEN


def test_each_uplink_has_its_own_key_and_a_run_repeats_exactly() -> None:
    for network, parse in (
        ("ttn", lambda body: parse_message(body, now=NOW)),
        ("chirpstack", lambda body: parse_event(body, event="up", now=NOW)),
    ):
        first = _deliveries(network)
        keys = {parse(d.body).dedup_key for d in first}
        assert len(keys) == len(first)
        assert [d.body for d in _deliveries(network)] == [d.body for d in first]


def test_chirpstack_deduplication_ids_are_uuids_per_uplink() -> None:
    integration = ChirpStackIntegration(application_id="a", token="t", seed=1)
    first = integration.deduplication_id("02EE000000000000", 1)
    assert first == integration.deduplication_id("02EE000000000000", 1)
    assert first != integration.deduplication_id("02EE000000000000", 2)
    assert first[14] == "4" and first[19] in "89ab" and len(first) == 36


def test_an_unknown_network_is_refused() -> None:
    with pytest.raises(EncodeError, match="network"):
        FleetConfig(network="lorawan-server")  # type: ignore[arg-type]
