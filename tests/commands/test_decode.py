"""``lora-emotion decode``: SenML JSON out, base name and time, errors on stderr."""

from __future__ import annotations

import json

import cbor2
import pytest

from lora_emotion.cli import main


def test_decode_demo_thingsml(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["decode", "81A20067656D6F74696F6E03656861707079", "--port", "1"]) == 0
    assert json.loads(capsys.readouterr().out) == [{"n": "emotion", "vs": "happy"}]


def test_decode_with_base_name_and_time(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(
            [
                "decode",
                "01 86",
                "--port",
                "16",
                "--dev-eui",
                "0004a30b001c2abc",
                "--time",
                "1615572314",
            ]
        )
        == 0
    )
    pack = json.loads(capsys.readouterr().out)
    assert pack[0] == {
        "bn": "urn:dev:DEVEUI:0004A30B001C2ABC:",
        "bt": 1615572314,
        "n": "emotion",
        "vs": "happy",
    }
    assert pack[1] == {"n": "confidence", "u": "/", "v": 0.87}


def test_decode_to_senml_cbor(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["decode", "0186", "--port", "16", "--format", "cbor"]) == 0
    pack = cbor2.loads(bytes.fromhex(capsys.readouterr().out.strip()))
    assert pack == [{0: "emotion", 3: "happy"}, {0: "confidence", 1: "/", 2: 0.87}]


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["zz", "--port", "16"], "not hexadecimal"),
        (["0186", "--port", "5"], "port 5"),
        (["01", "--port", "16"], "truncated"),
        (["0186", "--port", "16", "--time", "yesterday"], "--time"),
    ],
)
def test_decode_errors(capsys: pytest.CaptureFixture[str], argv: list[str], words: str) -> None:
    assert main(["decode", *argv]) == 1
    assert words in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["AYY="], "0186"),  # TTN's frm_payload / ChirpStack's data for 01 86
        (["AYY"], "0186"),  # unpadded
        (["C4bojg=="], "0B86E88E"),
        (["C4bojg==", "--base64"], "0B86E88E"),
        (["0186"], "0186"),  # even-length hex digits: hex
        (["0x01:86"], "0186"),
        (["ABCD"], "ABCD"),  # hex and base64 both fit: hex
        (["ABCD", "--base64"], "001083"),
        (["_-8"], "FFEF"),  # URL-safe alphabet
    ],
)
def test_payload_hex_or_base64(argv: list[str], expected: str) -> None:
    from lora_emotion.commands._payload import payload_from_text

    encoding = "base64" if "--base64" in argv else "auto"
    data, _ = payload_from_text(argv[0], encoding)
    assert data.hex().upper() == expected


def test_decode_base64_like_ttn_shows_it(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["decode", "AYY=", "--port", "16"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out) == [
        {"n": "emotion", "vs": "happy"},
        {"n": "confidence", "u": "/", "v": 0.87},
    ]
    assert captured.err == ""


def test_decode_ambiguous_text_is_hex_and_a_failure_hints(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["decode", "0186", "--port", "16"]) == 0
    assert capsys.readouterr().err == ""
    # ABCD is base64 for 00 10 83 (two faces on port 18) and hex for AB CD (out of range).
    assert main(["decode", "043F21", "--port", "18", "--hex"]) == 0
    capsys.readouterr()
    assert main(["decode", "BD8h", "--port", "18"]) == 0  # not hex: base64 of 04 3F 21
    capsys.readouterr()
    assert main(["decode", "ABCD", "--port", "18"]) == 1  # hex AB CD: no faces length
    assert "if it is base64, pass --base64" in capsys.readouterr().err
    assert main(["decode", "ABCD", "--port", "18", "--base64"]) == 0


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["AYY=!"], "is not hexadecimal or base64"),
        (["AYZ="], "is not hexadecimal or base64"),  # stray bits in the last character
        (["A+_="], "is not hexadecimal or base64"),  # two alphabets mixed
        (["AYY=", "--hex"], "is not hexadecimal"),
        (["0186!", "--base64"], "is not base64"),
    ],
)
def test_decode_rejects_neither(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert main(["decode", *argv, "--port", "16"]) == 1
    assert message in capsys.readouterr().err
