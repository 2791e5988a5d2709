"""The codec modules import no I/O or framework machinery (h11's sans-IO discipline)."""

from __future__ import annotations

import json
import subprocess
import sys

CODEC_MODULES = [
    "lora_emotion",
    "lora_emotion.errors",
    "lora_emotion.labels",
    "lora_emotion.messages",
    "lora_emotion.senml",
    "lora_emotion.thingsml",
    "lora_emotion.uplink",
    "lora_emotion.airtime",
    "lora_emotion.budget",
]
FORBIDDEN = ["socket", "asyncio", "fastapi", "serial", "sqlalchemy", "http.client", "urllib3"]


def test_codec_imports_no_io() -> None:
    script = (
        "import importlib, json, sys\n"
        f"for name in {CODEC_MODULES!r}: importlib.import_module(name)\n"
        f"print(json.dumps([m for m in {FORBIDDEN!r} if m in sys.modules]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert json.loads(result.stdout) == []
