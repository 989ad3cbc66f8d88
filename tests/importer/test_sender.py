"""Retry-After, as either form RFC 9110 allows, read into seconds."""

from __future__ import annotations

import email.utils
import time

import httpx
import pytest

from loanflow.importer.sender import ImportStopped, _answers, _retry_after_s


@pytest.mark.parametrize(("header", "expected"), [
    (None, None), ("3", 3.0), ("soon", None), ("", None),
])
def test_retry_after_seconds(header: str | None, expected: float | None) -> None:
    headers = {"Retry-After": header} if header is not None else {}

    assert _retry_after_s(httpx.Response(429, headers=headers)) == expected


def test_retry_after_as_a_date_is_the_time_until_then() -> None:
    date = email.utils.formatdate(time.time() + 30, usegmt=True)

    seconds = _retry_after_s(httpx.Response(503, headers={"Retry-After": date}))

    assert seconds is not None and 28 <= seconds <= 31


@pytest.mark.parametrize(("body", "message"), [
    (b"<html>", "unexpected answer to the batch of lines 2-3"),
    (b'{"items": [{"index": 0, "status": "queued"}]}', "does not list its 2 items"),
])
def test_an_answer_that_is_not_the_batch_answer_stops_the_import(
    body: bytes, message: str
) -> None:
    with pytest.raises(ImportStopped, match=message):
        _answers(httpx.Response(200, content=body), 2, "lines 2-3")
