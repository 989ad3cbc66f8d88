"""A start that cannot work: `serve`, `api` and `worker` print one line naming what is
missing and how to set it, and exit non-zero (2: a setting; 1: a backend unreachable).

The real CLI in a subprocess, on a throwaway Redis and a fresh PostgreSQL database.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from loanflow.pii import new_key_text
from tests.conftest import LOANFLOW, Deployment, ServerProcess, free_port
from tests.throwaway.postgres import SHARED_ADMIN_URL, fresh_database
from tests.throwaway.redis import RedisServer

#: Every test starts `loanflow` or a throwaway Redis in a process: the slow tier.
pytestmark = pytest.mark.slow

#: Every way to start the service: one process, its multiprocess form, each role.
COMMANDS = [
    pytest.param(["serve"], id="serve"),
    pytest.param(["serve", "--api-workers", "2", "--processors", "1"], id="serve-processes"),
    pytest.param(["api"], id="api"),
    pytest.param(["worker"], id="worker"),
]
#: A start that fails must fail fast: no server is ever waited for.
START_TIMEOUT_S = 60


@pytest.fixture(scope="module")
def store_url() -> Iterator[str]:
    with fresh_database(SHARED_ADMIN_URL) as url:
        yield url


@pytest.fixture(scope="module")
def non_durable_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """As the machine's own Redis and many a development one: no AOF."""
    server = RedisServer(tmp_path_factory.mktemp("redis-no-aof"),
                         extra_args=("--appendonly", "no")).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def durable_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


def start(tmp_path: Path, command: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    """Run `loanflow COMMAND` to its end (it must end: the start cannot work)."""
    variables = {"LOANFLOW_DATA_DIR": str(tmp_path), "LOANFLOW_BROKER_URL": "",
                 "LOANFLOW_STORE_URL": "", "LOANFLOW_PII_KEY": "", "LOANFLOW_UNSAFE_REDIS": "",
                 **env}
    return subprocess.run(
        [*LOANFLOW, *command, "--port", str(free_port())], capture_output=True, text=True,
        timeout=START_TIMEOUT_S, env={**os.environ, **variables},
    )


def the_one_line(done: subprocess.CompletedProcess[str]) -> str:
    """The refusal: stderr's last line, and no traceback anywhere."""
    assert "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.strip().splitlines()
    assert lines, f"nothing on stderr; stdout: {done.stdout}"
    assert lines[-1].startswith("loanflow: cannot start: "), done.stderr
    # The other lines, if any, are the log's (a migration applied), never an error.
    assert all('"level":"error"' not in line for line in lines[:-1]), done.stderr
    return lines[-1]


@pytest.mark.parametrize("command", COMMANDS)
def test_a_redis_without_aof_stops_the_start_with_exit_status_2(
    tmp_path: Path, command: list[str], non_durable_redis: RedisServer, store_url: str
) -> None:
    done = start(tmp_path, command, LOANFLOW_BROKER_URL=non_durable_redis.url,
                 LOANFLOW_STORE_URL=store_url, LOANFLOW_PII_KEY=new_key_text())

    line = the_one_line(done)
    assert done.returncode == 2
    assert "appendonly is no: set `appendonly yes`" in line
    assert "LOANFLOW_UNSAFE_REDIS=1" in line


@pytest.mark.parametrize("command", COMMANDS)
def test_production_without_a_pii_key_names_the_variable_and_how_to_make_one(
    tmp_path: Path, command: list[str], durable_redis: RedisServer, store_url: str
) -> None:
    done = start(tmp_path, command, LOANFLOW_BROKER_URL=durable_redis.url,
                 LOANFLOW_STORE_URL=store_url)

    line = the_one_line(done)
    assert done.returncode == 2
    assert "LOANFLOW_PII_KEY is required" in line
    assert "urandom(32)" in line


@pytest.mark.parametrize("command", COMMANDS)
def test_a_bad_pinned_hash_key_names_the_variable_and_not_the_value(
    tmp_path: Path, command: list[str]
) -> None:
    done = start(tmp_path, command, LOANFLOW_PII_HASH_KEY="s3cret-but-short")

    line = the_one_line(done)
    assert done.returncode == 2
    assert "LOANFLOW_PII_HASH_KEY: expected the base64 of 32 bytes" in line
    assert "s3cret" not in done.stderr + done.stdout


@pytest.mark.parametrize("command", COMMANDS)
def test_an_unreachable_store_names_the_variable(
    tmp_path: Path, command: list[str], durable_redis: RedisServer
) -> None:
    done = start(tmp_path, command, LOANFLOW_BROKER_URL=durable_redis.url,
                 LOANFLOW_STORE_URL=f"postgresql://postgres@127.0.0.1:{free_port()}/loanflow",
                 LOANFLOW_PII_KEY=new_key_text())

    line = the_one_line(done)
    assert done.returncode == 1
    assert "cannot reach the store" in line
    assert "LOANFLOW_STORE_URL" in line


@pytest.mark.parametrize("command", COMMANDS)
def test_an_unreachable_broker_names_the_variable(
    tmp_path: Path, command: list[str], store_url: str
) -> None:
    done = start(tmp_path, command, LOANFLOW_BROKER_URL=f"redis://127.0.0.1:{free_port()}/0",
                 LOANFLOW_STORE_URL=store_url, LOANFLOW_PII_KEY=new_key_text())

    line = the_one_line(done)
    assert done.returncode == 1
    assert "cannot reach the broker" in line
    assert "LOANFLOW_BROKER_URL" in line


@pytest.mark.parametrize("url", ["redis://127.0.0.1:port/0", "redis://[::1/0"])
@pytest.mark.parametrize("command", COMMANDS)
def test_a_malformed_url_names_the_variable(
    tmp_path: Path, command: list[str], url: str, store_url: str
) -> None:
    done = start(tmp_path, command, LOANFLOW_BROKER_URL=url, LOANFLOW_STORE_URL=store_url,
                 LOANFLOW_PII_KEY=new_key_text())

    line = the_one_line(done)
    assert done.returncode == 2
    assert "LOANFLOW_BROKER_URL: malformed redis:// URL" in line


@pytest.mark.parametrize("command", COMMANDS)
def test_a_malformed_sentinel_url_names_the_variable_and_the_form(
    tmp_path: Path, command: list[str], store_url: str
) -> None:
    done = start(tmp_path, command, LOANFLOW_BROKER_URL="redis+sentinel://:pw@h1:26379,h2",
                 LOANFLOW_STORE_URL=store_url, LOANFLOW_PII_KEY=new_key_text())

    line = the_one_line(done)
    assert done.returncode == 2
    assert line == ("loanflow: cannot start: LOANFLOW_BROKER_URL: malformed redis+sentinel://"
                    " URL: expected redis+sentinel://HOST:PORT[,HOST:PORT…]/SERVICE_NAME[/DB]:"
                    " each Sentinel as HOST:PORT, got 'h2'")


@pytest.mark.parametrize("command", COMMANDS)
def test_a_malformed_multi_host_store_url_names_the_variable_and_the_host(
    tmp_path: Path, command: list[str], durable_redis: RedisServer
) -> None:
    done = start(tmp_path, command, LOANFLOW_BROKER_URL=durable_redis.url,
                 LOANFLOW_STORE_URL="postgresql://app:s3cret@pg1:5432,pg2:port/loanflow",
                 LOANFLOW_PII_KEY=new_key_text())

    line = the_one_line(done)
    assert done.returncode == 2
    assert line == ("loanflow: cannot start: LOANFLOW_STORE_URL: malformed postgresql:// URL:"
                    " expected postgresql://[USER[:PASSWORD]@]HOST[:PORT][,HOST[:PORT]…]/DATABASE:"
                    " a port from 1 to 65535, got 'port'")


@pytest.mark.parametrize("flag", [{"unsafe_redis": "1"}, {"unsafe_redis": "true"}])
def test_the_unsafe_flag_starts_on_a_redis_without_aof_and_readyz_says_unsafe(
    tmp_path: Path, flag: dict[str, str], non_durable_redis: RedisServer, store_url: str
) -> None:
    deployment = Deployment(tmp_path, broker_url=non_durable_redis.url, store_url=store_url)
    server = ServerProcess(deployment, api_workers="2", **flag).start()
    try:
        ready = httpx.get(server.url + "/readyz", timeout=5)
    finally:
        server.stop()

    assert ready.status_code == 200
    assert ready.json()["durability"].startswith("UNSAFE (LOANFLOW_UNSAFE_REDIS=1)")


@pytest.mark.parametrize("command", [
    ["serve"], ["api"], ["worker"], ["dead-letters", "list"], ["dead-letters", "replay"],
])
def test_unsafe_redis_is_a_flag_of_every_command_that_opens_the_broker(
    command: list[str],
) -> None:
    done = subprocess.run([*LOANFLOW, *command, "--help"], capture_output=True, text=True,
                          timeout=START_TIMEOUT_S, check=True)
    assert "--unsafe-redis" in done.stdout
