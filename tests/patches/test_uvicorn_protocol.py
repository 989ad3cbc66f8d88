"""The patched uvicorn protocol (patches/uvicorn_protocol.py) as the API serves it:
a response leaves in one write, interim answers at once, an oversized head gets 431.

Most tests drive uvicorn's protocol object with a transport that records each write
(each write is one send syscall on a real socket, one wake-up of the client). The
first ones fail when uvicorn or httptools change what the patch relies on.
"""

from __future__ import annotations

import asyncio
import http.client
import importlib.metadata
import inspect
import json
import threading
from collections.abc import Iterator
from typing import Any

import httptools
import pytest
import uvicorn
from starlette.types import Receive, Scope, Send
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle
from uvicorn.server import ServerState

from loanflow.api.server import HttpProtocol, uvicorn_options
from loanflow.patches.uvicorn_protocol import (
    MAX_HEAD_BYTES,
    MAX_HEADER_LINES,
    GuardedHttpToolsProtocol,
)
from loanflow.settings import Settings
from tests.throwaway import free_port

#: The versions whose internals the patch was read against; add one only after reading it.
CHECKED = {"uvicorn": ("0.54.0",), "httptools": ("0.9.0",)}
#: uvicorn's methods the patch overrides or calls, and their parameters.
PROTOCOL_METHODS = {
    "connection_made": ["self", "transport"],
    "data_received": ["self", "data"],
    "on_message_begin": ["self"],
    "on_header": ["self", "name", "value"],
    "on_headers_complete": ["self"],
    "on_message_complete": ["self"],
    "send_400_response": ["self", "msg"],
    "connection_lost": ["self", "exc"],
    "timeout_keep_alive_handler": ["self"],
}

BODY = b'{"status":"accepted"}'


class RecordingTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def answer(scope: Scope, receive: Receive, send: Send) -> None:
    """Reads the whole body, then answers BODY; `/stream` answers it in two chunks."""
    more = True
    while more:
        more = (await receive()).get("more_body", False)
    headers = [(b"content-type", b"application/json")]
    if scope["path"] != "/stream":
        headers.append((b"content-length", str(len(BODY)).encode()))
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    if scope["path"] == "/stream":
        await send({"type": "http.response.body", "body": BODY[:5], "more_body": True})
        await send({"type": "http.response.body", "body": BODY[5:], "more_body": False})
    else:
        await send({"type": "http.response.body", "body": BODY})


class Connection:
    def __init__(self) -> None:
        config = Config(app=answer, http=HttpProtocol, lifespan="off", log_config=None)
        self.protocol = HttpProtocol(config, ServerState(), {})
        self.transport = RecordingTransport()
        self.protocol.connection_made(self.transport)

    async def send(self, data: bytes) -> list[bytes]:
        """Feed `data`, let the app run; the writes since the last call."""
        before = len(self.transport.writes)
        self.protocol.data_received(data)
        for _ in range(20):
            await asyncio.sleep(0)
        return self.transport.writes[before:]

    def close(self) -> None:
        self.protocol.connection_lost(None)


def exchange(*requests: bytes) -> list[list[bytes]]:
    async def main() -> list[list[bytes]]:
        connection = Connection()
        try:
            return [await connection.send(request) for request in requests]
        finally:
            connection.close()

    return asyncio.run(main())


@pytest.mark.parametrize("library", sorted(CHECKED))
def test_the_installed_library_is_a_version_the_patch_was_checked_against(library: str) -> None:
    assert importlib.metadata.version(library) in CHECKED[library]


@pytest.mark.parametrize("name", sorted(PROTOCOL_METHODS))
def test_uvicorn_still_has_each_method_the_patch_relies_on(name: str) -> None:
    method = getattr(HttpToolsProtocol, name)

    assert list(inspect.signature(method).parameters) == PROTOCOL_METHODS[name]


def test_uvicorn_still_makes_a_cycle_from_a_transport_and_an_on_response_callback() -> None:
    parameters = inspect.signature(RequestResponseCycle).parameters

    assert {"transport", "on_response"} <= parameters.keys()


def test_a_connection_has_the_attributes_the_patch_reads_and_sets() -> None:
    async def main() -> tuple[dict[str, Any], dict[str, Any], bool]:
        connection = Connection()
        protocol = connection.protocol
        armed = protocol.timeout_keep_alive_task is not None
        before = {name: getattr(protocol, name, AttributeError) for name in (
            "loop", "transport", "parser", "client", "timeout_keep_alive")}
        await connection.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        cycle = protocol.cycle
        after = {name: getattr(cycle, name, AttributeError) for name in (
            "transport", "response_started", "on_response")}
        after["headers"] = protocol.server_state.default_headers
        after["keep_alive_task"] = protocol.timeout_keep_alive_task
        connection.close()
        return before, after, armed

    before, after, armed = asyncio.run(main())

    assert AttributeError not in before.values() and AttributeError not in after.values()
    assert armed  # the patch's idle timer on a new connection, uvicorn's own attribute
    assert after["response_started"] is True and callable(after["on_response"])


def test_httptools_reports_a_callbacks_error_as_a_parser_error() -> None:
    # uvicorn answers a parser error with send_400_response, where the patch gives 431.
    assert issubclass(httptools.HttpParserCallbackError, httptools.HttpParserError)


def test_every_server_runs_the_patched_protocol() -> None:
    assert issubclass(uvicorn_options(Settings())["http"], GuardedHttpToolsProtocol)


def test_a_small_response_leaves_in_one_write_head_and_body_together() -> None:
    [writes] = exchange(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")

    assert len(writes) == 1
    assert writes[0].startswith(b"HTTP/1.1 200 OK\r\n")
    assert writes[0].endswith(b"\r\n\r\n" + BODY)


def test_each_response_on_a_kept_alive_connection_is_one_write() -> None:
    request = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"

    answers = exchange(request, request, request)

    assert [len(writes) for writes in answers] == [1, 1, 1]


def test_a_head_response_without_body_bytes_still_sends_its_head() -> None:
    [writes] = exchange(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n")

    assert len(writes) == 1
    assert writes[0].startswith(b"HTTP/1.1 200 OK\r\n") and writes[0].endswith(b"\r\n\r\n")


def test_a_streamed_response_sends_its_head_with_the_first_chunk() -> None:
    [writes] = exchange(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")

    assert len(writes) == 2
    assert writes[0].startswith(b"HTTP/1.1 200 OK\r\n")
    assert writes[0].endswith(b"5\r\n" + BODY[:5] + b"\r\n")
    assert writes[1].endswith(b"0\r\n\r\n")


def test_100_continue_is_sent_at_once_and_the_answer_after_the_body() -> None:
    head = (b"POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
            b"Content-Length: 2\r\n\r\n")

    interim, final = exchange(head, b"{}")

    assert interim == [b"HTTP/1.1 100 Continue\r\n\r\n"]
    assert len(final) == 1 and final[0].endswith(BODY)


def test_a_response_on_a_closing_connection_is_sent_before_it_closes() -> None:
    async def main() -> tuple[list[bytes], bool]:
        connection = Connection()
        writes = await connection.send(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        return writes, connection.transport.closed

    writes, closed = asyncio.run(main())

    assert len(writes) == 1 and writes[0].endswith(BODY)
    assert closed


def refused_431(writes: list[bytes]) -> dict[str, object]:
    """The problem+json of a single 431 answer."""
    assert len(writes) == 1, writes
    head, _, body = writes[0].partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 431 ")
    assert b"content-type: application/problem+json" in head.lower()
    problem: dict[str, object] = json.loads(body)
    assert problem["status"] == 431 and problem["type"] == "/problems/headers-too-large"
    return problem


def test_a_head_over_64_kib_is_answered_431_and_the_connection_closed() -> None:
    async def main() -> tuple[list[bytes], bool]:
        connection = Connection()
        big = b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * MAX_HEAD_BYTES + b"\r\n\r\n"
        return await connection.send(big), connection.transport.closed

    writes, closed = asyncio.run(main())

    assert "bytes" in str(refused_431(writes)["detail"])
    assert closed


def test_a_header_that_never_ends_is_refused_once_64_kib_arrived() -> None:
    async def main() -> tuple[list[bytes], list[bytes], bool]:
        connection = Connection()
        writes = await connection.send(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: ")
        for _ in range(MAX_HEAD_BYTES // 4096 + 1):
            writes += await connection.send(b"a" * 4096)
        later = [w for _ in range(100) for w in await connection.send(b"a" * 4096)]
        return writes, later, connection.transport.closed

    writes, later, closed = asyncio.run(main())

    refused_431(writes)
    assert closed and later == []  # what comes after the refusal is not parsed


def test_over_100_header_lines_is_answered_431() -> None:
    lines = b"".join(b"X-H%d: 1\r\n" % i for i in range(MAX_HEADER_LINES))

    [writes] = exchange(b"GET / HTTP/1.1\r\nHost: x\r\n" + lines + b"\r\n")

    assert "header lines" in str(refused_431(writes)["detail"])


def test_a_head_within_both_limits_is_served() -> None:
    lines = b"".join(b"X-H%d: 1\r\n" % i for i in range(MAX_HEADER_LINES - 2))
    head = b"GET / HTTP/1.1\r\nHost: x\r\n" + lines + b"X-Big: "
    head += b"a" * (MAX_HEAD_BYTES - len(head) - 4) + b"\r\n\r\n"
    assert len(head) == MAX_HEAD_BYTES

    [writes] = exchange(head)

    assert writes[0].startswith(b"HTTP/1.1 200 OK\r\n")


def test_a_large_body_arriving_with_its_head_is_not_counted_as_head() -> None:
    body = b"x" * (4 * MAX_HEAD_BYTES)
    request = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body) + body

    [writes] = exchange(request + b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")  # and one pipelined

    assert [w[:15] for w in writes] == [b"HTTP/1.1 200 OK"] * 2


@pytest.fixture
def uvicorn_server() -> Iterator[int]:
    """A uvicorn server in a thread, run with the API's options (lifespan off: the app is
    `answer`), on a free port."""
    port = free_port()
    options = {**uvicorn_options(Settings(port=port)), "lifespan": "off"}
    server = uvicorn.Server(uvicorn.Config(answer, **options))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        for _ in range(1000):
            if server.started or not thread.is_alive():
                break
            threading.Event().wait(0.01)
        assert server.started, "uvicorn did not start"
        yield port
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.mark.slow
def test_a_real_server_run_with_the_api_options_refuses_an_oversized_head(
    uvicorn_server: int,
) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", uvicorn_server, timeout=10)
    try:
        # Too many lines rather than bytes: the server reads the whole head before it
        # closes, so the client never writes into a reset connection.
        connection.putrequest("GET", "/")
        for line in range(MAX_HEADER_LINES + 1):
            connection.putheader(f"X-H{line}", "1")
        connection.endheaders()
        refused = connection.getresponse()
        problem = json.loads(refused.read())
    finally:
        connection.close()

    assert refused.status == 431 and refused.getheader("connection") == "close"
    assert problem["type"] == "/problems/headers-too-large"


@pytest.mark.slow
def test_a_real_server_run_with_the_api_options_answers_a_request_within_the_limits(
    uvicorn_server: int,
) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", uvicorn_server, timeout=10)
    try:
        connection.request("GET", "/")
        answered = connection.getresponse()
        body = answered.read()
    finally:
        connection.close()

    assert answered.status == 200 and body == BODY
