"""``lora-emotion downlink``: encoding commands, and queueing them at a local fake of The
Things Stack's downlink queue endpoint (path, bearer key and body as TTS documents them)."""

from __future__ import annotations

import base64
import http.server
import json
import re
import threading
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest

from lora_emotion import downlink as dl
from lora_emotion.cli import main
from lora_emotion.errors import EncodeError
from lora_emotion.labels import PHYSIO3
from lora_emotion.messages import Mode
from lora_emotion.networks.ttn import downlink_request

KEY = "NNSXS.TESTKEY.0123456789"
QUEUE_PATH = re.compile(
    r"/api/v3/as/applications/(?P<app>[^/]+)/webhooks/(?P<webhook>[^/]+)"
    r"/devices/(?P<device>[^/]+)/down/(?P<operation>push|replace)"
)


class FakeStack(http.server.BaseHTTPRequestHandler):
    """Answers like TTS's Application Server: 200 {} for a queued downlink, 401/404/400 else."""

    received: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        match = QUEUE_PATH.fullmatch(self.path)
        if match is None:
            return self._answer(404, {"code": 5, "message": "not found"})
        if self.headers.get("Authorization") != f"Bearer {KEY}":
            return self._answer(401, {"code": 16, "message": "error:pkg/auth:token_invalid"})
        document = json.loads(body)
        downlinks = document.get("downlinks")
        if not isinstance(downlinks, list) or not downlinks:
            return self._answer(400, {"code": 3, "message": "no downlinks"})
        FakeStack.received.append({**match.groupdict(), "downlinks": downlinks})
        return self._answer(200, {})

    def _answer(self, status: int, document: dict[str, Any]) -> None:
        data = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def stack() -> Iterator[str]:
    FakeStack.received = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakeStack)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def queue_url(base: str, operation: str = "push") -> str:
    path = "/api/v3/as/applications/my-app/webhooks/lora-emotion/devices/relay-7/down/"
    return base + path + operation


def test_encode_prints_the_payload(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(["downlink", "encode", "--seq", "7", "--mode", "vitals", "--label-set", "physio3"])
        == 0
    )
    expected = dl.encode(
        dl.Downlink(seq=7, commands=(dl.SetMode(mode=Mode.VITALS), dl.SetLabelSet.of(PHYSIO3)))
    )
    assert capsys.readouterr().out.split()[0] == expected.hex().upper()
    assert main(["downlink", "encode", "--seq", "1", "--send-status", "--format", "json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown == {
        "fport": 3,
        "hex": dl.encode(dl.Downlink(seq=1, commands=(dl.SendStatus(),))).hex().upper(),
    }


def test_send_queues_the_downlink_at_the_stack(
    stack: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LORA_EMOTION_TTN_API_KEY", KEY)
    args = ["downlink", "send", "--seq", "9", "--window", "120", "--send-status"]
    code = main([*args, "--queue-url", queue_url(stack)])
    assert code == 0, capsys.readouterr().err
    (queued,) = FakeStack.received
    assert (queued["app"], queued["device"], queued["operation"]) == ("my-app", "relay-7", "push")
    (sent,) = queued["downlinks"]
    assert sent["f_port"] == 3 and sent["priority"] == "NORMAL" and "confirmed" not in sent
    assert dl.decode(base64.b64decode(sent["frm_payload"])) == dl.Downlink(
        seq=9, commands=(dl.SetWindow(window_s=120), dl.SendStatus())
    )


def test_replace_and_confirmed(stack: str, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["downlink", "send", "--seq", "1", "--send-status", "--api-key", KEY]
    args += ["--queue-url", queue_url(stack, "replace"), "--confirmed", "--priority", "HIGH"]
    assert main(args) == 0, capsys.readouterr().err
    (queued,) = FakeStack.received
    assert queued["operation"] == "replace"
    assert queued["downlinks"][0]["confirmed"] is True
    assert queued["downlinks"][0]["priority"] == "HIGH"


def test_a_refused_key_is_an_error_saying_so(
    stack: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["downlink", "send", "--seq", "1", "--send-status", "--api-key", "wrong"]
    assert main([*args, "--queue-url", queue_url(stack)]) == 1
    assert "answered 401" in capsys.readouterr().err
    assert FakeStack.received == []


def test_nothing_listening_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["downlink", "send", "--seq", "1", "--send-status", "--api-key", KEY]
    assert main([*args, "--queue-url", queue_url("http://127.0.0.1:9"), "--timeout", "2"]) == 1
    assert "ConnectError" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("url", "field"),
    [
        (
            "http://eu1.cloud.thethings.network/api/v3/as/applications/a/webhooks/w/devices/d/down/push",
            "queue_url",
        ),
        (
            "https://eu1.cloud.thethings.network/api/v3/as/applications/a/devices/d/down/push",
            "queue_url",
        ),
        ("ftp://127.0.0.1/api/v3/as/applications/a/webhooks/w/devices/d/down/push", "queue_url"),
    ],
)
def test_request_refuses_what_is_no_queue_url(url: str, field: str) -> None:
    with pytest.raises(EncodeError, match=field):
        downlink_request(url, KEY, b"\x01", fport=3)


def test_request_refuses_bad_values() -> None:
    url = "https://eu1.cloud.thethings.network/api/v3/as/applications/a/webhooks/w/devices/d/down/push"
    with pytest.raises(EncodeError, match="api_key"):
        downlink_request(url, " ", b"\x01", fport=3)
    with pytest.raises(EncodeError, match="fport"):
        downlink_request(url, KEY, b"\x01", fport=224)
    with pytest.raises(EncodeError, match="priority"):
        downlink_request(url, KEY, b"\x01", fport=3, priority="URGENT")
    with pytest.raises(EncodeError, match="payload"):
        downlink_request(url, KEY, b"", fport=3)
    assert "NNSXS" not in repr(downlink_request(url, KEY, b"\x01", fport=3))


def test_no_command_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["downlink", "encode", "--seq", "1"]) == 1
    assert "no command" in capsys.readouterr().err
