"""Hostile bodies get a clear 4xx (or a closed connection), never a 5xx, never a 202."""

from __future__ import annotations

import json
import uuid

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
