"""Settings: what is refused at start-up rather than on every delivery."""

from __future__ import annotations

import pytest
from lora_emotion.webhook.config import Settings
from pydantic import ValidationError
from webhook_support import PLUG, SECRET


def test_a_destination_name_longer_than_the_store_keeps_is_refused_at_start() -> None:
    assert list(Settings(destinations={PLUG.upper(): SECRET}).destinations) == [PLUG]
    with pytest.raises(ValidationError, match="129 characters, more than the 128"):
        Settings(destinations={"p" * 129: SECRET})
