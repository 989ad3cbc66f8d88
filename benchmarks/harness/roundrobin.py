"""loanflow beside the naive baseline and the lean references, in one round-robin under wrk.

Every target runs against the same throwaway Redis (AOF, appendfsync always)
and PostgreSQL (fsync on), emptied before each, under `wrk -t1 -c64` on the
same cores; rounds alternate the targets so ratios come from one period. Each
target's figure is its end-to-end stored rate (stored until the queue
drained, over the time since the load began; the naive baseline stores in
the request) and the CPU of each of its process groups per stored
application. The references are benchmarks/references/ (adapted from
shared/reference/lean-intake: URLs from the environment).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from tests.throwaway import free_port

from benchmarks.harness.context import Bench, Figure, Result
from benchmarks.harness.procs import tree
from benchmarks.harness.service import Production, loanflow_service, naive_service
from loanflow.apikeys import generate
from loanflow.backends.postgres.store import PostgresStore
from loanflow.loadgen.synthetic import generate as generate_application
from loanflow.pii import new_key_text
from loanflow.settings import AUTO_PROCESSORS

#: Distinct application bodies wrk cycles through (SSNs repeat after these).
BODIES = 20_000
#: Longest wait for a target's queue to drain after the load.
DRAIN_TIMEOUT_S = 180.0
WRK_CONNECTIONS = 64
#: A rate limit far above any load here: its cost counts, its refusals don't.
RATE_LIMIT_PER_S = 1_000_000
TARGETS = ("naive", "lean-onehop", "lean-twohop", "lean-product", "loanflow-production",
           "loanflow-embedded")
#: Each lean target's API module; a module named app_X has its worker in worker_X.py.
LEAN_MODULES = {"lean-onehop": "app_batched", "lean-twohop": "app_twohop",
                "lean-product": "app_product"}
#: The module whose target does loanflow's product work (its bodies, its schema).
PRODUCT_MODULE = "app_product"
_HZ = os.sysconf("SC_CLK_TCK")


@dataclass
class Running:
    """A started target: how to load it, read its stored count and its processes."""

    url: str
    wrk_script: Path
    wrk_env: dict[str, str]
    groups: Callable[[], dict[str, list[int]]]
    stored: Callable[[], int | None]  # None: stored in the request (the naive baseline)
    stop: Callable[[], None]
    #: The target's own database, for a lean target (tests look at its rows).
    database_url: str = ""


@dataclass
class Measured:
    target: str
    round: int
    requests_per_s: float
    stored_per_s: float
    p99_ms: float
    errors: int
    cpu_us: dict[str, float] = field(default_factory=dict)

    @property
    def cpu_total_us(self) -> float:
        return sum(self.cpu_us.values())


def cpu_seconds(pids: list[int]) -> float:
    ticks = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])
    return ticks / _HZ


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def write_bodies(path: Path, count: int = BODIES) -> None:
    rng = random.Random(7)
    with path.open("w") as out:
        for _ in range(count):
            out.write(json.dumps(generate_application(rng), separators=(",", ":")) + "\n")


class Targets:
    """Starts each target over the shared, freshly emptied backends."""

    def __init__(self, production: Production, work_dir: Path, benchmarks_dir: Path, *,
                 api_workers: int, processors: int) -> None:
        self._prod, self._work = production, work_dir
        self._naive = benchmarks_dir / "naive"
        self._references = benchmarks_dir / "references"
        self._script = benchmarks_dir / "roundrobin" / "loanflow_post.lua"
        self._api_workers, self._processors = api_workers, processors
        self._bodies = work_dir / "roundrobin-bodies.ndjson"
        if not self._bodies.exists():
            write_bodies(self._bodies)

    def start(self, name: str) -> Running:
        if name == "naive":
            return self._naive_target()
        if name in LEAN_MODULES:
            return self._reference(LEAN_MODULES[name])
        embedded = name == "loanflow-embedded"
        return self._loanflow(embedded=embedded,
                              api_workers=1 if embedded else self._api_workers,
                              processors=AUTO_PROCESSORS if embedded else self._processors)

    def _backend_groups(self) -> dict[str, list[int]]:
        redis, postgres = self._prod.redis.proc, self._prod.postgres.proc
        return {"postgres": tree(postgres.pid) if postgres else [],
                "redis": tree(redis.pid) if redis else []}

    def _loanflow(self, *, embedded: bool, api_workers: int, processors: int) -> Running:
        service = loanflow_service(self._work, production=None if embedded else self._prod,
                                   api_workers=api_workers, processors=processors,
                                   rate_limit_per_s=RATE_LIMIT_PER_S)

        def groups() -> dict[str, list[int]]:
            pids = service.pids()
            worker = [p for p in pids if "loanflow worker" in _cmdline(p)]
            out = {"api": [p for p in pids if p not in worker], "worker": worker}
            return out if embedded else {**out, **self._backend_groups()}

        def stored() -> int:
            summary = httpx.get(service.url + "/v1/metrics/summary", timeout=10,
                                headers={"Authorization": f"Bearer {service.key}"}).json()
            by_status: dict[str, int] = summary["counts"]["by_status"]
            return sum(by_status.get(k, 0) for k in ("stored", "rejected", "dead_lettered"))

        return Running(service.url, self._script,
                       {"WRK_BODIES": str(self._bodies), "WRK_KEY": service.key},
                       groups, stored, service.stop)

    def _naive_target(self) -> Running:
        service = naive_service(self._naive, self._work, production=self._prod)
        return Running(service.url, self._script,
                       {"WRK_BODIES": str(self._bodies), "WRK_KEY": service.key},
                       lambda: {"api": service.pids(), **self._backend_groups()},
                       lambda: None, service.stop)

    def _reference(self, module: str) -> Running:
        self._prod.empty()
        dsn = self._prod.create_database()
        env = {**os.environ, "REF_DATABASE_URL": dsn, "REF_REDIS_URL": self._prod.redis.url}
        product = module == PRODUCT_MODULE
        if product:  # loanflow's own schema and indexes, as its worker would migrate them
            asyncio.run(_migrate(dsn))
            _, api_key = generate()
            env.update(REF_PII_KEY=new_key_text(), REF_API_KEYS=api_key,
                       REF_RATE_LIMIT_PER_S=str(RATE_LIMIT_PER_S),
                       REF_RATE_LIMIT_BURST=str(max(10_000, int(RATE_LIMIT_PER_S))))
        else:
            subprocess.run(["psql", dsn, "-qf", str(self._references / "schema.sql")],
                           check=True, capture_output=True)
        port = free_port()
        with open(self._work / f"{module}.log", "ab") as log:
            api = subprocess.Popen(
                [sys.executable, "-m", "uvicorn", "--host", "127.0.0.1", "--port", str(port),
                 "--loop", "uvloop", "--http", "httptools", "--no-access-log",
                 "--log-level", "warning", "--workers", "2", f"{module}:app"],
                cwd=self._references, env=env, stdout=log, stderr=log, start_new_session=True)
            worker_script = module.replace("app_", "worker_", 1) + ".py"
            worker = None if not (self._references / worker_script).exists() else (
                subprocess.Popen([sys.executable, worker_script, "w1"], cwd=self._references,
                                 env=env, stdout=log, stderr=log, start_new_session=True))
        url = f"http://127.0.0.1:{port}"
        _wait_answering(url)
        table = "applications" if product else "twohop" if worker else "loans"

        def stored() -> int:
            out = subprocess.run(["psql", dsn, "-tAc", f"SELECT count(*) FROM {table}"],
                                 capture_output=True, text=True).stdout.strip()
            return int(out or 0)

        def stop() -> None:
            for proc in (api, worker):
                if proc is not None and proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGTERM)
                    proc.wait(15)

        script, wrk_env = self._references / "loan_post.lua", {}
        if product:  # loanflow's bodies and headers, as loanflow and the naive baseline get
            script, wrk_env = self._script, {"WRK_BODIES": str(self._bodies),
                                             "WRK_KEY": env["REF_API_KEYS"]}
        return Running(url, script, wrk_env,
                       lambda: {"api": tree(api.pid), "worker": tree(worker.pid) if worker
                                else [], **self._backend_groups()}, stored, stop, dsn)


async def _migrate(dsn: str) -> None:
    """loanflow's migrations, by opening its store once."""
    store = PostgresStore(dsn)
    await store.open()
    await store.close()


def _wait_answering(url: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout_s:.0f}s")


#: Seconds between reads of a stored count; longer than loanflow's metrics flush, so an
#: unchanged count means the queue drained, not that the counters lag.
SETTLE_READ_S = 1.5


def _settled(stored: Callable[[], int | None], timeout_s: float) -> tuple[int | None, float]:
    """The stored count once it stops growing, and when it last grew."""
    last, grew_at = stored(), time.monotonic()
    deadline = time.monotonic() + timeout_s
    while last is not None and time.monotonic() < deadline:
        time.sleep(SETTLE_READ_S)
        now = stored()
        if now == last:
            break
        last, grew_at = now, time.monotonic()
    return last, grew_at


def measure(name: str, round_no: int, running: Running, seconds: float) -> Measured:
    env = {**os.environ, **running.wrk_env, "WRK_NONCE": uuid.uuid4().hex[:8]}
    wrk = ["wrk", "-t1", f"-c{WRK_CONNECTIONS}", "-s", str(running.wrk_script), running.url]
    subprocess.run([*wrk[:3], "-d3s", *wrk[3:]], capture_output=True, env=env)  # warm-up
    stored_before, _ = _settled(running.stored, 60.0)
    groups = running.groups()
    cpu_before = {g: cpu_seconds(p) for g, p in groups.items()}
    env["WRK_NONCE"] = uuid.uuid4().hex[:8]
    started = time.monotonic()
    out = subprocess.run([*wrk[:3], f"-d{seconds:.0f}s", *wrk[3:]], capture_output=True,
                         text=True, env=env).stdout
    found = re.search(r"RESULT (.*)", out)
    if found is None:
        raise RuntimeError(f"wrk gave no result for {name}: {out[-300:]}")
    result = dict(kv.split("=") for kv in found.group(1).split())
    errors = int(result["non2xx"]) + int(result["sock_err"])
    answered = int(result["requests"]) - int(result["non2xx"])
    stored_after, grew_at = _settled(running.stored, seconds + DRAIN_TIMEOUT_S)
    if stored_after is None or stored_before is None:  # stored in the request
        count, stored_per_s = answered, float(result["rps"])
    else:
        count = stored_after - stored_before
        stored_per_s = count / max(grew_at - started, 1e-9)
    groups = running.groups()
    cpu_us = {g: (cpu_seconds(p) - cpu_before.get(g, 0.0)) * 1e6 / max(1, count)
              for g, p in groups.items() if p}
    return Measured(name, round_no, float(result["rps"]), stored_per_s,
                    float(result["p99_ms"]), errors, cpu_us)


def run_rounds(targets: Targets, names: tuple[str, ...], *, rounds: int, seconds: float,
               log: Callable[[str], None]) -> list[Measured]:
    measured = []
    for round_no in range(1, rounds + 1):
        for name in names:
            running = targets.start(name)
            try:
                m = measure(name, round_no, running, seconds)
            finally:
                running.stop()
            log(f"  round {round_no} {name}: stored {m.stored_per_s:,.0f}/s,"
                f" CPU {m.cpu_total_us:,.0f} us/application")
            measured.append(m)
    return measured


def median_by_target(measured: list[Measured]) -> dict[str, Measured]:
    """Each target's round with the median stored rate."""
    out = {}
    for name in dict.fromkeys(m.target for m in measured):
        rounds = sorted((m for m in measured if m.target == name), key=lambda m: m.stored_per_s)
        out[name] = rounds[(len(rounds) - 1) // 2]
    return out


def ratio(a: float | None, b: float | None) -> float | None:
    return None if not a or not b else round(a / b, 2)


def round_ratios(measured: list[Measured], target: str, baseline: str) -> list[float]:
    """target / baseline stored rate, round by round (each from one period)."""
    out = []
    for round_no in sorted({m.round for m in measured}):
        pair = {m.target: m.stored_per_s for m in measured if m.round == round_no}
        if pair.get(target) and pair.get(baseline):
            out.append(pair[target] / pair[baseline])
    return out


def median(values: list[float]) -> float | None:
    return round(statistics.median(values), 2) if values else None


#: The issue's targets (#18), as ratios within one run.
PRODUCTION_OVER_NAIVE = 4.0
EMBEDDED_OVER_NAIVE = 2.0
CPU_OVER_TWOHOP = 1.5


def references(bench: Bench) -> Result:
    """The `references` scenario: every target, `plan.roundrobin_rounds` rounds."""
    plan = bench.plan
    result = Result("references", "loanflow beside the naive baseline and the lean references"
                    f" (wrk -c{WRK_CONNECTIONS}, {plan.roundrobin_s:.0f} s a run,"
                    f" {plan.roundrobin_rounds} rounds)")
    if subprocess.run(["sh", "-c", "command -v wrk"], capture_output=True).returncode:
        result.notes.append("skipped: wrk is not installed (apt-get install wrk)")
        return result
    targets = Targets(bench.production(), bench.work_dir, bench.naive_dir.parent,
                      api_workers=plan.api_workers, processors=plan.processors)
    measured = run_rounds(targets, TARGETS, rounds=plan.roundrobin_rounds,
                          seconds=plan.roundrobin_s, log=bench.log)
    by_target = median_by_target(measured)
    production, twohop = by_target["loanflow-production"], by_target["lean-twohop"]
    over_naive = median(round_ratios(measured, "loanflow-production", "naive"))
    embedded = median(round_ratios(measured, "loanflow-embedded", "naive"))
    cpu = ratio(production.cpu_total_us, twohop.cpu_total_us)
    # The lean product floor: loanflow's product work on the two-hop's skeleton (no target).
    floor = by_target.get("lean-product")
    floor_cpu = ratio(floor.cpu_total_us, twohop.cpu_total_us) if floor else None
    # What loanflow adds to the product's own work: its operations features and overheads.
    over_floor = ratio(production.cpu_total_us, floor.cpu_total_us) if floor else None
    floor_over_naive = median(round_ratios(measured, "lean-product", "naive"))
    result.figures += [
        Figure("production stored / naive (median of rounds)", over_naive, "x",
               f">= {PRODUCTION_OVER_NAIVE:.0f}x", at_least(over_naive, PRODUCTION_OVER_NAIVE)),
        Figure("embedded stored / naive (median of rounds)", embedded, "x",
               f">= {EMBEDDED_OVER_NAIVE:.0f}x", at_least(embedded, EMBEDDED_OVER_NAIVE)),
        Figure("production CPU per application / two-hop reference's", cpu, "x",
               f"<= {CPU_OVER_TWOHOP}x", cpu is not None and cpu <= CPU_OVER_TWOHOP),
        Figure("lean-product CPU per application / two-hop reference's", floor_cpu, "x"),
        Figure("lean-product stored / naive (median of rounds)", floor_over_naive, "x"),
        Figure("production CPU per application / lean-product's", over_floor, "x"),
    ]
    result.extra["table"] = table(measured)
    result.notes.append(
        "Stored/s: applications stored end to end (loanflow, two-hop: until the queue"
        " drained, over the time since the load began; naive and one-hop store in the"
        " request). CPU: µs per stored application of each process group, wrk not counted."
        " The one- and two-hop references leave out auth, rate limits, rules, velocity,"
        " metrics and dead letters; lean-product is the two-hop's skeleton doing loanflow's"
        " product work through its library code, without metrics, events or dead letters"
        " (benchmarks/references/README.md).")
    return result


def at_least(value: float | None, limit: float) -> bool:
    return value is not None and value >= limit


def table(measured: list[Measured]) -> list[str]:
    groups = ("api", "worker", "postgres", "redis")
    out = ["| round | target | req/s | stored/s | p99 ms | errors | CPU µs/app: api | worker"
           " | PostgreSQL | Redis | total |", "| --- |" + " --- |" * 10]
    for m in measured:
        cells = " | ".join(f"{m.cpu_us[g]:,.0f}" if g in m.cpu_us else "—" for g in groups)
        out.append(f"| {m.round} | {m.target} | {m.requests_per_s:,.0f} |"
                   f" {m.stored_per_s:,.0f} | {m.p99_ms} | {m.errors} | {cells} |"
                   f" {m.cpu_total_us:,.0f} |")
    return out
