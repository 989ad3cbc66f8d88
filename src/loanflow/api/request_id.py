"""Give each request an id (the client's `X-Request-Id` when sane), in logs and answers."""

from __future__ import annotations

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
    """The client's `X-Request-Id` if sane, else a new random one."""
    return sane_request_id(dict(scope["headers"]).get(HEADER, b"")) or (
        secrets.token_hex(8).encode())


def sane_request_id(sent: bytes) -> bytes | None:
    return sent if _SANE.fullmatch(sent) else None
