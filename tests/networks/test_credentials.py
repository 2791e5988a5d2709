"""Header tokens of The Things Stack and ChirpStack, per application, several at once."""

from __future__ import annotations

import pytest

from lora_emotion.networks.credentials import matching_applications, presented_token

TOKENS = {"app-a": ["token-a1", "token-a2"], "app-b": ["token-b"], "app-c": []}


@pytest.mark.parametrize(
    ("authorization", "api_key", "token"),
    [
        ("Bearer abc", None, "abc"),
        ("bearer   abc ", None, "abc"),
        (None, "abc", "abc"),
        ("Basic dXNlcjpwdw==", "abc", "abc"),
        ("Basic dXNlcjpwdw==", None, None),
        ("Bearer ", None, None),
        (None, "  ", None),
        (None, None, None),
    ],
)
def test_presented_token(authorization: str | None, api_key: str | None, token: str | None) -> None:
    assert presented_token(authorization, api_key) == token


def test_any_current_token_of_an_application_matches() -> None:
    assert matching_applications("token-a1", TOKENS) == {"app-a"}
    assert matching_applications("token-a2", TOKENS) == {"app-a"}
    assert matching_applications("token-b", TOKENS) == {"app-b"}
    assert matching_applications("token-a", TOKENS) == frozenset()
    assert matching_applications("", TOKENS) == frozenset()


def test_a_token_shared_by_two_applications_matches_both() -> None:
    assert matching_applications("t", {"x": ["t"], "y": ["u", "t"]}) == {"x", "y"}
