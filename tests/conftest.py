"""Suite-wide fixtures."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _restore_environment() -> Iterator[None]:
    """Undo environment changes a test makes in process.

    ``lora-emotion serve`` and ``demo`` export their configuration (LORA_EMOTION_CONFIG, the
    database URL, the metrics directory) for the worker processes they start; run in process by
    a test, that would otherwise leak into every later test's Settings.
    """
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)
