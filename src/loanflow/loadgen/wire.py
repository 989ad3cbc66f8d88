"""HTTP/1.1 on the wire, as little as the load generator needs.

Requests are bytes built once; responses are framed by their status line and
`Content-Length`, which is all uvicorn sends for our endpoints (and all the
sink sends). A chunked or length-less response is refused as a protocol error
rather than guessed at. Hand-written instead of httptools' parser: that one
calls back into Python once per header, several times the cost of one `find`.
"""

from __future__ import annotations

from typing import NamedTuple

#: A response head larger than this is not one of ours.
MAX_HEAD_BYTES = 64 * 1024
_HEAD_END = b"\r\n\r\n"
_LENGTH = b"\r\ncontent-length:"
_CLOSE = b"\r\nconnection: close"
_REPLAYED = b"\r\nidempotent-replayed: true"
_CHUNKED = b"\r\ntransfer-encoding:"


class ProtocolError(Exception):
    """The peer sent something that is not a response we can frame."""


class Response(NamedTuple):
    status: int
    body: bytes
    #: `Idempotent-Replayed: true` was set.
    replayed: bool
    #: `Connection: close` was set: the server will close after this answer.
    close: bool


def request_head(method: str, path: str, host: str, headers: dict[str, str]) -> bytes:
    """The request line and headers, without the blank line that ends them."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return "\r\n".join(lines).encode("latin-1")


def with_body(head: bytes, body: bytes) -> bytes:
    """A whole request: `head` (from request_head) plus Content-Length and `body`."""
    return b"%s\r\nContent-Length: %d\r\n\r\n%s" % (head, len(body), body)


def parse_response(buf: bytes) -> tuple[Response, int] | None:
    """The first response in `buf` and the bytes it took, or None while incomplete."""
    end = buf.find(_HEAD_END)
    if end < 0:
        if len(buf) > MAX_HEAD_BYTES:
            raise ProtocolError(f"expected a response head within {MAX_HEAD_BYTES} bytes")
        return None
    if not buf.startswith(b"HTTP/1.") or len(buf) < 12 or not buf[9:12].isdigit():
        raise ProtocolError(f"expected an HTTP/1.x status line, got {bytes(buf[:40])!r}")
    status = int(buf[9:12])
    head = buf[:end].lower()
    at = head.find(_LENGTH)
    if at >= 0:
        stop = head.find(b"\r\n", at + 2)
        text = head[at + len(_LENGTH):stop if stop >= 0 else len(head)].strip()
        if not text.isdigit():
            raise ProtocolError(f"expected a Content-Length number, got {bytes(text)!r}")
        length = int(text)
    elif status in (204, 304) or status < 200:
        length = 0
    else:
        kind = "chunked" if head.find(_CHUNKED) >= 0 else "length-less"
        raise ProtocolError(f"expected a Content-Length, got a {kind} {status} response")
    total = end + 4 + length
    if len(buf) < total:
        return None
    response = Response(status, bytes(buf[end + 4:total]), head.find(_REPLAYED) >= 0,
                        head.find(_CLOSE) >= 0)
    return response, total
