"""Times in answers: RFC 3339 UTC, microseconds cut exactly from the nanoseconds; the key
an encoded envelope's application was sealed with."""

from __future__ import annotations

import msgspec
import pytest

from loanflow.models import UNREADABLE_ENVELOPE, Envelope, envelope_key_id, format_ts


def test_times_are_rfc3339_utc_with_microseconds() -> None:
    assert format_ts(0) == "1970-01-01T00:00:00.000000Z"
    assert format_ts(1_764_064_800_000_001_000) == "2025-11-25T10:00:00.000001Z"


def test_sub_microsecond_digits_are_cut_not_rounded() -> None:
    # A float of the seconds rounds these up to .855157.
    assert format_ts(1_796_612_691_855_156_746) == "2026-12-07T03:04:51.855156Z"


def test_the_last_second_of_a_day_and_the_next_differ() -> None:
    assert format_ts(1_764_115_199_999_999_999) == "2025-11-25T23:59:59.999999Z"
    assert format_ts(1_764_115_200_000_000_000) == "2025-11-26T00:00:00.000000Z"


def test_an_encoded_envelope_names_the_key_that_sealed_its_application() -> None:
    envelope = Envelope(id="a", received_at_ns=1, api_key_id="k", idempotency_key="i",
                        channel="web", sealed_application=bytes.fromhex("0a0b0c0d") + b"rest")

    assert envelope_key_id(msgspec.msgpack.encode(envelope)) == "0a0b0c0d"


@pytest.mark.parametrize("encoded", [b"", b"not msgpack", msgspec.msgpack.encode({"id": "a"})])
def test_bytes_that_are_no_envelope_name_no_key(encoded: bytes) -> None:
    assert envelope_key_id(encoded) == UNREADABLE_ENVELOPE
