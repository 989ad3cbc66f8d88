"""`GET /v1/applications/{id}/timeline`: what happened to one application, oldest first.

Built from what the stores keep, nothing recorded for it: the application's row (when
received, when processed and how, the review decision), its dead letter (the failed
attempts and when it was dead-lettered) and the audit trail (replays, discards). Kinds:

    received        received_at                      channel, partner, external id
    attempt_failed  each failed attempt              attempt, error_code, message
    dead_lettered   moved to the dead letters        error_code, message, attempts
    replayed        an operator replayed it          by, corrected, last_error
    discarded       an operator discarded it         by, reason, last_error
    stored          processed, assessed              status, route, score, tier, flags, reasons
    rejected        processed, rules broken          status, reasons (code, message)
    review_decided  the business review's decision   decision, reason, reviewed_by

Where the record is thin, so is the timeline: a failed attempt is kept only on the dead
letter (and in the stored document where a processor writes it there), so the attempts
of an application that failed and then succeeded without a dead letter are not shown;
a dead letter replayed and dead-lettered again keeps only its latest attempts (the audit
trail still shows each replay).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from loanflow.api.applications import runtime_of
from loanflow.api.components import array_of
from loanflow.apikeys import Scope
from loanflow.errors import NotFound
from loanflow.models import AttemptRecord, Moment, Status, format_ts
from loanflow.store.base import ApplicationRecord
from loanflow.store.review import AuditEntry, DeadLetter

#: Audit entries read for one application: a handful in practice (each replay, discard
#: and decision); a bound all the same.
MAX_AUDIT = 1000
#: Events of the same instant in the order they happen.
_RANK = {"received": 0, "attempt_failed": 1, "dead_lettered": 2, "replayed": 3,
         "discarded": 3, "stored": 4, "rejected": 4, "review_decided": 5}
KINDS = tuple(_RANK)

_encode = msgspec.json.Encoder().encode
_decode_attempts = msgspec.json.Decoder(tuple[AttemptRecord, ...]).decode

Kind = Literal["received", "attempt_failed", "dead_lettered", "replayed", "discarded",
               "stored", "rejected", "review_decided"]


class TimelineEvent(msgspec.Struct, kw_only=True):
    """One event. `detail` holds its figures, by kind: received (channel, partner_id,
    external_id), attempt_failed (attempt, error_code, message), dead_lettered
    (error_code, message, attempts), replayed (by, corrected, last_error), discarded (by,
    reason, last_error), stored (status, route, score, risk_tier, flags, reasons),
    rejected (status, reasons), review_decided (decision, reason, reviewed_by); reasons
    are [{code, message}]."""

    at: Moment
    kind: Kind
    #: One line for a person.
    summary: str
    detail: dict[str, Any]


class Timeline(msgspec.Struct, kw_only=True):
    """What happened to one application, oldest first, and its decision trace (the
    single view's enrichment.trace; null when not assessed)."""

    id: str
    events: list[TimelineEvent]
    trace: Annotated[list[Any] | None, array_of("TraceEntry", nullable=True)]


class _Event(msgspec.Struct, frozen=True):
    at_ns: int
    kind: Kind
    summary: str
    detail: dict[str, Any]

    def view(self) -> TimelineEvent:
        return TimelineEvent(at=format_ts(self.at_ns), kind=self.kind, summary=self.summary,
                             detail=self.detail)


async def get_timeline(request: Request) -> Response:
    await request.app.state.auth.require(request, Scope.READ)
    rt = runtime_of(request)
    application_id = request.path_params["id"]
    record = await rt.store.get_application(application_id)
    letter = await rt.store.get_dead_letter(application_id)
    if record is not None:
        received_at_ns = record.received_at_ns
    elif letter is not None:
        received_at_ns = letter.received_at_ns  # a dead letter without its row
    else:
        pending = await rt.broker.pending_state(application_id)
        if pending is not None:
            received_at_ns = pending[1]  # queued or processing: only received so far
        else:
            # Stored and acked between the reads (the ack follows the store's commit),
            # or no such application.
            record = await rt.store.get_application(application_id)
            if record is None:
                raise NotFound(f"no application with id {application_id!r}")
            received_at_ns = record.received_at_ns
    audit = await rt.store.audit_of(application_id, limit=MAX_AUDIT)
    view = document_view(record) if record is not None else None
    body = Timeline(
        id=application_id,
        events=[e.view() for e in events(record, view, letter, audit, received_at_ns)],
        trace=trace_of(view),
    )
    return Response(_encode(body), media_type="application/json")


def document_view(record: ApplicationRecord) -> dict[str, Any]:
    """The parts of a stored document the events read, named as the single view names
    them: enrichment, rejection_reasons, attempts."""
    document: dict[str, Any] = msgspec.json.decode(record.document)
    assessment = document.get("assessment") or {}
    return {"enrichment": assessment.get("enrichment"),
            "rejection_reasons": assessment.get("violations", []),
            "attempts": document.get("attempts", [])}


def trace_of(view: dict[str, Any] | None) -> list[Any] | None:
    """The decision trace as the single view shows it (its `enrichment.trace`); None for
    an application without an enrichment (rejected, dead-lettered, not processed yet)."""
    enrichment = view.get("enrichment") if view is not None else None
    if not isinstance(enrichment, dict):
        return None
    trace = enrichment.get("trace")
    return trace if isinstance(trace, list) else None


def events(
    record: ApplicationRecord | None, view: dict[str, Any] | None, letter: DeadLetter | None,
    audit: list[AuditEntry], received_at_ns: int,
) -> list[_Event]:
    """Every event the records show, oldest first."""
    found = [_received(record, letter, received_at_ns)]
    found += _attempts(view, letter)
    if letter is not None:
        found.append(_Event(letter.dead_lettered_at_ns, "dead_lettered",
                            f"Dead-lettered after {len(letter.attempts)} failed attempt(s):"
                            f" {letter.error_code}",
                            {"error_code": letter.error_code, "message": letter.last_error,
                             "attempts": len(letter.attempts)}))
    found += [e for e in map(_audited, audit) if e is not None]
    if record is not None and view is not None:
        found += _outcome(record, view)
    return sorted(found, key=lambda e: (e.at_ns, _RANK[e.kind]))


def _received(
    record: ApplicationRecord | None, letter: DeadLetter | None, received_at_ns: int
) -> _Event:
    source = record if record is not None else letter
    detail: dict[str, Any] = {"channel": None, "partner_id": None, "external_id": None}
    summary = "Received"
    if source is not None:
        detail = {"channel": source.channel, "partner_id": source.partner_id,
                  "external_id": source.external_id}
        summary = f"Received via {source.channel}"
    return _Event(received_at_ns, "received", summary, detail)


def _attempts(view: dict[str, Any] | None, letter: DeadLetter | None) -> list[_Event]:
    """The failed attempts the dead letter keeps, and any the stored document keeps."""
    kept: dict[tuple[int, int], AttemptRecord] = {}
    if view is not None and view.get("attempts"):
        try:
            for a in _decode_attempts(msgspec.json.encode(view["attempts"])):
                kept[a.attempt, a.at_ns] = a
        except msgspec.ValidationError:
            pass  # not a list of attempts this version wrote: the dead letter's still show
    for a in letter.attempts if letter is not None else ():
        kept[a.attempt, a.at_ns] = a
    return [_Event(a.at_ns, "attempt_failed", f"Attempt {a.attempt} failed: {a.error_code}",
                   {"attempt": a.attempt, "error_code": a.error_code, "message": a.message})
            for a in kept.values()]


def _audited(entry: AuditEntry) -> _Event | None:
    detail = entry.detail
    if entry.action == "replay":
        corrected = bool(detail.get("corrected"))
        return _Event(entry.at_ns, "replayed",
                      f"Replayed by {entry.actor}" + (" with a correction" if corrected else ""),
                      {"by": entry.actor, "corrected": corrected,
                       "last_error": detail.get("last_error")})
    if entry.action == "discard":
        reason = detail.get("reason")
        return _Event(entry.at_ns, "discarded", f"Discarded by {entry.actor}: {reason}",
                      {"by": entry.actor, "reason": reason,
                       "last_error": detail.get("last_error")})
    # A review decision is read from the application's own columns (_outcome); other
    # actions do not change an application.
    return None


def _outcome(record: ApplicationRecord, view: dict[str, Any]) -> list[_Event]:
    """Processed (stored or rejected), and the business review's decision."""
    found: list[_Event] = []
    if record.status == Status.STORED:
        enrichment = view.get("enrichment") or {}
        reasons = _reasons(enrichment.get("route_reasons"))
        tier, score = enrichment.get("risk_tier"), enrichment.get("score")
        found.append(_Event(record.processed_at_ns, "stored",
                            f"Stored: route {record.route}, risk tier {tier} (score {score})",
                            {"status": record.status, "route": record.route, "score": score,
                             "risk_tier": tier, "flags": enrichment.get("flags") or [],
                             "reasons": reasons}))
    elif record.status == Status.REJECTED:
        reasons = _reasons(view.get("rejection_reasons"))
        codes = ", ".join(r["code"] for r in reasons)
        found.append(_Event(record.processed_at_ns, "rejected",
                            f"Rejected: {len(reasons)} rule(s) broken ({codes})",
                            {"status": record.status, "reasons": reasons}))
    decision = record.review
    if decision is not None:
        found.append(_Event(decision.reviewed_at_ns, "review_decided",
                            f"Review: {decision.decision} by {decision.reviewed_by}",
                            {"decision": decision.decision, "reason": decision.reason,
                             "reviewed_by": decision.reviewed_by}))
    return found


def _reasons(listed: Any) -> list[dict[str, Any]]:
    """`[{code, message}]` of a document's route reasons or rule violations."""
    if not isinstance(listed, list):
        return []
    return [{"code": r.get("code"), "message": r.get("message")}
            for r in listed if isinstance(r, dict)]
