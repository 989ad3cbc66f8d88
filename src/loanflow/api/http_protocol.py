"""uvicorn's httptools protocol with a deadline on reading request headers, and each
small response sent in one write (see _HeadWithBody).

uvicorn times out idle keep-alive connections but not a client that sends its
headers a byte at a time (slowloris): each such client would hold a connection
for ever. Here a request's headers must be complete within HEADER_TIMEOUT_S of
its first byte, else the connection is closed. A new connection that has sent
nothing yet is idle, like a kept-alive one between requests, and is closed
quietly after the keep-alive timeout: clients open pools ahead of their load
(closing those after 10 s, with a warning each, made ~5 reconnections a second
for the load generator at 300/s).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

from loanflow.settings import Settings

log = logging.getLogger(__name__)

#: Seconds a client has to send a request's headers.
HEADER_TIMEOUT_S = 10.0
#: The live feed only ever receives tiny frames; a bigger one closes the socket (1009).
WS_MAX_FRAME_BYTES = 64 * 1024


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    _header_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        # uvicorn's own keep-alive timer, as between requests: its first byte stops it.
        self.timeout_keep_alive_task = self.loop.call_later(
            self.timeout_keep_alive, self.timeout_keep_alive_handler)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm_header_deadline()

    def on_headers_complete(self) -> None:
        self._disarm_header_deadline()
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


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """How every loanflow HTTP server runs, one process or several."""
    return {
        "host": settings.host,
        "port": settings.port,
        "loop": "uvloop",
        "http": GuardedHttpToolsProtocol,
        "limit_concurrency": settings.max_connections,
        "ws_max_size": WS_MAX_FRAME_BYTES,
        "lifespan": "on",
        "access_log": False,
        "log_config": None,  # keep our JSON handler for uvicorn's own messages
        "log_level": settings.log_level,
        "timeout_graceful_shutdown": 10,
        # uvicorn's 5 s closed pooled connections between a client's bursts; a request
        # sent as the server closed one was lost in the reset (4 in the bench's 5-min
        # soak), as behind a load balancer whose idle timeout outlasts the server's.
        "timeout_keep_alive": settings.keep_alive_s,
        # Forwarded headers only from the proxies the operator named: uvicorn's default
        # believes 127.0.0.1, so any local client could claim https or another address.
        "proxy_headers": bool(settings.trusted_proxy_list),
        "forwarded_allow_ips": settings.trusted_proxy_list or None,
    }
