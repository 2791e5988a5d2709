"""RFC 3339 times, base64 and typed fields as the network adapters read them."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lora_emotion.errors import DecodeError
from lora_emotion.networks.fields import Fields, dev_eui_of, format_time, parse_time


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("2026-03-12T18:05:14Z", 1_773_338_714.0),
        ("2026-03-12T18:05:14.5Z", 1_773_338_714.5),
        ("2026-03-12T18:05:14.123456789Z", 1_773_338_714.123456789),
        ("2026-03-12T18:05:14.123456+00:00", 1_773_338_714.123456),
        ("2026-03-12T19:35:14+01:30", 1_773_338_714.0),
        ("2026-03-12T16:05:14-02:00", 1_773_338_714.0),
        ("2026-03-12t18:05:14z", 1_773_338_714.0),
    ],
)
def test_parse_time(text: str, seconds: float) -> None:
    assert parse_time(text, field="t") == seconds


@pytest.mark.parametrize(
    "text",
    [
        "2026-03-12",
        "2026-03-12T18:05:14",
        "2026-13-01T00:00:00Z",
        "2026-02-29T00:00:00Z",
        "2026-03-12T24:00:00Z",
        "2026-03-12T18:05:14.1234567890Z",
        "1970-01-01T00:00:00Z",
        "10000-01-01T00:00:00Z",
        12,
        None,
    ],
)
def test_parse_time_refuses(text: object) -> None:
    with pytest.raises(DecodeError, match=r"'t'|t:"):
        parse_time(text, field="t")


@given(st.floats(min_value=2.0**28, max_value=253_402_300_799.0), st.booleans())
def test_format_time_reads_back_as_the_same_float(seconds: float, zulu: bool) -> None:
    assert parse_time(format_time(seconds, zulu=zulu), field="t") == seconds


def test_dev_eui_is_upper_case() -> None:
    assert dev_eui_of("0004a30b001c2abc", field="f") == "0004A30B001C2ABC"
    with pytest.raises(DecodeError, match="f"):
        dev_eui_of("0004a30b001c2abz", field="f")


def test_fields_read_the_protobuf_json_mapping() -> None:
    fields = Fields({"big": "868100000", "n": 3.0, "b": "AYY=", "list": [{}]}, "x")
    assert fields.integer("big", low=0, high=10**10) == 868_100_000
    assert fields.integer("n", low=0, high=5) == 3
    assert fields.integer("absent", low=0, high=5) == 0
    assert fields.base64("b") == b"\x01\x86"
    assert fields.base64("absent") == b""
    assert [f.path for f in fields.objects("list")] == ["x.list[0]"]
    with pytest.raises(DecodeError, match=r"x\.n"):
        fields.integer("n", low=4, high=5)
    with pytest.raises(DecodeError, match=r"x\.big"):
        fields.number("big")
