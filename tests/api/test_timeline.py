"""GET /v1/applications/{id}/timeline, the app in-process over each mode's backends:
what happened to an application, oldest first, from what the stores keep.

Applications go the real way (submitted, processed, failed by the documented test-only
LOANFLOW_FAIL_MARKER, replayed, discarded, decided over HTTP); only the review's
application is written to the store directly, to be routed to manual_review for sure.
"""

from __future__ import annotations

import itertools
import uuid
from typing import Any

import httpx
import msgspec
import pytest

from loanflow.models import format_ts
from tests.api.inprocess import InProcessApp, app_fixture, client_fixture, keys_fixture
from tests.api.test_search import record, write
from tests.api.test_submit import submit
from tests.conftest import auth, sample_application, wait_for_status

MARKER = "POISON-"

app = app_fixture(fail_marker=MARKER, max_attempts="2")
client = client_fixture()
keys = keys_fixture()

SECOND_NS = 1_000_000_000
_windows = itertools.count(1)


@pytest.fixture(scope="module")
def operator(app: InProcessApp) -> str:
    return app.key("read,operate")


def key_id(secret: str) -> str:
    """The id the audit trail names a key by (`lf_<id>_<secret>`)."""
    return secret.split("_")[1]


def timeline(client: httpx.Client, key: str, application_id: str) -> dict[str, Any]:
    answer = client.get(f"/v1/applications/{application_id}/timeline", headers=auth(key))
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/json"
    body: dict[str, Any] = answer.json()
    assert body["id"] == application_id
    assert set(body) == {"id", "events", "trace"}
    ats = [e["at"] for e in body["events"]]
    assert ats == sorted(ats), "events are oldest first"
    return body


def kinds(body: dict[str, Any]) -> list[str]:
    return [e["kind"] for e in body["events"]]


def event(body: dict[str, Any], kind: str) -> dict[str, Any]:
    [found] = [e for e in body["events"] if e["kind"] == kind]
    return found


def processed(client: httpx.Client, keys: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    answer = submit(client, keys["submit"], body)
    assert answer.status_code == 202, answer.text
    return wait_for_status(client, keys["submit"], answer.json()["id"], timeout_s=15)


def dead_lettered(client: httpx.Client, keys: dict[str, str]) -> str:
    answer = submit(client, keys["submit"],
                    sample_application(external_id=MARKER + uuid.uuid4().hex[:8]))
    assert answer.status_code == 202, answer.text
    application_id = str(answer.json()["id"])
    result = wait_for_status(client, keys["submit"], application_id, timeout_s=15)
    assert result["status"] == "dead_lettered", result
    return application_id


# -- what each kind of application shows --------------------------------------------------


def test_a_stored_application_was_received_then_stored_with_its_trace(client, keys):
    single = processed(client, keys, sample_application())
    assert single["status"] == "stored"

    body = timeline(client, keys["read"], single["id"])

    assert kinds(body) == ["received", "stored"]
    received, stored = body["events"]
    assert received["at"] == single["received_at"]
    assert received["detail"] == {"channel": "web", "partner_id": None,
                                  "external_id": "crm-000123"}
    enrichment = single["enrichment"]
    assert stored["at"] == single["processed_at"]
    assert stored["detail"] == {
        "status": "stored", "route": enrichment["route"], "score": enrichment["score"],
        "risk_tier": enrichment["risk_tier"], "flags": enrichment["flags"],
        "reasons": enrichment["route_reasons"]}
    assert enrichment["route"] in stored["summary"]
    # The decision trace, exactly as the single view shows it
    assert body["trace"] == enrichment["trace"] and body["trace"]


def test_a_rejected_application_shows_every_broken_rules_code(client, keys):
    single = processed(client, keys, sample_application(loan__amount=500, loan__term_months=7))
    assert single["status"] == "rejected"

    body = timeline(client, keys["read"], single["id"])

    assert kinds(body) == ["received", "rejected"]
    rejected = event(body, "rejected")
    codes = [r["code"] for r in rejected["detail"]["reasons"]]
    assert codes == [r["code"] for r in single["rejection_reasons"]]
    assert "loan.amount.below_minimum" in codes and len(codes) >= 2
    assert rejected["detail"]["status"] == "rejected"
    assert rejected["at"] == single["processed_at"]
    assert body["trace"] is None


def test_a_dead_letter_shows_each_failed_attempt_then_dead_lettered(client, keys):
    application_id = dead_lettered(client, keys)
    letter = client.get(f"/v1/dead-letters/{application_id}", headers=auth(keys["read"])).json()

    body = timeline(client, keys["read"], application_id)

    assert kinds(body) == ["received", "attempt_failed", "attempt_failed", "dead_lettered"]
    attempts = [e for e in body["events"] if e["kind"] == "attempt_failed"]
    assert [(e["at"], e["detail"]) for e in attempts] == [
        (a["at"], {"attempt": a["attempt"], "error_code": "InjectedFault",
                   "message": a["message"]}) for a in letter["attempts"]]
    dead = event(body, "dead_lettered")
    assert dead["at"] == letter["dead_lettered_at"]
    assert dead["detail"] == {"error_code": "InjectedFault", "message": letter["last_error"],
                              "attempts": 2}
    assert body["trace"] is None


def test_a_dead_letter_replayed_with_a_correction_ends_stored(client, keys, operator):
    # Given a dead letter, replayed with a corrected application that processes
    application_id = dead_lettered(client, keys)
    corrected = sample_application(external_id=f"fixed-{uuid.uuid4().hex[:8]}")
    answer = client.post(f"/v1/dead-letters/{application_id}/replay",
                         json={"application": corrected}, headers=auth(operator))
    assert answer.status_code == 202, answer.text
    single = wait_for_status(client, keys["read"], application_id, timeout_s=15)
    assert single["status"] == "stored"

    # When its timeline is read
    body = timeline(client, keys["read"], application_id)

    # Then it shows the failed round, the replay by whom, and the stored result
    assert kinds(body) == ["received", "attempt_failed", "attempt_failed", "dead_lettered",
                           "replayed", "stored"]
    replayed = event(body, "replayed")
    assert replayed["detail"] == {"by": key_id(operator), "corrected": True,
                                  "last_error": "InjectedFault"}
    assert key_id(operator) in replayed["summary"]
    assert event(body, "received")["detail"]["external_id"] == corrected["external_id"]
    assert event(body, "stored")["at"] == single["processed_at"]
    assert body["trace"] == single["enrichment"]["trace"]


def test_a_discarded_dead_letter_shows_who_discarded_it_and_why(client, keys, operator):
    application_id = dead_lettered(client, keys)
    answer = client.post(f"/v1/dead-letters/{application_id}/discard",
                         json={"reason": "duplicate of a phone application"},
                         headers=auth(operator))
    assert answer.status_code == 200, answer.text

    body = timeline(client, keys["read"], application_id)

    assert kinds(body) == ["received", "attempt_failed", "attempt_failed", "dead_lettered",
                           "discarded"]
    assert event(body, "discarded")["detail"] == {
        "by": key_id(operator), "reason": "duplicate of a phone application",
        "last_error": "InjectedFault"}


def test_a_reviewed_application_shows_the_decision_and_who_made_it(app, client, keys,
                                                                    operator):
    # Given an application stored as routed to manual_review, in the past
    received_ns = (1_500_000_000 + next(_windows) * 10_000) * SECOND_NS
    made = record(received_ns, route="manual_review", document=msgspec.json.encode({
        "application": {"applicant": {"ssn": "***-**-6789", "date_of_birth": "****-**-**"}},
        "assessment": {"violations": [], "enrichment": {
            "score": 610, "risk_tier": "C", "route": "manual_review", "flags": ["velocity_email"],
            "route_reasons": [{"code": "route.tier.not_fast_track", "message": "tier C"}],
            "trace": [{"name": "score", "value": 610, "inputs": {}}]}}}))
    write(app, made)

    # When an operator approves it
    answer = client.post(f"/v1/applications/{made.id}/review", headers=auth(operator),
                         json={"decision": "approve", "reason": "income verified"})
    assert answer.status_code == 200, answer.text
    reviewed_at = answer.json()["review"]["reviewed_at"]

    # Then the timeline ends with the decision, after the stored result
    body = timeline(client, keys["read"], made.id)
    assert kinds(body) == ["received", "stored", "review_decided"]
    assert [e["at"] for e in body["events"]] == [
        format_ts(made.received_at_ns), format_ts(made.processed_at_ns), reviewed_at]
    decided = event(body, "review_decided")
    assert decided["detail"] == {"decision": "approve", "reason": "income verified",
                                 "reviewed_by": key_id(operator)}
    assert event(body, "stored")["detail"] == {
        "status": "stored", "route": "manual_review", "score": 610, "risk_tier": "C",
        "flags": ["velocity_email"],
        "reasons": [{"code": "route.tier.not_fast_track", "message": "tier C"}]}
    assert body["trace"] == [{"name": "score", "value": 610, "inputs": {}}]


def test_a_dead_letter_without_its_application_row_still_has_a_timeline(app, client, keys):
    application_id = app.open_dead_letter()

    body = timeline(client, keys["read"], application_id)

    assert kinds(body) == ["received", "attempt_failed", "dead_lettered"]
    assert event(body, "received")["detail"]["channel"] == "web"


def test_no_event_shows_an_ssn_or_a_date_of_birth(client, keys):
    single = processed(client, keys, sample_application())

    text = client.get(f"/v1/applications/{single['id']}/timeline",
                      headers=auth(keys["read"])).text

    for secret in ("123-45-6789", "123456789", "1985-12-10"):
        assert secret not in text


# -- refusals -----------------------------------------------------------------------------


@pytest.mark.parametrize("application_id", [
    "01a24fa1-0000-7000-8000-000000000000", "no-such-id", "nul%00id"])
def test_an_unknown_id_is_404(client, keys, application_id):
    answer = client.get(f"/v1/applications/{application_id}/timeline",
                        headers=auth(keys["read"]))

    assert answer.status_code == 404
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["type"] == "/problems/not-found"


def test_no_key_is_401_and_a_key_without_read_is_403(client, keys):
    single = processed(client, keys, sample_application())
    path = f"/v1/applications/{single['id']}/timeline"

    assert client.get(path).status_code == 401
    forbidden = client.get(path, headers=auth(keys["operate"]))
    assert forbidden.status_code == 403
    assert forbidden.json()["type"] == "/problems/forbidden"
