"""``lora-emotion simulate``: against a live webhook, dry runs, bounds, refusals."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/helpers.py

from helpers import all_readings, free_port, live_webhook

from lora_emotion.cli import main
from lora_emotion.fleet import DEFAULT_SECRET
from lora_emotion.networks.kpn import verify_token


def test_a_run_against_the_webhook_is_stored_and_summarised(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with live_webhook() as server:
        code = main(
            [
                *("simulate", "--url", server.url, "--devices", "2", "--count", "12"),
                *("--speed", "max", "--json", "--quiet", "--mode", "reading", "--window", "10"),
            ]
        )
        out = capsys.readouterr().out
        summary = json.loads(out)
        assert code == 0
        assert summary["sent"] == summary["acknowledged"] == 12 and summary["failed"] == 0
        assert summary["latency_ms"]["p50"] > 0
        assert summary["config"]["client"] == "httpx" and summary["config"]["devices"] == 2
        devices = server.get("/devices")["devices"]
        assert len(devices) == 2
        for device in devices:
            readings = all_readings(server.get, device["urn"])
            # The raw payload and FPort stay on the delivery; readings are what they decode to.
            assert "emotion" in {r["name"] for r in readings}
            assert not {r["name"] for r in readings} & {"payload", "port"}
            deliveries = server.get("/deliveries", device=device["urn"])["deliveries"]
            assert deliveries and all(d["decode_status"] == "ok" for d in deliveries)
            assert all(d["payload"] and d["fport"] for d in deliveries)


def test_text_summary_and_progress(capsys: pytest.CaptureFixture[str]) -> None:
    with live_webhook() as server:
        code = main(["simulate", "--url", server.url, "--load", "--count", "30"])
    captured = capsys.readouterr()
    assert code == 0
    assert "no budget" in captured.out
    for label in ("sent", "acknowledged", "retried", "failed", "rate", "latency"):
        assert f"\n{label}" in "\n" + captured.out
    assert "built 30 deliveries" in captured.err


def test_dry_run_prints_signed_deliveries(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "--dry-run", "--count", "6", "--devices", "2", "--epoch", "0"]) == 0
    items = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(items) == 6
    first = {}
    for item in items:
        first.setdefault(item["device"], item)
    # Each device joins, then sends a status message once the join's off-time (100 x 1483 ms)
    # has passed; the second boots half a window later.
    assert (first[0]["message"], first[0]["t_ms"]) == ("Status", 149_000)
    assert (first[1]["message"], first[1]["t_ms"]) == ("Status", 179_000)
    for item in items:
        body = item["body"].encode()
        assert verify_token(body, item["headers"]["Things-Message-Token"], [DEFAULT_SECRET])
        assert item["phy"] is not None


def test_a_secret_from_the_environment_signs(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LORA_EMOTION_SIMULATE_SECRET", "Other-Secret-0123456789-abcdef!")
    assert main(["simulate", "--dry-run", "--count", "1"]) == 0
    item = json.loads(capsys.readouterr().out)
    token = item["headers"]["Things-Message-Token"]
    assert verify_token(item["body"].encode(), token, ["Other-Secret-0123456789-abcdef!"])


def test_failed_deliveries_give_exit_code_1(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{free_port()}/uplinks/kpn"
    argv = ["simulate", "--url", url, "--count", "2", "--speed", "max"]
    code = main([*argv, "--timeouts", "0.2,0.2", "--pauses", "0", "--json", "--quiet"])
    summary = json.loads(capsys.readouterr().out)
    assert code == 1
    assert summary["failed"] == 2 and summary["outcomes"] == {"connection": 4}


def test_a_remote_url_is_refused_without_permission(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "--url", "http://192.0.2.7/uplinks/kpn"]) == 1
    assert "--allow-remote" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        ["--speed", "0"],
        ["--timeouts", "a,b"],
        ["--sf", "13"],
        ["--mode", "faces"],
        ["--duration", "-1"],
    ],
)
def test_bad_options_are_usage_errors(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["simulate", *argv])
    assert caught.value.code == 2


def test_an_unknown_label_set_is_a_project_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "--dry-run", "--label-set", "nope"]) == 1
    assert "unknown label set" in capsys.readouterr().err


def test_help_has_examples(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["simulate", "--help"])
    text = capsys.readouterr().out
    assert "examples:" in text and "--load" in text and "--dry-run" in text


def test_the_raw_client_is_for_load_on_http_only(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["simulate", "--client", "raw", "--count", "1"])
    assert exited.value.code == 2  # a usage error
    assert "--client raw is for --load" in capsys.readouterr().err
    with live_webhook() as server:
        assert main(["simulate", "--url", server.url, "--load", "--count", "5", "--json"]) == 0
        load = json.loads(capsys.readouterr().out)
        assert load["config"]["client"] == "raw" and load["retried"] == 0
