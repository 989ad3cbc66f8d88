"""A minimal keep-alive HTTP/1.1 client for the load driver, on asyncio streams.

httpx spent about 5 ms of CPU per request here once a few hundred requests
were open (its pool scans its connections), as much as the whole service
under test on this 2-core machine. This does only what the driver needs:
POST a body to one of our servers and read an answer that has a
Content-Length (uvicorn always sends one for ours).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from urllib.parse import urlsplit


class TransportError(Exception):
    """No answer: refused, reset, closed early or timed out. The outcome is unknown."""


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    headers: dict[str, str]  # lower-cased names
    body: bytes


_Conn = tuple[asyncio.StreamReader, asyncio.StreamWriter]
#: A connection idle this long is not reused: uvicorn closes idle ones after 5 s, and one
#: reused as its close is on the wire is reset with the request unread (a false "no answer").
REUSE_IDLE_S = 4.0


class HostPool:
    """Keep-alive connections to one `http://host:port`, reused last-in first-out."""

    def __init__(self, url: str, *, timeout_s: float, split_body: bool = False) -> None:
        parts = urlsplit(url)
        if parts.scheme != "http" or parts.hostname is None or parts.port is None:
            raise ValueError(f"expected http://host:port, got {url!r}")
        self.url = url
        self._host, self._port = parts.hostname, parts.port
        self._timeout_s = timeout_s
        #: Send the head and the body in two writes, a loop turn apart (as many clients
        #: do): a proxy may have forwarded the head before the body arrives.
        self._split_body = split_body
        self._idle: list[tuple[_Conn, float]] = []  # with when it went idle (monotonic)

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> Response:
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        request_head = (
            f"POST {path} HTTP/1.1\r\nHost: {self._host}:{self._port}\r\n{head}"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        conn = await self._connection()
        reader, writer = conn
        try:
            async with asyncio.timeout(self._timeout_s):
                if self._split_body:
                    writer.write(request_head)
                    await writer.drain()
                    await asyncio.sleep(0)
                    writer.write(body)
                else:
                    writer.write(request_head + body)
                status_line, *header_lines = (
                    (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
                )
                answer_headers = {}
                for line in header_lines:
                    name, sep, value = line.partition(":")
                    if sep:
                        answer_headers[name.strip().lower()] = value.strip()
                length = int(answer_headers.get("content-length", "0"))
                answer_body = await reader.readexactly(length)
        except (OSError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                ValueError) as exc:
            _close(writer)
            raise TransportError(f"{type(exc).__name__}: {exc}") from exc
        if answer_headers.get("connection", "").lower() == "close":
            _close(writer)
        else:
            self._idle.append((conn, time.monotonic()))
        return Response(int(status_line.split(" ", 2)[1]), answer_headers, answer_body)

    async def _connection(self) -> _Conn:
        while self._idle:
            (reader, writer), idle_since = self._idle.pop()
            # The server may have closed it while idle (keep-alive timeout, restart).
            fresh = time.monotonic() - idle_since < REUSE_IDLE_S
            if fresh and not reader.at_eof() and not writer.is_closing():
                return reader, writer
            _close(writer)
        try:
            async with asyncio.timeout(self._timeout_s):
                return await asyncio.open_connection(self._host, self._port)
        except (OSError, TimeoutError) as exc:
            raise TransportError(f"connect: {type(exc).__name__}: {exc}") from exc

    def close(self) -> None:
        for (_, writer), _ in self._idle:
            _close(writer)
        self._idle.clear()


def _close(writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError, RuntimeError):  # already closed, or its loop is gone
        writer.close()
