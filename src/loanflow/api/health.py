"""`/healthz` (the process answers) and `/readyz` (broker and store reachable, and the
durability a 202 rests on: "redis aof always", "UNSAFE: …", "sqlite synchronous=FULL")."""

from __future__ import annotations

from typing import Literal

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from loanflow.errors import Unavailable
from loanflow.process.runtime import Runtime

_encode = msgspec.json.Encoder().encode


class Alive(msgspec.Struct):
    """The process answers."""

    status: Literal["ok"]


class Readiness(msgspec.Struct, kw_only=True):
    """Whether the broker and the store answer (`checks`: "ok" or why not), and what a
    202 rests on (`durability`): "redis aof always", "redis aof everysec (may lose the
    last second)", "sqlite synchronous=FULL", or "UNSAFE: …" when LOANFLOW_UNSAFE_REDIS=1
    allowed a Redis that may lose it."""

    status: Literal["ready", "not_ready"]
    checks: dict[str, str]
    durability: str


async def healthz(request: Request) -> Response:
    return Response(_encode(Alive("ok")), media_type="application/json")


async def readyz(request: Request) -> Response:
    rt: Runtime = request.app.state.runtime
    checks: dict[str, str] = {}
    for name, part in (("broker", rt.broker), ("store", rt.store)):
        try:
            await part.ping()
            checks[name] = "ok"
        except Unavailable as exc:
            checks[name] = f"unavailable: {exc}"
    ready = all(v == "ok" for v in checks.values())
    body = Readiness(status="ready" if ready else "not_ready", checks=checks,
                     durability=rt.broker.durability)
    return Response(_encode(body), status_code=200 if ready else 503,
                    media_type="application/json")
