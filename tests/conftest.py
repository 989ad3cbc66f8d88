"""The two test tiers (the `slow` marker, added here), and shared fixtures: a real
`loanflow serve` process on a free port, keys made by the CLI."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import httpx
import pytest

from loanflow.apikeys import ApiKey, Scope
from loanflow.pii import new_key_text
from tests.throwaway import free_port
from tests.throwaway.postgres import SHARED_ADMIN_URL, fresh_database
from tests.throwaway.redis import RedisServer

LOANFLOW = [sys.executable, "-m", "loanflow"]

SAMPLE_APPLICATION: dict[str, Any] = {
    "applicant": {
        "first_name": "Ada",
        "last_name": "Lovelace",
        "date_of_birth": "1985-12-10",
        "ssn": "123-45-6789",
        "email": "ada@example.com",
        "phone": "+1 415 555 0100",
        "address": {"line1": "1 Main St", "line2": None, "city": "San Francisco",
                    "state": "CA", "zip": "94105"},
        "employment_status": "employed",
        "employer_name": "Acme",
        "annual_income": 96000.00,
        "monthly_debt_payments": 850.00,
        "monthly_housing_payment": 2100.00,
    },
    "loan": {"amount": 15000.00, "term_months": 36, "purpose": "debt_consolidation"},
    "channel": "web",
    "partner_id": None,
    "external_id": "crm-000123",
    "consent": {"credit_check": True, "terms_version": "2026-01"},
    "submitted_at": "2026-11-25T10:00:00Z",
}


#: Where every test is slow: faults under load, the browser, the bench harness.
SLOW_DIRS = ("tests/faults", "tests/dashboard", "benchmarks/tests")
#: Fixtures that start a process: `loanflow serve`, the CLI, a throwaway Redis or
#: PostgreSQL. A test using one (directly or through another fixture) is slow.
SLOW_FIXTURES = frozenset({
    "server", "embedded_server", "second_server", "proxied",
    "redis_server", "own_redis", "small_redis", "locked_redis", "metrics_redis",
    "durable_redis", "non_durable_redis", "start_redis",
    "postgres_database", "database_url", "postgres_server", "store_url",
})
#: Parameter values naming a backend that runs as a throwaway server (the production
#: mode, the Redis and PostgreSQL cases of a contract suite): those cases are slow.
SLOW_PARAMS = frozenset({"production", "redis", "postgres"})


def is_slow(item: pytest.Item, root: Path) -> bool:
    """The slow tier: marked so, or found by where it lives, its fixtures or its parameters."""
    if item.get_closest_marker("slow") or item.get_closest_marker("faults"):
        return True
    where = item.path.relative_to(root).as_posix() if item.path.is_relative_to(root) else ""
    if where.startswith(SLOW_DIRS):
        return True
    if SLOW_FIXTURES.intersection(getattr(item, "fixturenames", ())):
        return True
    callspec = getattr(item, "callspec", None)
    params = callspec.params.values() if callspec is not None else ()
    return any(isinstance(value, str) and value in SLOW_PARAMS for value in params)


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Two tiers: `slow` added to every test of the slow tier (`make test-fast` runs the
    rest, `-m "not slow"`). Then files with slow tests first: the suite is spread over
    xdist workers a file at a time; a long file handed out last would run alone at the
    end while the other worker idles. Stable: the order within a file is kept."""
    for item in items:
        if not item.get_closest_marker("slow") and is_slow(item, config.rootpath):
            item.add_marker(pytest.mark.slow)

    def weight(item: pytest.Item) -> int:
        if item.get_closest_marker("faults"):
            return 2
        return 1 if item.get_closest_marker("slow") else 0

    heaviest: dict[Path, int] = {}
    for item in items:
        heaviest[item.path] = max(heaviest.get(item.path, 0), weight(item))
    items.sort(key=lambda item: -heaviest[item.path])


#: Audit events of a process being started (`sys.addaudithook`).
PROCESS_EVENTS = frozenset({"subprocess.Popen", "os.posix_spawn", "os.fork", "os.system",
                            "os.exec", "os.spawn"})


class FastTierGuard:
    """In a run of the fast tier alone, a test that starts a process fails saying so: it
    belongs in the slow tier, which a fixture of SLOW_FIXTURES or `pytest.mark.slow` puts
    it in. multiprocessing's spawn raises no audit event: such a test is marked by hand.
    An audit hook cannot be removed: it stays, idle outside a fast test."""

    def __init__(self) -> None:
        self.running: str | None = None

    def __call__(self, event: str, args: tuple[Any, ...]) -> None:
        if self.running is not None and event in PROCESS_EVENTS:
            running, self.running = self.running, None  # once: let its teardown finish
            raise RuntimeError(
                f"{running} started a process ({event}) in the fast tier: use a fixture"
                " of tests/conftest.py SLOW_FIXTURES or mark it @pytest.mark.slow"
            )

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_protocol(self, item: pytest.Item) -> Any:
        self.running = item.nodeid
        try:
            return (yield)
        finally:
            self.running = None


def pytest_configure(config: pytest.Config) -> None:
    if "not slow" in (config.getoption("markexpr") or ""):
        guard = FastTierGuard()
        sys.addaudithook(guard)
        config.pluginmanager.register(guard, "fast-tier-guard")


T = TypeVar("T")


def all_at_once(count: int, call: Callable[[], T]) -> list[T | Exception]:
    """`call` in `count` threads released together (a race): each one's result or error."""
    start = threading.Barrier(count)
    outcomes: list[T | Exception] = []

    def run() -> None:
        start.wait()
        try:
            outcomes.append(call())
        except Exception as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def sample_application(**changes: Any) -> dict[str, Any]:
    """A valid application; `changes` set nested fields, e.g. `loan__amount=5`."""
    app = copy.deepcopy(SAMPLE_APPLICATION)
    for path, value in changes.items():
        *parents, last = path.split("__")
        node = app
        for part in parents:
            node = node[part]
        node[last] = value
    return app


class Deployment:
    """Where a service keeps its state: an embedded data dir, or Redis + PostgreSQL."""

    def __init__(self, data_dir: Path, *, broker_url: str = "", store_url: str = "") -> None:
        self.data_dir = data_dir
        self.broker_url, self.store_url = broker_url, store_url
        self.mode = "production" if broker_url else "embedded"
        # Outside the embedded mode the PII key must be given (no key file is made).
        self.pii_key = new_key_text() if broker_url else ""

    def env(self) -> dict[str, str]:
        return {
            "LOANFLOW_DATA_DIR": str(self.data_dir),
            "LOANFLOW_BROKER_URL": self.broker_url,
            "LOANFLOW_STORE_URL": self.store_url,
            "LOANFLOW_PII_KEY": self.pii_key,
        }

    def stored(self) -> list[tuple[str, str, str]]:
        """(id, idempotency key, status) of each stored application, read from the store."""
        query = "SELECT id, idempotency_key, status FROM applications"
        if not self.store_url:
            with sqlite3.connect(self.data_dir / "store.db") as db:
                return db.execute(query).fetchall()

        async def fetch() -> list[tuple[str, str, str]]:
            conn = await asyncpg.connect(self.store_url)
            try:
                return [tuple(row) for row in await conn.fetch(query)]  # type: ignore[misc]
            finally:
                await conn.close()

        return asyncio.run(fetch())


def as_deployment(where: Path | Deployment) -> Deployment:
    return where if isinstance(where, Deployment) else Deployment(where)


def cli(where: Path | Deployment, *args: str) -> str:
    """Run `loanflow ARGS` against a deployment (or an embedded data dir); its stdout."""
    done = subprocess.run(
        [*LOANFLOW, *args], capture_output=True, text=True, timeout=60, check=True,
        env={**os.environ, **as_deployment(where).env()},
    )
    return done.stdout


def api_key(key_id: str, **fields: Any) -> ApiKey:
    """A key record as the store gives it back (for limiters and checks called directly)."""
    return ApiKey(id=key_id, label="", scopes=frozenset(Scope), created_at_ns=0, **fields)


def create_key(where: Path | Deployment, scopes: str) -> str:
    return cli(where, "keys", "create", "--scopes", scopes).strip().splitlines()[-1]


class ServerProcess:
    """`loanflow serve` in its own process, on a free port, over a given deployment."""

    def __init__(self, where: Path | Deployment, **settings: str) -> None:
        self.deployment = as_deployment(where)
        self.data_dir = self.deployment.data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.settings = settings
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = self.data_dir / f"serve-{self.port}.log"

    def start(self) -> ServerProcess:
        # One worker process unless a test asks for more (or for the mode's default, "-1"):
        # the suite starts hundreds of servers on 2 cores, and each idle worker polls.
        env = {**os.environ, "LOANFLOW_POLL_INTERVAL_S": "0.02", "LOANFLOW_PROCESSORS": "1",
               **self.deployment.env()}
        env.update({f"LOANFLOW_{k.upper()}": v for k, v in self.settings.items()})
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [*LOANFLOW, "serve", "--port", str(self.port)],
                stdout=log, stderr=subprocess.STDOUT, env=env,
            )
        self._wait_ready()
        return self

    def _wait_ready(self, timeout_s: float = 20.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log_path.read_text()[-2000:]}")
            try:
                if httpx.get(self.url + "/readyz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"server not ready after {timeout_s}s: {self.log_path.read_text()}")

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as in a crash."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture(scope="module", params=["embedded", "production"])
def deployment(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    """Each API test module runs once per mode: SQLite, then Redis + PostgreSQL."""
    data_dir = tmp_path_factory.mktemp(request.param)
    if request.param == "embedded":
        yield Deployment(data_dir)
        return
    with production_deployment(data_dir) as deployment:
        yield deployment


@contextlib.contextmanager
def production_deployment(data_dir: Path) -> Iterator[Deployment]:
    """A throwaway Redis (AOF on) under `data_dir` and a fresh database on the machine's
    PostgreSQL, both gone afterwards."""
    redis_dir = data_dir / "redis"
    redis_dir.mkdir()
    redis_server = RedisServer(redis_dir).start()
    try:
        with fresh_database(SHARED_ADMIN_URL) as store_url:
            yield Deployment(data_dir, broker_url=redis_server.url, store_url=store_url)
    finally:
        redis_server.stop()


@pytest.fixture(scope="module")
def embedded_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """For tests of the HTTP layer alone, which is the same in both modes."""
    srv = ServerProcess(tmp_path_factory.mktemp("http")).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def server(deployment: Deployment) -> Iterator[ServerProcess]:
    srv = ServerProcess(deployment).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def keys(deployment: Deployment) -> dict[str, str]:
    """Keys with different scopes in the module's deployment."""
    return {
        "submit": create_key(deployment, "submit,read"),
        "read": create_key(deployment, "read"),
        "operate": create_key(deployment, "operate"),
    }


@pytest.fixture
def client(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=10) as c:
        yield c


def wait_for_status(
    client: httpx.Client, key: str, app_id: str, *, final: bool = True, timeout_s: float = 10.0
) -> dict[str, Any]:
    """Poll GET until the application leaves queued, processing or replayed (or times out)."""
    deadline = time.monotonic() + timeout_s
    while True:
        answer = client.get(f"/v1/applications/{app_id}", headers=auth(key))
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        if not final or body["status"] not in ("queued", "processing", "replayed"):
            return body
        if time.monotonic() > deadline:
            raise AssertionError(f"{app_id} still {body['status']} after {timeout_s}s")
        time.sleep(0.01)


def auth(key: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", **extra}
