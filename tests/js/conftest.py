"""Fixtures for the JavaScript codec tests: node with the codec's dev tools installed.

The codec runs in node through ``codec_tool.js``: one long-lived process answers single calls
line by line (hypothesis examples), and a batch of many cases goes through one process over a
JSON file, because starting node costs far more than a case does.

Needs node and npm; acorn, js-interpreter, js-yaml and terser come pinned from
codecs/js/package-lock.json via ``npm ci``. Outside CI a missing toolchain skips these tests;
with CI=true it fails them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator

import pytest
from js_codec_support import CODEC_DIR, NodeCodec

IN_CI = os.environ.get("CI") == "true"


def _unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"the JavaScript codec tests must run under CI=true: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def node() -> str:
    """Path to node, with the codec's dev dependencies installed from the lock file."""
    node_bin = shutil.which("node")
    npm_bin = shutil.which("npm")
    if node_bin is None or npm_bin is None:
        _unavailable("node and npm are needed to run the JavaScript codec")
        raise AssertionError("unreachable")
    needed = ("acorn", "js-interpreter", "js-yaml", "terser")
    if not all((CODEC_DIR / "node_modules" / name).is_dir() for name in needed):
        try:
            subprocess.run(
                [npm_bin, "ci", "--no-audit", "--no-fund"],
                cwd=CODEC_DIR,
                check=True,
                capture_output=True,
                text=True,
                timeout=300,
            )
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
            detail = getattr(exc, "stderr", "") or ""
            _unavailable(f"npm ci in {CODEC_DIR} failed: {detail.strip()[-500:]}")
    return node_bin


@pytest.fixture(scope="session")
def js(node: str) -> Iterator[NodeCodec]:
    codec = NodeCodec(node)
    yield codec
    codec.close()
