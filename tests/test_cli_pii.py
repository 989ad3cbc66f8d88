"""`loanflow pii status | reseal | hash-key`: a PII key rotated and retired end to end, in
each mode, with real `serve` processes; the re-seal stopped, failing and resumed; what
the commands refuse. The real CLI in subprocesses."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from loanflow.backends.postgres.store import PostgresStore
from loanflow.backends.sqlite.store import SQLiteStore
from loanflow.domain.flags import FLAG_DUPLICATE_SSN
from loanflow.pii import PiiCipher, new_key_text, parse_keys
from loanflow.store.base import Store
from tests.api.test_submit import submit
from tests.conftest import (
    LOANFLOW,
    Deployment,
    ServerProcess,
    auth,
    create_key,
    sample_application,
    wait_for_status,
)
from tests.rotation.stored import pii
from tests.store.test_contract import record
from tests.throwaway.postgres import SHARED_ADMIN_URL, execute_sql, fresh_database

pytestmark = pytest.mark.slow

OLD, NEW, LOST = new_key_text(), new_key_text(), new_key_text()
OLD_ID, NEW_ID = PiiCipher(parse_keys(OLD)).key_id, PiiCipher(parse_keys(NEW)).key_id
#: What must never be printed: the sample application's SSN and birth date.
SECRETS = ("123-45-6789", "123456789", "1985-12-10")


def pii_cli(deployment: Deployment, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`loanflow pii ARGS` against a deployment, `env` over its variables; not checked."""
    done = subprocess.run(
        [*LOANFLOW, "pii", *args], capture_output=True, text=True, timeout=120,
        env={**os.environ, **deployment.env(), **env},
    )
    for secret in SECRETS:
        assert secret not in done.stdout + done.stderr
    return done


def test_a_key_is_rotated_and_retired_end_to_end(deployment: Deployment) -> None:
    # Given applications and a dead letter stored under OLD, with OLD the only key.
    key = create_key(deployment, "submit,read,operate")
    original = sample_application()
    server = ServerProcess(deployment, pii_key=OLD, fail_marker="POISON-",
                           max_attempts="1").start()
    try:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            first = submit(client, key, original, idem="first-submission").json()
            poison = submit(client, key, sample_application(external_id="POISON-1")).json()
            assert wait_for_status(client, key, first["id"])["status"] == "stored"
            assert wait_for_status(client, key, poison["id"])["status"] == "dead_lettered"
    finally:
        server.stop()
    rotating = {"LOANFLOW_PII_KEY": f"{NEW},{OLD}"}

    # When NEW is listed first, everything is re-sealed, and the hash key pinned.
    before = json.loads(pii_cli(deployment, "status", "--json", **rotating).stdout)
    resealed = pii_cli(deployment, "reseal", **rotating)
    again = pii_cli(deployment, "reseal", "--json", **rotating)
    unpinned = pii_cli(deployment, "status", "--key", OLD_ID, **rotating)
    hash_key = pii_cli(deployment, "hash-key", **rotating).stdout.splitlines()[-1]
    pinned = {**rotating, "LOANFLOW_PII_HASH_KEY": hash_key}
    droppable = pii_cli(deployment, "status", "--key", OLD_ID, **pinned)
    retired = {"LOANFLOW_PII_KEY": NEW, "LOANFLOW_PII_HASH_KEY": hash_key}
    after = json.loads(pii_cli(deployment, "status", "--json", **retired).stdout)

    assert [(k["key_id"], k["applications"], k["dead_letters"]) for k in before["keys"]] == [
        (NEW_ID, 0, 0), (OLD_ID, 1, 1)]
    assert resealed.returncode == 0, resealed.stderr
    assert f"Re-sealed under key {NEW_ID}: 1 applications and 1 dead letters" in resealed.stdout
    assert json.loads(again.stdout)["resealed"] == {"applications": 0, "dead_letters": 0}
    assert unpinned.returncode == 1 and "the keyed hashes derive from it" in unpinned.stdout
    assert droppable.returncode == 0, droppable.stdout
    assert f"Can key {OLD_ID} be dropped now? Yes" in droppable.stdout
    assert [(k["key_id"], k["role"], k["applications"], k["dead_letters"])
            for k in after["keys"]] == [(NEW_ID, "current", 1, 1)]
    assert after["hash_key"]["id"] == before["hash_key"]["id"]
    assert after["hash_key"]["matching"] == after["hash_key"]["sampled"] >= 1
    assert after["warnings"] == []

    # Then, with OLD gone, old data opens, old hashes match, old retries replay.
    server = ServerProcess(deployment, pii_key=NEW, pii_hash_key=hash_key).start()
    try:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            shown = client.get(f"/v1/applications/{first['id']}", headers=auth(key)).json()
            letter = client.get(f"/v1/dead-letters/{poison['id']}", headers=auth(key)).json()
            same_person = submit(client, key, sample_application(external_id="crm-2")).json()
            flagged = wait_for_status(client, key, same_person["id"])
            retry = submit(client, key, original, idem="first-submission")
            audit = client.get("/v1/audit", headers=auth(key)).json()["items"]
    finally:
        server.stop()
    assert shown["application"]["applicant"]["ssn"] == "***-**-6789"
    assert letter["application"]["applicant"]["ssn"] == "***-**-6789"
    assert FLAG_DUPLICATE_SSN in flagged["enrichment"]["flags"]
    assert retry.status_code == 202 and retry.headers["Idempotent-Replayed"] == "true"
    assert retry.json()["id"] == first["id"]
    runs = [e for e in audit if e["action"] == "pii_reseal"]
    assert [(e["target"], e["detail"]["resealed"]) for e in runs] == [
        (f"pii-key:{NEW_ID}", {"applications": 0, "dead_letters": 0}),
        (f"pii-key:{NEW_ID}", {"applications": 1, "dead_letters": 1})]
    assert runs[1]["actor"].startswith("cli:") and runs[1]["detail"]["from_keys"] == {OLD_ID: 2}


# -- one store, filled directly -------------------------------------------------------


def fill(store: Store, count: int, cipher: PiiCipher, prefix: str = "app") -> None:
    async def save() -> None:
        await store.open()
        try:
            for start in range(0, count, 1000):
                await store.save_results([
                    record(id=f"{prefix}-{n:06d}", pii_sealed=cipher.seal(pii()))
                    for n in range(start, min(count, start + 1000))])
        finally:
            await store.close()

    asyncio.run(save())


def sqlite_counts(tmp_path: Path) -> dict[str, int]:
    with sqlite3.connect(tmp_path / "store.db") as db:
        rows = db.execute("SELECT hex(substr(pii_sealed, 1, 4)), count(*) FROM applications"
                          " GROUP BY 1").fetchall()
    return {key_id.lower(): n for key_id, n in rows}


def audit_details(store: Store) -> list[dict[str, Any]]:
    async def read() -> list[dict[str, Any]]:
        await store.open()
        try:
            return [e.detail for e in await store.audit_trail(limit=10)
                    if e.action == "pii_reseal"]
        finally:
            await store.close()

    return asyncio.run(read())


def test_a_value_no_configured_key_opens_is_named_and_the_exit_status_says_so(
    tmp_path: Path,
) -> None:
    deployment = Deployment(tmp_path)
    fill(SQLiteStore(tmp_path / "store.db"), 3, PiiCipher(parse_keys(OLD)))
    fill(SQLiteStore(tmp_path / "store.db"), 1, PiiCipher(parse_keys(LOST)), prefix="lost")

    done = pii_cli(deployment, "reseal", LOANFLOW_PII_KEY=f"{NEW},{OLD}")

    assert done.returncode == 1
    assert "3 applications" in done.stdout
    assert "no configured key opens them: 1 (applications lost-000000)." in done.stdout
    [detail] = audit_details(SQLiteStore(tmp_path / "store.db"))
    assert detail["unopenable"] == {"count": 1, "applications": ["lost-000000"],
                                    "dead_letters": []}


def test_an_interrupted_reseal_stops_after_its_batch_and_resumes(tmp_path: Path) -> None:
    deployment = Deployment(tmp_path)
    fill(SQLiteStore(tmp_path / "store.db"), 2000, PiiCipher(parse_keys(OLD)))
    command = [*LOANFLOW, "pii", "reseal", "--batch", "1"]
    env = {**os.environ, **deployment.env(), "LOANFLOW_PII_KEY": f"{NEW},{OLD}"}

    with subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True) as proc:
        deadline = time.monotonic() + 30
        while not sqlite_counts(tmp_path).get(NEW_ID) and time.monotonic() < deadline:
            time.sleep(0.005)
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    stopped_at = sqlite_counts(tmp_path)
    resumed = pii_cli(deployment, "reseal", "--batch", "500", LOANFLOW_PII_KEY=f"{NEW},{OLD}")

    assert proc.returncode == 130, out
    assert "Stopped before the end: run `loanflow pii reseal` again" in out
    assert 0 < stopped_at[NEW_ID] < 2000 and stopped_at[OLD_ID] > 0
    assert resumed.returncode == 0
    assert f"{stopped_at[OLD_ID]:,} applications" in resumed.stdout
    assert sqlite_counts(tmp_path) == {NEW_ID: 2000}
    completes = [d["complete"] for d in audit_details(SQLiteStore(tmp_path / "store.db"))]
    assert completes == [True, False]  # newest first


@pytest.fixture
def store_url() -> Iterator[str]:
    with fresh_database(SHARED_ADMIN_URL) as url:
        yield url


def test_a_store_lost_mid_run_stops_the_reseal_and_a_rerun_finishes(
    tmp_path: Path, store_url: str,
) -> None:
    fill(PostgresStore(store_url), 3000, PiiCipher(parse_keys(OLD)))
    deployment = Deployment(tmp_path, store_url=store_url)
    command = [*LOANFLOW, "pii", "reseal", "--batch", "1"]
    env = {**os.environ, **deployment.env(), "LOANFLOW_PII_KEY": f"{NEW},{OLD}"}

    async def resealed() -> int:
        conn = await asyncpg.connect(store_url)
        try:
            return int(await conn.fetchval(
                "SELECT count(*) FROM applications WHERE substr(pii_sealed, 1, 4) = $1",
                bytes.fromhex(NEW_ID)))
        finally:
            await conn.close()

    with subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True) as proc:
        deadline = time.monotonic() + 30
        while not asyncio.run(resealed()) and time.monotonic() < deadline:
            time.sleep(0.01)
        # The store goes away under it: its connections cut, no new one allowed.
        database = store_url.rsplit("/", 1)[1]
        execute_sql(SHARED_ADMIN_URL, f"ALTER DATABASE {database} ALLOW_CONNECTIONS false;"
                    " SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    f" WHERE datname = '{database}'")
        out, err = proc.communicate(timeout=30)
    execute_sql(SHARED_ADMIN_URL, f"ALTER DATABASE {database} ALLOW_CONNECTIONS true")
    stopped_at = asyncio.run(resealed())
    rerun = pii_cli(deployment, "reseal", "--batch", "1000", LOANFLOW_PII_KEY=f"{NEW},{OLD}")

    assert proc.returncode == 1, out + err
    assert "loanflow pii reseal: stopped: " in err
    assert "the audit entry could not be written" in err
    assert "Stopped before the end" in out
    assert 0 < stopped_at < 3000
    assert rerun.returncode == 0, rerun.stderr
    assert asyncio.run(resealed()) == 3000


# -- what the commands refuse ------------------------------------------------------------


@pytest.mark.parametrize("command", [["status"], ["reseal"], ["hash-key"]])
def test_a_bad_pinned_hash_key_stops_each_command_naming_the_variable(
    tmp_path: Path, command: list[str],
) -> None:
    done = pii_cli(Deployment(tmp_path), *command, LOANFLOW_PII_HASH_KEY="s3cret-but-short")

    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].startswith(
        "loanflow: cannot start: LOANFLOW_PII_HASH_KEY: expected the base64 of 32 bytes")
    assert "s3cret" not in done.stdout + done.stderr


@pytest.mark.parametrize(("command", "broker_url"), [
    (["reseal"], ""),  # a re-seal needs the store alone
    (["status"], "redis://127.0.0.1:1/0"),
])
def test_an_unreachable_store_stops_the_command_naming_it(
    tmp_path: Path, command: list[str], broker_url: str,
) -> None:
    deployment = Deployment(tmp_path, broker_url=broker_url,
                            store_url="postgresql://postgres@127.0.0.1:1/loanflow")

    done = pii_cli(deployment, *command, LOANFLOW_PII_KEY=NEW)

    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1].startswith(
        "loanflow: cannot start: cannot reach the store")
    assert "Traceback" not in done.stderr


def test_a_verdict_on_a_key_nobody_has_is_refused(tmp_path: Path) -> None:
    done = pii_cli(Deployment(tmp_path), "status", "--key", "deadbeef",
                   LOANFLOW_PII_KEY=f"{NEW},{OLD}")

    assert done.returncode == 2
    assert "no key with id 'deadbeef'" in done.stderr
    assert NEW_ID in done.stderr and OLD_ID in done.stderr


def test_a_key_given_for_its_id_is_refused_and_never_shown(tmp_path: Path) -> None:
    done = pii_cli(Deployment(tmp_path), "status", "--key", OLD,
                   LOANFLOW_PII_KEY=f"{NEW},{OLD}")

    assert done.returncode == 2
    assert "expected a key id, 8 hex digits" in done.stderr
    assert OLD not in done.stdout + done.stderr


@pytest.mark.parametrize("batch", ["0", "10001", "many"])
def test_a_batch_out_of_range_is_a_usage_error(tmp_path: Path, batch: str) -> None:
    done = pii_cli(Deployment(tmp_path), "reseal", "--batch", batch)

    assert done.returncode == 2
    assert "--batch" in done.stderr
