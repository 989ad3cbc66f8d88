"""Hostile input gets a clear 4xx (or a closed connection), never a 5xx, never a 202.

Two corpora. Bodies of a single submission, each with the status it must get, against
a server process in both modes. And hostile values, headers and bodies crossed with
every route of the app (`ROUTES`), in both modes in this process (the fast tier): each
must be answered below 500, and a 4xx as problem+json. docs/reliability.md ("Bad
input") lists them and counts the requests.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from urllib.parse import quote

import httpx
import pytest

from tests.api.inprocess import MODES, InProcessApp, app_in_mode
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


# -- every route -------------------------------------------------------------------------------

#: Every HTTP route of the app (src/loanflow/api/app.py) and the query parameters it reads.
#: `{id}` is a path parameter; the WebSocket /v1/live is driven by the header corpus.
ROUTES: list[tuple[str, str, tuple[str, ...]]] = [
    ("GET", "/", ("token",)),
    ("POST", "/login", ()),
    ("POST", "/logout", ()),
    ("GET", "/v1/session", ()),
    ("POST", "/v1/applications", ()),
    ("POST", "/v1/applications/batch", ()),
    ("GET", "/v1/applications/{id}", ()),
    ("GET", "/v1/dead-letters", ("status", "error_code", "channel", "partner_id",
                                 "external_id", "id", "since", "until", "limit", "cursor",
                                 "q")),
    ("POST", "/v1/dead-letters/replay", ()),
    ("POST", "/v1/dead-letters/discard", ()),
    ("GET", "/v1/dead-letters/{id}", ()),
    ("POST", "/v1/dead-letters/{id}/replay", ()),
    ("POST", "/v1/dead-letters/{id}/discard", ()),
    ("GET", "/v1/audit", ("before",)),
    ("GET", "/v1/metrics/summary", ("window_s",)),
    ("GET", "/v1/metrics/series", ("seconds", "range")),
    ("GET", "/metrics", ()),
    ("GET", "/healthz", ()),
    ("GET", "/readyz", ()),
    ("GET", "/openapi.json", ()),
    ("GET", "/docs", ()),
    ("GET", "/static/{id}", ()),
]

#: Hostile values, percent-encoded as they travel in a query or a path.
VALUES: dict[str, str] = {
    "superscript digit": quote("²"),
    "Arabic-Indic digit": quote("٣"),
    "fullwidth digits": quote("\uff11\uff12"),
    "30 digits": "9" * 30,
    "5000 digits": "9" * 5000,
    "negative": "-1",
    "zero": "0",
    "an hour of seconds": "3600",
    "fraction": "1.5",
    "exponent": "1e999",
    "NaN": "NaN",
    "NUL": "a%00b",
    "control characters": "%01%1b%7f",
    "invalid UTF-8": "%ff%fe",
    "lone surrogate as UTF-8": "%ed%a0%80",
    "year 9999 at -14:00": quote("9999-12-31T23:59:59-14:00"),
    "year 1 at +14:00": quote("0001-01-01T00:00:00+14:00"),
    "time without a zone": quote("2026-01-01T00:00:00"),
    "not a time": "yesterday",
    "non-ASCII": quote("é"),
    "bidi override": quote("a\u202eb"),
    "10,000 characters": "x" * 10_000,
    "SQL": quote("' OR 1=1 --"),
    "empty": "",
    "blank": "%20%20",
    "cursor of 30 digits": "9" * 30 + ".x",
    "cursor with a NUL": "1.a%00",
    "dot": ".",
    "path traversal": quote("../../etc/passwd", safe=""),
}

#: Hostile headers; sent alone, without the valid key (they are about authentication),
#: except the last three, which come with it.
HEADERS: dict[str, list[tuple[bytes, bytes]]] = {
    "non-ASCII session cookie": [(b"cookie", "loanflow_session=abc.é".encode())],
    "session cookie of invalid UTF-8": [(b"cookie", b"loanflow_session=\xff.\xfe")],
    "session cookie of 4 KiB": [(b"cookie", b"loanflow_session=" + b"A" * 4096 + b".x")],
    "session cookie without a signature": [(b"cookie", b"loanflow_session=abc")],
    "bearer key with non-ASCII": [(b"authorization", "Bearer lf_é_é".encode())],
    "bearer key of invalid UTF-8": [(b"authorization", b"Bearer lf_\xff_\xfe")],
    "empty bearer key": [(b"authorization", b"Bearer ")],
    "basic auth": [(b"authorization", b"Basic Zm9vOmJhcg==")],
    "+ idempotency key of invalid UTF-8": [(b"idempotency-key", b"\xff\xfe")],
    "+ request id of non-ASCII": [(b"x-request-id", "é".encode() * 100)],
    "+ content type of invalid UTF-8": [(b"content-type", b"application/json; x=\xff")],
}

NESTED = 20_000
#: Hostile bodies: each is sent to every POST route (a body meant for one route is as
#: hostile to the others).
BODIES: dict[str, tuple[str, bytes]] = {
    "empty": ("application/json", b""),
    "JSON null": ("application/json", b"null"),
    "empty array": ("application/json", b"[]"),
    "a string": ("application/json", b'"x"'),
    "overflowing number": ("application/json", b"1e999"),
    "invalid UTF-8 in a reason": ("application/json", b'{"reason": "a\xff"}'),
    "NUL in a reason": ("application/json", b'{"reason": "a\\u0000b", "dry_run": false}'),
    "lone surrogate in a reason": ("application/json", b'{"reason": "\\ud800"}'),
    "byte order mark": ("application/json", b'\xef\xbb\xbf{"reason": "x"}'),
    "trailing bytes": ("application/json", b'{"reason": "x"} x'),
    "duplicate reason": ("application/json", b'{"reason": "x", "reason": "y"}'),
    "arrays nested 100,000 deep": ("application/json", b"[" * 100_000 + b"]" * 100_000),
    "application nested 20,000 deep": (
        "application/json", b'{"application": ' + b"[" * NESTED + b"]" * NESTED + b"}"),
    "item key of invalid UTF-8": (
        "application/json", b'[{"idempotency_key": "a\xff", "application": {}}]'),
    "item key twice": ("application/json", b'[{"idempotency_key": "a", "idempotency_key": "b", '
                       b'"application": ' + json.dumps(sample_application()).encode() + b"}]"),
    "item nested 20,000 deep": (
        "application/json", b'[{"idempotency_key": "k", "application": ' + b'{"a":' * NESTED
        + b"1" + b"}" * NESTED + b"}]"),
    "NDJSON line of invalid UTF-8": (
        "application/x-ndjson", b'{"idempotency_key": "a\xff", "application": {}}\n'),
    "NDJSON line nested 20,000 deep": (
        "application/x-ndjson", b'{"idempotency_key": "k", "application": ' + b'{"a":' * NESTED
        + b"1" + b"}" * NESTED + b"}\n"),
    "filter since year 1": (
        "application/json",
        b'{"filter": {"since": "0001-01-01T00:00:00+14:00"}, "dry_run": false, "reason": "x"}'),
    "filter until year 9999": (
        "application/json", b'{"filter": {"until": "9999-12-31T23:59:59-14:00"}}'),
    "filter with a NUL": ("application/json", b'{"filter": {"external_id": "a\\u0000b"}}'),
    "filter of the wrong types": ("application/json", b'{"filter": {"since": 5, "channel": []}}'),
    "correction with an SSN as channel": (
        "application/json",
        json.dumps({"application": sample_application(channel="123-45-6789")}).encode()),
    "form with invalid UTF-8": ("application/x-www-form-urlencoded", b"token=%ff%fe\xff"),
}


def value_cases() -> Iterator[object]:
    for method, path, names in ROUTES:
        slots = [*names, *(["{id}"] if "{id}" in path else [])]
        for slot in slots:
            for name in VALUES:
                yield pytest.param(method, path, slot, name, id=f"{method} {path} {slot}={name}")


def header_cases() -> Iterator[object]:
    for method, path, _ in ROUTES:
        for name in HEADERS:
            yield pytest.param(method, path, name, id=f"{method} {path} {name}")


def body_cases() -> Iterator[object]:
    for method, path, _ in ROUTES:
        if method == "POST":
            for name in BODIES:
                yield pytest.param(path, name, id=f"POST {path} {name}")


@pytest.fixture(scope="module", params=MODES)
def app(request: pytest.FixtureRequest,
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessApp]:
    with app_in_mode(request.param, tmp_path_factory.mktemp(request.param)) as running:
        yield running


@pytest.fixture(scope="module")
def every_scope(app: InProcessApp) -> str:
    return app.key("submit,read,operate")


@pytest.fixture(scope="module")
def letter(app: InProcessApp) -> str:
    """An open dead letter: the routes that act on one get as far as the store."""
    return app.open_dead_letter()


def assert_answered_as_a_client_error_at_worst(answer: httpx.Response) -> None:
    assert answer.status_code < 500, answer.text[:500]
    if answer.status_code >= 400:
        assert answer.headers["content-type"] == "application/problem+json", answer.text[:500]


@pytest.mark.parametrize(("method", "path", "slot", "value"), list(value_cases()))
def test_a_hostile_value_anywhere_in_a_url_is_no_server_error(app, every_scope, letter,
                                                               method, path, slot, value):
    if slot == "{id}":
        url = path.replace("{id}", VALUES[value] or "%20")
    else:
        url = f"{path.replace('{id}', letter)}?{slot}={VALUES[value]}"
    headers = auth(every_scope, **{"Content-Type": "application/json"})

    answer = app.request(method, url, headers=headers, content=b"{}" if method == "POST" else None)

    assert_answered_as_a_client_error_at_worst(answer)


@pytest.mark.parametrize(("method", "path", "header"), list(header_cases()))
def test_a_hostile_header_on_any_route_is_no_server_error(app, every_scope, letter, method,
                                                          path, header):
    headers = list(HEADERS[header])
    if header.startswith("+"):
        headers.append((b"authorization", f"Bearer {every_scope}".encode()))

    answer = app.request(method, path.replace("{id}", letter), headers=headers,
                         content=b"{}" if method == "POST" else None)

    assert_answered_as_a_client_error_at_worst(answer)


@pytest.mark.parametrize("header", list(HEADERS))
def test_a_hostile_header_on_the_live_feed_is_no_server_error(app, every_scope, header):
    headers = list(HEADERS[header])
    if header.startswith("+"):
        headers.append((b"authorization", f"Bearer {every_scope}".encode()))

    assert app.websocket_handshake("/v1/live", headers) in ("websocket.close",
                                                            "websocket.accept")


@pytest.mark.parametrize(("path", "body"), list(body_cases()))
def test_a_hostile_body_on_any_route_is_no_server_error(app, every_scope, letter, path, body):
    media_type, content = BODIES[body]
    headers = auth(every_scope, **{"Content-Type": media_type,
                                   "Idempotency-Key": str(uuid.uuid4())})

    answer = app.request("POST", path.replace("{id}", letter), headers=headers, content=content)

    assert_answered_as_a_client_error_at_worst(answer)
