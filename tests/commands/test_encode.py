"""``lora-emotion encode``: every type, --json shape, errors on stderr."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lora_emotion.cli import main
from lora_emotion.messages import decode


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, object]:
    assert main(["encode", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("argv", "port", "size"),
    [
        (["reading", "--label", "happy", "--confidence", "0.87"], 16, 2),
        (["reading", "--no-face"], 16, 2),
        (["distribution", "--probs", "0.02,0.01,0.03,0.87,0.04,0.02,0.01"], 17, 4),
        (["faces", "--face", "happy:0.9", "--face", "sad:0.4"], 18, 3),
        (["faces"], 18, 1),
        (
            [
                "summary",
                "--window",
                "60",
                "--counts",
                "1,0,0,40,5,0,10",
                "--no-face",
                "4",
                "--mean-confidence",
                "0.81",
            ],
            19,
            7,
        ),
        (
            [
                "vitals",
                "--label-set",
                "physio3",
                "--heart-rate",
                "72",
                "--skin-conductance",
                "3.21",
                "--label",
                "happy",
                "--confidence",
                "0.6",
            ],
            36,
            4,
        ),
        (["status", "--firmware", "1.2.3", "--battery", "88", "--uptime", "7200"], 2, 16),
        (["batch", "--reading", "5:happy:0.87", "--reading", "65:none"], 21, 6),
        (["batch", "--vitals", "0:72:3.2", "--vitals", "60:75"], 23, 11),
        (["batch", "--distribution", "0:0.5,0.5,0,0,0,0,0"], 22, 6),
    ],
)
def test_encode_every_type(
    capsys: pytest.CaptureFixture[str], argv: list[str], port: int, size: int
) -> None:
    out = run_json(capsys, *argv)
    assert (out["port"], out["size"]) == (port, size)
    assert isinstance(out["airtime_ms"], float) and out["airtime_ms"] > 0
    decode(bytes.fromhex(str(out["hex"])), fport=port)


def test_cli_example_values(capsys: pytest.CaptureFixture[str]) -> None:
    out = run_json(capsys, "reading", "--label", "happy", "--confidence", "0.87", "--sf", "7")
    assert out["hex"] == "0186"
    assert out["airtime_ms"] == 46.336  # 2 B at SF7: same symbol count as 0 B
    text_code = main(["encode", "distribution", "--probs", "0.02,0.01,0.03,0.87,0.04,0.02,0.01"])
    assert text_code == 0
    assert capsys.readouterr().out.startswith("0B86E88E  port 17  4 B")


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["reading", "--label", "joy", "--confidence", "0.5"], "'joy' is not in label set"),
        (["reading", "--label", "happy", "--confidence", "1.5"], "confidence: 1.5 is outside"),
        (["reading", "--label", "happy", "--confidence", "nan"], "confidence"),
        (["distribution", "--probs", "0.5,0.5"], "2 values for 7 classes"),
        (["distribution", "--probs", "0.9,0.9,0,0,0,0,0"], "sum is 1.8"),
        (["distribution", "--probs", "a,b"], "--probs"),
        (["reading", "--label-set", "nope", "--label", "x"], "unknown label set"),
    ],
)
def test_errors_go_to_stderr(
    capsys: pytest.CaptureFixture[str], argv: list[str], words: str
) -> None:
    assert main(["encode", *argv]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert words in captured.err


def test_too_many_faces(capsys: pytest.CaptureFixture[str]) -> None:
    faces = [arg for _ in range(44) for arg in ("--face", "sad:0.1")]
    assert main(["encode", "faces", *faces]) == 1
    assert "at most 43" in capsys.readouterr().err


def test_user_label_set_from_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    labels = tmp_path / "labels.json"
    labels.write_text(
        json.dumps(
            {
                "label_sets": [
                    {"id": 6, "name": "speech4", "labels": ["neutral", "happy", "sad", "angry"]}
                ]
            }
        )
    )
    out = run_json(
        capsys,
        "reading",
        "--labels-file",
        str(labels),
        "--label-set",
        "speech4",
        "--label",
        "sad",
        "--confidence",
        "0.5",
    )
    assert out["port"] == 16 + 8 * 6
    assert (
        main(["decode", str(out["hex"]), "--port", str(out["port"]), "--labels-file", str(labels)])
        == 0
    )
    assert '"vs":"sad"' in capsys.readouterr().out
    assert main(["decode", str(out["hex"]), "--port", str(out["port"])]) == 1
    assert "label set id 6" in capsys.readouterr().err


def test_help_lists_examples(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["encode", "--help"])
    assert info.value.code == 0
    assert "lora-emotion encode reading --label happy" in capsys.readouterr().out
