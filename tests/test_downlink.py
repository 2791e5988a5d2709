"""Downlink commands to the relay and their acknowledgement in the status message."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lora_emotion import downlink as dl
from lora_emotion.errors import DecodeError, EncodeError, PayloadTooLargeError
from lora_emotion.labels import FER2013, PHYSIO3
from lora_emotion.messages import CommandStatus, Mode, Status

VECTORS = json.loads((Path(__file__).parent / "vectors" / "downlinks.json").read_text())


def _fields(command: dl.Command) -> dict[str, Any]:
    if isinstance(command, dl.SetWindow):
        return {"op": "set_window", "window_s": command.window_s}
    if isinstance(command, dl.SetMode):
        return {"op": "set_mode", "mode": command.mode.name.lower()}
    if isinstance(command, dl.SetDailyBudget):
        return {"op": "set_daily_budget", "budget_s": command.budget_s}
    if isinstance(command, dl.SetLabelSet):
        return {
            "op": "set_label_set",
            "set_id": command.set_id,
            "classes": command.classes,
            "fingerprint": command.fingerprint,
        }
    if isinstance(command, dl.SendStatus):
        return {"op": "send_status"}
    assert isinstance(command, dl.SetStatusInterval)
    return {"op": "set_status_interval", "interval_min": command.interval_min}


@pytest.mark.parametrize("vector", VECTORS["downlinks"], ids=lambda v: v["name"])
def test_downlink_vectors(vector: dict[str, Any]) -> None:
    payload = bytes.fromhex(vector["hex"])
    if vector["python"] is None:
        with pytest.raises(DecodeError):
            dl.decode(payload)
        assert vector["device"] in {"rejected", "unknown_command"}
        return
    downlink = dl.decode(payload)
    assert downlink.seq == vector["python"]["seq"]
    assert [_fields(c) for c in downlink.commands] == vector["python"]["commands"]
    assert dl.encode(downlink) == payload


commands = st.one_of(
    st.builds(dl.SetWindow, window_s=st.integers(1, 65_536)),
    st.builds(dl.SetMode, mode=st.sampled_from(Mode)),
    st.builds(dl.SetDailyBudget, budget_s=st.integers(1, 1024)),
    st.builds(
        dl.SetLabelSet,
        set_id=st.integers(0, 23),
        classes=st.integers(2, 64),
        fingerprint=st.integers(0, 0xFFFF),
    ),
    st.builds(dl.SendStatus),
    st.builds(dl.SetStatusInterval, interval_min=st.integers(1, 65_535)),
)


@given(st.integers(0, 255), st.lists(commands, max_size=10))
def test_every_downlink_round_trips(seq: int, command_list: list[dl.Command]) -> None:
    downlink = dl.Downlink(seq=seq, commands=tuple(command_list))
    payload = dl.encode(downlink)
    assert len(payload) <= 51
    assert dl.decode(payload) == downlink


@given(st.binary(max_size=64))
def test_decode_raises_only_decode_error(payload: bytes) -> None:
    with contextlib.suppress(DecodeError):
        dl.decode(payload)


def test_the_status_message_acknowledges_a_downlink() -> None:
    downlink = dl.Downlink(seq=42, commands=(dl.SetWindow(window_s=120), dl.SendStatus()))
    ack = Status(
        firmware=(1, 0, 0), window_s=120, command_seq=42, command_status=CommandStatus.APPLIED
    )
    assert dl.outcome(ack, downlink) is CommandStatus.APPLIED
    assert dl.outcome(ack, 42) is CommandStatus.APPLIED
    assert dl.outcome(ack, 41) is None  # another command's outcome
    assert dl.outcome(Status(firmware=(1, 0, 0)), 0) is None  # nothing processed yet


def test_label_set_command_from_a_label_set() -> None:
    assert dl.SetLabelSet.of(PHYSIO3) == dl.SetLabelSet(
        set_id=2, classes=3, fingerprint=PHYSIO3.fingerprint
    )
    payload = dl.encode(dl.Downlink(seq=9, commands=(dl.SetLabelSet.of(FER2013),)))
    assert payload == bytes([9, 4, 0, 7]) + FER2013.fingerprint.to_bytes(2, "big")


def test_a_downlink_must_fit_51_bytes() -> None:
    too_many = tuple(dl.SetLabelSet.of(FER2013) for _ in range(11))  # 1 + 11 x 5 bytes
    with pytest.raises(PayloadTooLargeError):
        dl.encode(dl.Downlink(seq=1, commands=too_many))


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: dl.SetWindow(window_s=0), "window_s"),
        (lambda: dl.SetWindow(window_s=65_537), "window_s"),
        (lambda: dl.SetMode(mode=4), "mode"),  # type: ignore[arg-type]
        (lambda: dl.SetDailyBudget(budget_s=1025), "budget_s"),
        (lambda: dl.SetLabelSet(set_id=24, classes=7, fingerprint=0), "set_id"),
        (lambda: dl.SetLabelSet(set_id=6, classes=1, fingerprint=0), "classes"),
        (lambda: dl.SetStatusInterval(interval_min=0), "interval_min"),
        (lambda: dl.Downlink(seq=256), "seq"),
        (lambda: dl.Downlink(seq=1, commands=("window",)), "commands[0]"),  # type: ignore[arg-type]
        (lambda: dl.encode("01"), "downlink"),  # type: ignore[arg-type]
    ],
)
def test_invalid_commands_cannot_be_built(build: Any, field: str) -> None:
    with pytest.raises(EncodeError) as caught:
        build()
    assert caught.value.field == field


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ("", "seq"),
        ("0109", "opcode"),
        ("010100", "set_window"),
        ("010204", "mode"),
        ("01030400", "budget_s"),
        ("0106", "set_status_interval"),
    ],
)
def test_decode_errors_name_the_field(payload: str, field: str) -> None:
    with pytest.raises(DecodeError) as caught:
        dl.decode(bytes.fromhex(payload))
    assert caught.value.field == field
