"""Helpers for the JavaScript codec tests: node batches, a line-by-line node process, and the
Python reference (lora_emotion.uplink.decode_uplink) in the codec's output shape."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lora_emotion.errors import DecodeError
from lora_emotion.labels import LabelRegistry
from lora_emotion.uplink import decode_uplink

ROOT = Path(__file__).resolve().parents[2]
CODEC_DIR = ROOT / "codecs" / "js"
TOOL = Path(__file__).resolve().parent / "codec_tool.js"

Answer = Any


def run_batch(node: str, requests: list[dict[str, Any]]) -> list[Answer]:
    """Answer every request in one node process, in order."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump(requests, handle)
        name = handle.name
    try:
        result = subprocess.run(
            [node, str(TOOL), name], capture_output=True, text=True, timeout=600, check=False
        )
    finally:
        os.unlink(name)
    assert result.returncode == 0, result.stderr[-2000:]
    answers: list[Answer] = json.loads(result.stdout)
    assert len(answers) == len(requests)
    return answers


class NodeCodec:
    """One node process answering requests line by line."""

    def __init__(self, node: str) -> None:
        self._process = subprocess.Popen(
            [node, str(TOOL)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
        )

    def call(self, fn: str, input: Mapping[str, Any], *, build: str = "source") -> Answer:
        assert self._process.stdin is not None and self._process.stdout is not None
        self._process.stdin.write(json.dumps({"fn": fn, "input": input, "build": build}) + "\n")
        self._process.stdin.flush()
        line = self._process.stdout.readline()
        assert line, "codec_tool.js exited"
        return json.loads(line)

    def close(self) -> None:
        assert self._process.stdin is not None
        self._process.stdin.close()
        self._process.wait(timeout=30)


# --- the Python reference, in the codec's output shape ----------------------------------------


def _plain(value: object) -> object:
    """An extension field's value as the codec writes it in JSON (bytes as base64url)."""
    if isinstance(value, bytes):
        return base64.urlsafe_b64encode(value).rstrip(b"=").decode("ascii")
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


def reference(
    payload: bytes, fport: int, registry: LabelRegistry
) -> list[dict[str, object]] | None:
    """decode_uplink's records as JSON objects, or None when it raises DecodeError."""
    try:
        records = decode_uplink(payload, fport=fport, registry=registry)
    except DecodeError:
        return None
    return [
        {key: _plain(value) for key, value in record.to_json_dict().items()} for record in records
    ]


def same(a: object, b: object) -> bool:
    """JSON equality where numbers compare as doubles: JavaScript has no other number."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return float(a) == float(b)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[key], b[key]) for key in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def agrees(answer: Answer, expected: list[dict[str, object]] | None) -> str | None:
    """None when the codec's answer matches the reference, else what differs."""
    if not isinstance(answer, dict) or "thrown" in answer:
        return f"the codec threw: {answer}"
    errors = answer.get("errors")
    if errors and any(str(e).startswith("internal error") for e in errors):
        return f"internal error: {errors}"
    if expected is None:
        return None if errors and "data" not in answer else f"Python rejects, JS gave {answer}"
    if errors or "data" not in answer:
        return f"Python gives {expected}, JS rejects: {errors}"
    if set(answer["data"]) != {"records"}:
        return f"data has other keys than records: {sorted(answer['data'])}"
    if not same(answer["data"]["records"], expected):
        return f"records differ: JS {answer['data']['records']} Python {expected}"
    return None
