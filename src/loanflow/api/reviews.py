"""The business review queue over HTTP: `GET /v1/reviews`, `POST /v1/applications/{id}/review`.

An application the processor routed to manual_review waits in the queue, oldest first,
for an operator's decision: approve or decline, with a reason. A decision is final and
audited. It is idempotent like a submission, and like a submission's key it belongs to
its caller: the same operator sending the same decision and reason again is answered
the recorded decision (200, `Idempotent-Replayed: true`); anything else after it, 409
with the recorded decision in the problem's `review`.
"""

from __future__ import annotations

import json
import time
from typing import Annotated, Any, Literal

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from loanflow.api import params, search
from loanflow.api.applications import ReviewView, read_body, review_view, runtime_of
from loanflow.api.schema import FORBIDDEN_CHARS_MESSAGE, has_forbidden_chars
from loanflow.apikeys import Scope
from loanflow.errors import (
    AlreadyDecided,
    FieldError,
    MalformedRequest,
    NotFound,
    NotInReviewQueue,
    SchemaInvalid,
)
from loanflow.metrics import names
from loanflow.metrics.events import make_event
from loanflow.models import format_ts
from loanflow.store import search as store_search
from loanflow.store.review_queue import Outcome, ReviewDecision, ReviewItem

#: The longest reason an operator may give.
MAX_REASON = 1000
#: A review body: a decision and a reason, with room for escapes.
MAX_BODY = 16 * 1024
PARAMETERS = frozenset({"limit", "cursor"})
DECISIONS: tuple[str, ...] = ("approve", "decline")

_encode = msgspec.json.Encoder().encode


class ReviewBody(msgspec.Struct, forbid_unknown_fields=True):
    """The decision, and why: not blank, without control, bidi or zero-width characters."""

    decision: Literal["approve", "decline"]
    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_REASON)]


class RouteReasonView(msgspec.Struct):
    """Why the processor routed it to manual_review: a stable code and a message."""

    code: str
    message: str


class ReviewQueueItem(search.SearchItem, kw_only=True):
    """An application awaiting a decision: its search item and the route's reasons."""

    route_reasons: list[RouteReasonView]


class ReviewQueuePage(msgspec.Struct, kw_only=True):
    """A page of open reviews, oldest first, and the cursor of the next (null at the end)."""

    items: list[ReviewQueueItem]
    next_cursor: str | None


class ReviewDecided(msgspec.Struct, kw_only=True):
    """The decision recorded (or recorded before, by the same caller with the same body)."""

    id: str
    review: ReviewView


def _item(item: ReviewItem) -> ReviewQueueItem:
    return ReviewQueueItem(
        **msgspec.structs.asdict(search.item(item.summary)),
        route_reasons=[RouteReasonView(r.code, r.message) for r in item.route_reasons],
    )


async def list_reviews(request: Request) -> Response:
    await request.app.state.auth.require(request, Scope.READ)
    query = request.query_params
    params.only_params(request, PARAMETERS)
    limit = params.int_param(request, "limit", default=search.DEFAULT_PAGE, minimum=1,
                             maximum=search.MAX_PAGE)
    cursor = query.get("cursor") or None
    if cursor is not None:
        try:
            store_search.decode_cursor(cursor)
        except ValueError as exc:
            raise _invalid("cursor", str(exc)) from None
    found, next_cursor = await runtime_of(request).store.list_reviews(limit=limit,
                                                                      cursor=cursor)
    body = ReviewQueuePage(items=[_item(i) for i in found], next_cursor=next_cursor)
    return Response(_encode(body), media_type="application/json")


async def decide(request: Request) -> Response:
    key = await request.app.state.auth.require(request, Scope.OPERATE)
    body = decode_review(await read_body(request, MAX_BODY))
    rt = runtime_of(request)
    application_id = request.path_params["id"]
    made = ReviewDecision(decision=body.decision, reason=body.reason, reviewed_by=key.id,
                          reviewed_at_ns=time.time_ns())
    detail = {"before": "open", "decision": made.decision, "reason": made.reason}
    outcome, held = await rt.store.decide(application_id, made, detail=detail)
    if outcome is Outcome.NOT_STORED:
        pending = await rt.broker.pending_state(application_id)
        if pending is not None:
            raise NotInReviewQueue(f"application {application_id} is {pending[0]}, not yet"
                                   " routed")
        # Stored and acked between the two reads (the ack follows the store's commit):
        # then it is in the store now, if anywhere.
        outcome, held = await rt.store.decide(application_id, made, detail=detail)
    if outcome is Outcome.NOT_STORED:
        raise NotFound(f"no application with id {application_id!r}")
    if outcome is Outcome.NOT_IN_QUEUE:
        raise NotInReviewQueue(f"application {application_id} was not routed to manual_review")
    assert held is not None
    view = review_view("manual_review", held)
    assert view is not None
    answer = _encode(ReviewDecided(id=application_id, review=view))
    if outcome is Outcome.RECORDED:
        rt.metrics.publisher.publish(make_event(
            names.EVENT_OPERATOR_ACTION, application_id=application_id, code=made.decision,
            message=f"review: {made.decision} by {key.id}",
        ))
        return Response(answer, media_type="application/json")
    if (held.decision, held.reason, held.reviewed_by) == (
            made.decision, made.reason, made.reviewed_by):
        return Response(answer, media_type="application/json",
                        headers={"Idempotent-Replayed": "true"})
    raise AlreadyDecided(
        f"application {application_id} was decided ({held.decision}) by {held.reviewed_by}"
        " at " + format_ts(held.reviewed_at_ns) + "; a decision is final",
        review=view,
    )


def decode_review(body: bytes) -> ReviewBody:
    """The body as a ReviewBody, or 400 (not JSON) or 422 naming every wrong field."""
    if not body.strip():
        raise MalformedRequest("expected a JSON body")
    try:
        # The standard parser, for its hooks: a key given twice (msgspec keeps the last,
        # another reader the first) and NaN or Infinity are refused. The body is small.
        raw = json.loads(body, object_pairs_hook=_unique_keys, parse_constant=_not_json)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError
        raise MalformedRequest(f"body is not valid JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise _invalid("$", "expected an object")
    errors = [FieldError(str(name), "unknown field") for name in raw
              if name not in ReviewBody.__struct_fields__]
    if "decision" not in raw:
        errors.append(FieldError("decision", "required"))
    elif not isinstance(raw["decision"], str) or raw["decision"] not in DECISIONS:
        errors.append(FieldError("decision", "expected one of 'approve', 'decline'"))
    reason = raw.get("reason")
    if "reason" not in raw:
        errors.append(FieldError("reason", "required"))
    elif not isinstance(reason, str):
        errors.append(FieldError("reason", "expected a string"))
    elif not reason.strip():
        errors.append(FieldError("reason", "expected a reason, not blank"))
    elif len(reason) > MAX_REASON:
        errors.append(FieldError("reason", f"expected at most {MAX_REASON} characters"))
    elif has_forbidden_chars(reason):
        errors.append(FieldError("reason", FORBIDDEN_CHARS_MESSAGE))
    if errors:
        raise SchemaInvalid(errors)
    return msgspec.convert(raw, ReviewBody)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found = dict(pairs)
    if len(found) != len(pairs):
        raise MalformedRequest("a key is given twice in a JSON object")
    return found


def _not_json(constant: str) -> None:
    raise MalformedRequest(f"body is not valid JSON: {constant} is not a JSON value")


def _invalid(field: str, message: str) -> SchemaInvalid:
    return SchemaInvalid([FieldError(field, message)])
