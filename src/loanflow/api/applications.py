"""`GET /v1/applications/{id}`, and the parts of a submission the single and batch routes share."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Any, Literal

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from loanflow.api.components import array_of, ref
from loanflow.api.schema import canonical_bytes
from loanflow.apikeys import ApiKey, Scope
from loanflow.broker.base import AppendOutcome, RateLimit, Submission
from loanflow.domain.rules import Violation
from loanflow.errors import (
    FieldError,
    MalformedRequest,
    NotFound,
    PayloadTooLarge,
    QueueFull,
    RequestTimeout,
    SchemaInvalid,
)
from loanflow.metrics import names
from loanflow.models import (
    Application,
    AttemptRecord,
    Envelope,
    Moment,
    Status,
    format_ts,
    new_application_id,
)
from loanflow.pii import PiiCipher
from loanflow.process.runtime import Runtime
from loanflow.store.base import ApplicationRecord
from loanflow.store.review_queue import ReviewDecision
from loanflow.store.search import Review

_encode = msgspec.json.Encoder().encode
_encode_msgpack = msgspec.msgpack.Encoder().encode
MAX_IDEMPOTENCY_KEY = 255
#: Seconds a client has to send a whole body (a slow body holds a connection).
BODY_TIMEOUT_S = 10.0


def runtime_of(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def require_queue_room(rt: Runtime) -> None:
    if rt.queue_depth >= rt.settings.max_queue_depth:
        raise QueueFull(f"queue depth {rt.queue_depth} >= {rt.settings.max_queue_depth}")


def require_own_partner(key: ApiKey, application: Application) -> None:
    """A key bound to a partner submits for that partner only: a broker cannot pose as
    another (whose applications, commissions and limits are its own)."""
    if key.partner_id is not None and application.partner_id != key.partner_id:
        raise SchemaInvalid([FieldError(
            "partner_id", f"expected {key.partner_id!r}: this API key submits for that"
                          " partner only")])


def make_submission(
    cipher: PiiCipher, client_ip: str | None, api_key_id: str, idempotency_key: str,
    application: Application, *, rate_limit: RateLimit | None = None,
) -> Submission:
    """The sealed envelope and body fingerprint of one valid application."""
    now_ns = time.time_ns()
    envelope = Envelope(
        id=new_application_id(now_ns),
        received_at_ns=now_ns,
        api_key_id=api_key_id,
        idempotency_key=idempotency_key,
        client_ip=client_ip,
        channel=application.channel,
        partner_id=application.partner_id,
        external_id=application.external_id,
        sealed_application=cipher.seal(_encode_msgpack(application)),
    )
    return Submission(envelope, cipher.keyed_hash(canonical_bytes(application)), rate_limit)


def note_outcome(rt: Runtime, outcome: AppendOutcome, channel: str) -> None:
    if outcome is AppendOutcome.ACCEPTED:
        rt.queue_depth += 1  # until the next sample: backpressure holds between samples
        rt.wake.set()
        rt.metrics.recorder.accepted(channel)
    elif outcome is AppendOutcome.REPLAYED:
        rt.metrics.recorder.count(names.REPLAYED)


class Accepted(msgspec.Struct, forbid_unknown_fields=True):
    """The 202 of a submission. For the schema and tests only: the answer itself is built
    from pre-encoded parts (api/submit.py), the busiest route's cheapest way."""

    id: Annotated[str, msgspec.Meta(extra_json_schema={"format": "uuid"})]
    status: Literal["queued"]
    received_at: Moment


class ReviewView(msgspec.Struct, kw_only=True):
    """The business review of an application routed to manual_review: open, or decided
    (by whom, when, why)."""

    status: Literal["open", "decided"]
    decision: Literal["approve", "decline"] | None
    reason: str | None
    reviewed_by: str | None
    reviewed_at: Moment | None


def review_view(route: str | None, decision: ReviewDecision | None) -> ReviewView | None:
    """The `review` object of an application: None unless routed to review or decided."""
    if decision is None:
        if route != "manual_review":
            return None
        return ReviewView(status=Review.OPEN.value, decision=None, reason=None,
                          reviewed_by=None, reviewed_at=None)
    return ReviewView(status=Review.DECIDED.value, decision=decision.decision,  # type: ignore[arg-type]
                      reason=decision.reason, reviewed_by=decision.reviewed_by,
                      reviewed_at=format_ts(decision.reviewed_at_ns))


class PendingApplication(msgspec.Struct, kw_only=True):
    """An application the broker still holds: received, not processed yet."""

    id: str
    status: Literal["queued", "processing"]
    received_at: Moment


class ApplicationView(msgspec.Struct, kw_only=True):
    """A processed application: its masked data, the enrichment (with the decision trace)
    or the broken rules, the failed attempts before it was stored, and its review."""

    id: str
    status: Status
    channel: str
    partner_id: str | None
    external_id: str | None
    received_at: Moment
    processed_at: Moment
    latency_ms: float
    #: The stored document's parts, passed through as stored (never decoded here).
    application: Annotated[msgspec.Raw, ref("MaskedApplication", nullable=True)]
    enrichment: Annotated[msgspec.Raw, ref("Enrichment", nullable=True)]
    rejection_reasons: Annotated[msgspec.Raw, array_of("Violation")]
    attempts: Annotated[msgspec.Raw, array_of("AttemptRecord")]
    rules_version: str
    product_version: str
    review: ReviewView | None


#: The schemas the raw parts above name, for openapi.py (MaskedApplication is derived
#: from Application there).
DOCUMENT_PARTS: tuple[Any, ...] = (Violation, AttemptRecord)

_NULL = msgspec.Raw(b"null")
_NONE = msgspec.Raw(b"[]")


class _Assessment(msgspec.Struct):
    enrichment: msgspec.Raw = _NULL
    violations: msgspec.Raw = _NONE


class _Document(msgspec.Struct):
    """The parts of a stored document the single view shows, left undecoded."""

    application: msgspec.Raw = _NULL
    assessment: _Assessment | None = None
    attempts: msgspec.Raw = _NONE


_decode_document = msgspec.json.Decoder(_Document).decode


def record_view(record: ApplicationRecord) -> ApplicationView:
    """A processed application as `GET /v1/applications/{id}` shows it: the document's
    masked application, enrichment (with the decision trace) and rejection reasons."""
    document = _decode_document(record.document)
    assessment = document.assessment or _Assessment()
    return ApplicationView(
        id=record.id,
        status=Status(record.status),
        channel=record.channel,
        partner_id=record.partner_id,
        external_id=record.external_id,
        received_at=format_ts(record.received_at_ns),
        processed_at=format_ts(record.processed_at_ns),
        latency_ms=round((record.processed_at_ns - record.received_at_ns) / 1e6, 3),
        application=document.application,
        enrichment=assessment.enrichment,
        rejection_reasons=assessment.violations,
        attempts=document.attempts,
        rules_version=record.rules_version,
        product_version=record.product_version,
        review=review_view(record.route, record.review),
    )


async def get_application(request: Request) -> Response:
    rt = runtime_of(request)
    await request.app.state.auth.require(request, Scope.READ)
    application_id = request.path_params["id"]
    record = await rt.store.get_application(application_id)
    pending = None if record is not None else await rt.broker.pending_state(application_id)
    if record is None and pending is None:
        # Stored and acked between the two reads: the ack follows the store's commit,
        # so an application the broker no longer holds is in the store, if anywhere.
        record = await rt.store.get_application(application_id)
    if record is not None:
        return Response(_encode(record_view(record)), media_type="application/json")
    if pending is None:
        raise NotFound(f"no application with id {application_id!r}")
    state, received_at_ns = pending
    view = PendingApplication(id=application_id, status=state,  # type: ignore[arg-type]
                              received_at=format_ts(received_at_ns))
    return Response(_encode(view), media_type="application/json")


def valid_idempotency_key(key: str) -> bool:
    return 1 <= len(key) <= MAX_IDEMPOTENCY_KEY and key.isprintable() and key.isascii()


def refuse_declared_length(declared: str | None, limit: int) -> None:
    """400 for a Content-Length that is no number, 413 for one over `limit`."""
    if declared is None:
        return
    if not (declared.isascii() and declared.isdigit()):
        raise MalformedRequest("Content-Length is not a number")
    if int(declared) > limit:
        raise PayloadTooLarge(f"body of {declared} bytes is over the {limit}-byte limit")


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refusing more than `limit` bytes before reading them all."""
    declared = request.headers.get("content-length")
    refuse_declared_length(declared, limit)
    chunks, size = [], 0
    try:
        async with asyncio.timeout(BODY_TIMEOUT_S):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise PayloadTooLarge(f"body is over the {limit}-byte limit")
                chunks.append(chunk)
    except TimeoutError:
        raise RequestTimeout(f"the body took over {BODY_TIMEOUT_S:.0f}s to arrive") from None
    return b"".join(chunks)
