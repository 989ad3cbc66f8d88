"""RFC 9457 problem+json answers, and the handlers that map our errors to them."""

from __future__ import annotations

import logging
from typing import Any

import msgspec
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

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


def problem(
    status: int,
    type_: str,
    title: str,
    detail: str = "",
    *,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> Response:
    body: dict[str, Any] = {"type": TYPE_BASE + type_, "title": title, "status": status}
    if detail:
        body["detail"] = detail
    body.update(extra)
    return Response(_encode(body), status_code=status, headers=headers, media_type=PROBLEM_JSON)


async def on_loanflow_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, LoanflowError)
    if isinstance(exc, SchemaInvalid):
        errors = [{"field": e.field, "message": e.message} for e in exc.errors]
        return problem(exc.status, exc.type, exc.title, exc.detail, errors=errors)
    if isinstance(exc, AlreadyDecided):
        return problem(exc.status, exc.type, exc.title, exc.detail, review=exc.review)
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
