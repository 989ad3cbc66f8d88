"""GET /v1/applications, the app in-process over each mode's backends: every filter,
pages while applications arrive, limits, bad parameters, auth and masked PII."""

from __future__ import annotations

import asyncio
import itertools
import json
import sqlite3
import time
import uuid
from typing import Any

import asyncpg
import httpx
import msgspec
import pytest

from loanflow.models import format_ts, new_application_id
from loanflow.store.base import ApplicationRecord
from tests.api.inprocess import InProcessApp, app_fixture, client_fixture, keys_fixture
from tests.conftest import Deployment, auth, sample_application, wait_for_status

app = app_fixture()
client = client_fixture()
keys = keys_fixture()

SECOND_NS = 1_000_000_000
#: Each test writes into a window of its own in the past, and searches inside it.
_windows = itertools.count(1)


def window() -> tuple[int, dict[str, str]]:
    """The start of a fresh 1,000-second window, and since/until parameters bounding it."""
    start_ns = (1_700_000_000 + next(_windows) * 10_000) * SECOND_NS
    return start_ns, {"since": format_ts(start_ns), "until": format_ts(start_ns + 1000 * SECOND_NS)}


def document(route: str | None, *, score: int = 640, tier: str = "C",
             flags: tuple[str, ...] = ()) -> bytes:
    enrichment = None if route is None else {
        "score": score, "risk_tier": tier, "route": route, "flags": list(flags),
        "trace": [{"figure": "score", "inputs": {}}]}
    return msgspec.json.encode({
        "application": {"applicant": {"ssn": "***-**-6789", "date_of_birth": "****-**-**"}},
        "assessment": {"violations": [], "enrichment": enrichment},
    })


def record(at_ns: int, **changes: Any) -> ApplicationRecord:
    """A processed application as the processor writes it, received at `at_ns`."""
    route = changes.pop("route", "fast_track")
    fields: dict[str, Any] = {
        "id": new_application_id(at_ns), "status": "stored", "route": route,
        "api_key_id": "test", "idempotency_key": str(uuid.uuid4()), "channel": "web",
        "partner_id": None, "external_id": None, "received_at_ns": at_ns,
        "processed_at_ns": at_ns + 7_000_000, "ssn_hash": None, "pii_sealed": None,
        "document": document(route), "rules_version": "r", "product_version": "p",
    }
    fields.update(changes)
    return ApplicationRecord(**fields)


def write(app: InProcessApp, *records: ApplicationRecord) -> None:
    app.call(app.runtime.store.save_results, list(records))


def execute(deployment: Deployment, sql: str) -> None:
    """Raw SQL on the deployment's store, past the app: what the review queue will write."""
    if not deployment.store_url:
        with sqlite3.connect(deployment.data_dir / "store.db", timeout=10) as conn:
            conn.execute(sql)
        return

    async def run() -> None:
        conn = await asyncpg.connect(deployment.store_url)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run())


def search(client: httpx.Client, key: str, **query: Any) -> httpx.Response:
    return client.get("/v1/applications", params=query, headers=auth(key))


def found(client: httpx.Client, key: str, **query: Any) -> list[str]:
    answer = search(client, key, **query)
    assert answer.status_code == 200, answer.text
    return [item["id"] for item in answer.json()["items"]]


def newest_first(*records: ApplicationRecord) -> list[str]:
    return [r.id for r in sorted(records, key=lambda r: (r.received_at_ns, r.id), reverse=True)]


# -- filters ------------------------------------------------------------------------------

#: Applications every filter test writes: name -> record fields.
KINDS: dict[str, dict[str, Any]] = {
    "fast": {"route": "fast_track", "channel": "web", "external_id": "crm-fast"},
    "review": {"route": "manual_review", "channel": "mobile", "partner_id": "p-1"},
    "decline": {"route": "decline_recommended", "channel": "broker", "partner_id": "p-2",
                "external_id": "crm-decline"},
    "rejected": {"status": "rejected", "route": None, "channel": "web",
                 "external_id": "crm-rejected"},
    "dead": {"status": "dead_lettered", "route": None, "channel": "branch",
             "document": b'{"attempts":[]}'},
}

FILTERS = [
    ({"status": "stored"}, ["decline", "review", "fast"]),
    ({"status": "rejected"}, ["rejected"]),
    ({"status": "dead_lettered"}, ["dead"]),
    ({"route": "fast_track"}, ["fast"]),
    ({"route": "manual_review"}, ["review"]),
    ({"route": "decline_recommended"}, ["decline"]),
    ({"channel": "web"}, ["rejected", "fast"]),
    ({"channel": "branch"}, ["dead"]),
    ({"partner_id": "p-2"}, ["decline"]),
    ({"external_id": "crm-rejected"}, ["rejected"]),
    ({"review": "open"}, ["review"]),
    ({"review": "decided"}, []),
    ({"channel": "web", "status": "stored"}, ["fast"]),
    ({}, ["dead", "rejected", "decline", "review", "fast"]),
]


@pytest.mark.parametrize(("query", "expected"), FILTERS,
                         ids=["-".join(f"{k}={v}" for k, v in q.items()) or "none"
                              for q, _ in FILTERS])
def test_each_filter_finds_only_its_applications(app, client, keys, query, expected):
    start_ns, bounds = window()
    made = {name: record(start_ns + n * SECOND_NS, **fields)
            for n, (name, fields) in enumerate(KINDS.items())}
    write(app, *made.values())

    assert found(client, keys["read"], **bounds, **query) == [made[n].id for n in expected]


def test_since_and_until_bound_the_time_received(app, client, keys):
    start_ns, _ = window()
    made = [record(start_ns + n * SECOND_NS) for n in range(4)]
    write(app, *made)

    assert found(client, keys["read"], since=format_ts(made[1].received_at_ns),
                 until=format_ts(made[3].received_at_ns)) == newest_first(made[1], made[2])


def test_review_decided_lists_applications_with_a_decision(app, client, keys, deployment):
    start_ns, bounds = window()
    waiting, decided = record(start_ns, route="manual_review"), record(
        start_ns + SECOND_NS, route="manual_review")
    write(app, waiting, decided)
    # The review queue (not built yet) will record decisions in these columns.
    execute(deployment, "UPDATE applications SET review_decision = 'approve', reviewed_at_ns ="
                        f" {start_ns + 5 * SECOND_NS} WHERE id = '{decided.id}'")

    answer = search(client, keys["read"], review="decided", **bounds).json()

    assert [(i["id"], i["review"], i["review_decision"], i["reviewed_at"])
            for i in answer["items"]] == [
        (decided.id, "decided", "approve", format_ts(start_ns + 5 * SECOND_NS))]
    assert found(client, keys["read"], review="open", **bounds) == [waiting.id]


def test_an_item_is_the_masked_summary_of_the_single_view(app, client, keys):
    # Given an application submitted and processed
    external_id = f"crm-{uuid.uuid4().hex[:12]}"
    accepted = client.post(
        "/v1/applications", json=sample_application(external_id=external_id),
        headers=auth(keys["submit"], **{"Idempotency-Key": str(uuid.uuid4())}))
    assert accepted.status_code == 202, accepted.text
    single = wait_for_status(client, keys["submit"], accepted.json()["id"])

    # When it is searched for by its external id
    answer = search(client, keys["read"], external_id=external_id)

    # Then the one item agrees with the single view, and shows no PII nor the trace
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/json"
    [item] = answer.json()["items"]
    enrichment = single["enrichment"]
    assert item == {
        "id": single["id"], "status": "stored", "route": enrichment["route"],
        "channel": "web", "partner_id": None, "external_id": external_id,
        "received_at": single["received_at"], "processed_at": single["processed_at"],
        "score": enrichment["score"], "risk_tier": enrichment["risk_tier"],
        "flags": enrichment["flags"],
        "review": "open" if enrichment["route"] == "manual_review" else None,
        "review_decision": None, "reviewed_at": None,
    }
    for secret in ("123-45-6789", "123456789", "1985-12-10", "Lovelace", "ada@example.com"):
        assert secret not in answer.text


# -- pages and limits ---------------------------------------------------------------------


def every_page(client: httpx.Client, key: str, between_pages: Any = None,
               **query: Any) -> tuple[list[str], int]:
    """Every id of a search, page by page; `between_pages()` runs after the first page."""
    seen: list[str] = []
    pages, cursor = 0, None
    while True:
        answer = search(client, key, **query, **({"cursor": cursor} if cursor else {}))
        assert answer.status_code == 200, answer.text
        body = answer.json()
        seen += [item["id"] for item in body["items"]]
        pages, cursor = pages + 1, body["next_cursor"]
        if pages == 1 and between_pages is not None:
            between_pages()
        if cursor is None:
            return seen, pages


def test_pages_list_newest_first_and_end_with_a_null_cursor(app, client, keys):
    start_ns, bounds = window()
    made = [record(start_ns + n * SECOND_NS) for n in range(7)]
    write(app, *made)

    seen, pages = every_page(client, keys["read"], limit=3, **bounds)

    assert (seen, pages) == (newest_first(*made), 3)


def test_pages_neither_repeat_nor_miss_rows_while_applications_arrive(app, client, keys):
    # Given twelve applications of one partner, received in the last minute
    partner = f"p-{uuid.uuid4().hex[:8]}"
    now_ns = time.time_ns()
    before = [record(now_ns - (50 - n) * SECOND_NS, channel="partner_api", partner_id=partner)
              for n in range(12)]
    write(app, *before)
    late = record(now_ns - 45 * SECOND_NS + 1, channel="partner_api", partner_id=partner)

    def arrive() -> None:
        # new submissions, processed, and one received earlier that is stored only now
        for _ in range(3):
            answer = client.post(
                "/v1/applications",
                json=sample_application(channel="partner_api", partner_id=partner),
                headers=auth(keys["submit"], **{"Idempotency-Key": str(uuid.uuid4())}))
            assert answer.status_code == 202, answer.text
            wait_for_status(client, keys["submit"], answer.json()["id"])
        write(app, late)

    # When the search is paged while they arrive
    seen, _ = every_page(client, keys["read"], between_pages=arrive, limit=5,
                         partner_id=partner)

    # Then no application is listed twice, none that existed is missed, and the late one
    # shows in its place; the new ones are newer than the first page (a new search)
    assert seen == newest_first(*before, late)
    assert len(found(client, keys["read"], partner_id=partner, limit=500)) == 16


def test_a_page_holds_50_by_default_and_up_to_500(app, client, keys):
    start_ns, bounds = window()
    write(app, *[record(start_ns + n * SECOND_NS // 1000) for n in range(501)])

    default = search(client, keys["read"], **bounds).json()
    largest = search(client, keys["read"], limit=500, **bounds).json()

    assert (len(default["items"]), default["next_cursor"] is not None) == (50, True)
    assert (len(largest["items"]), largest["next_cursor"] is not None) == (500, True)
    last = search(client, keys["read"], limit=500, cursor=largest["next_cursor"], **bounds)
    assert (len(last.json()["items"]), last.json()["next_cursor"]) == (1, None)


# -- refused requests ---------------------------------------------------------------------

BAD = [
    ({"status": "queued"}, "status"),
    ({"status": "approved"}, "status"),
    ({"route": "auto_approve"}, "route"),
    ({"channel": "fax"}, "channel"),
    ({"review": "pending"}, "review"),
    ({"partner_id": "p\x00"}, "partner_id"),
    ({"external_id": "x" * 101}, "external_id"),
    ({"since": "yesterday"}, "since"),
    ({"until": "2026-13-01T00:00:00Z"}, "until"),
    ({"since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"}, "until"),
    ({"since": "9999-01-01T00:00:00Z"}, "since"),
    ({"limit": "0"}, "limit"),
    ({"limit": "501"}, "limit"),
    ({"limit": "ten"}, "limit"),
    ({"limit": "²"}, "limit"),
    ({"cursor": "not-a-cursor"}, "cursor"),
    ({"cursor": "MTIz"}, "cursor"),
    ({"stauts": "stored"}, "stauts"),
]


@pytest.mark.parametrize(("query", "field"), BAD, ids=[f"{f}-{n}" for n, (_, f) in enumerate(BAD)])
def test_a_bad_parameter_is_422_naming_it(client, keys, query, field):
    answer = search(client, keys["read"], **query)

    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    problem = answer.json()
    assert problem["type"] == "/problems/validation-error"
    assert problem["title"] == "One or more fields are invalid"  # not "the application"
    assert [e["field"] for e in problem["errors"]] == [field]


def test_a_parameter_given_twice_is_422(client, keys):
    answer = client.get("/v1/applications?status=stored&status=rejected",
                        headers=auth(keys["read"]))

    assert answer.status_code == 422
    assert [e["field"] for e in answer.json()["errors"]] == ["status"]


def test_no_key_is_401(client):
    answer = client.get("/v1/applications")

    assert answer.status_code == 401
    assert answer.headers["content-type"] == "application/problem+json"


def test_a_key_without_read_scope_is_403_before_its_parameters_are_checked(client, keys):
    for query in ({}, {"limit": "0"}):
        answer = search(client, keys["operate"], **query)

        assert answer.status_code == 403
        assert json.loads(answer.text)["type"] == "/problems/forbidden"
