"""Alert rules: what the configuration accepts and refuses, and how a rule's state moves."""

from __future__ import annotations

import base64
import re
import secrets
import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from lora_emotion.webhook.alerts.engine import Emotion, Evaluator, NewReading, RuleState
from lora_emotion.webhook.alerts.rules import AlertSettings
from lora_emotion.webhook.config import Settings
from pydantic import ValidationError

from lora_emotion.labels import DEFAULT_REGISTRY, FER2013

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
DEVICE = "urn:dev:DEVEUI:0004A30B001F1234"


@pytest.mark.parametrize(
    ("rule", "named"),
    [
        ({"name": "r", "kind": "sustained", "label": "angry", "k": 6, "n": 5}, "field 'k'"),
        ({"name": "r", "kind": "sustained", "label": "angry", "k": 2}, "field 'n'"),
        ({"name": "r", "kind": "sustained", "label": "angry", "share": 1.5}, "field 'share'"),
        ({"name": "r", "kind": "sustain", "label": "angry"}, "field 'kind'"),
        ({"name": "r", "kind": "change", "to": []}, "field 'to'"),
        (
            {"name": "r", "kind": "change", "to": ["sad"], "cooldown_s": "soon"},
            "field 'cooldown_s'",
        ),
        ({"name": "r", "kind": "silence", "after_s": 1}, "field 'after_s'"),
        ({"name": "r", "kind": "trouble", "battery_below": 101}, "field 'battery_below'"),
        ({"name": "r", "kind": "trouble", "devices": ["not-a-device"]}, "field 'devices'"),
        ({"name": "r", "kind": "trouble", "tag": "ward-9"}, "field 'tag'"),
        ({"name": "r", "kind": "trouble", "channels": ["pager"]}, "field 'channels'"),
        ({"name": "r", "kind": "trouble", "colour": "red"}, "field 'colour'"),
        ({"name": "bad name!", "kind": "trouble"}, "field 'name'"),
    ],
)
def test_an_invalid_rule_is_refused_with_rule_and_field_named(
    rule: dict[str, object], named: str
) -> None:
    rules = [{"name": "fine", "kind": "silence", "after_s": "1h"}, rule]
    with pytest.raises(ValidationError) as caught:
        Settings(alerts={"rules": rules})
    message = str(caught.value)
    assert f"alert rule {rule['name']!r} (alerts.rules[1])" in message
    assert named in message


def test_durations_devices_and_tags_are_normalised() -> None:
    settings = AlertSettings.model_validate(
        {
            "tags": {"ward": ["0004a30b001f1234"]},
            "rules": [
                {"name": "a", "kind": "silence", "after_s": "2h", "cooldown_s": "90s"},
                {"name": "b", "kind": "change", "to": ["sad"], "devices": ["0004a30b001f9999"]},
                {"name": "c", "kind": "change", "to": ["sad"], "tag": "ward"},
            ],
        }
    )
    silence, listed, tagged = settings.rules
    assert silence.after_s == 7200 and silence.cooldown_s == 90  # type: ignore[union-attr]
    assert listed.devices == ["urn:dev:DEVEUI:0004A30B001F9999"]
    assert settings.selects(tagged, DEVICE) and not settings.selects(listed, DEVICE)
    assert settings.selects(silence, DEVICE)


def _evaluator(rule: dict[str, object]) -> Evaluator:
    return Evaluator(AlertSettings.model_validate({"rules": [rule]}), DEFAULT_REGISTRY)


def _emotion(label: str, confidence: float, age_s: int = 0) -> Emotion:
    return Emotion((NOW - timedelta(seconds=age_s)).timestamp(), 1, label, confidence)


def _readings(*names: tuple[str, float | None, str | None]) -> list[NewReading]:
    return [NewReading(7, "key-7", NOW, name, v, vs) for name, v, vs in names]


EMOTION = _readings(("emotion", None, "angry"))


def test_cooldown_holds_back_a_repeat_until_it_has_passed() -> None:
    evaluator = _evaluator(
        {"name": "r", "kind": "change", "to": ["angry"], "cooldown_s": "10m", "recovery": False}
    )
    angry = [_emotion("angry", 0.9)]
    alerts, changes = evaluator.evaluate(DEVICE, EMOTION, angry, {}, NOW)
    assert [a.status for a in alerts] == ["firing"] and changes[0].firing
    # Cleared without a notice (recovery off), then angry again 5 minutes later: held back.
    fired = RuleState(False, NOW)
    later = NOW + timedelta(minutes=5)
    assert evaluator.evaluate(DEVICE, EMOTION, angry, {"r": fired}, later) == ([], [])
    alerts, _ = evaluator.evaluate(
        DEVICE, EMOTION, angry, {"r": fired}, NOW + timedelta(minutes=11)
    )
    assert [a.status for a in alerts] == ["firing"]
    # While it fires, nothing new; when it clears without recovery, only the state changes.
    firing = {"r": RuleState(True, NOW)}
    assert evaluator.evaluate(DEVICE, EMOTION, angry, firing, later) == ([], [])
    alerts, changes = evaluator.evaluate(DEVICE, EMOTION, [_emotion("happy", 0.9)], firing, later)
    assert alerts == [] and changes[0].firing is False


def test_alert_ids_are_stable_for_the_same_cause() -> None:
    evaluator = _evaluator({"name": "r", "kind": "change", "to": ["angry"]})
    first, _ = evaluator.evaluate(DEVICE, EMOTION, [_emotion("angry", 0.9)], {}, NOW)
    again, _ = evaluator.evaluate(DEVICE, EMOTION, [_emotion("angry", 0.9)], {}, NOW)
    other = [NewReading(8, "key-8", NOW, "emotion", None, "angry")]
    third, _ = evaluator.evaluate(DEVICE, other, [_emotion("angry", 0.9)], {}, NOW)
    assert first[0].alert_id == again[0].alert_id != third[0].alert_id
    assert first[0].alert_id.startswith("al_")


def test_window_summary_share() -> None:
    evaluator = _evaluator(
        {"name": "r", "kind": "sustained", "label": "sad", "share": 0.5, "confidence": 0.6}
    )
    summary = _readings(
        ("emotion", None, "sad"),
        ("confidence", 0.7, None),
        ("window", 60, None),
        ("readings", 40, None),
        ("count:sad", 20, None),
    )
    alerts, _ = evaluator.evaluate(DEVICE, summary, [], {}, NOW)
    assert "sad in 50 % of the readings of a 60 s window" in alerts[0].summary
    unsure = [
        r if r.name != "confidence" else NewReading(7, "k", NOW, r.name, 0.5, None) for r in summary
    ]
    assert evaluator.evaluate(DEVICE, unsure, [], {}, NOW) == ([], [])
    # A plain reading says nothing about window shares.
    assert evaluator.evaluate(DEVICE, EMOTION, [], {}, NOW) == ([], [])


def test_label_set_fingerprint_mismatch_is_trouble() -> None:
    evaluator = _evaluator({"name": "r", "kind": "trouble"})
    right = f"{FER2013.fingerprint:04x}"
    wrong = f"{FER2013.fingerprint ^ 1:04x}"

    def status(fingerprint: str) -> list[NewReading]:
        return _readings(
            ("labelSetId", 0, None),
            ("labelSetFingerprint", None, fingerprint),
            ("droppedReadings", 0, None),
            ("batteryLevel", 80, None),
        )

    assert evaluator.evaluate(DEVICE, status(right), [], {}, NOW) == ([], [])
    alerts, _ = evaluator.evaluate(DEVICE, status(wrong), [], {}, NOW)
    assert f"device fingerprint {wrong}" in alerts[0].summary


def test_the_examples_in_the_alerts_doc_are_valid_configuration() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "alerts.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```toml\n(.*?)```", doc, re.DOTALL)
    assert len(blocks) == 2
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    text = "\n".join(blocks).replace("whsec_<base64 of 32 random bytes>", secret)
    settings = AlertSettings.model_validate(tomllib.loads(text)["alerts"])
    assert [rule.kind for rule in settings.rules] == [
        "sustained",
        "sustained",
        "change",
        "silence",
        "trouble",
    ]
    assert settings.channel_names() == ["mqtt", "pager", "email"]
