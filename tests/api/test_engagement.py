"""Dashboard engagement: viewers now across every API process, sign-ins and actions today."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from websockets.sync.client import ClientConnection, connect

from loanflow.backends.sqlite.store import SQLiteStore
from loanflow.metrics.engagement import (
    ADMINISTRATION,
    SIGN_IN,
    Engagement,
    EngagementReader,
    viewers_of,
)
from loanflow.rotation.reseal import AUDIT_ACTION as RESEAL_ACTION
from loanflow.store.api_keys import KEY_CREATED, KEY_REVOKED
from tests.conftest import Deployment, ServerProcess, auth

#: Flush, settle and the hub's next tick: a few seconds at most.
WAIT_S = 10.0


@pytest.fixture(scope="module")
def second_server(deployment: Deployment) -> Iterator[ServerProcess]:
    """Another API process over the same broker, store and metrics."""
    srv = ServerProcess(deployment).start()
    yield srv
    srv.stop()


def live(server: ServerProcess, key: str) -> ClientConnection:
    url = server.url.replace("http://", "ws://") + "/v1/live"
    return connect(url, additional_headers=auth(key), open_timeout=10)


def engagement_becomes(server: ServerProcess, key: str, expected: dict[str, int]) -> None:
    seen = None
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        seen = httpx.get(server.url + "/v1/metrics/summary", headers=auth(key),
                         timeout=5).json()["engagement"]
        if seen == expected:
            return
        time.sleep(0.2)
    raise AssertionError(f"engagement {seen}, expected {expected}")


def test_viewers_on_two_processes_and_sign_ins_add_up_on_each(server, second_server, keys):
    for srv in (server, second_server):
        answer = httpx.post(srv.url + "/login", data={"token": keys["read"]})
        assert answer.status_code == 303 and answer.headers["location"] == "/"

    with live(server, keys["read"]), live(second_server, keys["read"]):
        for srv in (server, second_server):
            engagement_becomes(srv, keys["read"],
                               {"viewers": 2, "sessions_today": 2, "actions_today": 0})

    engagement_becomes(server, keys["read"],
                       {"viewers": 0, "sessions_today": 2, "actions_today": 0})


def test_a_failed_sign_in_is_not_a_session(server, keys):
    before = httpx.get(server.url + "/v1/metrics/summary", headers=auth(keys["read"]),
                       timeout=5).json()["engagement"]["sessions_today"]
    httpx.post(server.url + "/login", data={"token": "lf_not_a_key"})
    time.sleep(0.5)
    engagement_becomes(server, keys["read"], {"viewers": 0, "sessions_today": before,
                                              "actions_today": 0})


def test_counts_cover_today_only_and_administration_is_no_operator_action(
    tmp_path: Path,
) -> None:
    async def scenario() -> tuple[Engagement | None, Engagement | None]:
        store = SQLiteStore(tmp_path / "store.db")
        await store.open()
        try:
            now_s = 1_800_000_000.0  # 2027-01-15 08:00 UTC
            yesterday_ns = int((now_s - 9 * 3600) * 1e9)
            today_ns = int(now_s * 1e9)
            for at_ns, action in ((yesterday_ns, SIGN_IN), (today_ns, SIGN_IN),
                                  (today_ns, "replay"), (today_ns, "discard"),
                                  (today_ns, KEY_CREATED), (today_ns, KEY_REVOKED),
                                  (today_ns, RESEAL_ACTION)):
                await store.record_audit(at_ns=at_ns, actor="k", action=action, target="t",
                                         detail={})
            reader = EngagementReader(store, clock_s=lambda: now_s)
            first = await reader.read({"viewers@a": 2, "viewers@b": 1, "queue_depth": 7})
            await store.record_audit(at_ns=int(now_s * 1e9), actor="k", action="replay",
                                     target="t", detail={})
            cached = await reader.read({})
            return first, cached
        finally:
            await store.close()

    first, cached = asyncio.run(scenario())

    assert first == Engagement(viewers=3, sessions_today=1, actions_today=2)
    # Within the cache period the store is not asked again: the new replay shows later.
    assert cached == Engagement(viewers=0, sessions_today=1, actions_today=2)
    assert viewers_of({"viewers@x": 4, "viewers_other": 9}) == 4


def test_administration_names_the_actions_its_writers_audit():
    assert {KEY_CREATED, KEY_REVOKED, RESEAL_ACTION} == ADMINISTRATION
