"""Schemathesis against the service's own OpenAPI document: no input ever gets a 500.

Generated KPN bodies are signed with the test secret before they are sent, so they reach the
SenML decoder and the store instead of stopping at the token check; The Things Stack's and
ChirpStack's carry their applications' token, so they reach their adapters; read requests
carry the read token. Both positive and negative (schema-violating) cases are generated.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from lora_emotion.webhook.main import create_app
from schemathesis import checks
from webhook_support import NETWORK_TOKEN, READ_TOKEN, signed_headers

SCHEMA = schemathesis.openapi.from_dict(create_app().openapi())
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
    checks.negative_data_rejection,
]

pytestmark = pytest.mark.timeout(600)


def _request(case: Any) -> dict[str, Any]:
    kwargs = dict(case.as_transport_kwargs(base_url="http://testserver"))
    headers = {k: v for k, v in kwargs.pop("headers").items() if not k.startswith("X-Schemathesis")}
    kwargs.pop("cookies", None)
    if isinstance(kwargs.get("data"), bytes | str):
        kwargs["content"] = kwargs.pop("data")
    if case.path == "/uplinks/kpn":
        if "json" in kwargs:
            kwargs["content"] = json.dumps(kwargs.pop("json")).encode()
        body = kwargs.get("content") or b""
        if isinstance(body, str):
            body = body.encode()
        signed = signed_headers(body)
        signed.pop("Content-Type")
        headers.update(signed)
    elif case.path in ("/uplinks/ttn", "/uplinks/chirpstack"):
        headers.pop("X-API-Key", None)
        headers["Authorization"] = f"Bearer {NETWORK_TOKEN}"
    elif "Authorization" in headers:
        headers["Authorization"] = f"Bearer {READ_TOKEN}"
    kwargs["headers"] = headers
    return kwargs


@SCHEMA.parametrize()
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
    ],
)
def test_the_api_never_answers_500(case: Any, client: TestClient) -> None:
    response = client.request(**_request(case))
    case.validate_response(response, checks=CHECKS)
