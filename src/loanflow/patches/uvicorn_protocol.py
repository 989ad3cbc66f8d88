"""uvicorn's httptools protocol with a deadline and a size limit on reading a request's
head, and each small response's head sent in the same write as its body.

Relies on uvicorn 0.54.0's `HttpToolsProtocol` (the parser callbacks it defines,
`data_received`, `send_400_response`, `connection_made`/`connection_lost`, and its
`parser`, `cycle`, `transport`, `loop`, `client`, `server_state` and keep-alive
timer attributes), on its `RequestResponseCycle`'s `transport`, `response_started`
and `on_response`, and on httptools 0.9.0 stopping `feed_data` with an error when a
callback raises. tests/patches/test_uvicorn_protocol.py checks each.

Why: uvicorn times out idle keep-alive connections but not a client that sends its
headers a byte at a time (slowloris), and neither uvicorn nor httptools limits the
size of a request's head (a 30 MiB header was read whole and answered). Here a
head must be complete within HEADER_TIMEOUT_S of its first byte, else the
connection is closed; past MAX_HEAD_BYTES or MAX_HEADER_LINES the answer is 431
(`refusal`, which the API gives in problem+json) and the connection is closed.
Bytes are counted as they arrive, before the parser buffers them. A new
connection that has sent nothing is idle, like a kept-alive one, and is closed
quietly after the keep-alive timeout (clients open pools ahead of their load).
uvicorn writes a response's head and body apart; `_HeadWithBody` joins them: one
send and one wake-up of the client per small response.
"""

from __future__ import annotations

import asyncio
import logging

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

log = logging.getLogger(__name__)

#: Seconds a client has to send a request's headers.
HEADER_TIMEOUT_S = 10.0
#: Most bytes of a request line and headers together (as nginx's large buffers, 4 x 8 KiB,
#: twice over); beyond: 431.
MAX_HEAD_BYTES = 64 * 1024
#: Most header lines of one request; beyond: 431.
MAX_HEADER_LINES = 100


class _HeadRefused(Exception):
    """Raised in a parser callback to stop the parser; answered 431."""


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """Subclass it to give `refusal`, the 431's content type and body."""

    _header_deadline: asyncio.TimerHandle | None = None
    #: True from a request's first byte (or the connection's) until its headers end.
    _reading_head = True
    #: Bytes of the current head fed to the parser so far, and its header lines.
    _head_bytes = 0
    _header_lines = 0
    _too_many_lines = False
    _head_refused = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        # uvicorn's own keep-alive timer, as between requests: its first byte stops it.
        self.timeout_keep_alive_task = self.loop.call_later(
            self.timeout_keep_alive, self.timeout_keep_alive_handler)

    def data_received(self, data: bytes) -> None:
        if self._head_refused:
            return  # answered 431, closing: the rest is not read
        if not self._reading_head:
            super().data_received(data)
            return
        room = MAX_HEAD_BYTES - self._head_bytes
        if len(data) <= room:
            self._head_bytes += len(data)
            super().data_received(data)
            return
        # More than the head may still hold: feed only what it may, then look whether
        # the head ended within it (the rest is then a body, or the next request).
        self._head_bytes = MAX_HEAD_BYTES  # back to 0 if a request ends within it
        super().data_received(data[:room])
        if self._head_refused or self.parser is None or self.transport.is_closing():
            return
        if self._reading_head and self._head_bytes == MAX_HEAD_BYTES:
            self._refuse_head(f"the request line and headers are over {MAX_HEAD_BYTES} bytes")
        elif self._reading_head or not self.parser.should_upgrade():
            self.data_received(data[room:])  # (after an upgrade, the socket is the WebSocket's)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._header_lines = 0
        self._arm_header_deadline()

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_lines += 1
        if self._header_lines > MAX_HEADER_LINES:
            # Stops the parser: feed_data raises, and uvicorn calls send_400_response.
            self._too_many_lines = True
            raise _HeadRefused
        super().on_header(name, value)

    def send_400_response(self, msg: str) -> None:
        if self._too_many_lines:
            self._refuse_head(f"the request has over {MAX_HEADER_LINES} header lines")
        else:
            super().send_400_response(msg)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._reading_head, self._head_bytes = True, 0  # the next request's head follows

    def on_headers_complete(self) -> None:
        self._disarm_header_deadline()
        self._reading_head = False
        before = self.cycle
        super().on_headers_complete()
        if self.cycle is not None and self.cycle is not before:  # a new request's cycle
            _send_head_with_body(self.cycle)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_deadline()
        super().connection_lost(exc)

    def _arm_header_deadline(self) -> None:
        if self._header_deadline is None:
            self._header_deadline = self.loop.call_later(HEADER_TIMEOUT_S, self._headers_too_slow)

    def _disarm_header_deadline(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _headers_too_slow(self) -> None:
        self._header_deadline = None
        log.warning("closed a connection whose headers took over %.0fs", HEADER_TIMEOUT_S)
        self.transport.close()

    def refusal(self, detail: str) -> tuple[bytes, bytes]:
        """The content type and body of the 431 that refuses a head, `detail` saying why."""
        raise NotImplementedError

    def _refuse_head(self, detail: str) -> None:
        self._head_refused = True
        self._disarm_header_deadline()
        log.warning("431 to %s: %s", self.client, detail)
        content_type, body = self.refusal(detail)
        head = [b"HTTP/1.1 431 Request Header Fields Too Large\r\n"]
        head += [name + b": " + value + b"\r\n" for name, value in
                 self.server_state.default_headers]
        head += [b"content-type: " + content_type + b"\r\n",
                 b"content-length: " + str(len(body)).encode() + b"\r\n",
                 b"connection: close\r\n\r\n"]
        self.transport.write(b"".join(head) + body)
        self.transport.close()


class _HeadWithBody:
    """A response cycle's transport: the response's head waits for its first body bytes
    and leaves with them, in one send. uvicorn writes them apart: two syscalls and two
    wake-ups of the client for every small response."""

    def __init__(self, transport: asyncio.Transport, cycle: RequestResponseCycle) -> None:
        self._transport, self._cycle = transport, cycle
        self._head: bytes | None = None
        self._head_seen = False

    def write(self, data: bytes) -> None:
        if not self._head_seen and self._cycle.response_started:
            self._head_seen, self._head = True, data  # the first write once started
            return
        if self._head is not None:
            data, self._head = self._head + data, None
        self._transport.write(data)

    def flush(self) -> None:
        if self._head is not None:
            head, self._head = self._head, None
            self._transport.write(head)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def is_closing(self) -> bool:
        return self._transport.is_closing()


def _send_head_with_body(cycle: RequestResponseCycle) -> None:
    writer = _HeadWithBody(cycle.transport, cycle)
    cycle.transport = writer  # type: ignore[assignment]
    completed = cycle.on_response

    def on_response() -> None:  # a response without body bytes (HEAD, 204) ends here
        writer.flush()
        completed()

    cycle.on_response = on_response
