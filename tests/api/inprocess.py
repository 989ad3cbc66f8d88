"""The fast tier: the ASGI app in this process over real backends, through httpx's
ASGITransport, its lifespan run on an event loop of its own (an anyio portal).

    with running_app(Settings(data_dir=tmp_path)) as app:
        key = app.key("read")
        answer = app.request("GET", "/v1/dead-letters", headers=auth(key))

A test module of HTTP behaviour takes the `client` and `keys` that tests written
against `loanflow serve` take, served in-process over the module's `deployment`:

    app = app_fixture(max_attempts="2")   # settings as `ServerProcess` takes them
    client = client_fixture()
    keys = keys_fixture()
"""

from __future__ import annotations

import contextlib
import functools
import gc
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import anyio.from_thread
import httpx
import msgspec
import pytest
from starlette.applications import Starlette

from loanflow import apikeys
from loanflow.api.app import create_app
from loanflow.apikeys import ApiKey
from loanflow.models import Application, AttemptRecord, Envelope, new_application_id
from loanflow.process.runtime import Runtime
from loanflow.settings import Settings
from loanflow.store.review import DeadLetter, DeadLetterStatus
from tests.conftest import Deployment, production_deployment, sample_application

T = TypeVar("T")


class InProcessApp:
    def __init__(self, app: Starlette, portal: anyio.from_thread.BlockingPortal,
                 transport: httpx.ASGITransport, client: httpx.AsyncClient) -> None:
        self.app, self._portal, self._client = app, portal, client
        self._transport = transport

    @property
    def runtime(self) -> Runtime:
        runtime: Runtime = self.app.state.runtime
        return runtime

    def call(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        """Run a coroutine function on the app's event loop, e.g. a store method."""
        return self._portal.call(fn, *args)

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        async def send() -> httpx.Response:
            return await self._client.request(method, url, **kwargs)

        return self._portal.call(send)

    def chunks(self, path: str, *, query: str = "",
               headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], list[bytes]]:
        """A GET as the app answers it over ASGI: status, headers, and the body one item per
        `http.response.body` message (a streamed answer sends several; httpx's
        ASGITransport would join them)."""
        return self._portal.call(_get_chunks, self.app, path, query, headers or {})

    def client(self, **options: Any) -> httpx.Client:
        """A synchronous httpx client of the app (cookies, redirects and all), as a test of
        a `loanflow serve` process uses one; `options` as `httpx.Client` takes them."""
        return httpx.Client(transport=_PortalTransport(self._portal, self._transport),
                            base_url="http://loanflow.test", **options)

    def key(self, scopes: str, **terms: Any) -> str:
        """A new API key with `scopes` (comma-separated), as `loanflow keys create` makes;
        `terms`: its partner_id, rate_per_s and burst."""
        key_id, secret = apikeys.generate()
        key = ApiKey(id=key_id, label="test", scopes=apikeys.parse_scopes(scopes),
                     created_at_ns=time.time_ns(), **terms)
        create = functools.partial(self.runtime.store.create_api_key, actor="test")
        self.call(create, key, apikeys.hash_key(secret))
        return secret

    def open_dead_letter(self, *, dead_lettered_at_ns: int | None = None) -> str:
        """The id of a new open dead letter, written to the store as a processor would."""
        now_ns = time.time_ns()
        application = msgspec.convert(sample_application(), Application)
        envelope = Envelope(
            id=new_application_id(now_ns), received_at_ns=now_ns, api_key_id="test",
            idempotency_key=new_application_id(), channel=application.channel,
            external_id=application.external_id,
            sealed_application=self.runtime.cipher.seal(msgspec.msgpack.encode(application)),
        )
        attempt = AttemptRecord(attempt=1, at_ns=now_ns, error_code="InjectedFault",
                                message="injected")
        letter = DeadLetter(
            id=envelope.id, status=DeadLetterStatus.OPEN.value, api_key_id="test",
            idempotency_key=envelope.idempotency_key, channel=envelope.channel,
            partner_id=None, external_id=envelope.external_id,
            received_at_ns=now_ns, dead_lettered_at_ns=dead_lettered_at_ns or now_ns,
            error_code=attempt.error_code, last_error=attempt.message, attempts=(attempt,),
            envelope=msgspec.msgpack.encode(envelope),
        )
        self.call(self.runtime.store.save_results, [], [letter])
        return envelope.id

    def websocket_handshake(self, path: str, headers: list[tuple[bytes, bytes]]) -> str:
        """The app's first answer to a WebSocket handshake: `websocket.accept`,
        `websocket.close`, or `error` when the app raised (a server answers that 500)."""
        return self._portal.call(_handshake, self.app, path, headers)


async def _handshake(app: Starlette, path: str, headers: list[tuple[bytes, bytes]]) -> str:
    sent: list[str] = []

    async def receive() -> dict[str, Any]:
        if not sent:
            return {"type": "websocket.connect"}
        return {"type": "websocket.disconnect", "code": 1000}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message["type"])

    scope = {"type": "websocket", "asgi": {"version": "3.0"}, "scheme": "ws",
             "http_version": "1.1", "path": path, "raw_path": path.encode(), "root_path": "",
             "query_string": b"", "headers": [(b"host", b"loanflow.test"), *headers],
             "server": ("loanflow.test", 80), "client": ("127.0.0.1", 50000),
             "subprotocols": [], "state": {}}
    try:
        with anyio.fail_after(10):
            await app(scope, receive, send)  # type: ignore[arg-type]
    except Exception:
        return "error"
    return sent[0] if sent else "nothing"


async def _get_chunks(app: Starlette, path: str, query: str,
                      headers: dict[str, str]) -> tuple[int, dict[str, str], list[bytes]]:
    started: dict[str, Any] = {}
    bodies: list[bytes] = []
    requested, done = False, anyio.Event()

    async def receive() -> dict[str, Any]:
        nonlocal requested
        if not requested:
            requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await done.wait()  # the client stays until the whole answer is sent
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            started.update(message)
        elif message["type"] == "http.response.body":
            if message.get("body"):
                bodies.append(message["body"])
            if not message.get("more_body"):
                done.set()

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "GET", "scheme": "http", "path": path, "raw_path": path.encode(),
             "root_path": "", "query_string": query.encode(),
             "headers": [(b"host", b"loanflow.test"),
                         *((k.lower().encode(), v.encode()) for k, v in headers.items())],
             "server": ("loanflow.test", 80), "client": ("127.0.0.1", 50000), "state": {}}
    with anyio.fail_after(30):
        await app(scope, receive, send)  # type: ignore[arg-type]
    answer_headers = {k.decode(): v.decode() for k, v in started.get("headers", [])}
    return started["status"], answer_headers, bodies


class _PortalTransport(httpx.BaseTransport):
    """The app's ASGITransport, for a synchronous client: each request crosses to the
    app's event loop through the portal, body read there, raw (still encoded)."""

    def __init__(self, portal: anyio.from_thread.BlockingPortal,
                 transport: httpx.ASGITransport) -> None:
        self._portal, self._transport = portal, transport

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        # ASGITransport reads an async stream; a sync client's body may be sync only.
        body = request.read()
        forwarded = httpx.Request(request.method, request.url, headers=request.headers,
                                  content=body, extensions=request.extensions)

        async def send() -> tuple[httpx.Response, bytes]:
            answer = await self._transport.handle_async_request(forwarded)
            try:
                return answer, b"".join([chunk async for chunk in answer.aiter_raw()])
            finally:
                await answer.aclose()

        answer, raw = self._portal.call(send)
        return httpx.Response(answer.status_code, headers=answer.headers,
                              stream=httpx.ByteStream(raw), extensions=answer.extensions)


@contextlib.contextmanager
def running_app(settings: Settings, *, processors: int = 0) -> Iterator[InProcessApp]:
    """The app started (lifespan) over `settings`, with `processors` loops (0: requests
    only, nothing processed)."""
    app = create_app(settings, processors=processors)
    with anyio.from_thread.start_blocking_portal() as portal, \
            portal.wrap_async_context_manager(app.router.lifespan_context(app)):
        # The lifespan froze every object so far out of collection (process/gc_freeze.py): right
        # for a server, a leak for a test session that starts many apps.
        gc.unfreeze()
        transport = httpx.ASGITransport(app, raise_app_exceptions=False)
        client = httpx.AsyncClient(transport=transport, base_url="http://loanflow.test")
        try:
            yield InProcessApp(app, portal, transport, client)
        finally:
            portal.call(client.aclose)


#: The two deployment modes, as `tests.conftest.deployment` names them.
MODES = ["embedded", "production"]


@contextlib.contextmanager
def app_in_mode(mode: str, data_dir: Path) -> Iterator[InProcessApp]:
    """The app over embedded SQLite, or over a throwaway Redis and a fresh PostgreSQL
    database."""
    if mode == "embedded":
        with running_app(Settings(data_dir=data_dir)) as app:
            yield app
        return
    with production_deployment(data_dir) as deployment, running_app(Settings(
        data_dir=data_dir, broker_url=deployment.broker_url, store_url=deployment.store_url,
        pii_key=deployment.pii_key,
    )) as app:
        yield app


def deployment_settings(deployment: Deployment, **settings: str) -> Settings:
    """What `ServerProcess(deployment, **settings)` would run with."""
    env = {"LOANFLOW_POLL_INTERVAL_S": "0.02", "LOANFLOW_PROCESSORS": "1", **deployment.env()}
    env.update({f"LOANFLOW_{name.upper()}": value for name, value in settings.items()})
    return Settings.from_env(env)


def app_fixture(**settings: str) -> Callable[..., Iterator[InProcessApp]]:
    """A module fixture: the app in-process over the module's `deployment`, processing
    (one loop); `settings` as `ServerProcess` takes them. Assign it to `app`."""

    @pytest.fixture(scope="module")
    def app(deployment: Deployment) -> Iterator[InProcessApp]:
        config = deployment_settings(deployment, **settings)
        with running_app(config, processors=config.processor_count) as running:
            yield running

    return app


def client_fixture() -> Callable[..., Iterator[httpx.Client]]:
    """A fixture: a synchronous client of the module's `app`. Assign it to `client`."""

    @pytest.fixture
    def client(app: InProcessApp) -> Iterator[httpx.Client]:
        with app.client(timeout=10) as c:
            yield c

    return client


def keys_fixture() -> Callable[..., dict[str, str]]:
    """A module fixture: keys of the scopes `tests.conftest.keys` makes, in the `app`'s
    store. Assign it to `keys`."""

    @pytest.fixture(scope="module")
    def keys(app: InProcessApp) -> dict[str, str]:
        return {"submit": app.key("submit,read"), "read": app.key("read"),
                "operate": app.key("operate")}

    return keys
