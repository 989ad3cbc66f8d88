"""POST /v1/applications, the app in-process over each mode's backends: the happy path
and every 4xx."""

from __future__ import annotations

import json
import uuid

import httpx

from tests.api.inprocess import app_fixture, client_fixture, keys_fixture
from tests.conftest import auth, sample_application, wait_for_status

app = app_fixture()
client = client_fixture()
keys = keys_fixture()


def submit(client: httpx.Client, key: str, body: object, *, idem: str | None = None,
           **headers: str) -> httpx.Response:
    hdrs = auth(key, **{"Content-Type": "application/json"})
    hdrs["Idempotency-Key"] = idem or str(uuid.uuid4())
    hdrs.update(headers)
    return client.post("/v1/applications", content=json.dumps(body), headers=hdrs)


def test_valid_application_is_accepted_then_stored(client, keys):
    answer = submit(client, keys["submit"], sample_application())

    assert answer.status_code == 202, answer.text
    accepted = answer.json()
    assert accepted["status"] == "queued"
    assert answer.headers["location"] == f"/v1/applications/{accepted['id']}"
    stored = wait_for_status(client, keys["submit"], accepted["id"])
    assert stored["status"] == "stored"
    assert stored["received_at"] == accepted["received_at"]
    assert stored["latency_ms"] > 0
    assert stored["enrichment"]["risk_tier"] in "ABCDE"
    assert stored["rejection_reasons"] == []


def test_stored_application_shows_only_masked_ssn_and_birth_date(client, keys):
    accepted = submit(client, keys["submit"], sample_application()).json()

    stored = wait_for_status(client, keys["submit"], accepted["id"])

    applicant = stored["application"]["applicant"]
    assert applicant["ssn"] == "***-**-6789"
    assert applicant["date_of_birth"] == "****-**-**"
    text = json.dumps(stored)
    assert "123-45-6789" not in text and "123456789" not in text and "1985-12-10" not in text


def test_application_breaking_business_rules_is_rejected_with_every_reason(client, keys):
    body = sample_application(loan__amount=500.0, loan__term_months=13)

    accepted = submit(client, keys["submit"], body).json()
    result = wait_for_status(client, keys["submit"], accepted["id"])

    assert result["status"] == "rejected"
    codes = {reason["code"] for reason in result["rejection_reasons"]}
    assert {"loan.amount.below_minimum", "loan.term_months.not_offered"} <= codes


def test_missing_key_is_401(client):
    answer = client.post("/v1/applications", json=sample_application(),
                         headers={"Idempotency-Key": "k"})

    assert answer.status_code == 401
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["type"] == "/problems/unauthenticated"


def test_unknown_key_is_401(client):
    answer = submit(client, "lf_000000000000_not-a-real-secret", sample_application())

    assert answer.status_code == 401


def test_key_without_submit_scope_is_403(client, keys):
    answer = submit(client, keys["read"], sample_application())

    assert answer.status_code == 403
    assert answer.json()["type"] == "/problems/forbidden"


def test_key_without_read_scope_cannot_read(client, keys):
    accepted = submit(client, keys["submit"], sample_application()).json()

    answer = client.get(f"/v1/applications/{accepted['id']}", headers=auth(keys["operate"]))

    assert answer.status_code == 403


def test_missing_idempotency_key_is_400(client, keys):
    answer = client.post("/v1/applications", content=json.dumps(sample_application()),
                         headers=auth(keys["submit"], **{"Content-Type": "application/json"}))

    assert answer.status_code == 400
    assert "Idempotency-Key" in answer.json()["detail"]


def test_overlong_idempotency_key_is_400(client, keys):
    answer = submit(client, keys["submit"], sample_application(), idem="k" * 256)

    assert answer.status_code == 400


def test_malformed_json_is_400(client, keys):
    answer = client.post(
        "/v1/applications", content=b'{"applicant": ',
        headers=auth(keys["submit"], **{"Content-Type": "application/json",
                                        "Idempotency-Key": "malformed"}),
    )

    assert answer.status_code == 400
    assert answer.json()["type"] == "/problems/malformed-request"


def test_non_json_content_type_is_415(client, keys):
    answer = submit(client, keys["submit"], sample_application(), **{"Content-Type": "text/plain"})

    assert answer.status_code == 415


def test_body_over_64_kib_is_413(client, keys):
    body = sample_application(external_id="x" * (65 * 1024))

    answer = submit(client, keys["submit"], body)

    assert answer.status_code == 413


def test_schema_errors_are_422_with_every_field(client, keys):
    body = sample_application(applicant__ssn="12", channel="fax", loan__amount=10.123)
    del body["applicant"]["email"]

    answer = submit(client, keys["submit"], body)

    assert answer.status_code == 422
    fields = {error["field"] for error in answer.json()["errors"]}
    assert {"applicant.ssn", "channel", "applicant.email"} <= fields


def test_amount_with_three_decimals_is_422(client, keys):
    answer = submit(client, keys["submit"], sample_application(loan__amount=15000.125))

    assert answer.status_code == 422
    assert answer.json()["errors"] == [
        {"field": "loan.amount", "message": "expected at most 2 decimals"}
    ]


def test_refused_request_leaves_the_key_free_for_a_corrected_retry(client, keys):
    key = str(uuid.uuid4())
    refused = submit(client, keys["submit"], sample_application(channel="fax"), idem=key)

    corrected = submit(client, keys["submit"], sample_application(), idem=key)

    assert refused.status_code == 422
    assert corrected.status_code == 202
    assert "idempotent-replayed" not in corrected.headers


def test_unknown_application_is_404(client, keys):
    answer = client.get("/v1/applications/no-such-id", headers=auth(keys["submit"]))

    assert answer.status_code == 404
    assert answer.json()["type"] == "/problems/not-found"


def test_health_readiness_and_openapi_answer(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json()["status"] == "ready"
    spec = client.get("/openapi.json").json()
    assert spec["openapi"].startswith("3.1")
    assert "/v1/applications" in spec["paths"]


def test_readiness_says_which_durability_a_202_rests_on(client, deployment):
    expected = {"embedded": "sqlite synchronous=FULL", "production": "redis aof always"}

    assert client.get("/readyz").json()["durability"] == expected[deployment.mode]


def test_submissions_carry_the_request_id_and_security_headers_of_every_answer(client, keys):
    # POST /v1/applications skips the middleware stack (api/submit.py): same headers.
    reference = client.get("/healthz")
    accepted = client.post(
        "/v1/applications", json=sample_application(),
        headers={"Authorization": f"Bearer {keys['submit']}", "Idempotency-Key": "hdr-1",
                 "X-Request-Id": "trace-42"},
    )
    refused = client.post("/v1/applications", json={}, headers={"X-Request-Id": "x\" forged"})

    assert (accepted.status_code, refused.status_code) == (202, 401)
    assert accepted.headers["x-request-id"] == "trace-42"
    assert len(refused.headers["x-request-id"]) == 16
    assert refused.headers["content-type"] == "application/problem+json"
    for name in ("content-security-policy", "x-content-type-options", "x-frame-options",
                 "referrer-policy", "cache-control"):
        assert accepted.headers[name] == refused.headers[name] == reference.headers[name]
