"""Uplinks to SenML: the records match what KPN's ThingsML decoder delivered for the demo."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lora_emotion.errors import DecodeError
from lora_emotion.labels import FER2013, PHYSIO3
from lora_emotion.messages import (
    Batch,
    BatchEntry,
    Distribution,
    Reading,
    Summary,
    Vitals,
    encode,
    port_of,
)
from lora_emotion.senml import Record, resolve
from lora_emotion.uplink import decode_uplink, message_records

DEMO = bytes.fromhex("81A20067656D6F74696F6E03656861707079")


def test_demo_thingsml_and_compact_reading_agree_on_the_emotion_record() -> None:
    demo = decode_uplink(DEMO, fport=1)
    assert demo == [Record(n="emotion", vs="happy")]
    reading = Reading(label_set=FER2013, label="happy", confidence=0.87)
    compact = decode_uplink(encode(reading), fport=port_of(reading))
    assert compact[0] == demo[0]
    assert compact[1] == Record(n="confidence", u="/", v=0.87)


def test_no_face_is_named_none_without_confidence() -> None:
    records = message_records(Reading(label_set=FER2013, label=None))
    assert records == [Record(n="emotion", vs="none")]


def test_distribution_records_carry_every_class() -> None:
    message = Distribution(label_set=PHYSIO3, probabilities=(0.2, 0.7, 0.1))
    by_name = {r.n: r for r in message_records(message)}
    assert by_name["emotion"].vs == "happy"
    assert by_name["probability:sad"] == Record(n="probability:sad", u="/", v=0.1)


def test_vitals_in_senml_units() -> None:
    records = message_records(
        Vitals(label_set=PHYSIO3, heart_rate_bpm=72, skin_conductance_us=3.21)
    )
    assert records == [
        Record(n="heartRate", u="beat/min", v=72),
        Record(n="skinConductance", u="S", v=3.21e-06),
    ]


def test_summary_records() -> None:
    message = Summary(
        label_set=FER2013,
        window_s=60,
        counts=(1, 0, 0, 40, 5, 0, 10),
        no_face=4,
        mean_confidence=0.81,
    )
    by_name = {r.n: r for r in message_records(message)}
    assert by_name["emotion"].vs == "happy"
    assert by_name["confidence"].v == 0.81
    assert by_name["window"] == Record(n="window", u="s", v=60)
    assert by_name["readings"].v == 60
    assert by_name["count:none"].v == 4


def test_batch_times_resolve_against_the_uplink_time() -> None:
    batch = Batch(
        label_set=FER2013,
        entries=(
            BatchEntry(age_s=0, message=Reading(label_set=FER2013, label="sad", confidence=0.5)),
            BatchEntry(age_s=90, message=Reading(label_set=FER2013, label="happy", confidence=0.9)),
        ),
    )
    records = decode_uplink(encode(batch), fport=port_of(batch))
    records[0] = Record(
        bn="urn:dev:DEVEUI:0004A30B001C2ABC:", bt=1_700_000_000, n=records[0].n, vs=records[0].vs
    )
    resolved = resolve(records, now=1_800_000_000)
    times = {(r.name.rsplit(":", 1)[-1], r.value): r.time for r in resolved}
    assert times[("emotion", "sad")] == 1_700_000_000
    assert times[("emotion", "happy")] == 1_700_000_000 - 90


@given(st.binary(max_size=64), st.integers(-5, 300))
def test_decode_uplink_only_raises_decode_error(payload: bytes, fport: int) -> None:
    with contextlib.suppress(DecodeError):
        decode_uplink(payload, fport=fport)


def test_bad_thingsml_is_a_decode_error() -> None:
    with pytest.raises(DecodeError):
        decode_uplink(b"\x81\xa2\x00", fport=1)
