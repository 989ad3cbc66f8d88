"""Give each request an id (the client's `X-Request-Id` when sane), in logs and answers."""

from __future__ import annotations

import itertools
import re
import secrets

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from loanflow.logs import request_id

HEADER = b"x-request-id"
#: A client-sent id is kept only if it cannot forge log lines.
_SANE = re.compile(rb"[A-Za-z0-9._:-]{1,64}")


class RequestIdMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = request_id_of(scope)
        token = request_id.set(rid.decode())

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (HEADER, rid)]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            request_id.reset(token)


def request_id_of(scope: Scope) -> bytes:
    """The client's `X-Request-Id` if sane, else a new one."""
    return sane_request_id(dict(scope["headers"]).get(HEADER, b"")) or new_request_id()


#: A new id is this process's random prefix and a count: unique without a random draw
#: per request (ids name requests in logs; they are no secret).
_PREFIX = secrets.token_hex(4)
_count = itertools.count(1)


def new_request_id() -> bytes:
    return f"{_PREFIX}{next(_count) & 0xFFFFFFFF:08x}".encode()


def sane_request_id(sent: bytes) -> bytes | None:
    return sent if _SANE.fullmatch(sent) else None
