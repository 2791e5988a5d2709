"""``lora-emotion decode --network``: a saved webhook body decoded as the webhook stores it."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from lora_emotion.cli import main
from lora_emotion.networks.chirpstack import event_body
from lora_emotion.networks.kpn import delivery_body, raw_payload_records
from lora_emotion.networks.ttn import message_body
from lora_emotion.senml import decode_json, resolve

VECTORS = json.loads(
    (Path(__file__).resolve().parents[1] / "vectors" / "messages.json").read_text("utf-8")
)
EUI = "02EE0000000000AB"
TIME = 1_700_000_000.125


def _bodies(fport: int, payload: bytes) -> dict[str, bytes]:
    return {
        "ttn": message_body(dev_eui=EUI, fport=fport, payload=payload, fcnt=9, time=TIME),
        "chirpstack": event_body(
            dev_eui=EUI.lower(),
            fport=fport,
            payload=payload,
            fcnt=9,
            time=TIME,
            deduplication_id="d",
        ),
        "kpn": delivery_body(EUI, raw_payload_records(payload, fport), base_time=TIME),
    }


@pytest.mark.parametrize("vector", VECTORS["vectors"][::7], ids=lambda v: v["name"])
def test_every_network_prints_the_same_pack(
    vector: dict[str, object], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    payload = bytes.fromhex(str(vector["hex"]))
    packs = {}
    for network, body in _bodies(int(str(vector["fport"])), payload).items():
        path = tmp_path / f"{network}.json"
        path.write_bytes(body)
        assert main(["decode", "--network", network, str(path)]) == 0
        captured = capsys.readouterr()
        packs[network] = captured.out
        assert network in captured.err
    assert packs["ttn"] == packs["chirpstack"] == packs["kpn"]
    resolved = resolve(decode_json(packs["ttn"]), now=0)
    assert {r.name.split(":", 4)[-1] for r in resolved} >= {
        str(r["n"])
        for r in vector["senml"]  # type: ignore[attr-defined]
    }
    assert all(r.name.startswith(f"urn:dev:DEVEUI:{EUI}:") for r in resolved)
    assert resolved[0].time == TIME


def test_a_batch_keeps_each_entrys_time(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    batch = next(v for v in VECTORS["vectors"] if v["name"] == "batch-readings-fer2013")
    path = tmp_path / "up.json"
    path.write_bytes(_bodies(batch["fport"], bytes.fromhex(batch["hex"]))["chirpstack"])
    assert main(["decode", "--network", "chirpstack", str(path)]) == 0
    times = {r.time for r in resolve(decode_json(capsys.readouterr().out), now=0)}
    # Each entry at the base time plus its offset, exactly.
    assert times == {TIME + r["t"] for r in batch["senml"]}


def test_the_body_can_come_from_stdin(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    body = _bodies(16, bytes.fromhex("0186"))["ttn"]
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(body)))
    assert main(["decode", "--network", "ttn", "-", "--format", "cbor"]) == 0
    assert capsys.readouterr().out.strip()


@pytest.mark.parametrize(
    ("network", "body", "message"),
    [
        ("ttn", b'{"end_device_ids": {}}', "end_device_ids.application_ids"),
        ("ttn", b"not json", "body"),
        (
            "ttn",
            b'{"end_device_ids": {"application_ids": {"application_id": "a"}}, "join_accept": {}}',
            "join_accept message, not an uplink",
        ),
        ("chirpstack", b'{"deviceInfo": {}}', "deviceInfo.applicationId"),
        ("kpn", b"[]", "bn"),
    ],
)
def test_malformed_bodies_are_errors_naming_the_field(
    network: str, body: bytes, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "body.json"
    path.write_bytes(body)
    assert main(["decode", "--network", network, str(path)]) == 1
    assert message in capsys.readouterr().err


def test_a_payload_that_does_not_decode_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "body.json"
    path.write_bytes(_bodies(16, b"")["ttn"])
    assert main(["decode", "--network", "ttn", str(path)]) == 1
    assert "payload" in capsys.readouterr().err


def test_a_missing_file_and_a_missing_port(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["decode", "--network", "ttn", "/nonexistent/body.json"]) == 1
    assert "cannot read /nonexistent/body.json" in capsys.readouterr().err
    assert main(["decode", "0186"]) == 1
    assert "--port" in capsys.readouterr().err
