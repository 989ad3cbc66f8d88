"""The API's operations in one table: each route's method and path, handler, scope,
parameters, body, answers and problem types.

app.py serves the table's routes and openapi.py documents them from it, so a route
cannot be served undocumented, nor documented with another scope or answer than the
handler's. The types are the handlers' own msgspec Structs (bodies decoded with them,
answers encoded from them); openapi.py turns them into JSON Schema.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp

from loanflow.api import dead_letters, export, health, keys, metrics, reviews, search, timeline
from loanflow.api.applications import (
    MAX_IDEMPOTENCY_KEY,
    Accepted,
    ApplicationView,
    PendingApplication,
    get_application,
)
from loanflow.api.batch import MAX_ITEMS, BatchResult, Item, submit_batch
from loanflow.api.problems import ReviewConflict
from loanflow.api.submit import Submit
from loanflow.apikeys import Scope
from loanflow.domain.route import Route as RouteName
from loanflow.errors import (
    AlreadyDecided,
    BrokerUnavailable,
    Forbidden,
    IdempotencyConflict,
    IdempotencyKeyReused,
    InvalidValue,
    LoanflowError,
    MalformedRequest,
    NotFound,
    NotInReviewQueue,
    NotOpen,
    PayloadTooLarge,
    QueueFull,
    RateLimited,
    RequestTimeout,
    SchemaInvalid,
    StoreUnavailable,
    Unauthenticated,
    UnsupportedMediaType,
)
from loanflow.metrics.rollup import ROLL_UP_DELAY_S
from loanflow.metrics.series_base import MetricsUnavailable
from loanflow.metrics.views import Series, Summary
from loanflow.models import Application, Channel

JSON = "application/json"
Endpoint = Callable[[Request], Awaitable[Response]] | ASGIApp


@dataclass(frozen=True, kw_only=True)
class Param:
    """A parameter (or an answer's header): its type is what the handler reads it as."""

    name: str
    type: Any
    where: Literal["query", "path", "header"] = "query"
    description: str = ""
    required: bool = False
    default: Any = None


@dataclass(frozen=True, kw_only=True)
class Answer:
    """An answer that is not a problem: its status, and the type its body is encoded from
    (None: the body is `media_type` text)."""

    status: int
    description: str
    type: Any = None
    media_type: str = JSON
    headers: tuple[Param, ...] = ()


@dataclass(frozen=True, kw_only=True)
class Operation:
    method: str
    path: str
    endpoint: Endpoint
    summary: str
    description: str = ""
    #: None: public, no key needed.
    scope: Scope | None
    parameters: tuple[Param, ...] = ()
    #: The request body's type, and whether a body is required.
    body: Any = None
    body_required: bool = True
    answers: tuple[Answer, ...]
    #: The errors it may answer with, as problem+json (errors.py: status, type, title).
    problems: tuple[type[LoanflowError], ...] = ()
    #: A problem status whose body has more than the Problem's fields.
    problem_bodies: tuple[tuple[int, type[msgspec.Struct]], ...] = ()


# -- parameters and problems several operations share -------------------------------------

ID = Param(name="id", type=str, where="path", required=True, description="The application id")
PageSize = Annotated[int, msgspec.Meta(ge=1, le=search.MAX_PAGE)]
LIMIT = Param(name="limit", type=PageSize, default=search.DEFAULT_PAGE, description="Page size")
CURSOR = Param(name="cursor", type=str, description="The next_cursor of the previous page")
IdText = Annotated[str, msgspec.Meta(min_length=1, max_length=search.MAX_ID_TEXT)]
#: The search's filters, which its CSV export takes too.
FILTERS = (
    Param(name="status", type=Literal["stored", "rejected", "dead_lettered", "replayed",
                                      "discarded"],
          description="Queued and processing applications are found by id only"),
    Param(name="route", type=RouteName, description="The recommended route"),
    Param(name="channel", type=Channel, description="The channel"),
    Param(name="partner_id", type=IdText, description="The partner"),
    Param(name="external_id", type=IdText, description="The submitter's own reference"),
    Param(name="review", type=Literal["open", "decided"],
          description="open: routed to manual_review, no decision yet; decided: decided"),
    Param(name="since", type=dt.datetime, description="Received at or after (RFC 3339)"),
    Param(name="until", type=dt.datetime, description="Received before (RFC 3339)"),
)
RETRY_AFTER = Param(name="Retry-After", type=int, where="header",
                    description="Seconds to wait before retrying")
REPLAYED = Param(name="Idempotent-Replayed", type=Literal["true"], where="header",
                 description="Sent when this is the answer recorded before, not a new one")

AUTH = (Unauthenticated, Forbidden)
#: What a route that reads the store with the caller's values may answer beyond auth.
READ = (*AUTH, SchemaInvalid, InvalidValue, StoreUnavailable)
#: What reading a JSON body may answer.
BODY = (MalformedRequest, RequestTimeout, PayloadTooLarge, SchemaInvalid)
INTAKE = (MalformedRequest, *AUTH, RequestTimeout, PayloadTooLarge, UnsupportedMediaType,
          RateLimited, QueueFull, BrokerUnavailable, StoreUnavailable)

#: The example of DESIGN.md (examples/application.json).
EXAMPLE_APPLICATION: dict[str, Any] = {
    "applicant": {
        "first_name": "Ada", "last_name": "Lovelace", "date_of_birth": "1985-12-10",
        "ssn": "123-45-6789", "email": "ada@example.com", "phone": "+1 415 555 0100",
        "address": {"line1": "1 Main St", "line2": None, "city": "San Francisco",
                    "state": "CA", "zip": "94105"},
        "employment_status": "employed", "employer_name": "Acme",
        "annual_income": 96000.00, "monthly_debt_payments": 850.00,
        "monthly_housing_payment": 2100.00,
    },
    "loan": {"amount": 15000.00, "term_months": 36, "purpose": "debt_consolidation"},
    "channel": "web", "partner_id": None, "external_id": "crm-000123",
    "consent": {"credit_check": True, "terms_version": "2026-01"},
    "submitted_at": "2026-11-25T10:00:00Z",
}

#: The submission route; LoanflowApp serves its POSTs before routing (api/submit.py).
SUBMIT = Submit()

OPERATIONS: tuple[Operation, ...] = (
    Operation(
        method="POST", path="/v1/applications", endpoint=SUBMIT, scope=Scope.SUBMIT,
        summary="Submit one application",
        description="A 202 is sent only once the application is durably queued. The same"
                    " Idempotency-Key with the same body answers the first 202 again"
                    " (`Idempotent-Replayed: true`); with another body, 422"
                    " `idempotency-key-reused`. A refused request stores nothing and leaves"
                    " the key free. Body at most 64 KiB (LOANFLOW_MAX_BODY_BYTES).",
        parameters=(Param(name="Idempotency-Key", where="header", required=True,
                          type=Annotated[str, msgspec.Meta(min_length=1,
                                                           max_length=MAX_IDEMPOTENCY_KEY)],
                          description="1-255 printable ASCII characters; a UUID is"
                                      " recommended. Scoped to the API key."),),
        body=Application,
        answers=(Answer(status=202, description="Durably queued", type=Accepted, headers=(
            Param(name="Location", type=str, where="header",
                  description="/v1/applications/{id}"), REPLAYED)),),
        problems=(*INTAKE, IdempotencyConflict, SchemaInvalid, IdempotencyKeyReused),
    ),
    Operation(
        method="GET", path="/v1/applications", endpoint=search.list_applications,
        scope=Scope.READ,
        summary="Search stored applications, newest first, a page at a time",
        description="Every filter is index-backed. A parameter unknown, repeated or out of"
                    " range is refused (422), never ignored.",
        parameters=(*FILTERS, LIMIT, CURSOR),
        answers=(Answer(status=200, description="A page", type=search.SearchPage),),
        problems=READ,
    ),
    Operation(
        method="POST", path="/v1/applications/batch", endpoint=submit_batch,
        scope=Scope.SUBMIT,
        summary=f"Submit up to {MAX_ITEMS:,} applications in one durable append",
        description="A JSON array of items, or NDJSON (`application/x-ndjson`, one item a"
                    " line); at most 16 MiB. Each item is checked on its own: the invalid"
                    " are refused by index, the valid appended together, each with the"
                    " idempotency rules of a single submission.",
        body=Annotated[list[Item], msgspec.Meta(min_length=1, max_length=MAX_ITEMS)],
        answers=(Answer(status=200, description="Each item's result, in order",
                        type=BatchResult),),
        problems=INTAKE,
    ),
    Operation(
        method="GET", path="/v1/applications/{id}", endpoint=get_application,
        scope=Scope.READ,
        summary="One application: status, timings, masked data, results",
        description="Processed: the masked application, the enrichment with its decision"
                    " trace, or the broken rules, and the review. Still in the broker:"
                    " its status and when it was received.",
        parameters=(ID,),
        answers=(Answer(status=200, description="The application",
                        type=ApplicationView | PendingApplication),),
        problems=(*AUTH, NotFound, InvalidValue, BrokerUnavailable, StoreUnavailable),
    ),
    Operation(
        method="POST", path="/v1/applications/{id}/review", endpoint=reviews.decide,
        scope=Scope.OPERATE,
        summary="Decide an application of the review queue: final and audited",
        description="The same decision and reason from the same caller again answer the"
                    " recorded decision, with `Idempotent-Replayed: true`; any other, 409"
                    " with the recorded decision in the problem's `review`. Body at most"
                    " 16 KiB.",
        parameters=(ID,),
        body=reviews.ReviewBody,
        answers=(Answer(status=200, description="The decision recorded",
                        type=reviews.ReviewDecided, headers=(REPLAYED,)),),
        problems=(*AUTH, *BODY, NotFound, NotInReviewQueue, AlreadyDecided, InvalidValue,
                  BrokerUnavailable, StoreUnavailable),
        problem_bodies=((409, ReviewConflict),),
    ),
    Operation(
        method="GET", path="/v1/applications/{id}/timeline", endpoint=timeline.get_timeline,
        scope=Scope.READ,
        summary="What happened to one application, oldest first, and its decision trace",
        description="Received, each failed attempt the records keep, dead-lettered,"
                    " replayed or discarded, stored or rejected, the review's decision. An"
                    " application still queued shows `received` only; a dead letter"
                    " without its application row still has its timeline.",
        parameters=(ID,),
        answers=(Answer(status=200, description="The timeline", type=timeline.Timeline),),
        problems=(*AUTH, NotFound, InvalidValue, BrokerUnavailable, StoreUnavailable),
    ),
    Operation(
        method="GET", path="/v1/exports/applications.csv", endpoint=export.export_applications,
        scope=Scope.READ,
        summary="The applications of a search as CSV, newest first, streamed",
        description="The search's filters (no limit or cursor), at most"
                    f" {export.MAX_ROWS:,} rows, of the applications received before the"
                    " export began. Columns: " + ", ".join(export.COLUMNS) + ". PII masked"
                    " as in the single view; a cell starting with = + - @, tab or carriage"
                    " return is prefixed with `'`.",
        parameters=FILTERS,
        answers=(Answer(
            status=200, description="The CSV file (RFC 4180, header row first)",
            media_type="text/csv", headers=(
                Param(name="Content-Disposition", type=str, where="header",
                      description='attachment; filename="applications-<UTC time>.csv"'),
                Param(name="X-Total-Rows", where="header",
                      type=Annotated[int, msgspec.Meta(ge=0, le=export.MAX_ROWS)],
                      description="Rows the file holds: the matches when it began"),
                Param(name="X-Truncated", type=Literal["true"], where="header",
                      description=f"Sent when over {export.MAX_ROWS:,} match: the file"
                                  " stops there"))),),
        problems=READ,
    ),
    Operation(
        method="GET", path="/v1/reviews", endpoint=reviews.list_reviews, scope=Scope.READ,
        summary="The business review queue: applications routed to manual_review with no"
                " decision yet, oldest first",
        parameters=(LIMIT, CURSOR),
        answers=(Answer(status=200, description="A page of open reviews",
                        type=reviews.ReviewQueuePage),),
        problems=READ,
    ),
    Operation(
        method="GET", path="/v1/dead-letters", endpoint=dead_letters.list_dead_letters,
        scope=Scope.READ,
        summary="Search dead letters, newest first",
        parameters=(
            Param(name="status", type=Literal["open", "replayed", "discarded", "any"],
                  default="open", description="Their state; any: all"),
            Param(name="error_code", type=str, description="The last attempt's error code"),
            Param(name="channel", type=str, description="The channel"),
            Param(name="partner_id", type=str, description="The partner"),
            Param(name="external_id", type=str, description="The submitter's own reference"),
            Param(name="id", type=str, description="The application id"),
            Param(name="q", type=str, description="An application id, or else an external id"),
            Param(name="since", type=dt.datetime, description="Received at or after"),
            Param(name="until", type=dt.datetime, description="Received before"),
            Param(name="limit", type=Annotated[int, msgspec.Meta(ge=1,
                                                                 le=dead_letters.MAX_PAGE)],
                  default=50, description="Page size"),
            CURSOR,
        ),
        answers=(Answer(status=200, description="A page of dead letters",
                        type=dead_letters.DeadLetterPage),),
        problems=READ,
    ),
    Operation(
        method="POST", path="/v1/dead-letters/replay", endpoint=dead_letters.bulk_replay,
        scope=Scope.OPERATE,
        summary="Replay every open dead letter a filter matches (dry run first: the count)",
        body=dead_letters.BulkBody,
        answers=(Answer(status=200, description="How many match, or were replayed",
                        type=dead_letters.BulkCount),),
        problems=(*AUTH, *BODY, InvalidValue, BrokerUnavailable, StoreUnavailable),
    ),
    Operation(
        method="POST", path="/v1/dead-letters/discard", endpoint=dead_letters.bulk_discard,
        scope=Scope.OPERATE,
        summary="Discard every open dead letter a filter matches (dry run first: the count)",
        body=dead_letters.BulkBody,
        answers=(Answer(status=200, description="How many match, or were discarded",
                        type=dead_letters.BulkCount),),
        problems=(*AUTH, *BODY, InvalidValue, StoreUnavailable),
    ),
    Operation(
        method="GET", path="/v1/dead-letters/{id}", endpoint=dead_letters.get_dead_letter,
        scope=Scope.READ,
        summary="One dead letter: every failed attempt and the masked application",
        parameters=(ID,),
        answers=(Answer(status=200, description="The dead letter",
                        type=dead_letters.DeadLetterDetail),),
        problems=(*AUTH, NotFound, InvalidValue, StoreUnavailable),
    ),
    Operation(
        method="POST", path="/v1/dead-letters/{id}/replay", endpoint=dead_letters.replay,
        scope=Scope.OPERATE,
        summary="Queue it again under its own id, as it was or corrected",
        description="A correction is checked as a new submission is (422 naming every"
                    " wrong field). Body optional, at most 128 KiB.",
        parameters=(ID,),
        body=dead_letters.ReplayBody, body_required=False,
        answers=(Answer(status=202, description="Queued again",
                        type=dead_letters.Replayed),),
        problems=(*AUTH, *BODY, NotFound, NotOpen, InvalidValue, BrokerUnavailable,
                  StoreUnavailable),
    ),
    Operation(
        method="POST", path="/v1/dead-letters/{id}/discard", endpoint=dead_letters.discard,
        scope=Scope.OPERATE,
        summary="Close it without processing, with a reason",
        parameters=(ID,),
        body=dead_letters.DiscardBody,
        answers=(Answer(status=200, description="Discarded", type=dead_letters.Discarded),),
        problems=(*AUTH, *BODY, NotFound, NotOpen, InvalidValue, StoreUnavailable),
    ),
    Operation(
        method="GET", path="/v1/audit", endpoint=dead_letters.audit_trail, scope=Scope.READ,
        summary="The operators' audit trail, newest first",
        parameters=(Param(name="before", description="The seq of a previous page's last entry",
                          type=Annotated[int, msgspec.Meta(ge=0, le=dead_letters.MAX_SEQ)]),),
        answers=(Answer(status=200, description="Audit entries",
                        type=dead_letters.AuditPage),),
        problems=READ,
    ),
    Operation(
        method="GET", path="/v1/keys", endpoint=keys.list_keys, scope=Scope.ADMIN,
        summary="Every API key, oldest first: never a secret",
        answers=(Answer(status=200, description="The keys", type=keys.KeyList),),
        problems=(*AUTH, StoreUnavailable),
    ),
    Operation(
        method="POST", path="/v1/keys", endpoint=keys.create_key, scope=Scope.ADMIN,
        summary="Make an API key: its secret is in this answer only",
        description="`partner_id` binds it: its submissions must carry that partner_id."
                    " `rate_per_s` and `burst` are its own token bucket (0: no limit; a"
                    " burst defaults to one second's worth), else the service's default."
                    " Audited (`key_created`). Not idempotent: a retry makes another key;"
                    " revoke the one not used.",
        body=keys.NewKeyBody,
        answers=(Answer(status=201, description="The key and its secret", type=keys.NewKey),),
        problems=(*AUTH, *BODY, StoreUnavailable),
    ),
    Operation(
        method="POST", path="/v1/keys/{id}/revoke", endpoint=keys.revoke_key, scope=Scope.ADMIN,
        summary="Revoke an API key: refused everywhere within seconds, audited",
        description="Idempotent: a key revoked before answers as it is, its first"
                    " revocation kept (and audited once).",
        parameters=(Param(name="id", type=str, where="path", required=True,
                          description="The key id"),),
        answers=(Answer(status=200, description="The key, revoked", type=keys.KeyView),),
        problems=(*AUTH, NotFound, StoreUnavailable),
    ),
    Operation(
        method="GET", path="/v1/metrics/summary", endpoint=metrics.summary, scope=Scope.READ,
        summary="Rates, error rate, latency percentiles, queue depth, counts by status",
        parameters=(Param(name="window_s", default=10, description="Seconds the rates span",
                          type=Annotated[int, msgspec.Meta(ge=1, le=metrics.MAX_WINDOW_S)]),),
        answers=(Answer(status=200, description="The summary", type=Summary),),
        problems=(*AUTH, SchemaInvalid, MetricsUnavailable, StoreUnavailable),
    ),
    Operation(
        method="GET", path="/v1/metrics/series", endpoint=metrics.series, scope=Scope.READ,
        summary="The dashboard's charts: a point per second (up to 1 h) or per minute",
        description="`range` 5m and 1h answer a point per second, 24h and 7d one per minute"
                    " (`step_s` says which; a minute's rates are per second, its"
                    " percentiles those of its merged histograms). `seconds` (per second,"
                    f" default {metrics.DEFAULT_SERIES_S}) or `range`, not both. A per-minute"
                    " answer's `final_through` is the newest `t` up to which every point is"
                    " final; a later one may still change until its minute is rolled up"
                    f" ({ROLL_UP_DELAY_S} s after it ends). Pass it back as `after` to get"
                    " only what is new or may have changed since.",
        parameters=(
            Param(name="seconds", default=metrics.DEFAULT_SERIES_S,
                  description="Seconds of per-second points",
                  type=Annotated[int, msgspec.Meta(ge=1, le=metrics.MAX_SERIES_S)]),
            Param(name="range", type=Literal["5m", "1h", "24h", "7d"],
                  description="A span of the dashboard's ranges"),
            Param(name="after", type=Annotated[int, msgspec.Meta(ge=0, le=metrics.MAX_AFTER_S)],
                  description="With range 24h or 7d only: just the points after this `t`"
                              " (Unix seconds), e.g. the last answer's `final_through`"),
        ),
        answers=(Answer(status=200, description="The series", type=Series),),
        problems=(*AUTH, SchemaInvalid, MetricsUnavailable, StoreUnavailable),
    ),
    Operation(
        method="GET", path="/v1/alerts", endpoint=metrics.alerts, scope=Scope.READ,
        summary="The conditions of the shipped alerting rules that hold now",
        answers=(Answer(status=200, description="Firing alerts, critical first",
                        type=metrics.AlertList),),
        problems=(*AUTH, StoreUnavailable),
    ),
    Operation(
        method="GET", path="/metrics", endpoint=metrics.prometheus, scope=None,
        summary="Prometheus text exposition",
        description="Answers while a backend is down (its `loanflow_backend_up` is 0).",
        answers=(Answer(status=200, description="Metrics", media_type="text/plain"),),
    ),
    Operation(
        method="GET", path="/healthz", endpoint=health.healthz, scope=None,
        summary="Liveness: the process answers",
        answers=(Answer(status=200, description="Alive", type=health.Alive),),
    ),
    Operation(
        method="GET", path="/readyz", endpoint=health.readyz, scope=None,
        summary="Readiness to accept: the broker reachable and keeping what it acknowledges",
        description="Ready while the broker answers: intake needs nothing else, so route"
                    " on it. The body's `checks` say whether the broker and the store"
                    " answer, `processing` is `degraded` while the store does not (accepted"
                    " work waits in the broker), `durability` says what a 202 rests on.",
        answers=(Answer(status=200, description="Ready", type=health.Readiness),
                 Answer(status=503, description="Not ready", type=health.Readiness)),
    ),
)


def routes() -> list[Route]:
    """The table's routes, in its order (a fixed path before a `{id}` beside it)."""
    return [Route(op.path, op.endpoint, methods=[op.method]) for op in OPERATIONS]
