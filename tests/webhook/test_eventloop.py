"""The event loop `lora-emotion serve` runs: one write per response, HTTP unchanged."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
import uvicorn
from lora_emotion.webhook.eventloop import LOOP_FACTORY, _TurnBufferedTransport


class RecordingTransport:
    """Records what reaches the socket layer; the buffering above it is what is tested."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.events: list[str] = []
        self.closing = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)
        self.events.append("write")

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True
        self.events.append("close")

    def abort(self) -> None:
        self.closing = True
        self.events.append("abort")

    def get_write_buffer_size(self) -> int:
        return 7

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 1234) if name == "peername" else default


def _buffered() -> tuple[_TurnBufferedTransport, RecordingTransport]:
    inner = RecordingTransport()
    return _TurnBufferedTransport(inner, asyncio.get_running_loop()), inner  # type: ignore[arg-type]


def test_writes_of_one_turn_leave_as_one_write() -> None:
    asyncio.run(_writes_of_one_turn_leave_as_one_write())


async def _writes_of_one_turn_leave_as_one_write() -> None:
    buffered, inner = _buffered()
    buffered.write(b"HTTP/1.1 200 OK\r\n\r\n")
    buffered.write(b"")
    buffered.write(b"{}")
    assert inner.writes == []
    assert buffered.get_write_buffer_size() == 7 + 21
    await asyncio.sleep(0)
    assert inner.writes == [b"HTTP/1.1 200 OK\r\n\r\n{}"]
    buffered.write(b"next")
    await asyncio.sleep(0)
    assert inner.writes[-1] == b"next" and len(inner.writes) == 2


def test_close_sends_what_was_written_first_and_abort_drops_it() -> None:
    asyncio.run(_close_sends_what_was_written_first_and_abort_drops_it())


async def _close_sends_what_was_written_first_and_abort_drops_it() -> None:
    buffered, inner = _buffered()
    buffered.write(b"bye")
    buffered.close()
    assert inner.events == ["write", "close"] and inner.writes == [b"bye"]
    await asyncio.sleep(0)  # the scheduled flush finds nothing left
    assert inner.writes == [b"bye"]

    buffered, inner = _buffered()
    buffered.write(b"lost")
    buffered.abort()
    await asyncio.sleep(0)
    assert inner.events == ["abort"]


def test_nothing_is_written_to_a_closing_transport_and_the_rest_is_forwarded() -> None:
    asyncio.run(_nothing_is_written_to_a_closing_transport_and_the_rest_is_forwarded())


async def _nothing_is_written_to_a_closing_transport_and_the_rest_is_forwarded() -> None:
    buffered, inner = _buffered()
    buffered.write(b"late")
    inner.closing = True
    await asyncio.sleep(0)
    assert inner.writes == []
    assert buffered.is_closing()
    assert buffered.get_extra_info("peername") == ("127.0.0.1", 1234)


async def _app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    answer = b"echo:" + body
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-length", str(len(answer)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": answer})


@contextmanager
def _server() -> Iterator[int]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = uvicorn.Config(
        _app, host="127.0.0.1", port=port, log_level="warning", loop=LOOP_FACTORY
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
        time.sleep(0.02)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(timeout=20)


def _read_response(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            return data
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(rest) < length:
        rest += sock.recv(4096)
    return head + b"\r\n\r\n" + rest


@pytest.mark.timeout(60)
def test_http_over_the_protocol() -> None:
    with _server() as port:
        # Keep-alive: many requests on one connection, each answered in full.
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            for number in range(50):
                response = client.post("/", content=f"n{number}".encode())
                assert response.status_code == 200 and response.text == f"echo:n{number}"

        # "Expect: 100-continue": the interim answer must not wait for the body.
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(
                b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n"
            )
            assert sock.recv(4096).startswith(b"HTTP/1.1 100 Continue")
            sock.sendall(b"body")
            assert _read_response(sock).endswith(b"\r\n\r\necho:body")

        # "Connection: close": the answer arrives whole, then the server closes.
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(
                b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi"
            )
            answer = _read_response(sock)
            assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"echo:hi")
            assert sock.recv(4096) == b""

        # Two pipelined requests in one segment get two answers, in order.
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            request = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\n"
            sock.sendall(request + b"a" + request + b"b")
            received = b""
            while received.count(b"\r\n\r\necho:") < 2 or not received.endswith(b"echo:b"):
                chunk = sock.recv(4096)
                assert chunk, received
                received += chunk
            assert received.count(b"HTTP/1.1 200 OK") == 2
            assert received.index(b"echo:a") < received.index(b"echo:b")


class _Recorder(asyncio.Protocol):
    def __init__(self, made: asyncio.Future[Any]) -> None:
        self.made = made

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.write(b"head;")  # type: ignore[attr-defined]
        transport.write(b"body")  # type: ignore[attr-defined]
        self.made.set_result(transport)


def test_the_loops_servers_give_each_connection_a_turn_buffered_transport() -> None:
    loop = uvicorn.Config(_app, loop=LOOP_FACTORY).get_loop_factory()
    assert loop is not None
    with asyncio.Runner(loop_factory=loop) as runner:
        runner.run(_servers_give_a_turn_buffered_transport())


async def _servers_give_a_turn_buffered_transport() -> None:
    made: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    server = await asyncio.get_running_loop().create_server(lambda: _Recorder(made), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    transport = await asyncio.wait_for(made, 10)
    assert isinstance(transport, _TurnBufferedTransport)
    assert await asyncio.wait_for(reader.readexactly(9), 10) == b"head;body"
    writer.close()
    server.close()
    await server.wait_closed()
