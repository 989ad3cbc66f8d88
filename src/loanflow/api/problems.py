"""RFC 9457 problem+json answers, and the handlers that map our errors to them."""

from __future__ import annotations

import logging

import msgspec
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from loanflow.api.applications import ReviewView
from loanflow.errors import (
    AlreadyDecided,
    IdempotencyConflict,
    LoanflowError,
    RateLimited,
    RequestError,
    SchemaInvalid,
    Unavailable,
)

log = logging.getLogger(__name__)
PROBLEM_JSON = "application/problem+json"
#: Problem types are relative URIs under our own server, stable across versions.
TYPE_BASE = "/problems/"

_encode = msgspec.json.Encoder().encode


class FieldProblem(msgspec.Struct, forbid_unknown_fields=True):
    """One wrong field of a request: its dotted path and what was expected."""

    field: str
    message: str


class Problem(msgspec.Struct, kw_only=True, omit_defaults=True, forbid_unknown_fields=True):
    """An RFC 9457 problem: a stable `type` (a URI under /problems/), a title, the
    status; `detail` when there is more to say, `errors` for a validation error."""

    type: str
    title: str
    status: int
    detail: str = ""
    errors: list[FieldProblem] | None = None


class ReviewConflict(Problem, kw_only=True, omit_defaults=True, forbid_unknown_fields=True):
    """A 409 of a review decision: `review` holds the decision recorded before, when
    there is one."""

    review: ReviewView | None = None


def problem(
    status: int,
    type_: str,
    title: str,
    detail: str = "",
    *,
    headers: dict[str, str] | None = None,
    errors: list[FieldProblem] | None = None,
) -> Response:
    body = Problem(type=TYPE_BASE + type_, title=title, status=status, detail=detail,
                   errors=errors)
    return answer(body, status, headers=headers)


def answer(body: Problem, status: int, *, headers: dict[str, str] | None = None) -> Response:
    return Response(_encode(body), status_code=status, headers=headers, media_type=PROBLEM_JSON)


async def on_loanflow_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, LoanflowError)
    if isinstance(exc, SchemaInvalid):
        errors = [FieldProblem(e.field, e.message) for e in exc.errors]
        return problem(exc.status, exc.type, exc.title, exc.detail, errors=errors)
    if isinstance(exc, AlreadyDecided):
        review = exc.review if isinstance(exc.review, ReviewView) else None
        return answer(ReviewConflict(type=TYPE_BASE + exc.type, title=exc.title,
                                     status=exc.status, detail=exc.detail, review=review),
                      exc.status)
    if isinstance(exc, IdempotencyConflict | RateLimited):
        return problem(exc.status, exc.type, exc.title, exc.detail,
                       headers={"Retry-After": str(exc.retry_after_s)})
    if isinstance(exc, RequestError):
        return problem(exc.status, exc.type, exc.title, exc.detail)
    if isinstance(exc, Unavailable):
        log.warning("503 on %s %s: %s", request.method, request.url.path, exc)
        return problem(exc.status, exc.type, exc.title, "retry with the same Idempotency-Key",
                       headers={"Retry-After": str(exc.retry_after_s)})
    log.error("unmapped loanflow error on %s: %r", request.url.path, exc)
    return problem(500, "internal", "Internal error")


async def on_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    slug = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "http-error")
    headers = dict(exc.headers) if exc.headers else None
    return problem(exc.status_code, slug, str(exc.detail), headers=headers)


async def on_unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    return problem(500, "internal", "Internal error", "the error was logged; retry later")
