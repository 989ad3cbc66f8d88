"""An application that kills its worker process takes only itself down: a real `serve`
whose workers `os._exit` on it (LOANFLOW_CRASH_MARKER) and are restarted, in both modes.
The culprit ends dead-lettered as a crash loop; each batch neighbour is stored once."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from loanflow.pipeline.poison import CRASH_EXIT_STATUS
from tests.api.test_submit import submit
from tests.conftest import (
    Deployment,
    ServerProcess,
    auth,
    create_key,
    production_deployment,
    sample_application,
)

pytestmark = pytest.mark.slow

NEIGHBOURS = 9
CRASH_MARKER = "crash-"


@pytest.fixture(params=["embedded", "production"])
def where(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[Deployment]:
    # Not the module-scoped `deployment` fixture: each mode gets a fresh one here.
    data_dir = tmp_path_factory.mktemp(request.param)
    if request.param == "embedded":
        yield Deployment(data_dir)
        return
    with production_deployment(data_dir) as deployment:
        yield deployment


def accept(where: Deployment, key: str, external_ids: list[str]) -> list[str]:
    """Submitted while no worker runs, so they wait as one batch; their ids, in order."""
    accepting = ServerProcess(where, processors="0").start()
    try:
        with httpx.Client(base_url=accepting.url, timeout=10) as client:
            answers = [submit(client, key, sample_application(external_id=external_id))
                       for external_id in external_ids]
    finally:
        accepting.stop()
    assert [a.status_code for a in answers] == [202] * len(external_ids)
    return [a.json()["id"] for a in answers]


def wait_until_settled(where: Deployment, ids: list[str], timeout_s: float = 120.0
                       ) -> dict[str, str]:
    """Poll the store until each id has left processing; id -> status."""
    deadline = time.monotonic() + timeout_s
    while True:
        statuses = {app_id: status for app_id, _, status in where.stored()}
        if all(app_id in statuses for app_id in ids):
            return statuses
        assert time.monotonic() < deadline, f"{len(statuses)} of {len(ids)} settled: {statuses}"
        time.sleep(0.2)


def test_an_application_that_kills_its_worker_is_dead_lettered_alone(where: Deployment) -> None:
    # Given a batch of ten, the fourth of which kills any worker that assesses it
    key = create_key(where, "submit,read")
    external_ids = [f"n-{i}" for i in range(3)] + [CRASH_MARKER + "1"] + [
        f"n-{i}" for i in range(3, NEIGHBOURS)]
    ids = accept(where, key, external_ids)
    culprit = ids[3]

    # When workers (restarted after each crash) process it: two attempts, so a crash
    # loop is declared on the fifth delivery. Production runs two API processes: with
    # one, serve would run the processor inside it, and a crash would take the API along
    # with no supervisor to restart it.
    server = ServerProcess(
        where, api_workers="2" if where.mode == "production" else "1", processors="1",
        crash_marker=CRASH_MARKER, max_attempts="2", visibility_timeout_s="1",
    ).start()
    try:
        statuses = wait_until_settled(where, ids)
        with httpx.Client(base_url=server.url, timeout=10) as client:
            letter = client.get(f"/v1/dead-letters/{culprit}", headers=auth(key))
    finally:
        server.stop()

    # Then only the culprit is dead-lettered, as a crash loop; every neighbour is stored
    # once, and the workers did die on it
    assert statuses.pop(culprit) == "dead_lettered"
    assert letter.status_code == 200, letter.text
    assert letter.json()["error_code"] == "ProcessorCrashLoop"
    assert statuses == {app_id: "stored" for app_id in ids if app_id != culprit}
    assert sorted(app_id for app_id, _, _ in where.stored()) == sorted(ids)
    assert f"exited with {CRASH_EXIT_STATUS}" in server.log_path.read_text()
