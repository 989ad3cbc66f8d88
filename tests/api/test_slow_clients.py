"""Clients that send too much or too slowly are cut off; the service stays healthy.

These exercise the HTTP layer only, the same in both modes: one embedded server.
"""

from __future__ import annotations

import http.client
import json
import select
import socket
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.conftest import ServerProcess, create_key, sample_application

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def submit_key(embedded_server: ServerProcess) -> str:
    return create_key(embedded_server.deployment, "submit")


def test_a_100_mb_chunked_body_is_cut_off_early(embedded_server, submit_key):
    # Raw socket: an HTTP client library would insist on sending the whole body first.
    head = (
        "POST /v1/applications HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {submit_key}\r\nIdempotency-Key: big\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
    ).encode()
    chunk = b"10000\r\n" + b" " * 0x10000 + b"\r\n"
    sent, answer = 0, b""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", embedded_server.port), timeout=10) as sock:
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
    assert httpx.get(embedded_server.url + "/healthz").status_code == 200


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


def test_slow_headers_and_slow_bodies_are_cut_within_10_s(embedded_server, submit_key):
    slow_headers = b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"X-Slow: " + b"a" * 200
    body = json.dumps(sample_application()).encode()
    slow_body = (
        "POST /v1/applications HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {submit_key}\r\nIdempotency-Key: {uuid.uuid4()}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    with ThreadPoolExecutor(2) as pool:
        by_headers = pool.submit(trickle, embedded_server.port, b"", slow_headers)
        by_body = pool.submit(trickle, embedded_server.port, slow_body, body)
        (headers_elapsed, headers_answer), (body_elapsed, body_answer) = (
            by_headers.result(), by_body.result())

    assert headers_answer == b"" and headers_elapsed < 11
    assert body_answer.startswith(b"HTTP/1.1 408") and body_elapsed < 11
    assert httpx.get(embedded_server.url + "/healthz").status_code == 200


def test_an_idle_keep_alive_connection_outlives_a_pause_between_bursts(embedded_server):
    # uvicorn's default keep-alive (5 s) closed it; a request sent as it closed was lost.
    # http.client reads each whole answer and does not reconnect: a closed connection
    # raises RemoteDisconnected.
    conn = http.client.HTTPConnection("127.0.0.1", embedded_server.port, timeout=10)
    statuses = []
    try:
        for pause_s in (0, 6):
            time.sleep(pause_s)
            conn.request("GET", "/healthz")
            answer = conn.getresponse()
            answer.read()
            statuses.append(answer.status)
    finally:
        conn.close()

    assert statuses == [200, 200]


def test_a_new_connection_may_wait_past_the_header_deadline_before_its_first_request(
    embedded_server,
):
    # Clients open pools ahead of their load; only a request begun must hurry.
    with socket.create_connection(("127.0.0.1", embedded_server.port), timeout=15) as sock:
        time.sleep(11)  # past HEADER_TIMEOUT_S, within the keep-alive timeout
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n")
        answer = sock.recv(4096)

    assert answer.startswith(b"HTTP/1.1 200 OK")


def test_a_30_mib_header_is_cut_off_with_431_after_64_kib(embedded_server):
    # Raw socket, as above: the server must answer before the header ends.
    sent, answer, cut_off = 0, b"", False
    chunk = b"a" * 0x10000
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", embedded_server.port), timeout=10) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: test\r\nX-Big: ")
        sock.setblocking(False)
        while sent < 30 * 1024 * 1024 and not cut_off and time.monotonic() - started < 10:
            readable, writable, _ = select.select([sock], [sock], [], 1.0)
            try:
                if readable:
                    received = sock.recv(4096)
                    answer += received
                    cut_off = not received or answer.endswith(b"}")
                elif writable:
                    sent += sock.send(chunk)
            except (BrokenPipeError, ConnectionResetError):
                cut_off = True

    assert cut_off and sent < 10 * 1024 * 1024
    # The answer may be lost to the reset that closing with unread bytes sends.
    assert answer.startswith(b"HTTP/1.1 431") or answer == b""
    assert httpx.get(embedded_server.url + "/healthz").status_code == 200


def test_over_100_header_lines_are_answered_431_problem_json(embedded_server):
    headers = {f"x-line-{i}": "1" for i in range(101)}

    answer = httpx.get(embedded_server.url + "/healthz", headers=headers)

    assert answer.status_code == 431
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["type"] == "/problems/headers-too-large"


def test_a_submission_whose_body_arrives_in_parts_is_accepted_whole(embedded_server, submit_key):
    body = json.dumps(sample_application()).encode()
    head = (
        "POST /v1/applications HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {submit_key}\r\nIdempotency-Key: {uuid.uuid4()}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", embedded_server.port), timeout=10) as sock:
        sock.sendall(head + body[:100])
        time.sleep(0.2)  # the server has read the first part on its own by now
        sock.sendall(body[100:])
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk

    assert answer.startswith(b"HTTP/1.1 202")
    assert b'"status":"queued"' in answer
