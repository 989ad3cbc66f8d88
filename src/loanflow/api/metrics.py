"""Metrics over HTTP: `/v1/metrics/summary`, `/v1/metrics/series`, `/metrics`, `WS /v1/live`."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket

from loanflow.api.applications import runtime_of
from loanflow.api.params import int_param
from loanflow.apikeys import Scope
from loanflow.errors import RequestError, Unavailable
from loanflow.metrics import alerting
from loanflow.metrics.live_ws import live_endpoint
from loanflow.metrics.prometheus import CONTENT_TYPE, render
from loanflow.metrics.series_base import RETENTION_S
from loanflow.metrics.tally import Tally
from loanflow.process.runtime import Runtime

#: Policy violation: the WebSocket closes before accept when auth fails.
CLOSE_POLICY_VIOLATION = 1008
MAX_WINDOW_S = 300
#: As far back as the series are kept: a longer span could only be refused deeper down.
MAX_SERIES_S = RETENTION_S

_encode = msgspec.json.Encoder().encode


async def summary(request: Request) -> Response:
    rt = runtime_of(request)
    await request.app.state.auth.require(request, Scope.READ)
    window_s = int_param(request, "window_s", default=10, minimum=1, maximum=MAX_WINDOW_S)
    body = await rt.metrics.aggregator.summary(window_s)
    return Response(_encode(body), media_type="application/json")


async def series(request: Request) -> Response:
    rt = runtime_of(request)
    await request.app.state.auth.require(request, Scope.READ)
    seconds = int_param(request, "seconds", default=900, minimum=1, maximum=MAX_SERIES_S)
    body = await rt.metrics.aggregator.series(seconds)
    return Response(_encode(body), media_type="application/json")


async def prometheus(request: Request) -> Response:
    # Unauthenticated like /healthz: scrapers rarely carry keys, and it holds no PII.
    # It answers while a backend is down: that is when the alerts need it (alerts.yml).
    rt = runtime_of(request)
    broker_up, store_up, totals = await asyncio.gather(
        _answers(rt.broker.ping()), _answers(rt.store.ping()),
        _or_none(rt.metrics.aggregator.totals()))
    backends_up = {"broker": broker_up, "store": store_up, "metrics": totals is not None}
    body = render(totals, queue=rt.queue_state(), backends_up=backends_up)
    return Response(body, media_type=CONTENT_TYPE)


async def _answers(ping: Awaitable[None]) -> bool:
    try:
        await ping
    except Unavailable:
        return False
    return True


async def _or_none(totals: Awaitable[Tally]) -> Tally | None:
    try:
        return await totals
    except Unavailable:
        return None


async def live(websocket: WebSocket) -> None:
    """Snapshots and events; a browser authenticates with its session cookie."""
    rt: Runtime = websocket.app.state.runtime
    try:
        await websocket.app.state.auth.require(websocket, Scope.READ)
    except RequestError:
        await websocket.close(code=CLOSE_POLICY_VIOLATION)
        return
    await live_endpoint(websocket, rt.metrics.hub)


async def alerts(request: Request) -> Response:
    """The conditions of the shipped alerting rules as they stand (alerting.py)."""
    rt = runtime_of(request)
    await request.app.state.auth.require(request, Scope.READ)
    broker_up, store_up, last_5_min, last_15_min = await asyncio.gather(
        _answers(rt.broker.ping()), _answers(rt.store.ping()),
        _or_none(rt.metrics.aggregator.window_tally(alerting.ERROR_WINDOW_S)),
        _or_none(rt.metrics.aggregator.window_tally(alerting.DEAD_LETTER_WINDOW_S)))
    metrics_up = last_5_min is not None and last_15_min is not None
    firing = alerting.firing(
        queue=rt.queue_state(), last_5_min=last_5_min or Tally(),
        last_15_min=last_15_min or Tally(),
        backends_up={"broker": broker_up, "store": store_up, "metrics": metrics_up})
    return Response(_encode({"alerts": firing}), media_type="application/json")
