"""Hostile bodies get a clear 4xx (or a closed connection), never a 5xx, never a 202."""

from __future__ import annotations

import json
import socket
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.conftest import auth, sample_application

GOOD = json.dumps(sample_application())
NESTED = 100_000
#: Deep enough to matter, small enough to pass the 64 KiB limit and reach the decoder.
NESTED_UNDER_LIMIT = 30_000

CORPUS: dict[str, tuple[bytes, int]] = {
    "nan": (GOOD.replace("96000.0", "NaN").encode(), 400),
    "infinity": (GOOD.replace("96000.0", "Infinity").encode(), 400),
    "overflowing float": (GOOD.replace("96000.0", "1e999").encode(), 422),
    "integer of 5000 digits": (GOOD.replace('"term_months": 36', '"term_months": ' + "9" * 5000)
                               .encode(), 422),
    "arrays nested 100000 deep": (b"[" * NESTED + b"]" * NESTED, 413),
    "arrays nested 30000 deep": (b"[" * NESTED_UNDER_LIMIT + b"]" * NESTED_UNDER_LIMIT, 422),
    "objects nested 30000 deep in a field": (
        GOOD.replace('"external_id": "crm-000123"', '"external_id": '
                     + '{"a":' * (NESTED_UNDER_LIMIT // 3) + "1" + "}" * (NESTED_UNDER_LIMIT // 3))
        .encode(), 422),
    "objects nested 30000 deep in an unknown field": (
        (GOOD[:-1] + ', "x": ' + '{"a":' * (NESTED_UNDER_LIMIT // 3) + "1"
         + "}" * (NESTED_UNDER_LIMIT // 3) + "}").encode(), 422),
    "duplicate key": ((GOOD[:-1] + ', "channel": "mobile"}').encode(), 400),
    "NUL in a name": (GOOD.replace('"Ada"', '"A\\u0000da"').encode(), 422),
    "lone surrogate": (GOOD.replace('"Ada"', '"A\\ud800da"').encode(), 400),
    "byte order mark": (("\ufeff" + GOOD).encode(), 400),
    "trailing bytes": ((GOOD + "xx").encode(), 400),
    "bidi override in a name": (GOOD.replace('"Ada"', '"A\u202eda"').encode(), 422),
    "zero-width space in a name": (GOOD.replace('"Lovelace"', '"Love\u200blace"').encode(), 422),
    "invalid UTF-8": (GOOD.replace('"Ada"', '"A\\u00e9da"').encode().replace(b"\\u00e9", b"\xff"),
                      400),
    "empty body": (b"", 400),
    "JSON null": (b"null", 422),
}


@pytest.mark.parametrize("name", list(CORPUS))
def test_hostile_body_is_refused_with_a_clear_status(client, keys, name):
    body, expected = CORPUS[name]

    headers = {"Content-Type": "application/json", "Idempotency-Key": str(uuid.uuid4())}

    answer = client.post("/v1/applications", content=body, headers=auth(keys["submit"], **headers))

    assert answer.status_code == expected, answer.text
    assert answer.headers["content-type"] == "application/problem+json"


def test_a_100_mb_chunked_body_is_cut_off_early(server, keys):
    # Raw socket: an HTTP client library would insist on sending the whole body first.
    head = (
        "POST /v1/applications HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {keys['submit']}\r\nIdempotency-Key: big\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
    ).encode()
    chunk = b"10000\r\n" + b" " * 0x10000 + b"\r\n"
    sent, answer = 0, b""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(head)
        sock.setblocking(False)
        while sent < 100 * 1024 * 1024 and time.monotonic() - started < 10:
            try:
                answer += sock.recv(4096)
                if answer:
                    break
            except BlockingIOError:
                pass
            try:
                sock.sendall(chunk)
                sent += 0x10000
            except (BlockingIOError, BrokenPipeError, ConnectionResetError):
                break

    assert answer.startswith(b"HTTP/1.1 413") or answer == b""
    assert sent < 10 * 1024 * 1024
    assert time.monotonic() - started < 10
    assert httpx.get(server.url + "/healthz").status_code == 200


def trickle(port: int, head: bytes, data: bytes, *, gap_s: float = 0.5,
            budget_s: float = 15) -> tuple[float, bytes]:
    """Send `head`, then `data` a byte every `gap_s`.

    Returns seconds until the server answered or closed, and its answer (b"" = closed).
    """
    with socket.create_connection(("127.0.0.1", port), timeout=budget_s) as sock:
        sock.sendall(head)
        started = time.monotonic()
        sock.settimeout(gap_s)
        for byte in data:
            try:
                sock.sendall(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                return time.monotonic() - started, b""
            try:
                answer = sock.recv(4096)
                return time.monotonic() - started, answer  # b"" = closed
            except TimeoutError:
                if time.monotonic() - started > budget_s:
                    break
    return time.monotonic() - started, b"still open"


@pytest.mark.slow
def test_slow_headers_and_slow_bodies_are_cut_within_10_s(server, keys):
    slow_headers = b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"X-Slow: " + b"a" * 200
    body = json.dumps(sample_application()).encode()
    slow_body = (
        "POST /v1/applications HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {keys['submit']}\r\nIdempotency-Key: {uuid.uuid4()}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    with ThreadPoolExecutor(2) as pool:
        by_headers = pool.submit(trickle, server.port, b"", slow_headers)
        by_body = pool.submit(trickle, server.port, slow_body, body)
        (headers_elapsed, headers_answer), (body_elapsed, body_answer) = (
            by_headers.result(), by_body.result())

    assert headers_answer == b"" and headers_elapsed < 11
    assert body_answer.startswith(b"HTTP/1.1 408") and body_elapsed < 11
    assert httpx.get(server.url + "/healthz").status_code == 200
