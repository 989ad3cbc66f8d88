"""The fast tier: the ASGI app in this process over real backends, through httpx's
ASGITransport, its lifespan run on an event loop of its own (an anyio portal).

    with running_app(Settings(data_dir=tmp_path)) as app:
        key = app.key("read")
        answer = app.request("GET", "/v1/dead-letters", headers=auth(key))
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import anyio.from_thread
import httpx
import msgspec
from starlette.applications import Starlette

from loanflow import apikeys
from loanflow.api.app import create_app
from loanflow.apikeys import ApiKey
from loanflow.models import Application, AttemptRecord, Envelope, new_application_id
from loanflow.runtime import Runtime
from loanflow.settings import Settings
from loanflow.store.review import DeadLetter, DeadLetterStatus
from tests.conftest import production_deployment, sample_application

T = TypeVar("T")


class InProcessApp:
    def __init__(self, app: Starlette, portal: anyio.from_thread.BlockingPortal,
                 client: httpx.AsyncClient) -> None:
        self.app, self._portal, self._client = app, portal, client

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

    def key(self, scopes: str) -> str:
        """A new API key with `scopes` (comma-separated), as `loanflow keys create` makes."""
        key_id, secret = apikeys.generate()
        key = ApiKey(id=key_id, label="test", scopes=apikeys.parse_scopes(scopes),
                     created_at_ns=time.time_ns())
        self.call(self.runtime.store.create_api_key, key, apikeys.hash_key(secret))
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


@contextlib.contextmanager
def running_app(settings: Settings) -> Iterator[InProcessApp]:
    """The app started (lifespan) over `settings`, processing nothing: requests only."""
    app = create_app(settings, processors=0)
    with anyio.from_thread.start_blocking_portal() as portal, \
            portal.wrap_async_context_manager(app.router.lifespan_context(app)):
        transport = httpx.ASGITransport(app, raise_app_exceptions=False)
        client = httpx.AsyncClient(transport=transport, base_url="http://loanflow.test")
        try:
            yield InProcessApp(app, portal, client)
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
