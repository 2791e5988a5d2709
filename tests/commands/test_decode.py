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
