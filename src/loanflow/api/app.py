"""`create_app(settings)`: routes, error handlers and the lifespan that owns resources."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import msgspec
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

from loanflow.api import dashboard, metrics, openapi, operations
from loanflow.api.auth import Authenticator
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
    loops = settings.processor_count if processors is None else processors
    spec = msgspec.json.encode(openapi.build())

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
        return Response(spec, media_type="application/json")

    return LoanflowApp(
        submit=operations.SUBMIT,
        routes=[
            # The API's operations, documented from the same table (api/operations.py).
            # LoanflowApp serves POST /v1/applications before routing; its route gives
            # other methods a 405.
            *operations.routes(),
            WebSocketRoute("/v1/live", metrics.live),
            Route("/openapi.json", openapi_json, methods=["GET"]),
            Route("/docs", dashboard.docs, methods=["GET"]),
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
