"""`POST /v1/applications` as raw ASGI, past Starlette's router and middleware.

The busiest route by far, so its cost per request is kept to what only that
request can do: the headers read in one pass, the body taken from its first
message, one decode, the seal and the fingerprint; its rate limit, key claim
and append ride with its neighbours' in one broker call (`Coalescer`); the
202 is built from pre-encoded parts. The answers are those of the rest of the
API: the request id, the security headers, and problem+json errors from the
same handlers (built through Starlette only on that rare path).
"""

from __future__ import annotations

import math
import time

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.types import Message, Receive, Scope, Send

from loanflow.api import security_headers
from loanflow.api.applications import (
    MAX_IDEMPOTENCY_KEY,
    make_submission,
    note_outcome,
    read_body,
    refuse_declared_length,
    require_own_partner,
    require_queue_room,
    valid_idempotency_key,
)
from loanflow.api.problems import on_loanflow_error, on_unexpected
from loanflow.api.request_id import HEADER as REQUEST_ID
from loanflow.api.request_id import new_request_id, sane_request_id
from loanflow.api.schema import decode_application
from loanflow.apikeys import Scope as KeyScope
from loanflow.broker.base import AppendOutcome
from loanflow.errors import (
    IdempotencyKeyReused,
    LoanflowError,
    MalformedRequest,
    RateLimited,
    UnsupportedMediaType,
)
from loanflow.logs import request_id as log_request_id
from loanflow.metrics import names
from loanflow.models import format_ts
from loanflow.process.runtime import Runtime

PATH = "/v1/applications"

_HEAD_202 = [(b"content-type", b"application/json"), *security_headers.HEADERS]
_BODY_START = b'{"id":"'
_BODY_MIDDLE = b'","status":"queued","received_at":"'
_BODY_END = b'"}'


def is_submission(scope: Scope) -> bool:
    return bool(scope["type"] == "http" and scope["method"] == "POST" and scope["path"] == PATH)


class Submit:
    """The ASGI endpoint."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        app = scope["app"]
        rt: Runtime = app.state.runtime
        recorder = rt.metrics.recorder
        started = time.perf_counter()
        recorder.count(names.RECEIVED)
        head = _Head(scope["headers"])
        rid = head.request_id or new_request_id()
        token = log_request_id.set(rid.decode())
        try:
            try:
                status, headers, body = await self._submit(rt, app, scope, receive, head)
            except Exception as exc:  # ours mapped, any other logged, as by the stack
                recorder.answered(exc.status if isinstance(exc, LoanflowError) else 500)
                recorder.observe(names.API, time.perf_counter() - started)
                await _send_error(scope, receive, send, rid, exc)
                return
            recorder.observe(names.API, time.perf_counter() - started)
            headers.append((REQUEST_ID, rid))
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body})
        finally:
            log_request_id.reset(token)

    async def _submit(
        self, rt: Runtime, app: Starlette, scope: Scope, receive: Receive, head: _Head
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        auth = app.state.auth
        if head.authorization is not None:
            key = await auth.require_bearer(head.authorization.decode("latin-1"), KeyScope.SUBMIT)
        else:  # a dashboard session: the cookie and CSRF checks of every other route
            key = await auth.require(Request(scope), KeyScope.SUBMIT)
        media_type = head.content_type.partition(b";")[0].strip().lower()
        if media_type != b"application/json":
            raise UnsupportedMediaType(
                f"expected Content-Type application/json, got {media_type.decode('latin-1')!r}")
        if head.idempotency_key is None:
            raise MalformedRequest("the Idempotency-Key header is required (a UUID is recommended)")
        idempotency_key = head.idempotency_key.decode("latin-1")
        if not valid_idempotency_key(idempotency_key):
            raise MalformedRequest(f"expected an Idempotency-Key of 1-{MAX_IDEMPOTENCY_KEY}"
                                   " printable ASCII characters")
        body = await _read_body(scope, receive, head.content_length, rt.settings.max_body_bytes)
        application = decode_application(body)
        require_own_partner(key, application)
        require_queue_room(rt)
        client = scope.get("client")
        limit = app.state.limiter.for_append(key)
        submission = make_submission(rt.cipher, client[0] if client else None, key.id,
                                     idempotency_key, application, rate_limit=limit)
        result = await rt.appender.append(submission)
        outcome = result.outcome
        if outcome is AppendOutcome.KEY_REUSED:
            raise IdempotencyKeyReused(
                "this Idempotency-Key was used with a different body; use a new key")
        if outcome is AppendOutcome.RATE_LIMITED:
            raise RateLimited(
                f"over this key's rate; retry after {result.retry_after_s:.3f}s",
                retry_after_s=max(1, math.ceil(result.retry_after_s)))
        note_outcome(rt, outcome, application.channel)
        application_id = result.application_id.encode()
        body_out = b"".join((_BODY_START, application_id, _BODY_MIDDLE,
                             format_ts(result.received_at_ns).encode(), _BODY_END))
        headers = [*_HEAD_202, (b"content-length", str(len(body_out)).encode()),
                   (b"location", b"/v1/applications/" + application_id)]
        if outcome is not AppendOutcome.ACCEPTED:
            headers.append((b"idempotent-replayed", b"true"))
        return 202, headers, body_out


class _Head:
    """The request headers a submission reads, in one pass over them."""

    __slots__ = ("authorization", "content_length", "content_type", "idempotency_key",
                 "request_id")

    def __init__(self, raw: list[tuple[bytes, bytes]]) -> None:
        self.authorization: bytes | None = None
        self.content_type = b""
        self.idempotency_key: bytes | None = None
        self.content_length: bytes | None = None
        self.request_id: bytes | None = None
        for name, value in raw:
            if name == b"authorization":
                self.authorization = value
            elif name == b"content-type":
                self.content_type = value
            elif name == b"idempotency-key":
                self.idempotency_key = value
            elif name == b"content-length":
                self.content_length = value
            elif name == REQUEST_ID:
                self.request_id = sane_request_id(value)


async def _read_body(scope: Scope, receive: Receive, declared: bytes | None,
                     limit: int) -> bytes:
    """The body, refusing more than `limit` bytes before reading them all."""
    refuse_declared_length(None if declared is None else declared.decode("latin-1"), limit)
    message = await receive()
    body: bytes = message.get("body", b"")
    if not message.get("more_body", False) and len(body) <= limit:
        return body  # most bodies arrive whole, with their headers
    first = [message]

    async def replay_first() -> Message:
        return first.pop() if first else await receive()

    # A body in parts, or too long: the route's own reader, from its first part on.
    return await read_body(Request(scope, replay_first), limit)


async def _send_error(scope: Scope, receive: Receive, send: Send, rid: bytes,
                      exc: Exception) -> None:
    request = Request(scope, receive)
    if isinstance(exc, LoanflowError):
        response = await on_loanflow_error(request, exc)
    else:
        response = await on_unexpected(request, exc)
    response.raw_headers += [(REQUEST_ID, rid), *security_headers.HEADERS]
    await response(scope, receive, send)
