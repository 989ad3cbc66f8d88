"""Velocity flags over real counters: the same suite for the SQLite table and Redis.

Each test runs its whole scenario in one event loop (`run`), because a Redis
connection belongs to the loop that opened it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import pytest
import redis

from loanflow.backends.redis.keys import VELOCITY_PREFIX
from loanflow.backends.redis.velocity import RedisVelocityCounter
from loanflow.backends.sqlite.database import SQLiteDatabase
from loanflow.backends.sqlite.store import SQLiteStore
from loanflow.backends.sqlite.velocity import SQLiteVelocityCounter
from loanflow.domain.flags import (
    FLAG_EMAIL_VELOCITY,
    FLAG_IP_VELOCITY,
    FLAG_PHONE_VELOCITY,
    Findings,
)
from loanflow.errors import StoreUnavailable
from loanflow.models import Application, Envelope
from loanflow.pii import PiiCipher
from loanflow.pipeline.velocity import (
    KEEP_WINDOWS,
    Observation,
    VelocityCheck,
    VelocityCounter,
    VelocityUnavailable,
)
from loanflow.settings import Settings
from tests.conftest import free_port, sample_application
from tests.throwaway.redis import RedisServer, redis_server_fixture

BACKENDS = ["sqlite", "redis"]

redis_server = redis_server_fixture()

LIMIT = 3
IP_LIMIT = 5
WINDOW_S = 60
WINDOW_US = WINDOW_S * 1_000_000
#: Some instant in 2027, in ns, and one second.
T0_NS = 1_800_000_000 * 1_000_000_000
S_NS = 1_000_000_000
#: A globally routable address (a documentation range like 192.0.2.x is not counted).
PUBLIC_IP = "81.2.69.142"


class Counters:
    """Opens counters of one backend over the same place; each starts from empty."""

    def __init__(self, backend: str, tmp_path: Path, redis_url: str = "") -> None:
        self.backend, self.tmp_path, self.redis_url = backend, tmp_path, redis_url
        #: SQLite: the store whose file and writer the open counter uses.
        self.store: SQLiteStore | None = None
        if backend == "sqlite":
            # The table comes with the store's migrations, as in `loanflow serve`.
            store = SQLiteStore(self.path)
            asyncio.run(store.open())
            asyncio.run(store.close())

    @property
    def path(self) -> Path:
        return self.tmp_path / "store.db"

    def members(self, key: str) -> list[str]:
        """Application ids stored under `key`, read straight from the backend."""
        if self.backend == "sqlite":
            with sqlite3.connect(self.path) as conn:
                rows = conn.execute("SELECT application_id FROM velocity WHERE key = ?", (key,))
                return [str(app_id) for (app_id,) in rows]
        with redis.Redis.from_url(self.redis_url) as client:
            return [m.decode() for m in client.zrange(VELOCITY_PREFIX + key, 0, -1)]

    def stored_bytes(self) -> bytes:
        """Everything the backend holds: the files (SQLite) or every key and member (Redis)."""
        if self.backend == "sqlite":
            return b"".join(p.read_bytes() for p in self.tmp_path.iterdir() if p.is_file())
        with redis.Redis.from_url(self.redis_url) as client:
            keys: list[bytes] = client.keys("*")
            members = [m for key in keys for m in client.zrange(key, 0, -1)]
            return b" ".join(keys + members)

    @contextlib.asynccontextmanager
    async def open(self) -> AsyncIterator[VelocityCounter]:
        counter: VelocityCounter
        self.store = None
        if self.backend == "sqlite":  # in the store's file, on the store's writer
            self.store = SQLiteStore(self.path)
            await self.store.open()
            counter = SQLiteVelocityCounter(self.store.database)
        elif self.backend == "redis":
            counter = RedisVelocityCounter.from_url(self.redis_url)
        else:
            raise AssertionError(f"expected a backend among {BACKENDS}, got {self.backend!r}")
        await counter.open()
        try:
            yield counter
        finally:
            await counter.close()
            if self.store is not None:
                await self.store.close()


@pytest.fixture(params=BACKENDS)
def counters(request: pytest.FixtureRequest, tmp_path: Path) -> Counters:
    redis_url = ""
    if request.param == "redis":
        server: RedisServer = request.getfixturevalue("redis_server")
        server.flushall()
        redis_url = server.url
    return Counters(request.param, tmp_path, redis_url)


def run(scenario: Callable[[], Awaitable[Any]]) -> Any:
    return asyncio.run(scenario())  # type: ignore[arg-type]


CIPHER = PiiCipher([os.urandom(32)])


def check(
    counter: VelocityCounter, *, limit: int = LIMIT, ip_limit: int = IP_LIMIT
) -> VelocityCheck:
    return VelocityCheck(
        counter, hash_key=CIPHER.subkey("velocity"), limit=limit, ip_limit=ip_limit,
        window_s=WINDOW_S,
    )


@dataclass(frozen=True)
class Arrival:
    """One application: its id, when it was received, and what it was sent with."""

    app_id: str
    at_s: float
    email: str = "ada@example.com"
    phone: str | None = None  # None: a phone of its own (only the email repeats)
    client_ip: str | None = None
    channel: str = "web"

    def pair(self) -> tuple[Envelope, Application]:
        phone = self.phone or f"+1 415 555 01{sum(map(ord, self.app_id)) % 100:02d}"
        application = msgspec.convert(
            sample_application(applicant__email=self.email, applicant__phone=phone,
                               channel=self.channel),
            Application,
        )
        envelope = Envelope(
            id=self.app_id,
            received_at_ns=T0_NS + round(self.at_s * S_NS),
            api_key_id="key-a",
            idempotency_key=self.app_id,
            client_ip=self.client_ip,
            channel=self.channel,
            sealed_application=b"",
        )
        return envelope, application


async def observe(velocity: VelocityCheck, *batch: Arrival, now_s: float | None = None
                  ) -> dict[str, Findings]:
    latest = max(a.at_s for a in batch)
    now_ns = T0_NS + round((latest if now_s is None else now_s) * S_NS)
    return await velocity.check([a.pair() for a in batch], now_ns=now_ns)


def count_of(findings: Findings, dimension: str) -> int | None:
    for entry in findings.evidence:
        if entry.name == f"velocity_{dimension}_count":
            assert isinstance(entry.value, int)
            return entry.value
    return None


# -- the boundaries of "more than N in the window", N = 3, window = 60 s ------------------

A, B, C, D = "app-a", "app-b", "app-c", "app-d"

#: name: (batches of (application, seconds after T0), the application looked at,
#:        its email count, whether it is flagged)
BOUNDARIES: dict[str, tuple[list[list[tuple[str, float]]], str, int, bool]] = {
    "the limit-th in the window is not flagged": (
        [[(A, 0)], [(B, 10)], [(C, 20)]], C, 3, False),
    "one more than the limit is flagged": (
        [[(A, 0)], [(B, 10)], [(C, 20)], [(D, 30)]], D, 4, True),
    "a peer exactly one window earlier is outside it": (
        [[(A, 0)], [(B, 10)], [(C, 20)], [(D, 60)]], D, 3, False),
    "a peer a microsecond inside the window counts": (
        [[(A, 0.000001)], [(B, 10)], [(C, 20)], [(D, 60)]], D, 4, True),
    "a redelivered application counts once": (
        [[(A, 0)], [(B, 10)], [(C, 20)], [(C, 20)]], C, 3, False),
    "a redelivered flagged application stays flagged": (
        [[(A, 0)], [(B, 10)], [(C, 20)], [(D, 30)], [(D, 30)]], D, 4, True),
    "applications of one batch count each other": (
        [[(A, 0), (B, 10), (C, 20), (D, 30)]], D, 4, True),
    "the limit-th of one batch is not flagged": (
        [[(A, 0), (B, 10), (C, 20), (D, 30)]], C, 3, False),
    "a later arrival processed first does not count for an earlier one": (
        [[(D, 30)], [(A, 0)], [(B, 10)], [(C, 20)]], C, 3, False),
    "applications received at the same instant all count for each other": (
        [[(A, 5), (B, 5), (C, 5), (D, 5)]], A, 4, True),
}


@pytest.mark.parametrize("case", BOUNDARIES, ids=list(BOUNDARIES))
def test_velocity_boundaries(counters: Counters, case: str) -> None:
    batches, looked_at, expected_count, expected_flag = BOUNDARIES[case]

    async def scenario() -> Findings:
        async with counters.open() as counter:
            velocity = check(counter)
            last: dict[str, Findings] = {}
            for batch in batches:
                last.update(await observe(velocity, *(Arrival(i, t) for i, t in batch)))
            return last[looked_at]

    findings: Findings = run(scenario)

    assert count_of(findings, "email") == expected_count
    assert (FLAG_EMAIL_VELOCITY in findings.flags) is expected_flag
    assert FLAG_PHONE_VELOCITY not in findings.flags


# -- what counts as the same value -----------------------------------------------------------


def test_email_is_compared_case_insensitively(counters: Counters) -> None:
    async def scenario() -> Findings:
        async with counters.open() as counter:
            velocity = check(counter, limit=1)
            await observe(velocity, Arrival(A, 0, email="Ada@Example.COM"))
            return (await observe(velocity, Arrival(B, 1, email=" ada@example.com")))[B]

    assert FLAG_EMAIL_VELOCITY in run(scenario).flags


def test_phone_is_compared_in_e164_form(counters: Counters) -> None:
    async def scenario() -> Findings:
        async with counters.open() as counter:
            velocity = check(counter, limit=1)
            await observe(velocity, Arrival(A, 0, email="a@example.com", phone="(415) 555-0100"))
            later = Arrival(B, 1, email="b@example.com", phone="+1 415 555 0100")
            return (await observe(velocity, later))[B]

    findings: Findings = run(scenario)
    assert findings.flags == (FLAG_PHONE_VELOCITY,)


def test_other_values_are_not_counted(counters: Counters) -> None:
    async def scenario() -> Findings:
        async with counters.open() as counter:
            velocity = check(counter, limit=1)
            await observe(velocity, Arrival(A, 0, email="a@example.com"))
            return (await observe(velocity, Arrival(B, 1, email="b@example.com")))[B]

    findings: Findings = run(scenario)
    assert findings.flags == ()
    assert count_of(findings, "email") == 1


def test_client_ip_over_its_own_limit_is_flagged(counters: Counters) -> None:
    arrivals = [Arrival(f"app-{i}", i, email=f"{i}@example.com", client_ip=PUBLIC_IP)
                for i in range(IP_LIMIT + 1)]

    async def scenario() -> dict[str, Findings]:
        async with counters.open() as counter:
            return await observe(check(counter), *arrivals)

    found: dict[str, Findings] = run(scenario)
    assert FLAG_IP_VELOCITY not in found[arrivals[-2].app_id].flags
    assert found[arrivals[-1].app_id].flags == (FLAG_IP_VELOCITY,)


def test_ipv4_mapped_ipv6_is_the_same_address(counters: Counters) -> None:
    async def scenario() -> Findings:
        async with counters.open() as counter:
            velocity = check(counter, ip_limit=1)
            await observe(velocity, Arrival(A, 0, email="a@example.com", client_ip=PUBLIC_IP))
            mapped = Arrival(B, 1, email="b@example.com", client_ip=f"::ffff:{PUBLIC_IP}")
            return (await observe(velocity, mapped))[B]

    assert run(scenario).flags == (FLAG_IP_VELOCITY,)


@pytest.mark.parametrize(
    ("client_ip", "channel"),
    [
        ("127.0.0.1", "web"),  # loopback: a test client or a local proxy
        ("10.1.2.3", "web"),  # a private network: a load balancer, not the applicant
        ("192.0.2.1", "mobile"),  # documentation range
        ("not an address", "web"),
        (None, "web"),
        (PUBLIC_IP, "partner_api"),  # a partner submits many applicants from its server
        (PUBLIC_IP, "branch"),
    ],
)
def test_client_ip_is_not_counted_when_it_is_not_the_applicants(
    counters: Counters, client_ip: str | None, channel: str
) -> None:
    async def scenario() -> Findings:
        async with counters.open() as counter:
            velocity = check(counter, ip_limit=1)
            first = Arrival(A, 0, email="a@example.com", client_ip=client_ip, channel=channel)
            later = Arrival(B, 1, email="b@example.com", client_ip=client_ip, channel=channel)
            await observe(velocity, first)
            return (await observe(velocity, later))[B]

    findings: Findings = run(scenario)
    assert findings.flags == ()
    assert count_of(findings, "client_ip") is None


def test_a_limit_of_zero_turns_its_dimension_off(counters: Counters) -> None:
    async def scenario() -> dict[str, Findings]:
        async with counters.open() as counter:
            velocity = check(counter, limit=0, ip_limit=0)
            return await observe(velocity, *(Arrival(f"app-{i}", i, phone="+1 415 555 0100",
                                                     client_ip=PUBLIC_IP) for i in range(9)))

    assert run(scenario) == {}


def test_values_reach_the_counter_only_as_keyed_hashes(counters: Counters) -> None:
    arrival = Arrival(A, 0, email="ada@example.com", phone="+1 415 555 0100",
                      client_ip=PUBLIC_IP)

    async def scenario() -> None:
        async with counters.open() as counter:
            await observe(check(counter), arrival)

    run(scenario)

    stored = counters.stored_bytes()
    assert stored  # something was stored, none of it in clear
    for needle in (b"ada@example.com", b"4155550100", PUBLIC_IP.encode()):
        assert needle not in stored


# -- the counters themselves ------------------------------------------------------------------


def obs(app_id: str, at_s: float, key: str = "email:abc") -> Observation:
    return Observation(key, app_id, (T0_NS + round(at_s * S_NS)) // 1_000)


def now_us(at_s: float) -> int:
    return (T0_NS + round(at_s * S_NS)) // 1_000


def test_a_redelivered_observation_is_stored_once(counters: Counters) -> None:
    async def scenario() -> list[list[int]]:
        async with counters.open() as counter:
            first = await counter.observe([obs(A, 0)], window_us=WINDOW_US, now_us=now_us(0))
            again = await counter.observe([obs(A, 0), obs(A, 0)], window_us=WINDOW_US,
                                          now_us=now_us(5))
            after = await counter.observe([obs(B, 10)], window_us=WINDOW_US, now_us=now_us(10))
            return [first, again, after]

    assert run(scenario) == [[1], [1, 1], [2]]


def test_observations_older_than_the_kept_windows_are_forgotten(counters: Counters) -> None:
    # Given an observation, and another KEEP_WINDOWS windows and a second later
    later_s = KEEP_WINDOWS * WINDOW_S + 1

    async def scenario() -> None:
        async with counters.open() as counter:
            await counter.observe([obs(A, 0)], window_us=WINDOW_US, now_us=now_us(0))
            await counter.observe([obs(B, later_s)], window_us=WINDOW_US,
                                  now_us=now_us(later_s))

    run(scenario)

    # Then only the later one is kept
    assert counters.members("email:abc") == [B]


def test_observations_within_the_kept_windows_stay(counters: Counters) -> None:
    # An application that waited in a backlog still needs the peers of its own window.
    within_s = KEEP_WINDOWS * WINDOW_S - 1

    async def scenario() -> None:
        async with counters.open() as counter:
            await counter.observe([obs(A, 0)], window_us=WINDOW_US, now_us=now_us(0))
            await counter.observe([obs(B, within_s)], window_us=WINDOW_US,
                                  now_us=now_us(within_s))

    run(scenario)

    assert sorted(counters.members("email:abc")) == [A, B]


def test_an_empty_batch_asks_nothing(counters: Counters) -> None:
    async def scenario() -> list[int]:
        async with counters.open() as counter:
            return await counter.observe([], window_us=WINDOW_US, now_us=now_us(0))

    assert run(scenario) == []


def test_redis_sets_expire_after_the_kept_windows(redis_server: RedisServer) -> None:
    redis_server.flushall()

    async def scenario() -> None:
        counter = RedisVelocityCounter.from_url(redis_server.url)
        await counter.open()
        try:
            await counter.observe([obs(A, 0)], window_us=WINDOW_US, now_us=now_us(0))
        finally:
            await counter.close()

    run(scenario)

    with redis_server.client() as client:
        ttl_ms = client.pttl(VELOCITY_PREFIX + "email:abc")
    assert 0 < ttl_ms <= KEEP_WINDOWS * WINDOW_S * 1000


# -- outages --------------------------------------------------------------------------------


def test_unreachable_redis_raises_velocity_unavailable_on_open() -> None:
    counter = RedisVelocityCounter.from_url(f"redis://127.0.0.1:{free_port()}/0",
                                            connect_timeout_s=0.5)

    with pytest.raises(VelocityUnavailable):
        run(counter.open)
    run(counter.close)


@pytest.mark.slow  # starts a process
def test_redis_going_away_raises_velocity_unavailable(tmp_path: Path) -> None:
    server = RedisServer(tmp_path).start()

    async def scenario() -> None:
        counter = RedisVelocityCounter.from_url(server.url, socket_timeout_s=1.0,
                                                connect_timeout_s=0.5)
        await counter.open()
        try:
            server.stop()
            await counter.observe([obs(A, 0)], window_us=WINDOW_US, now_us=now_us(0))
        finally:
            await counter.close()

    try:
        with pytest.raises(VelocityUnavailable):
            run(scenario)
    finally:
        server.stop()


def test_sqlite_counter_on_a_closed_store_file_raises_velocity_unavailable(
    tmp_path: Path,
) -> None:
    counters = Counters("sqlite", tmp_path)

    async def scenario() -> None:
        async with counters.open() as counter:
            assert counters.store is not None
            await counters.store.close()
            await counter.observe([obs(A, 0)], window_us=WINDOW_US, now_us=now_us(0))

    with pytest.raises(VelocityUnavailable):
        run(scenario)


def test_sqlite_counter_refuses_a_file_the_store_has_not_migrated(tmp_path: Path) -> None:
    database = SQLiteDatabase(tmp_path / "store.db", unavailable=StoreUnavailable)
    database.open()
    try:
        with pytest.raises(VelocityUnavailable, match="no such table"):
            run(SQLiteVelocityCounter(database).open)
    finally:
        database.close()


# -- configuring -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "options",
    [{"limit": -1}, {"ip_limit": -1}, {"window_s": 0.5}, {"window_s": float("nan")},
     {"window_s": float("inf")}],
)
def test_nonsensical_velocity_settings_are_refused(tmp_path: Path, options: dict[str, Any]
                                                   ) -> None:
    arguments: dict[str, Any] = {"limit": LIMIT, "ip_limit": IP_LIMIT, "window_s": WINDOW_S}
    with pytest.raises(ValueError, match="expected velocity limits"):
        VelocityCheck(SQLiteVelocityCounter(
                          SQLiteDatabase(tmp_path / "x.db", unavailable=StoreUnavailable)),
                      hash_key=b"k" * 32,
                      **(arguments | options))


def test_velocity_settings_have_the_documented_defaults() -> None:
    settings = Settings.from_env({})

    assert (settings.velocity_limit, settings.velocity_ip_limit) == (3, 10)
    assert settings.velocity_window_s == 3600.0
