"""Manual review over HTTP: `/v1/dead-letters…` and the audit trail `/v1/audit`."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from loanflow.api import params
from loanflow.api.applications import read_body, runtime_of
from loanflow.api.components import ref
from loanflow.api.schema import decode_application
from loanflow.apikeys import Scope
from loanflow.errors import FieldError, MalformedRequest, SchemaInvalid
from loanflow.metrics import names
from loanflow.metrics.events import make_event
from loanflow.models import Application, Moment, format_ts
from loanflow.review.dead_letters import ManualReview
from loanflow.store.review import DeadLetter, DeadLetterFilter

MAX_PAGE = 500
#: Audit sequence numbers are 64-bit in both stores.
MAX_SEQ = 2**63 - 1
#: Review bodies carry at most one corrected application.
MAX_REVIEW_BODY = 128 * 1024

_encode = msgspec.json.Encoder().encode


class ReplayBody(msgspec.Struct, forbid_unknown_fields=True):
    """Optional: the corrected application (absent or null: replay it as it was)."""

    #: Kept raw: a correction is decoded and checked exactly like a new submission.
    application: Annotated[msgspec.Raw, ref("Application", nullable=True)] = msgspec.field(
        default_factory=msgspec.Raw)


class DiscardBody(msgspec.Struct, forbid_unknown_fields=True):
    reason: str


class FilterBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    error_code: str | None = None
    channel: str | None = None
    partner_id: str | None = None
    external_id: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None


class BulkBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    filter: FilterBody = msgspec.field(default_factory=FilterBody)
    dry_run: bool = True
    reason: str = ""


LetterStatus = Literal["open", "replayed", "discarded"]


class _LetterView(msgspec.Struct, kw_only=True):
    id: str
    status: LetterStatus
    channel: str
    partner_id: str | None
    external_id: str | None
    received_at: Moment
    dead_lettered_at: Moment
    #: Of the last attempt.
    error_code: str
    last_error: str
    resolved_at: Moment | None
    resolved_by: str | None
    #: A discard's reason, or how it was replayed.
    resolution: str | None


class DeadLetterSummary(_LetterView, kw_only=True):
    """A dead letter as the list shows it: `attempts` is how many failed."""

    attempts: int


class AttemptView(msgspec.Struct, kw_only=True):
    """One failed processing attempt."""

    attempt: int
    at: Moment
    error_code: str
    message: str


class DeadLetterDetail(_LetterView, kw_only=True):
    """A dead letter with every failed attempt and its application, masked (null when it
    cannot be opened: perhaps the very reason it failed)."""

    attempts: list[AttemptView]
    application: Annotated[dict[str, Any] | None, ref("MaskedApplication", nullable=True)]


class DeadLetterPage(msgspec.Struct, kw_only=True):
    """A page of dead letters, newest first, and the cursor of the next (null at the end)."""

    items: list[DeadLetterSummary]
    next_cursor: str | None


class Replayed(msgspec.Struct, kw_only=True):
    """Queued again under its own id; `corrected` when with a corrected application."""

    id: str
    status: Literal["replayed"]
    corrected: bool


class Discarded(msgspec.Struct, kw_only=True):
    """Closed without processing."""

    id: str
    status: Literal["discarded"]


class BulkCount(msgspec.Struct, kw_only=True):
    """How many open dead letters match (`dry_run`), or were acted on."""

    action: Literal["replay", "discard"]
    dry_run: bool
    count: int


class AuditEntryView(msgspec.Struct, kw_only=True):
    """One operator action: who did what to which target, with its details (before and
    after, reason, a correction masked)."""

    seq: int
    at: Moment
    actor: str
    action: str
    target: str
    detail: dict[str, Any]


class AuditPage(msgspec.Struct, kw_only=True):
    """Up to 500 entries, newest first; pass the last one's seq as `before` for more."""

    items: list[AuditEntryView]


def _announce(request: Request, letter: DeadLetter, code: str, message: str) -> None:
    """An operator action, for the live log of every dashboard."""
    runtime_of(request).metrics.publisher.publish(make_event(
        names.EVENT_OPERATOR_ACTION, application_id=letter.id, code=code, message=message,
        channel=letter.channel,
    ))


def _json(body: msgspec.Struct, status: int = 200) -> Response:
    return Response(_encode(body), status, media_type="application/json")


def _review(request: Request) -> ManualReview:
    rt = runtime_of(request)
    return ManualReview(store=rt.store, broker=rt.broker, cipher=rt.cipher)


def _letter_fields(letter: DeadLetter) -> dict[str, Any]:
    return {
        "id": letter.id,
        "status": letter.status,
        "channel": letter.channel,
        "partner_id": letter.partner_id,
        "external_id": letter.external_id,
        "received_at": format_ts(letter.received_at_ns),
        "dead_lettered_at": format_ts(letter.dead_lettered_at_ns),
        "error_code": letter.error_code,
        "last_error": letter.last_error,
        "resolved_at": format_ts(letter.resolved_at_ns) if letter.resolved_at_ns else None,
        "resolved_by": letter.resolved_by,
        "resolution": letter.resolution,
    }


def summary(letter: DeadLetter) -> DeadLetterSummary:
    return DeadLetterSummary(**_letter_fields(letter), attempts=len(letter.attempts))


def _filter_from_query(request: Request) -> DeadLetterFilter:
    status = request.query_params.get("status") or "open"
    return DeadLetterFilter(
        status=None if status == "any" else params.text_value(status, "status"),
        error_code=params.text_param(request, "error_code"),
        channel=params.text_param(request, "channel"),
        partner_id=params.text_param(request, "partner_id"),
        external_id=params.text_param(request, "external_id"),
        id=params.text_param(request, "id"),
        since_ns=params.time_param(request, "since"),
        until_ns=params.time_param(request, "until"),
    )


async def list_dead_letters(request: Request) -> Response:
    rt = runtime_of(request)
    await request.app.state.auth.require(request, Scope.READ)
    where = _filter_from_query(request)
    limit = params.int_param(request, "limit", default=50, minimum=1, maximum=MAX_PAGE)
    search = params.text_param(request, "q")
    if search:
        # One box finds an application id or the submitter's own reference.
        where = msgspec.structs.replace(where, id=search)
        if not await rt.store.count_dead_letters(where):
            where = msgspec.structs.replace(where, id=None, external_id=search)
    try:
        letters, cursor = await rt.store.list_dead_letters(
            where, limit=limit, cursor=request.query_params.get("cursor") or None
        )
    except ValueError as exc:
        raise SchemaInvalid([FieldError("cursor", str(exc))]) from None
    return _json(DeadLetterPage(items=[summary(d) for d in letters], next_cursor=cursor))


async def get_dead_letter(request: Request) -> Response:
    await request.app.state.auth.require(request, Scope.READ)
    review = _review(request)
    letter = await review.open_letter(request.path_params["id"])
    return _json(DeadLetterDetail(
        **_letter_fields(letter),
        attempts=[AttemptView(attempt=a.attempt, at=format_ts(a.at_ns),
                              error_code=a.error_code, message=a.message)
                  for a in letter.attempts],
        application=review.masked_application(letter),
    ))


async def replay(request: Request) -> Response:
    key = await request.app.state.auth.require(request, Scope.OPERATE)
    body = await _decode(request, ReplayBody, allow_empty=True)
    corrected: Application | None = None
    if body is not None and bytes(body.application) not in (b"", b"null"):
        corrected = decode_application(bytes(body.application))
    letter = await _review(request).replay(
        request.path_params["id"], actor=key.id, corrected=corrected
    )
    _announce(request, letter, "replay", f"replayed by {key.id}"
              + (" with a correction" if corrected else ""))
    return _json(Replayed(id=letter.id, status="replayed", corrected=corrected is not None), 202)


async def discard(request: Request) -> Response:
    key = await request.app.state.auth.require(request, Scope.OPERATE)
    body = await _decode(request, DiscardBody)
    assert body is not None
    reason = params.text_value(body.reason, "reason") or ""
    letter = await _review(request).discard(request.path_params["id"], actor=key.id, reason=reason)
    _announce(request, letter, "discard", f"discarded by {key.id}: {reason}")
    return _json(Discarded(id=letter.id, status="discarded"))


async def bulk_replay(request: Request) -> Response:
    return await _bulk(request, "replay")


async def bulk_discard(request: Request) -> Response:
    return await _bulk(request, "discard")


async def _bulk(request: Request, action: Literal["replay", "discard"]) -> Response:
    key = await request.app.state.auth.require(request, Scope.OPERATE)
    body = await _decode(request, BulkBody)
    assert body is not None
    f = body.filter
    where = DeadLetterFilter(
        error_code=params.text_value(f.error_code, "filter.error_code"),
        channel=params.text_value(f.channel, "filter.channel"),
        partner_id=params.text_value(f.partner_id, "filter.partner_id"),
        external_id=params.text_value(f.external_id, "filter.external_id"),
        # A time without a zone is UTC, as in the list's query (not the server's zone).
        since_ns=params.moment_ns(f.since, "filter.since") if f.since else None,
        until_ns=params.moment_ns(f.until, "filter.until") if f.until else None,
    )
    reason = params.text_value(body.reason, "reason") or ""
    count = await _review(request).bulk(
        where, action=action, actor=key.id, reason=reason, dry_run=body.dry_run
    )
    return _json(BulkCount(action=action, dry_run=body.dry_run, count=count))


async def audit_trail(request: Request) -> Response:
    rt = runtime_of(request)
    await request.app.state.auth.require(request, Scope.READ)
    before = params.int_param(request, "before", default=None, minimum=0, maximum=MAX_SEQ)
    entries = await rt.store.audit_trail(limit=MAX_PAGE, before_seq=before)
    return _json(AuditPage(items=[
        AuditEntryView(seq=e.seq, at=format_ts(e.at_ns), actor=e.actor, action=e.action,
                       target=e.target, detail=e.detail)
        for e in entries
    ]))


async def _decode(
    request: Request, kind: type[msgspec.Struct], *, allow_empty: bool = False
) -> Any:
    body = await read_body(request, MAX_REVIEW_BODY)
    if not body.strip():
        if allow_empty:
            return None
        raise MalformedRequest("expected a JSON body")
    try:
        return msgspec.json.decode(body, type=kind)
    except msgspec.ValidationError as exc:
        raise SchemaInvalid([FieldError("$", str(exc))]) from None
    except msgspec.DecodeError as exc:
        raise MalformedRequest(f"body is not valid JSON: {exc}") from None
    except UnicodeDecodeError:
        raise MalformedRequest("body is not valid UTF-8") from None
    except RecursionError:
        raise MalformedRequest("body is nested too deeply") from None
