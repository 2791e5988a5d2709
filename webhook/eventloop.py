"""The event loop `lora-emotion serve` gives uvicorn: a response's head and body in one write.

Why: uvicorn writes the status line and headers when the application sends
``http.response.start`` and the body when it sends ``http.response.body``; the event loop
hands each write to the kernel at once. A delivery's answer therefore cost two ``send()``
system calls, and on loopback or a LAN each one also wakes the peer. Here every connection of
a TCP server gets a transport that keeps what is written during one turn of the event loop and
hands it over at the end of that turn, so head and body leave together. Nothing waits for a
timer or for more data: the flush is the next callback.

How, through public interfaces only: uvicorn's ``loop`` setting takes an importable
``module:factory`` that returns the event loop (``lora-emotion serve --loop``); the loop is
uvloop's (or asyncio's where uvloop is not installed) with ``create_server`` wrapping each
connection's protocol in an :class:`asyncio.Protocol` that hands the protocol the buffering
transport. Nothing of uvicorn's is subclassed or imported, and any ASGI server that calls
``loop.create_server`` gets the same.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, cast

__all__ = ["LOOP_FACTORY", "new_event_loop"]

#: The value of uvicorn's ``loop`` setting that selects :func:`new_event_loop`.
LOOP_FACTORY = "lora_emotion.webhook.eventloop:new_event_loop"


class _TurnBufferedTransport:
    """A transport whose writes of one event-loop turn reach the socket as one write."""

    __slots__ = ("_loop", "_pending", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] | None = None

    def write(self, data: bytes) -> None:
        if not data:
            return
        if self._pending is None:
            self._pending = [data]
            self._loop.call_soon(self._flush)
        else:
            self._pending.append(data)

    def writelines(self, lines: Any) -> None:
        for data in lines:
            self.write(data)

    def _flush(self) -> None:
        pending, self._pending = self._pending, None
        if pending and not self._transport.is_closing():
            self._transport.write(pending[0] if len(pending) == 1 else b"".join(pending))

    def get_write_buffer_size(self) -> int:
        held = sum(len(data) for data in self._pending) if self._pending else 0
        return held + self._transport.get_write_buffer_size()

    def write_eof(self) -> None:
        self._flush()
        self._transport.write_eof()

    def close(self) -> None:
        # What was written before close() is still sent, as with the plain transport.
        self._flush()
        self._transport.close()

    def abort(self) -> None:
        self._pending = None
        self._transport.abort()

    # Called for every request; spelled out so that they skip __getattr__.
    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def pause_reading(self) -> None:
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class _BufferedWrites(asyncio.Protocol):
    """Stands between a connection and its protocol, which sees a turn-buffered transport."""

    __slots__ = ("_inner",)

    def __init__(self, inner: asyncio.Protocol) -> None:
        self._inner = inner

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, only alike.
        buffered = _TurnBufferedTransport(
            cast(asyncio.Transport, transport), asyncio.get_running_loop()
        )
        self._inner.connection_made(buffered)  # type: ignore[arg-type]

    def data_received(self, data: bytes) -> None:
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()


def _buffered(factory: Callable[[], asyncio.BaseProtocol]) -> asyncio.BaseProtocol:
    protocol = factory()
    # A BufferedProtocol (not a Protocol) reads into its own buffers: left as it is.
    return _BufferedWrites(protocol) if isinstance(protocol, asyncio.Protocol) else protocol


class _OneWritePerTurn(asyncio.AbstractEventLoop):
    """Mixed in before a concrete loop: its TCP servers buffer each connection's writes."""

    async def create_server(
        self, protocol_factory: Callable[[], asyncio.BaseProtocol], *args: Any, **kwargs: Any
    ) -> asyncio.Server:
        server: asyncio.Server = await super().create_server(
            lambda: _buffered(protocol_factory), *args, **kwargs
        )
        return server


try:
    import uvloop
except ImportError:  # pragma: no cover - uvicorn[standard] installs it where it builds

    class _Loop(_OneWritePerTurn, asyncio.SelectorEventLoop):
        """asyncio's loop with one write per turn per connection."""

else:

    class _Loop(_OneWritePerTurn, uvloop.Loop):  # type: ignore[misc,no-redef]
        """uvloop's loop with one write per turn per connection."""


def new_event_loop() -> asyncio.AbstractEventLoop:
    """A new event loop whose TCP servers send what one turn wrote in one write."""
    return _Loop()
