"""`/healthz` (the process answers) and `/readyz` (ready to accept: the broker answers and
keeps what it acknowledges; the body also says whether the store answers, and the
durability a 202 rests on: "redis aof always", "UNSAFE: …", "sqlite synchronous=FULL")."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Literal

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from loanflow.errors import Unavailable
from loanflow.process.runtime import Runtime

_encode = msgspec.json.Encoder().encode
#: Balancers' checks give up after a second by default (HAProxy's `inter`, Kubernetes'
#: `timeoutSeconds`): a backend silent this long is reported so, well within that.
CHECK_WAIT_S = 0.5


class Alive(msgspec.Struct):
    """The process answers."""

    status: Literal["ok"]


class Readiness(msgspec.Struct, kw_only=True):
    """Ready to accept when the broker answers (a 202 needs nothing else). `processing`:
    "degraded" while the store does not answer (accepted work waits in the broker).
    `checks`: "ok" or why not, for the broker and the store. `durability`: what a 202
    rests on: "redis aof always", "redis aof everysec (may lose the last second)",
    "sqlite synchronous=FULL", or "UNSAFE: …" when LOANFLOW_UNSAFE_REDIS=1 allowed a
    Redis that may lose it."""

    status: Literal["ready", "not_ready"]
    processing: Literal["healthy", "degraded"]
    checks: dict[str, str]
    durability: str


async def healthz(request: Request) -> Response:
    return Response(_encode(Alive("ok")), media_type="application/json")


async def readyz(request: Request) -> Response:
    # Readiness follows the broker alone: while the store is down intake goes on, so a
    # balancer routing on this keeps sending submissions (DESIGN: "readiness to accept").
    rt: Runtime = request.app.state.runtime
    broker, store = await asyncio.gather(_check(rt.broker.ping()), _check(rt.store.ping()))
    ready = broker == "ok"
    body = Readiness(status="ready" if ready else "not_ready",
                     processing="healthy" if store == "ok" else "degraded",
                     checks={"broker": broker, "store": store},
                     durability=rt.broker.durability)
    return Response(_encode(body), status_code=200 if ready else 503,
                    media_type="application/json")


async def _check(ping: Awaitable[None]) -> str:
    call = asyncio.ensure_future(ping)
    # Left to finish, not cancelled, when it is slow: a backend call ends by its own
    # timeout, and cancelling one midway would hand its pooled connection back mid-query.
    call.add_done_callback(_consume)
    try:
        await asyncio.wait_for(asyncio.shield(call), CHECK_WAIT_S)
    except Unavailable as exc:
        return f"unavailable: {exc}"
    except TimeoutError:
        return f"unavailable: no answer within {CHECK_WAIT_S:g} s"
    return "ok"


def _consume(call: asyncio.Future[None]) -> None:
    if not call.cancelled():
        call.exception()  # read, so a late failure is not logged as never retrieved
