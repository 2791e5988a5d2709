"""uvicorn's HTTP protocol with a response's head and body sent in one write.

Why: uvicorn writes the status line and headers when the application sends
``http.response.start`` and the body when it sends ``http.response.body``; the event loop
hands each write to the kernel at once. A delivery's answer therefore cost two ``send()``
system calls, and on loopback or a LAN each one also wakes the peer: py-spy on a loaded worker
put about a tenth of its time on the second one. Here the transport keeps what is written
during one turn of the event loop and hands it over at the end of that turn, so head and body
leave together. Nothing waits for a timer or for more data: the flush is the next callback.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = ["CoalescingHttpToolsProtocol"]


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


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol over a :class:`_TurnBufferedTransport`."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        buffered = _TurnBufferedTransport(transport, asyncio.get_running_loop())
        super().connection_made(buffered)  # type: ignore[arg-type]
