"""Metrics over HTTP: `/v1/metrics/summary`, `/v1/metrics/series`, `/metrics`, `WS /v1/live`."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket

from loanflow.api.applications import runtime_of
from loanflow.api.params import LATEST, int_param, only_params
from loanflow.apikeys import Scope
from loanflow.errors import FieldError, RequestError, SchemaInvalid, Unavailable
from loanflow.metrics import alerting
from loanflow.metrics.live_ws import live_endpoint
from loanflow.metrics.prometheus import CONTENT_TYPE, render
from loanflow.metrics.series_base import MINUTE_S, SECOND_HISTORY_S
from loanflow.metrics.tally import Tally
from loanflow.process.runtime import Runtime

#: Policy violation: the WebSocket closes before accept when auth fails.
CLOSE_POLICY_VIOLATION = 1008
MAX_WINDOW_S = 300
#: As far back as per-second points are kept: a longer span could only be refused deeper down.
MAX_SERIES_S = SECOND_HISTORY_S
#: The default of `seconds` when neither it nor `range` is given (what clients had first).
DEFAULT_SERIES_S = 900
#: `range` -> (span in seconds, seconds per point): per second up to 1 h, per minute beyond.
SERIES_RANGES = {
    "5m": (5 * 60, 1),
    "1h": (60 * 60, 1),
    "24h": (24 * 60 * 60, MINUTE_S),
    "7d": (7 * 24 * 60 * 60, MINUTE_S),
}

#: The ranges of per-minute points: those `after` may narrow.
PER_MINUTE_RANGES = [name for name, (_, step_s) in SERIES_RANGES.items() if step_s == MINUTE_S]
#: `after` is a time in Unix seconds, within the times anything is stored with.
MAX_AFTER_S = int(LATEST.timestamp())

_encode = msgspec.json.Encoder().encode


class AlertList(msgspec.Struct, kw_only=True):
    """The alerts whose condition holds now, critical first."""

    alerts: list[alerting.Alert]


async def summary(request: Request) -> Response:
    rt = runtime_of(request)
    await request.app.state.auth.require(request, Scope.READ)
    window_s = int_param(request, "window_s", default=10, minimum=1, maximum=MAX_WINDOW_S)
    body = await rt.metrics.aggregator.summary(window_s)
    return Response(_encode(body), media_type="application/json")


async def series(request: Request) -> Response:
    rt = runtime_of(request)
    await request.app.state.auth.require(request, Scope.READ)
    only_params(request, ("seconds", "range", "after"))
    span_s, step_s = _series_span(request)
    after_s = _series_after(request, step_s)
    aggregator = rt.metrics.aggregator
    body = (await aggregator.series(span_s) if step_s == 1
            else await aggregator.minute_series(span_s, after_s=after_s))
    return Response(_encode(body), media_type="application/json")


def _series_after(request: Request, step_s: int) -> int | None:
    """`after=` (Unix seconds), of a per-minute range only: per-second points are not
    polled (the dashboard appends them from /v1/live), and only per-minute answers say
    up to where they are final."""
    after_s = int_param(request, "after", default=None, minimum=0, maximum=MAX_AFTER_S)
    if after_s is not None and step_s != MINUTE_S:
        raise SchemaInvalid([FieldError("after", "expected only with range "
                                                 + " or ".join(PER_MINUTE_RANGES))])
    return after_s


def _series_span(request: Request) -> tuple[int, int]:
    """(span_s, step_s) of `range=` (5m, 1h, 24h, 7d) or `seconds=` (per second, 1 to 3,600)."""
    name = request.query_params.get("range")
    if name is None:
        seconds = int_param(request, "seconds", default=DEFAULT_SERIES_S, minimum=1,
                            maximum=MAX_SERIES_S)
        return seconds, 1
    if "seconds" in request.query_params:
        raise SchemaInvalid([FieldError("range", "expected either range or seconds, not both")])
    try:
        return SERIES_RANGES[name]
    except KeyError:
        expected = "expected one of " + ", ".join(SERIES_RANGES)
        raise SchemaInvalid([FieldError("range", expected)]) from None


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
    return Response(_encode(AlertList(alerts=firing)), media_type="application/json")
