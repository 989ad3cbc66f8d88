"""openapi.json against the app's live answers, the app in-process over each mode's
backends: every documented operation is driven with a valid request and its usual
refusals, and each JSON answer must match the document's schema for its status. Answer
objects are closed, so a field the document lacks fails.

Applications go the real way (submitted and processed; dead letters as a processor
writes them); 429 and 503, which need an exhausted rate or a queue over its depth, are
answered by the app's own error handler.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import jsonschema_rs
import msgspec
import pytest
from starlette.requests import Request

from loanflow.api import openapi, submit
from loanflow.api.applications import Accepted
from loanflow.api.operations import EXAMPLE_APPLICATION, OPERATIONS
from loanflow.api.problems import TYPE_BASE, on_loanflow_error
from loanflow.api.schema import decode_application
from loanflow.errors import LoanflowError, QueueFull, RateLimited, StoreUnavailable
from tests.api.inprocess import InProcessApp, app_fixture, keys_fixture
from tests.conftest import auth, sample_application, wait_for_status

MARKER = "POISON-"

app = app_fixture(fail_marker=MARKER, max_attempts="2")
keys = keys_fixture()

SPEC = openapi.build()
JSON_TYPES = ("application/json", "application/problem+json")


def validator(schema: dict[str, Any]) -> jsonschema_rs.Draft202012Validator:
    """A validator of `schema`, its `#/components/...` references resolved in the spec."""
    return jsonschema_rs.Draft202012Validator(
        {**schema, "components": SPEC["components"]}, validate_formats=True)


def breaches(method: str, path: str, answer: httpx.Response) -> list[str]:
    """How `answer` departs from what the document says of `method path` at its status."""
    operation = SPEC["paths"][path][method.lower()]
    documented = operation["responses"].get(str(answer.status_code))
    if documented is None:
        return [f"{answer.status_code} is not documented: {answer.text[:300]}"]
    media_type = answer.headers["content-type"].partition(";")[0].strip()
    content = documented.get("content", {})
    if media_type not in content:
        return [f"{answer.status_code} answered {media_type}, documented {sorted(content)}"]
    if media_type not in JSON_TYPES:
        return []
    return [f"{answer.status_code} {e.instance_path}: {e.message}"
            for e in validator(content[media_type]["schema"]).iter_errors(answer.json())]


@dataclass
class Context:
    client: httpx.Client
    app: InProcessApp
    keys: dict[str, str]
    ids: dict[str, str] = field(default_factory=dict)

    def submit(self, body: Any, *, key: str | None = None, idem: str | None = None,
               **headers: str) -> httpx.Response:
        content = body if isinstance(body, bytes) else msgspec.json.encode(body)
        return self.client.post("/v1/applications", content=content, headers={
            **auth(key or self.keys["submit"]), "Content-Type": "application/json",
            "Idempotency-Key": idem or str(uuid.uuid4()), **headers})

    def processed(self, body: dict[str, Any]) -> dict[str, Any]:
        answer = self.submit(body)
        assert answer.status_code == 202, answer.text
        return wait_for_status(self.client, self.keys["submit"], answer.json()["id"],
                               timeout_s=15)

    def get(self, url: str, key: str = "read", **params: Any) -> httpx.Response:
        return self.client.get(url, params=params, headers=auth(self.keys[key]))

    def post(self, url: str, body: Any = None, key: str = "operator", *,
             content: bytes | None = None) -> httpx.Response:
        if content is None and body is not None:
            content = msgspec.json.encode(body)
        return self.client.post(url, content=content, headers={
            **auth(self.keys[key]), "Content-Type": "application/json"})


@pytest.fixture(scope="module")
def client(app: InProcessApp) -> Iterator[httpx.Client]:
    with app.client(timeout=10) as c:
        yield c


@pytest.fixture(scope="module")
def ctx(app: InProcessApp, client: httpx.Client, keys: dict[str, str]) -> Context:
    """Keys of each scope, and applications in each state the answers describe."""
    context = Context(client, app, {**keys, "operator": app.key("read,operate"),
                                    "admin": app.key("admin")})
    context.ids["stored"] = context.processed(sample_application(external_id="spec-1"))["id"]
    rejected = sample_application(external_id="spec-2")
    rejected["applicant"]["date_of_birth"] = "2020-01-01"  # a child: a business rule broken
    view = context.processed(rejected)
    assert view["status"] == "rejected", view
    context.ids["rejected"] = view["id"]
    # The same SSN as the first, within 24 h: flagged, so routed to manual review.
    view = context.processed(sample_application(external_id="spec-3"))
    assert (view["status"], view["enrichment"]["route"]) == ("stored", "manual_review"), view
    context.ids["review"] = view["id"]
    for name in ("letter", "replay", "discard"):
        context.ids[name] = app.open_dead_letter()
    return context


# -- a driver per operation: its valid request, then the refusals it can be brought to ---

Driver = Callable[[Context], list[httpx.Response]]
DRIVERS: dict[tuple[str, str], Driver] = {}


def drives(method: str, path: str) -> Callable[[Driver], Driver]:
    def register(fn: Driver) -> Driver:
        DRIVERS[method, path] = fn
        return fn
    return register


@drives("POST", "/v1/applications")
def _submit(c: Context) -> list[httpx.Response]:
    body, idem = sample_application(external_id="spec-submit"), str(uuid.uuid4())
    too_large = msgspec.json.encode({**body, "pad": "x" * 70_000})
    return [
        c.submit(body, idem=idem),
        c.submit(body, idem=idem),  # the first 202 again
        c.submit({**body, "external_id": "spec-other"}, idem=idem),  # key reused: 422
        c.submit({**body, "channel": "fax", "loan": {}}),  # schema: 422 with errors
        c.submit(b"{not json"),  # 400
        c.submit(body, idem="k" * 256),  # a key too long: 400
        c.submit(body, key=c.keys["read"]),  # 403
        c.client.post("/v1/applications", json=body),  # 401
        c.submit(body, **{"Content-Type": "text/plain"}),  # 415
        c.submit(too_large),  # 413
    ]


@drives("GET", "/v1/applications")
def _search(c: Context) -> list[httpx.Response]:
    return [c.get("/v1/applications", limit=5), c.get("/v1/applications", route="manual_review"),
            c.get("/v1/applications", external_id="spec-2", status="rejected"),
            c.get("/v1/applications", colour="red"),  # unknown parameter: 422
            c.get("/v1/applications", key="submit", limit=0),  # out of range: 422
            c.get("/v1/applications", key="operate")]  # operate only: 403


@drives("POST", "/v1/applications/batch")
def _batch(c: Context) -> list[httpx.Response]:
    key = str(uuid.uuid4())
    items = [{"idempotency_key": key, "application": sample_application(external_id="b1")},
             {"idempotency_key": str(uuid.uuid4()), "application": {"channel": "fax"}},
             "not an item"]
    reused = [{"idempotency_key": key, "application": sample_application(external_id="b2")}]
    url, headers = "/v1/applications/batch", auth(c.keys["submit"])
    return [c.client.post(url, json=items, headers=headers),
            c.client.post(url, json=reused, headers=headers),  # refused: key reused
            c.client.post(url, json=[], headers=headers),  # no item: 400
            c.client.post(url, content=b"[]", headers={**headers, "Content-Type": "text/csv"}),
            c.client.post(url, json=items, headers=auth(c.keys["read"]))]


@drives("GET", "/v1/applications/{id}")
def _single(c: Context) -> list[httpx.Response]:
    fresh = c.submit(sample_application(external_id="spec-fresh")).json()["id"]
    return [c.get(f"/v1/applications/{c.ids[name]}")
            for name in ("stored", "rejected", "review", "letter")] + [
        c.get(f"/v1/applications/{fresh}"),  # queued, processing or stored by now
        c.get("/v1/applications/no-such-id"),  # 404
        c.client.get(f"/v1/applications/{c.ids['stored']}")]  # 401


@drives("POST", "/v1/applications/{id}/review")
def _decide(c: Context) -> list[httpx.Response]:
    url = f"/v1/applications/{c.ids['review']}/review"
    decision = {"decision": "approve", "reason": "income verified"}
    return [c.post(url, decision),
            c.post(url, decision),  # the same again: the recorded decision, replayed
            c.post(url, {"decision": "decline", "reason": "changed my mind"}),  # 409 + review
            c.post(f"/v1/applications/{c.ids['rejected']}/review", decision),  # not queued
            c.post("/v1/applications/no-such-id/review", decision),  # 404
            c.post(url, {"decision": "maybe"}),  # 422 naming both fields
            c.post(url, content=b"{oops"),  # 400
            c.post(url, decision, key="read")]  # 403


@drives("GET", "/v1/applications/{id}/timeline")
def _timeline(c: Context) -> list[httpx.Response]:
    return [c.get(f"/v1/applications/{c.ids[name]}/timeline")
            for name in ("stored", "rejected", "review", "letter")] + [
        c.get("/v1/applications/no-such-id/timeline")]


@drives("GET", "/v1/exports/applications.csv")
def _export(c: Context) -> list[httpx.Response]:
    return [c.get("/v1/exports/applications.csv", external_id="spec-1"),
            c.get("/v1/exports/applications.csv", limit=5)]  # not the export's: 422


@drives("GET", "/v1/reviews")
def _reviews(c: Context) -> list[httpx.Response]:
    return [c.get("/v1/reviews"), c.get("/v1/reviews", limit=1),
            c.get("/v1/reviews", cursor="not-a-cursor")]


@drives("GET", "/v1/dead-letters")
def _letters(c: Context) -> list[httpx.Response]:
    return [c.get("/v1/dead-letters"), c.get("/v1/dead-letters", status="any", limit=2),
            c.get("/v1/dead-letters", since="yesterday")]


@drives("POST", "/v1/dead-letters/replay")
def _bulk_replay(c: Context) -> list[httpx.Response]:
    return [c.post("/v1/dead-letters/replay", {"filter": {"error_code": "None"}}),
            c.post("/v1/dead-letters/replay", {"filters": {}})]  # unknown field: 422


@drives("POST", "/v1/dead-letters/discard")
def _bulk_discard(c: Context) -> list[httpx.Response]:
    return [c.post("/v1/dead-letters/discard", {"dry_run": True}),
            c.post("/v1/dead-letters/discard", content=b"")]  # no body: 400


@drives("GET", "/v1/dead-letters/{id}")
def _letter(c: Context) -> list[httpx.Response]:
    return [c.get(f"/v1/dead-letters/{c.ids['letter']}"), c.get("/v1/dead-letters/nope")]


@drives("POST", "/v1/dead-letters/{id}/replay")
def _replay(c: Context) -> list[httpx.Response]:
    url = f"/v1/dead-letters/{c.ids['replay']}/replay"
    return [c.post(url), c.post(url),  # replayed, then 409: no longer open
            c.post("/v1/dead-letters/nope/replay"),
            c.post(url, {"application": {"channel": "fax"}})]  # a wrong correction: 422


@drives("POST", "/v1/dead-letters/{id}/discard")
def _discard(c: Context) -> list[httpx.Response]:
    url = f"/v1/dead-letters/{c.ids['discard']}/discard"
    return [c.post(url, {"reason": "test data"}), c.post(url, {"reason": "again"})]


@drives("GET", "/v1/audit")
def _audit(c: Context) -> list[httpx.Response]:
    return [c.get("/v1/audit"), c.get("/v1/audit", before="-1")]


@drives("GET", "/v1/keys")
def _keys(c: Context) -> list[httpx.Response]:
    return [c.get("/v1/keys", key="admin"), c.get("/v1/keys", key="read")]


@drives("POST", "/v1/keys")
def _create_key(c: Context) -> list[httpx.Response]:
    return [c.post("/v1/keys", {"scopes": ["submit"], "partner_id": "p1"}, key="admin"),
            c.post("/v1/keys", {"scopes": []}, key="admin"),
            c.post("/v1/keys", content=b"{", key="admin"),
            c.post("/v1/keys", {"scopes": ["submit"]}, key="operator")]


@drives("POST", "/v1/keys/{id}/revoke")
def _revoke_key(c: Context) -> list[httpx.Response]:
    made = c.post("/v1/keys", {"scopes": ["read"]}, key="admin").json()["key"]["id"]
    return [c.post(f"/v1/keys/{made}/revoke", key="admin"),
            c.post("/v1/keys/no-such-key/revoke", key="admin")]


@drives("GET", "/v1/metrics/summary")
def _summary(c: Context) -> list[httpx.Response]:
    return [c.get("/v1/metrics/summary"), c.get("/v1/metrics/summary", window_s=0)]


@drives("GET", "/v1/metrics/series")
def _series(c: Context) -> list[httpx.Response]:
    return [c.get("/v1/metrics/series", seconds=60), c.get("/v1/metrics/series", range="24h"),
            c.get("/v1/metrics/series", range="7d", after=0),
            c.get("/v1/metrics/series", seconds=60, range="1h"),
            c.get("/v1/metrics/series", seconds=60, after=0)]


@drives("GET", "/v1/alerts")
def _alerts(c: Context) -> list[httpx.Response]:
    return [c.get("/v1/alerts"), c.client.get("/v1/alerts")]


@drives("GET", "/metrics")
def _prometheus(c: Context) -> list[httpx.Response]:
    return [c.client.get("/metrics")]


@drives("GET", "/healthz")
def _healthz(c: Context) -> list[httpx.Response]:
    return [c.client.get("/healthz")]


@drives("GET", "/readyz")
def _readyz(c: Context) -> list[httpx.Response]:
    return [c.client.get("/readyz")]


DOCUMENTED = sorted((method.upper(), path) for path, methods in SPEC["paths"].items()
                    for method in methods)


def test_every_documented_operation_is_driven():
    assert sorted(DRIVERS) == DOCUMENTED


@pytest.mark.parametrize(("method", "path"), DOCUMENTED, ids=[f"{m} {p}" for m, p in DOCUMENTED])
def test_live_answers_match_the_document(ctx, method, path):
    answers = DRIVERS[method, path](ctx)

    found = {f"{a.request.method} {a.request.url.path}?{a.request.url.query.decode()}"
             f" -> {breach}" for a in answers for breach in breaches(method, path, a)}
    documented_success = {s for s in SPEC["paths"][path][method.lower()]["responses"]
                          if s.startswith("2")}

    assert not found, "\n".join(sorted(found))
    assert {str(a.status_code) for a in answers} & documented_success, "no valid request"


def test_every_status_a_driver_reaches_is_one_it_meant(ctx):
    # Guards the drivers themselves: a refusal meant to be a 4xx that turned into a 2xx
    # (or a 500) would validate against another schema and prove less than it says.
    answer = DRIVERS["POST", "/v1/applications/{id}/review"](ctx)
    assert [a.status_code for a in answer] == [200, 200, 409, 409, 404, 422, 400, 403]
    assert answer[1].headers["idempotent-replayed"] == "true"
    assert answer[2].json()["review"]["decision"] == "approve"


@pytest.mark.parametrize("error", [
    RateLimited("over this key's rate", retry_after_s=2),
    QueueFull("queue depth 10 >= 10"),
    StoreUnavailable("the store is down"),
], ids=lambda e: type(e).__name__)
def test_problems_hard_to_reach_in_process_match_the_document(error: LoanflowError):
    # The app's own handler answers them, as when a rate runs out or the queue is full.
    request = Request({"type": "http", "method": "POST", "path": "/v1/applications",
                       "headers": [], "query_string": b""})
    answer = asyncio.run(on_loanflow_error(request, error))
    response = httpx.Response(answer.status_code, headers=dict(answer.headers),
                              content=bytes(answer.body),
                              request=httpx.Request("POST", "http://t/v1/applications"))

    assert breaches("POST", "/v1/applications", response) == []
    assert response.headers["retry-after"].isdigit()


def test_an_answer_with_a_field_the_document_lacks_fails(ctx):
    answer = ctx.get(f"/v1/applications/{ctx.ids['stored']}")
    body = answer.json()
    schema = SPEC["paths"]["/v1/applications/{id}"]["get"]["responses"]["200"]["content"][
        "application/json"]["schema"]

    with_field = {**body, "internal_note": "x"}
    nested = {**body, "enrichment": {**body["enrichment"], "raw_score": 1}}

    assert validator(schema).is_valid(body)
    assert not validator(schema).is_valid(with_field)
    assert not validator(schema).is_valid(nested)


def test_the_pre_encoded_202_decodes_as_accepted(ctx):
    answer = ctx.submit(sample_application(external_id="spec-202"))
    parts = submit._BODY_START + b"x" + submit._BODY_MIDDLE + b"y" + submit._BODY_END

    accepted = msgspec.json.decode(answer.content, type=Accepted)

    assert answer.status_code == 202
    assert (accepted.status, answer.headers["location"]) == (
        "queued", f"/v1/applications/{accepted.id}")
    assert msgspec.json.decode(parts, type=Accepted) == Accepted(
        id="x", status="queued", received_at="y")


def test_every_problem_type_is_listed():
    listed = {entry["const"] for entry in
              SPEC["components"]["schemas"]["ProblemType"]["oneOf"]}
    named = {TYPE_BASE + cls.type for op in OPERATIONS for cls in op.problems}

    assert named <= listed
    assert {TYPE_BASE + t for t in ("validation-error", "idempotency-key-reused",
                                    "headers-too-large", "not-found", "queue-full")} <= listed


def test_the_documented_example_is_a_valid_application():
    decode_application(msgspec.json.encode(EXAMPLE_APPLICATION))


def test_the_document_and_its_page_are_public_and_under_the_strict_policy(client):
    document = client.get("/openapi.json")
    page = client.get("/docs")

    assert (document.status_code, page.status_code) == (200, 200)
    assert document.json() == SPEC
    assert page.headers["content-type"].startswith("text/html")
    assert "script-src 'self';" in page.headers["content-security-policy"]
    assert '<script type="module" src="/static/js/docs.js"></script>' in page.text
    assert "<style" not in page.text and "style=" not in page.text
    assert client.get("/static/js/docs.js").status_code == 200
