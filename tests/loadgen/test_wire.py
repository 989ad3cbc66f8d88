"""Response framing: status line and Content-Length, nothing we do not send."""

from __future__ import annotations

import pytest

from loanflow.loadgen.wire import ProtocolError, Response, parse_response, request_head, with_body

ANSWER = (b"HTTP/1.1 202 Accepted\r\ncontent-type: application/json\r\n"
          b"idempotent-replayed: true\r\ncontent-length: 2\r\n\r\n{}")


def test_a_whole_response_is_framed_with_its_flags() -> None:
    assert parse_response(ANSWER) == (Response(202, b"{}", replayed=True, close=False),
                                      len(ANSWER))


def test_a_response_split_anywhere_waits_for_the_rest() -> None:
    for cut in range(1, len(ANSWER)):
        assert parse_response(ANSWER[:cut]) is None


def test_connection_close_is_noticed_whatever_the_case() -> None:
    data = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    assert parse_response(data) == (Response(200, b"", replayed=False, close=True), len(data))


def test_a_chunked_response_is_refused_not_guessed() -> None:
    with pytest.raises(ProtocolError, match="chunked"):
        parse_response(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")


def test_garbage_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError, match="status line"):
        parse_response(b"SSH-2.0-OpenSSH\r\n\r\n")


def test_a_request_carries_its_length_and_body() -> None:
    head = request_head("POST", "/v1/applications", "h:1", {"Idempotency-Key": "k"})
    assert with_body(head, b"{}") == (b"POST /v1/applications HTTP/1.1\r\nHost: h:1\r\n"
                                      b"Idempotency-Key: k\r\nContent-Length: 2\r\n\r\n{}")
