"""The business review queue over HTTP, the app in-process over each mode's backends:
GET /v1/reviews oldest first, POST /v1/applications/{id}/review final, idempotent and
audited, every refusal, and two operators racing."""

from __future__ import annotations

import concurrent.futures
import functools
import itertools
import uuid
from typing import Any

import httpx
import msgspec
import pytest

from loanflow.cli.login import issue_login_code
from loanflow.models import format_ts
from loanflow.store.base import ApplicationRecord
from tests.api.inprocess import InProcessApp, app_fixture, client_fixture, keys_fixture
from tests.api.test_search import record, write
from tests.conftest import auth

app = app_fixture()
client = client_fixture()
keys = keys_fixture()

SECOND_NS = 1_000_000_000
REASONS = [{"code": "route.tier.not_fast_track", "message": "risk tier C needs review"},
           {"code": "route.flag.velocity_email", "message": "email seen 4 times in 1 h"}]
#: Each test's applications are received in a stretch of the past of their own.
_windows = itertools.count(1)


@pytest.fixture(scope="module")
def operator(app: InProcessApp) -> str:
    return app.key("read,operate")


@pytest.fixture(scope="module")
def second_operator(app: InProcessApp) -> str:
    return app.key("read,operate")


def in_review(app: InProcessApp, count: int = 1, **changes: Any) -> list[ApplicationRecord]:
    """`count` applications stored as routed to manual_review, received a second apart."""
    start_ns = (1_600_000_000 + next(_windows) * 10_000) * SECOND_NS
    document = msgspec.json.encode({
        "application": {"applicant": {"ssn": "***-**-6789", "date_of_birth": "****-**-**"}},
        "assessment": {"violations": [], "enrichment": {
            "score": 610, "risk_tier": "C", "route": "manual_review",
            "route_reasons": REASONS, "flags": ["velocity_email"], "trace": []}},
    })
    made = [record(start_ns + n * SECOND_NS, route="manual_review", document=document,
                   **changes) for n in range(count)]
    write(app, *made)
    return made


def decide(client: httpx.Client, key: str, application_id: str, body: Any,
           **headers: str) -> httpx.Response:
    return client.post(f"/v1/applications/{application_id}/review",
                       content=body if isinstance(body, bytes) else msgspec.json.encode(body),
                       headers={**auth(key), "Content-Type": "application/json", **headers})


def queue(client: httpx.Client, key: str, *, limit: int = 500) -> list[dict[str, Any]]:
    """Every item of the queue, page by page."""
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        answer = client.get("/v1/reviews", headers=auth(key),
                            params={"limit": limit, **({"cursor": cursor} if cursor else {})})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        items += body["items"]
        cursor = body["next_cursor"]
        if cursor is None:
            return items


def queued_ids(client: httpx.Client, key: str, *, limit: int = 500) -> list[str]:
    return [item["id"] for item in queue(client, key, limit=limit)]


APPROVE = {"decision": "approve", "reason": "income verified by pay stubs"}


# -- the queue ----------------------------------------------------------------------------


def test_the_queue_lists_open_reviews_oldest_first_in_pages(app, client, keys):
    made = in_review(app, 5)
    other = record(made[0].received_at_ns + 1, route="fast_track")
    write(app, other)

    listed = queued_ids(client, keys["read"], limit=2)

    mine = [i for i in listed if i in {r.id for r in made} | {other.id}]
    assert mine == [r.id for r in made]
    assert len(listed) == len(set(listed))


def test_an_item_shows_the_summary_flags_and_the_routes_reasons(app, client, keys):
    [made] = in_review(app, channel="mobile", partner_id="p-7")

    [item] = [i for i in queue(client, keys["read"]) if i["id"] == made.id]

    assert item == {
        "id": made.id, "status": "stored", "route": "manual_review", "channel": "mobile",
        "partner_id": "p-7", "external_id": None,
        "received_at": format_ts(made.received_at_ns),
        "processed_at": format_ts(made.processed_at_ns), "score": 610, "risk_tier": "C",
        "flags": ["velocity_email"], "review": "open", "review_decision": None,
        "reviewed_at": None, "route_reasons": REASONS,
    }


@pytest.mark.parametrize("query", [{"limit": "0"}, {"limit": "501"}, {"limit": "x"},
                                   {"cursor": "not-a-cursor"}, {"status": "stored"}],
                         ids=["limit-0", "limit-501", "limit-x", "cursor", "unknown"])
def test_a_bad_queue_parameter_is_422_naming_it(client, keys, query):
    answer = client.get("/v1/reviews", params=query, headers=auth(keys["read"]))

    assert answer.status_code == 422
    assert [e["field"] for e in answer.json()["errors"]] == list(query)


def test_the_queue_needs_a_key_with_read_scope(client, keys):
    assert client.get("/v1/reviews").status_code == 401
    refused = client.get("/v1/reviews", headers=auth(keys["operate"]))
    assert (refused.status_code, refused.json()["type"]) == (403, "/problems/forbidden")


# -- a decision ---------------------------------------------------------------------------


def test_a_decision_leaves_the_queue_and_shows_on_the_application_and_in_the_audit(
    app, client, keys, operator
):
    [made] = in_review(app)
    operator_id = client.get("/v1/session", headers=auth(operator)).json()["key_id"]

    answer = decide(client, operator, made.id, {"decision": "decline",
                                                "reason": "stated income not verifiable"})

    assert answer.status_code == 200, answer.text
    review = answer.json()["review"]
    assert answer.json()["id"] == made.id and "Idempotent-Replayed" not in answer.headers
    assert (review["status"], review["decision"], review["reason"], review["reviewed_by"]) == (
        "decided", "decline", "stated income not verifiable", operator_id)
    assert made.id not in queued_ids(client, keys["read"])
    single = client.get(f"/v1/applications/{made.id}", headers=auth(keys["read"])).json()
    assert single["review"] == review and single["status"] == "stored"
    found = client.get("/v1/applications", params={"review": "decided", "limit": 500},
                       headers=auth(keys["read"])).json()["items"]
    assert [(i["review_decision"], i["reviewed_at"]) for i in found if i["id"] == made.id] == [
        ("decline", review["reviewed_at"])]
    audit = client.get("/v1/audit", headers=auth(keys["read"])).json()["items"]
    [entry] = [e for e in audit if e["target"] == made.id]
    assert (entry["actor"], entry["action"], entry["at"]) == (
        operator_id, "review", review["reviewed_at"])
    assert entry["detail"] == {"before": "open", "decision": "decline",
                               "reason": "stated income not verifiable"}


def test_an_open_application_shows_an_open_review_and_others_none(app, client, keys):
    [made] = in_review(app)
    fast = record(made.received_at_ns, route="fast_track")
    write(app, fast)

    def review_of(application_id: str) -> Any:
        return client.get(f"/v1/applications/{application_id}",
                          headers=auth(keys["read"])).json()["review"]

    assert review_of(made.id) == {"status": "open", "decision": None, "reason": None,
                                  "reviewed_by": None, "reviewed_at": None}
    assert review_of(fast.id) is None


def test_the_same_decision_again_answers_the_recorded_one(app, client, keys, operator):
    [made] = in_review(app)
    first = decide(client, operator, made.id, APPROVE)

    again = decide(client, operator, made.id, APPROVE)

    assert again.status_code == 200
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    audit = client.get("/v1/audit", headers=auth(keys["read"])).json()["items"]
    assert len([e for e in audit if e["target"] == made.id]) == 1


@pytest.mark.parametrize("by_other", [False, True], ids=["same-operator", "other-operator"])
def test_a_second_decision_is_409_with_the_first(app, client, operator, second_operator,
                                                 by_other):
    [made] = in_review(app)
    first = decide(client, operator, made.id, APPROVE).json()["review"]
    later = {"decision": "decline", "reason": "second thoughts"}

    answer = decide(client, second_operator if by_other else operator, made.id, later)

    assert answer.status_code == 409
    assert answer.headers["content-type"] == "application/problem+json"
    problem = answer.json()
    assert problem["type"] == "/problems/review-already-decided"
    assert problem["review"] == first


def test_the_same_body_from_another_operator_is_409(app, client, operator, second_operator):
    # The decision is the first operator's: the second did not make it.
    [made] = in_review(app)
    first = decide(client, operator, made.id, APPROVE).json()["review"]

    answer = decide(client, second_operator, made.id, APPROVE)

    assert (answer.status_code, answer.json()["review"]) == (409, first)


def test_an_application_not_routed_to_review_is_409(app, client, operator):
    fast = record(1_650_000_000 * SECOND_NS, route="fast_track")
    rejected = record(1_650_000_000 * SECOND_NS, route=None, status="rejected")
    write(app, fast, rejected)

    for made in (fast, rejected):
        answer = decide(client, operator, made.id, APPROVE)

        assert answer.status_code == 409
        assert answer.json()["type"] == "/problems/not-in-review-queue"
        assert "review" not in answer.json()


def test_an_unknown_application_is_404(client, operator):
    answer = decide(client, operator, str(uuid.uuid4()), APPROVE)

    assert (answer.status_code, answer.json()["type"]) == (404, "/problems/not-found")


def test_a_decision_needs_a_key_with_operate_scope(app, client, keys):
    [made] = in_review(app)

    assert decide(client, "", made.id, APPROVE).status_code == 401
    assert client.post(f"/v1/applications/{made.id}/review", json=APPROVE).status_code == 401
    refused = decide(client, keys["read"], made.id, APPROVE)
    assert (refused.status_code, refused.json()["type"]) == (403, "/problems/forbidden")
    assert made.id in queued_ids(client, keys["read"])


BAD_BODIES = [
    ({"decision": "approve"}, ["reason"]),
    ({"decision": "approve", "reason": ""}, ["reason"]),
    ({"decision": "approve", "reason": "   "}, ["reason"]),
    ({"decision": "approve", "reason": None}, ["reason"]),
    ({"decision": "approve", "reason": "x" * 1001}, ["reason"]),
    ({"decision": "approve", "reason": "fine\nreally"}, ["reason"]),
    ({"decision": "approve", "reason": "ok\u202e"}, ["reason"]),
    ({"decision": "approved", "reason": "ok"}, ["decision"]),
    ({"decision": ["approve"], "reason": "ok"}, ["decision"]),
    ({"reason": "ok"}, ["decision"]),
    ({}, ["decision", "reason"]),
    ({**APPROVE, "by": "someone"}, ["by"]),
    (["approve"], ["$"]),
]


@pytest.mark.parametrize(("body", "fields"), BAD_BODIES,
                         ids=[f"{'-'.join(f)}-{n}" for n, (_, f) in enumerate(BAD_BODIES)])
def test_a_bad_body_is_422_naming_each_field(app, client, operator, body, fields):
    [made] = in_review(app)

    answer = decide(client, operator, made.id, body)

    assert answer.status_code == 422, answer.text
    problem = answer.json()
    assert problem["type"] == "/problems/validation-error"
    assert [e["field"] for e in problem["errors"]] == fields


@pytest.mark.parametrize("body", [b"", b"{", b'{"decision":"approve","decision":"decline",'
                                  b'"reason":"x"}', b'{"decision":NaN,"reason":"x"}',
                                  b"\xff\xfe{}"],
                         ids=["empty", "truncated", "duplicate-key", "nan", "not-utf8"])
def test_a_body_that_is_not_json_is_400(app, client, operator, body):
    [made] = in_review(app)

    answer = decide(client, operator, made.id, body)

    assert (answer.status_code, answer.json()["type"]) == (400, "/problems/malformed-request")


def test_a_body_over_16_kib_is_413(app, client, operator):
    [made] = in_review(app)

    answer = decide(client, operator, made.id, {"decision": "approve", "reason": "x" * 17_000})

    assert answer.status_code == 413


def test_two_operators_racing_get_one_winner_and_one_409(app, client, keys, operator,
                                                         second_operator):
    # Given twenty applications in the queue
    made = in_review(app, 20)
    bodies = {operator: APPROVE, second_operator: {"decision": "decline", "reason": "no"}}

    # When two operators decide each of them at the same moment
    def both(application_id: str) -> list[httpx.Response]:
        with concurrent.futures.ThreadPoolExecutor(2) as pool, \
                app.client(timeout=10) as one, app.client(timeout=10) as other:
            futures = [pool.submit(decide, c, key, application_id, bodies[key])
                       for c, key in ((one, operator), (other, second_operator))]
            return [f.result() for f in futures]

    results = [both(r.id) for r in made]

    # Then each time one is recorded and the other is told the winner's decision
    for answers in results:
        assert sorted(a.status_code for a in answers) == [200, 409], [a.text for a in answers]
        won = next(a for a in answers if a.status_code == 200).json()["review"]
        assert next(a for a in answers if a.status_code == 409).json()["review"] == won
    audit = client.get("/v1/audit", headers=auth(keys["read"])).json()["items"]
    assert len([e for e in audit if e["target"] in {r.id for r in made}]) == 20


def test_a_dashboard_session_decides_with_its_csrf_token_as_its_operator(app, keys):
    [made] = in_review(app)
    code = app.call(functools.partial(issue_login_code, label="test"), app.runtime.store)
    with app.client(timeout=10) as browser:
        assert browser.post("/login", data={"token": code}).status_code == 303
        session = browser.get("/v1/session").json()

        refused = browser.post(f"/v1/applications/{made.id}/review", json=APPROVE)
        accepted = browser.post(f"/v1/applications/{made.id}/review", json=APPROVE,
                                headers={"X-CSRF-Token": session["csrf"]})

    assert refused.status_code == 403
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["review"]["reviewed_by"] == session["key_id"]
