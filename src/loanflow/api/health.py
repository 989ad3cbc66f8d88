"""`/healthz` (the process answers) and `/readyz` (broker and store reachable, and the
durability a 202 rests on: "redis aof always", "UNSAFE: …", "sqlite synchronous=FULL")."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from loanflow.errors import Unavailable
from loanflow.process.runtime import Runtime


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


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
    return JSONResponse({"status": "ready" if ready else "not_ready", "checks": checks,
                         "durability": rt.broker.durability},
                        status_code=200 if ready else 503)
