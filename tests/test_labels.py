"""Label sets: built-ins, user sets from a document, fingerprints."""

from __future__ import annotations

import json

import pytest

from lora_emotion.errors import EncodeError
from lora_emotion.labels import (
    BUILTIN_SETS,
    DEFAULT_REGISTRY,
    FER2013,
    LabelSet,
    crc16_ccitt,
    parse_label_sets,
)


def test_builtin_sets_keep_their_ids_and_order() -> None:
    assert [s.id for s in BUILTIN_SETS] == list(range(len(BUILTIN_SETS)))
    assert FER2013.labels[3] == "happy"
    assert DEFAULT_REGISTRY.by_name("physio3").labels == ("angry", "happy", "sad")
    assert DEFAULT_REGISTRY.by_name("valence3").labels == ("pleasant", "unpleasant", "neutral")


def test_crc16_ccitt_false_check_value() -> None:
    # The catalogue check value of CRC-16/CCITT-FALSE over "123456789".
    assert crc16_ccitt(b"123456789") == 0x29B1


def test_fingerprint_changes_with_order() -> None:
    a = LabelSet(6, "a", ("x", "y"))
    b = LabelSet(6, "a", ("y", "x"))
    assert a.fingerprint != b.fingerprint


def test_user_sets_from_a_document_with_sixteen_or_more_classes() -> None:
    document = json.loads(
        json.dumps(
            {
                "label_sets": [
                    {"id": 6, "name": "wide", "labels": [f"class{i}" for i in range(20)]},
                    {"id": 7, "name": "speech", "labels": ["neutral", "calm", "happy"]},
                ]
            }
        )
    )
    registry = parse_label_sets(document)
    wide = registry.get(6)
    assert wide is not None and len(wide) == 20
    assert registry.by_name("speech").index("calm") == 1
    assert registry.get(0) == FER2013


@pytest.mark.parametrize(
    ("document", "field"),
    [
        ({}, "label_sets"),
        ({"label_sets": [{"id": "6", "name": "a", "labels": ["x", "y"]}]}, "label_sets[0].id"),
        (
            {"label_sets": [{"id": 6, "name": "a", "labels": ["x", "bad name"]}]},
            "label_sets[0].labels[1]",
        ),
        ({"label_sets": [{"id": 6, "name": "a", "labels": ["x", "x"]}]}, "label_sets[0].labels"),
        (
            {"label_sets": [{"id": 6, "name": "a", "labels": ["x", "none"]}]},
            "label_sets[0].labels[1]",
        ),
        ({"label_sets": [{"id": 1, "name": "a", "labels": ["x", "y"]}]}, "label_sets[0].id"),
        ({"label_sets": [{"id": 24, "name": "a", "labels": ["x", "y"]}]}, "label_sets[0].id"),
        (
            {"label_sets": [{"id": 6, "name": "fer2013", "labels": ["x", "y"]}]},
            "label_sets[0].name",
        ),
    ],
)
def test_bad_documents_name_the_place(document: object, field: str) -> None:
    with pytest.raises(EncodeError) as info:
        parse_label_sets(document)
    assert info.value.field == field


def test_unknown_label_lists_the_known_ones() -> None:
    with pytest.raises(EncodeError, match="happy"):
        FER2013.index("joyful")
