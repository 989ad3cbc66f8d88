"""`create_app(settings)`: routes, error handlers and the lifespan that owns resources."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

from loanflow.api import (
    dashboard,
    dead_letters,
    export,
    metrics,
    openapi,
    reviews,
    search,
    timeline,
)
from loanflow.api.applications import get_application
from loanflow.api.auth import Authenticator
from loanflow.api.batch import submit_batch
from loanflow.api.health import healthz, readyz
from loanflow.api.problems import on_http_exception, on_loanflow_error, on_unexpected
from loanflow.api.request_id import RequestIdMiddleware
from loanflow.api.security_headers import SecurityHeadersMiddleware
from loanflow.api.session import Sessions
from loanflow.api.submit import Submit, is_submission
from loanflow.errors import LoanflowError
from loanflow.process.gc_freeze import freeze_startup_objects
from loanflow.process.runtime import open_runtime
from loanflow.settings import Settings


class LoanflowApp(Starlette):
    """Starlette, with submissions served past the router and middleware (`submit`)."""

    def __init__(self, *, submit: Submit, **options: Any) -> None:
        super().__init__(**options)
        self._submit = submit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if is_submission(scope):
            scope["app"] = self  # as Starlette sets it: the handler reads app.state
            await self._submit(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)


def app_from_env() -> Starlette:
    """The API-only app of one `serve --api-workers N` child, configured by its environment."""
    from loanflow import logs
    from loanflow.process.gil import tune_switch_interval

    settings = Settings.from_env()
    logs.configure(level=settings.log_level, json=settings.log_format == "json")
    tune_switch_interval(settings)
    return create_app(settings, processors=0)


def create_app(settings: Settings, *, processors: int | None = None) -> Starlette:
    """The ASGI app; `processors` loops run in its lifespan (default: the settings')."""
    loops = settings.processors if processors is None else processors
    spec = openapi.build()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with open_runtime(settings) as runtime:
            app.state.runtime = runtime
            app.state.auth = Authenticator(runtime.store, Sessions(runtime.store))
            limiter = runtime.limiter
            await limiter.open()
            app.state.limiter = limiter
            runtime.start_depth_sampler()
            runtime.start_metrics(live=True)
            runtime.start_janitor()
            runtime.start_processors(loops)
            freeze_startup_objects()
            try:
                yield
            finally:
                await limiter.close()

    async def openapi_json(request: Request) -> Response:
        return JSONResponse(spec)

    submit = Submit()
    return LoanflowApp(
        submit=submit,
        routes=[
            # LoanflowApp serves POST before routing; the route gives other methods a 405.
            Route("/v1/applications", submit, methods=["POST"]),
            Route("/v1/applications", search.list_applications, methods=["GET"]),
            Route("/v1/applications/batch", submit_batch, methods=["POST"]),
            Route("/v1/applications/{id}", get_application, methods=["GET"]),
            Route("/v1/applications/{id}/review", reviews.decide, methods=["POST"]),
            Route("/v1/applications/{id}/timeline", timeline.get_timeline, methods=["GET"]),
            Route("/v1/exports/applications.csv", export.export_applications, methods=["GET"]),
            Route("/v1/reviews", reviews.list_reviews, methods=["GET"]),
            Route("/v1/dead-letters", dead_letters.list_dead_letters, methods=["GET"]),
            Route("/v1/dead-letters/replay", dead_letters.bulk_replay, methods=["POST"]),
            Route("/v1/dead-letters/discard", dead_letters.bulk_discard, methods=["POST"]),
            Route("/v1/dead-letters/{id}", dead_letters.get_dead_letter, methods=["GET"]),
            Route("/v1/dead-letters/{id}/replay", dead_letters.replay, methods=["POST"]),
            Route("/v1/dead-letters/{id}/discard", dead_letters.discard, methods=["POST"]),
            Route("/v1/audit", dead_letters.audit_trail, methods=["GET"]),
            Route("/v1/metrics/summary", metrics.summary, methods=["GET"]),
            Route("/v1/metrics/series", metrics.series, methods=["GET"]),
            Route("/v1/alerts", metrics.alerts, methods=["GET"]),
            Route("/metrics", metrics.prometheus, methods=["GET"]),
            WebSocketRoute("/v1/live", metrics.live),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            Route("/openapi.json", openapi_json, methods=["GET"]),
            Route("/", dashboard.index, methods=["GET"]),
            Route("/login", dashboard.login, methods=["POST"]),
            Route("/logout", dashboard.logout, methods=["POST"]),
            Route("/v1/session", dashboard.session, methods=["GET"]),
            Mount("/static", StaticFiles(directory=str(dashboard.STATIC)), name="static"),
        ],
        exception_handlers={
            LoanflowError: on_loanflow_error,
            HTTPException: on_http_exception,
            Exception: on_unexpected,
        },
        middleware=[Middleware(RequestIdMiddleware), Middleware(SecurityHeadersMiddleware)],
        lifespan=lifespan,
    )
