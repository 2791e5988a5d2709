"""Deprecated import path: KPN Things deliveries now live in :mod:`lora_emotion.networks.kpn`.

Kept for one release so that code written against ``lora_emotion.kpn`` keeps working; it is the
same module object, not a copy, so its caches and private helpers are shared as well.
"""

from __future__ import annotations

import sys
import warnings

from ..networks import kpn as _kpn
from ..networks.kpn import *  # noqa: F403  (re-exported for the old path)

warnings.warn(
    "lora_emotion.kpn is deprecated; import lora_emotion.networks.kpn instead "
    "(the old path goes away in the next release)",
    DeprecationWarning,
    stacklevel=2,
)
sys.modules[__name__] = _kpn
