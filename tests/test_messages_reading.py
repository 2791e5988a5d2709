"""``Reading``'s hand-written constructor accepts and refuses exactly what the full checks do."""

from __future__ import annotations

import dataclasses
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lora_emotion.errors import EncodeError
from lora_emotion.labels import FER2013, VALENCE3
from lora_emotion.messages import Reading, _label_state, decode, encode

LABELS = st.one_of(
    st.sampled_from([*FER2013.labels, *VALENCE3.labels, None, "", "HAPPY"]),
    st.text(max_size=8),
    st.integers(),
    st.lists(st.text(), max_size=1),
)
CONFIDENCES = st.one_of(
    st.floats(),
    st.sampled_from([0.0, -0.0, 1.0, 0.005, 0.995, 1.0000001, -1e-300, math.nan, math.inf]),
    st.integers(-1, 2),
    st.booleans(),
    st.none(),
    st.text(max_size=2),
)


@given(st.sampled_from([FER2013, VALENCE3]), LABELS, CONFIDENCES)
def test_the_constructor_agrees_with_the_full_checks(
    label_set: object, label: object, confidence: object
) -> None:
    try:
        _label_state(label_set, label, confidence)  # type: ignore[arg-type]
        expected = None
    except EncodeError as exc:
        expected = str(exc)
    try:
        reading = Reading(label_set=label_set, label=label, confidence=confidence)  # type: ignore[arg-type]
    except EncodeError as exc:
        assert str(exc) == expected
        return
    assert expected is None
    assert (reading.label_set, reading.label, reading.confidence) == (label_set, label, confidence)
    assert decode(encode(reading), fport=16 + 8 * label_set.id).label == label  # type: ignore[attr-defined]


def test_a_reading_stays_a_frozen_keyword_only_dataclass() -> None:
    reading = Reading(label_set=FER2013, label="happy", confidence=0.87)
    with pytest.raises(dataclasses.FrozenInstanceError):
        reading.label = "sad"  # type: ignore[misc]
    with pytest.raises(TypeError):
        Reading(FER2013, "happy", 0.87)  # type: ignore[misc]
    assert dataclasses.replace(reading, label="sad") == Reading(
        label_set=FER2013, label="sad", confidence=0.87
    )
    with pytest.raises(EncodeError):
        dataclasses.replace(reading, confidence=2.0)
    assert Reading(label_set=FER2013, label=None) == decode(bytes([0x02, 0xC3]), fport=16)
    assert hash(reading) == hash(Reading(label_set=FER2013, label="happy", confidence=0.87))
