"""The shipped alerting rules: printed by `loanflow alert-rules`, accepted by promtool,
each alert firing on its condition and quiet on its near miss (`promtool test rules`
with alert_rules_test.yml); and `/metrics` keeps answering, with `loanflow_backend_up`,
while the broker is down, which is when those alerts matter."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import LOANFLOW, Deployment, ServerProcess
from tests.throwaway.postgres import SHARED_ADMIN_URL, fresh_database
from tests.throwaway.redis import RedisServer

#: They run promtool, the CLI and a server: processes of their own.
pytestmark = pytest.mark.slow

CASES = Path(__file__).with_name("alert_rules_test.yml")


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool is missing: apt-get install -y prometheus (the check must run)")
    return subprocess.run([promtool, *args], capture_output=True, text=True, timeout=60)


@pytest.fixture
def printed_rules(tmp_path: Path) -> Path:
    """What `loanflow alert-rules` prints, saved where the test cases expect it."""
    done = subprocess.run([*LOANFLOW, "alert-rules"], capture_output=True, text=True,
                          timeout=60, check=True)
    path = tmp_path / "alerts.yml"
    path.write_text(done.stdout)
    return path


def test_promtool_accepts_the_printed_rules(printed_rules: Path) -> None:
    done = _promtool("check", "rules", str(printed_rules))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 6 rules found" in done.stdout


def test_each_alert_fires_on_its_condition_and_stays_quiet_on_its_near_miss(
    printed_rules: Path,
) -> None:
    shutil.copy(CASES, printed_rules.parent / CASES.name)
    done = _promtool("test", "rules", str(printed_rules.parent / CASES.name))
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_alert_has_test_cases(printed_rules: Path) -> None:
    alerts = set(re.findall(r"^\s*- alert: (\w+)", printed_rules.read_text(), re.M))
    tested = set(re.findall(r"alertname: (\w+)", CASES.read_text()))
    assert alerts and alerts == tested


def _metrics(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    answer = httpx.get(url + "/metrics", timeout=30)
    assert answer.status_code == 200, answer.text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(answer.text)
            for s in family.samples}


@pytest.fixture
def production(tmp_path: Path) -> Iterator[tuple[ServerProcess, RedisServer]]:
    """`loanflow serve` over its own Redis (to stop) and a fresh database."""
    redis_dir = tmp_path / "redis"
    redis_dir.mkdir()
    redis = RedisServer(redis_dir).start()
    try:
        with fresh_database(SHARED_ADMIN_URL) as store_url:
            server = ServerProcess(Deployment(tmp_path, broker_url=redis.url,
                                              store_url=store_url)).start()
            try:
                yield server, redis
            finally:
                server.stop()
    finally:
        redis.stop()


def test_metrics_say_which_backend_is_down_and_leave_the_totals_out_meanwhile(
    production: tuple[ServerProcess, RedisServer],
) -> None:
    server, redis = production
    up = _metrics(server.url)
    assert {labels: value for (name, labels), value in up.items()
            if name == "loanflow_backend_up"} == {
        (("backend", "broker"),): 1.0, (("backend", "metrics"),): 1.0,
        (("backend", "store"),): 1.0}
    assert ("loanflow_applications_received_total", ()) in up

    redis.stop()  # the broker and the metrics backend (one Redis here)
    down = _metrics(server.url)

    assert {labels: value for (name, labels), value in down.items()
            if name == "loanflow_backend_up"} == {
        (("backend", "broker"),): 0.0, (("backend", "metrics"),): 0.0,
        (("backend", "store"),): 1.0}
    # Left out, not zeroed: a drop to zero would read as a counter reset.
    assert not any(name.endswith("_total") for name, _ in down)
