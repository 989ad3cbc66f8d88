"""`GET /v1/applications`: find stored applications by filter, newest first, in pages.

Lists what the store holds (stored, rejected, dead-lettered, replayed, discarded);
an application still in the broker (queued, processing) is found by its id only.
Every value is checked before it reaches the store: a parameter that is unknown,
repeated or out of range is answered 422 naming it, never an empty page.
"""

from __future__ import annotations

from typing import Literal, get_args

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from loanflow.api import params
from loanflow.api.applications import runtime_of
from loanflow.apikeys import Scope
from loanflow.domain.route import Route
from loanflow.errors import FieldError, SchemaInvalid
from loanflow.models import Channel, Moment, Status, format_ts
from loanflow.store import search
from loanflow.store.search import ApplicationFilter, ApplicationSummary, Review

DEFAULT_PAGE = 50
MAX_PAGE = 500
#: The longest partner or external id a submission may carry (models.Application).
MAX_ID_TEXT = 100
#: Statuses a stored row can have; queued and processing live in the broker.
STORED_STATUSES = tuple(s.value for s in Status if s not in (Status.QUEUED, Status.PROCESSING))
ROUTES: tuple[str, ...] = get_args(Route)
CHANNELS: tuple[str, ...] = get_args(Channel)
REVIEWS = tuple(r.value for r in Review)
PARAMETERS = frozenset({"status", "route", "channel", "partner_id", "external_id", "review",
                        "since", "until", "limit", "cursor"})

_encode = msgspec.json.Encoder().encode


def _invalid(field: str, message: str) -> SchemaInvalid:
    return SchemaInvalid([FieldError(field, message)])


def _choice(request: Request, name: str, allowed: tuple[str, ...]) -> str | None:
    value = request.query_params.get(name)
    if not value:
        return None
    if value not in allowed:
        raise _invalid(name, f"expected one of {', '.join(allowed)}")
    return value


def _id_text(request: Request, name: str) -> str | None:
    value = params.text_param(request, name)
    if value is not None and len(value) > MAX_ID_TEXT:
        raise _invalid(name, f"expected at most {MAX_ID_TEXT} characters")
    return value


def filter_of(request: Request, allowed: frozenset[str] = PARAMETERS) -> ApplicationFilter:
    """The search's filter from the query, every value checked (422 naming a wrong one);
    a parameter not in `allowed`, or given twice, is refused too."""
    params.only_params(request, allowed)
    review = _choice(request, "review", REVIEWS)
    since_ns = params.time_param(request, "since")
    until_ns = params.time_param(request, "until")
    if since_ns is not None and until_ns is not None and until_ns <= since_ns:
        raise _invalid("until", "expected a time after since")
    return ApplicationFilter(
        status=_choice(request, "status", STORED_STATUSES),
        route=_choice(request, "route", ROUTES),
        channel=_choice(request, "channel", CHANNELS),
        partner_id=_id_text(request, "partner_id"),
        external_id=_id_text(request, "external_id"),
        review=Review(review) if review else None,
        since_ns=since_ns,
        until_ns=until_ns,
    )


def _cursor(request: Request) -> str | None:
    cursor = request.query_params.get("cursor")
    if not cursor:
        return None
    try:
        search.decode_cursor(cursor)
    except ValueError as exc:
        raise _invalid("cursor", str(exc)) from None
    return cursor


class SearchItem(msgspec.Struct, kw_only=True):
    """One stored application as a list shows it: the single view's fields without the
    application, the enrichment's figures and the decision trace. `review`: open (routed
    to manual_review, no decision yet) or decided."""

    id: str
    status: Literal["stored", "rejected", "dead_lettered", "replayed", "discarded"]
    route: Route | None
    channel: Channel
    partner_id: str | None
    external_id: str | None
    received_at: Moment
    processed_at: Moment
    score: int | None
    risk_tier: str | None
    flags: list[str]
    review: Literal["open", "decided"] | None
    review_decision: Literal["approve", "decline"] | None
    reviewed_at: Moment | None


class SearchPage(msgspec.Struct, kw_only=True):
    """A page, newest first, and the cursor of the next (null at the end)."""

    items: list[SearchItem]
    next_cursor: str | None


def item(summary: ApplicationSummary) -> SearchItem:
    """One application as the list shows it."""
    review: Literal["open", "decided"] | None
    if summary.review_decision is not None:
        review = "decided"
    elif summary.route == "manual_review":
        review = "open"
    else:
        review = None
    return SearchItem(
        id=summary.id,
        status=summary.status,  # type: ignore[arg-type]  # the store's own statuses
        route=summary.route,  # type: ignore[arg-type]
        channel=summary.channel,  # type: ignore[arg-type]
        partner_id=summary.partner_id,
        external_id=summary.external_id,
        received_at=format_ts(summary.received_at_ns),
        processed_at=format_ts(summary.processed_at_ns),
        score=summary.score,
        risk_tier=summary.risk_tier,
        flags=list(summary.flags),
        review=review,
        review_decision=summary.review_decision,  # type: ignore[arg-type]
        reviewed_at=(format_ts(summary.reviewed_at_ns)
                     if summary.reviewed_at_ns is not None else None),
    )


async def list_applications(request: Request) -> Response:
    await request.app.state.auth.require(request, Scope.READ)
    where = filter_of(request)
    limit = params.int_param(request, "limit", default=DEFAULT_PAGE, minimum=1,
                             maximum=MAX_PAGE)
    found, next_cursor = await runtime_of(request).store.search_applications(
        where, limit=limit, cursor=_cursor(request)
    )
    body = SearchPage(items=[item(s) for s in found], next_cursor=next_cursor)
    return Response(_encode(body), media_type="application/json")
