"""The golden vectors shared with the C++ sketch core and other decoders."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from lora_emotion.errors import DecodeError
from lora_emotion.labels import BUILTIN_SETS
from lora_emotion.messages import decode, encode, port_of
from lora_emotion.senml import encode_json
from lora_emotion.uplink import decode_uplink

DOCUMENT = json.loads((Path(__file__).parent / "vectors" / "messages.json").read_text())
VECTORS: list[dict[str, Any]] = DOCUMENT["vectors"]
INVALID: list[dict[str, Any]] = DOCUMENT["invalid"]


def test_every_message_type_has_vectors() -> None:
    kinds = {v["message"]["type"] for v in VECTORS}
    assert kinds == {"reading", "distribution", "faces", "summary", "vitals", "status", "batch"}
    assert {v["message"].get("kind") for v in VECTORS if v["message"]["type"] == "batch"} == {
        "reading",
        "distribution",
        "vitals",
    }


def test_label_sets_in_the_file_match_the_code() -> None:
    for entry, label_set in zip(DOCUMENT["label_sets"], BUILTIN_SETS, strict=True):
        assert (entry["id"], entry["name"], tuple(entry["labels"]), entry["fingerprint"]) == (
            label_set.id,
            label_set.name,
            label_set.labels,
            label_set.fingerprint,
        )


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_vector_decodes_and_reencodes(vector: dict[str, Any]) -> None:
    payload = bytes.fromhex(vector["hex"])
    assert len(payload) == vector["size"]
    message = decode(payload, fport=vector["fport"])
    assert encode(message) == payload
    assert port_of(message) == vector["fport"]
    records = decode_uplink(payload, fport=vector["fport"])
    assert json.loads(encode_json(records)) == vector["senml"]


@pytest.mark.parametrize("vector", INVALID, ids=[v["name"] for v in INVALID])
def test_invalid_vector_is_rejected(vector: dict[str, Any]) -> None:
    with pytest.raises(DecodeError) as info:
        decode_uplink(bytes.fromhex(vector["hex"]), fport=vector["fport"])
    assert vector["error"] in str(info.value)
