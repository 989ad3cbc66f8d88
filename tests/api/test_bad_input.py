"""Bad input on the read, review and batch routes is the client's error (4xx, saying what
is expected), never a 500 or a 503, in both modes. (Issue 19, "Bad input".)"""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from loanflow.metrics.series_base import SECOND_HISTORY_S
from tests.api.inprocess import MODES, InProcessApp, app_in_mode
from tests.conftest import auth, sample_application

NON_ASCII_COOKIE = [(b"cookie", "loanflow_session=abc.é".encode())]


@pytest.fixture(scope="module", params=MODES)
def app(request: pytest.FixtureRequest,
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessApp]:
    with app_in_mode(request.param, tmp_path_factory.mktemp(request.param)) as running:
        yield running


@pytest.fixture(scope="module")
def key(app: InProcessApp) -> str:
    return app.key("submit,read,operate")


def field_errors(answer: httpx.Response, status: int = 422) -> dict[str, str]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    return {e["field"]: e["message"] for e in answer.json().get("errors", [])}


def post_json(app: InProcessApp, key: str, path: str, body: bytes,
              media_type: str = "application/json") -> httpx.Response:
    return app.request("POST", path, content=body,
                       headers=auth(key, **{"Content-Type": media_type}))


# -- the session cookie ------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/v1/session", "/v1/dead-letters"])
def test_a_non_ascii_session_cookie_is_unauthenticated(app, path):
    answer = app.request("GET", path, headers=NON_ASCII_COOKIE)

    assert answer.status_code == 401, answer.text


def test_a_non_ascii_session_cookie_gets_the_login_page(app):
    answer = app.request("GET", "/", headers=NON_ASCII_COOKIE)

    assert answer.status_code == 200 and "sign in" in answer.text


def test_a_non_ascii_session_cookie_is_refused_the_live_feed(app):
    assert app.websocket_handshake("/v1/live", NON_ASCII_COOKIE) == "websocket.close"


# -- numbers -------------------------------------------------------------------------------

@pytest.mark.parametrize(("path", "name"), [
    ("/v1/dead-letters", "limit"),
    ("/v1/audit", "before"),
    ("/v1/metrics/summary", "window_s"),
    ("/v1/metrics/series", "seconds"),
])
@pytest.mark.parametrize("digits", ["²", "٣", "\uff11\uff12"])
def test_unicode_digits_in_a_numeric_parameter_are_refused_with_422(app, key, path, name,
                                                                      digits):
    answer = app.request("GET", path, params={name: digits}, headers=auth(key))

    assert field_errors(answer)[name].startswith("expected a whole number from")


def test_a_series_longer_than_the_metrics_are_kept_is_refused_with_422(app, key):
    longest = app.request("GET", "/v1/metrics/series", params={"seconds": SECOND_HISTORY_S},
                          headers=auth(key))
    longer = app.request("GET", "/v1/metrics/series", params={"seconds": SECOND_HISTORY_S + 1},
                         headers=auth(key))

    assert longest.status_code == 200, longest.text
    expected = f"expected a whole number from 1 to {SECOND_HISTORY_S}"
    assert field_errors(longer)["seconds"] == expected


def test_a_before_of_30_digits_is_refused_with_422(app, key):
    answer = app.request("GET", "/v1/audit", params={"before": "9" * 30}, headers=auth(key))

    assert "before" in field_errors(answer)


def test_a_cursor_of_30_digits_is_refused_with_422(app, key):
    answer = app.request("GET", "/v1/dead-letters", params={"cursor": "9" * 30 + ".x"},
                         headers=auth(key))

    assert field_errors(answer)["cursor"] == "expected a cursor from a previous page"


# -- times ---------------------------------------------------------------------------------

OUT_OF_RANGE_TIMES = ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00",
                      "0001-01-01T00:00:00Z", "9999-12-31T23:59:59"]


@pytest.mark.parametrize("name", ["since", "until"])
@pytest.mark.parametrize("moment", OUT_OF_RANGE_TIMES)
def test_a_list_filter_time_out_of_range_is_refused_with_422(app, key, name, moment):
    answer = app.request("GET", "/v1/dead-letters", params={name: moment}, headers=auth(key))

    assert field_errors(answer)[name] == "expected a time from 1678-01-01 to before 2262-01-01"


@pytest.mark.parametrize("action", ["replay", "discard"])
@pytest.mark.parametrize("moment", OUT_OF_RANGE_TIMES)
def test_a_bulk_filter_time_out_of_range_is_refused_with_422(app, key, action, moment):
    body = {"filter": {"since": moment}, "dry_run": False, "reason": "cleanup"}

    answer = post_json(app, key, f"/v1/dead-letters/{action}", json.dumps(body).encode())

    assert "filter.since" in field_errors(answer)


def test_a_bulk_filter_reads_a_time_without_zone_as_utc_like_the_list(app, key, monkeypatch):
    # Given a dead letter at a known instant, and a server whose own zone is not UTC
    at = dt.datetime(2031, 5, 4, 12, 0, 0, tzinfo=dt.UTC)
    app.open_dead_letter(dead_lettered_at_ns=int(at.timestamp()) * 10**9)
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        def bulk_count(since: str) -> int:
            body = json.dumps({"filter": {"since": since}, "dry_run": True}).encode()
            answer = post_json(app, key, "/v1/dead-letters/discard", body)
            assert answer.status_code == 200, answer.text
            return int(answer.json()["count"])

        def listed(since: str) -> int:
            answer = app.request("GET", "/v1/dead-letters", params={"since": since},
                                 headers=auth(key))
            assert answer.status_code == 200, answer.text
            return len(answer.json()["items"])

        # When both filter from one second before and one second after, without a zone
        before, after = "2031-05-04T11:59:59", "2031-05-04T12:00:01"

        # Then both read UTC: the letter is counted from just before it, not after
        assert (bulk_count(before), bulk_count(after)) == (listed(before), listed(after))
        assert (bulk_count(before), bulk_count(after)) == (1, 0)
    finally:
        monkeypatch.undo()
        time.tzset()


# -- text ------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["external_id", "channel", "error_code", "id", "q", "status"])
def test_a_nul_in_a_list_filter_is_refused_with_422(app, key, name):
    answer = app.request("GET", "/v1/dead-letters", params={name: "a\x00b"}, headers=auth(key))

    assert field_errors(answer)[name] == "expected text without NUL characters"


def test_a_nul_in_a_discard_reason_is_refused_and_the_letter_stays_open(app, key):
    letter = app.open_dead_letter()

    answer = post_json(app, key, f"/v1/dead-letters/{letter}/discard",
                       b'{"reason": "dup\\u0000licate"}')

    assert field_errors(answer)["reason"] == "expected text without NUL characters"
    found = app.request("GET", f"/v1/dead-letters/{letter}", headers=auth(key))
    assert found.json()["status"] == "open"


def test_a_nul_in_a_bulk_filter_is_refused_with_422(app, key):
    body = b'{"filter": {"external_id": "a\\u0000b"}, "dry_run": true}'

    answer = post_json(app, key, "/v1/dead-letters/replay", body)

    assert "filter.external_id" in field_errors(answer)


# -- review bodies ---------------------------------------------------------------------------

def test_a_discard_body_of_invalid_utf8_is_400(app, key):
    letter = app.open_dead_letter()

    answer = post_json(app, key, f"/v1/dead-letters/{letter}/discard", b'{"reason": "a\xff"}')

    assert answer.status_code == 400, answer.text
    assert answer.json()["detail"] == "body is not valid UTF-8"


def test_a_replay_body_with_a_deeply_nested_application_is_400(app, key):
    letter = app.open_dead_letter()
    nested = b'{"application": ' + b"[" * 20_000 + b"]" * 20_000 + b"}"

    answer = post_json(app, key, f"/v1/dead-letters/{letter}/replay", nested)

    assert answer.status_code == 400, answer.text
    assert answer.json()["detail"] == "body is nested too deeply"


# -- batch items -----------------------------------------------------------------------------

def batch(app: InProcessApp, key: str, body: bytes, media_type: str) -> list[dict[str, Any]]:
    answer = post_json(app, key, "/v1/applications/batch", body, media_type)
    assert answer.status_code == 200, answer.text
    items: list[dict[str, Any]] = answer.json()["items"]
    return items


def item(idempotency_key: str, application: dict[str, Any] | None = None) -> bytes:
    return json.dumps({"idempotency_key": idempotency_key,
                       "application": application or sample_application()}).encode()


@pytest.mark.parametrize(("media_type", "framing"), [
    ("application/json", lambda items: b"[" + b",".join(items) + b"]"),
    ("application/x-ndjson", lambda items: b"\n".join(items) + b"\n"),
])
def test_an_item_key_of_invalid_utf8_is_refused_alone(app, key, media_type, framing):
    bad = item("bad-\x01").replace(b"bad-\\u0001", b"bad-\xff")
    good = item(str(uuid.uuid4()))

    first, second = batch(app, key, framing([bad, good]), media_type)

    assert first["status"] == "refused" and first["type"] == "/problems/malformed-request"
    assert first["errors"] == [{"field": "$", "message": "item is not valid UTF-8"}]
    assert second["status"] == "queued"


def test_a_deeply_nested_ndjson_line_is_refused_alone(app, key):
    nested = (b'{"idempotency_key": "deep", "application": ' + b'{"a":' * 20_000 + b"1"
              + b"}" * 20_001)
    good = item(str(uuid.uuid4()))

    first, second = batch(app, key, nested + b"\n" + good + b"\n", "application/x-ndjson")

    assert first["status"] == "refused"
    assert first["errors"] == [{"field": "$", "message": "item is nested too deeply"}]
    assert second["status"] == "queued"


def test_an_item_with_its_idempotency_key_twice_is_refused_like_a_duplicate_key(app, key):
    twice = (b'{"idempotency_key": "first-%s", "idempotency_key": "second-%s", '
             b'"application": %s}' % (uuid.uuid4().hex.encode(), uuid.uuid4().hex.encode(),
                                      json.dumps(sample_application()).encode()))

    [result] = batch(app, key, b"[" + twice + b"]", "application/json")

    assert result["status"] == "refused" and result["type"] == "/problems/malformed-request"
    assert result["errors"] == [{"field": "$",
                                 "message": "duplicate key 'idempotency_key' in an item"}]


# -- enum errors -----------------------------------------------------------------------------

def test_an_enum_error_says_what_is_expected_and_never_echoes_the_value(app, key):
    wrong = sample_application(channel="123-45-6789", loan__purpose="078-05-1120")

    answer = app.request("POST", "/v1/applications", json=wrong,
                         headers=auth(key, **{"Idempotency-Key": str(uuid.uuid4())}))

    errors = field_errors(answer)
    assert errors["channel"] == ("expected one of 'web', 'mobile', 'broker', 'partner_api', "
                                 "'branch', 'phone'")
    assert errors["loan.purpose"].startswith("expected one of 'debt_consolidation', ")
    assert "123-45-6789" not in answer.text and "078-05-1120" not in answer.text


def test_an_enum_error_in_a_batch_item_never_echoes_the_value(app, key):
    wrong = item(str(uuid.uuid4()), sample_application(applicant__employment_status="1985-12-10"))

    [result] = batch(app, key, b"[" + wrong + b"]", "application/json")

    assert result["errors"][0]["field"] == "application.applicant.employment_status"
    assert result["errors"][0]["message"].startswith("expected one of 'employed', ")
    assert "1985-12-10" not in json.dumps(result)
