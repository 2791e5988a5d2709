"""Suite-wide fixtures."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import settings

# Speed is measured by the benchmarks under bench/, not by the tests: on a shared machine a
# property test's example can take longer than hypothesis' default 200 ms deadline for reasons
# that have nothing to do with the code under test.
settings.register_profile("suite", deadline=None)
settings.load_profile("suite")


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
