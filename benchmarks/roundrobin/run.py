"""Round-robin under wrk: loanflow beside the naive baseline and the lean references.

    .venv/bin/python benchmarks/roundrobin/run.py [--seconds 15] [--rounds 2] [--only a,b]

Every target runs against the same throwaway Redis (AOF, appendfsync always,
noeviction) and PostgreSQL (fsync on), emptied before each, under
`wrk -t1 -c64` on the same 2 cores. Rounds alternate the targets so ratios
come from one period. For each: requests/s, the end-to-end stored rate
(applications stored until the queue drained, over the time since the load
began), p99, and CPU microseconds per stored application of each process
group (API, worker, PostgreSQL, Redis).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg  # noqa: F401  (the references need it in this venv)

from loanflow.bench.procs import tree
from loanflow.bench.service import Production, Service, loanflow_service, naive_service
from loanflow.bench.throwaway import PostgresServer, RedisServer, free_port
from loanflow.loadgen.synthetic import generate

HERE = Path(__file__).resolve().parent
REFERENCES = HERE.parent / "references"
NAIVE = HERE.parent / "naive"
HZ = os.sysconf("SC_CLK_TCK")
BODIES = 20_000
DRAIN_TIMEOUT_S = 180.0


@dataclass
class Target:
    name: str
    start: Callable[[], Running]


@dataclass
class Running:
    url: str
    path_script: Path
    env: dict[str, str]
    groups: Callable[[], dict[str, list[int]]]
    stored: Callable[[], int]
    stop: Callable[[], None]
    extra: dict[str, str] = field(default_factory=dict)


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / HZ


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def write_bodies(path: Path) -> None:
    rng = random.Random(7)
    with path.open("w") as out:
        for _ in range(BODIES):
            out.write(json.dumps(generate(rng), separators=(",", ":")) + "\n")


def loanflow_target(prod: Production, work: Path, bodies: Path, *, embedded: bool,
                    api_workers: int, processors: int) -> Running:
    # The rate limit on, far above the load: its cost counts, its refusals don't.
    service = loanflow_service(work, production=None if embedded else prod,
                               api_workers=api_workers, processors=processors,
                               rate_limit_per_s=1_000_000)

    def groups() -> dict[str, list[int]]:
        pids = service.pids()
        worker = [p for p in pids if "loanflow worker" in _cmdline(p)]
        api = [p for p in pids if p not in worker]
        out = {"api": api, "worker": worker}
        if not embedded:
            out["postgres"] = tree(prod.postgres.proc.pid)  # type: ignore[union-attr]
            out["redis"] = tree(prod.redis.proc.pid)  # type: ignore[union-attr]
        return out

    def stored() -> int:
        import httpx
        s = httpx.get(service.url + "/v1/metrics/summary",
                      headers={"Authorization": f"Bearer {service.key}"}, timeout=10).json()
        by = s["counts"]["by_status"]
        return int(sum(by.get(k, 0) for k in ("stored", "rejected", "dead_lettered")))

    return Running(service.url, HERE / "loanflow_post.lua",
                   {"WRK_BODIES": str(bodies), "WRK_KEY": service.key}, groups, stored,
                   service.stop)


def naive_target(prod: Production, work: Path, bodies: Path) -> Running:
    service: Service = naive_service(NAIVE, work, production=prod)

    def groups() -> dict[str, list[int]]:
        return {"api": service.pids(), "postgres": tree(prod.postgres.proc.pid),  # type: ignore
                "redis": tree(prod.redis.proc.pid)}  # type: ignore[union-attr]

    return Running(service.url, HERE / "loanflow_post.lua",
                   {"WRK_BODIES": str(bodies), "WRK_KEY": service.key}, groups, lambda: -1,
                   service.stop)


def reference_target(prod: Production, work: Path, module: str) -> Running:
    prod.empty()
    dsn = prod.postgres.create_database()
    subprocess.run(["psql", dsn, "-qf", str(REFERENCES / "schema.sql")], check=True,
                   capture_output=True)
    redis_url = prod.redis.url
    env = {**os.environ, "REF_DATABASE_URL": dsn, "REF_REDIS_URL": redis_url}
    port = free_port()
    log = open(work / f"{module}.log", "ab")  # noqa: SIM115
    api = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--host", "127.0.0.1", "--port", str(port),
         "--loop", "uvloop", "--http", "httptools", "--no-access-log", "--log-level",
         "warning", "--workers", "2", f"{module}:app"],
        cwd=REFERENCES, env=env, stdout=log, stderr=log, start_new_session=True)
    worker = None
    if module == "app_twohop":
        worker = subprocess.Popen([sys.executable, "worker_twohop.py", "w1"], cwd=REFERENCES,
                                  env=env, stdout=log, stderr=log, start_new_session=True)
    import httpx
    for _ in range(150):
        try:
            httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
            break
        except httpx.TransportError:
            time.sleep(0.2)
    table = "twohop" if worker else "loans"

    def stored() -> int:
        out = subprocess.run(["psql", dsn, "-tAc", f"SELECT count(*) FROM {table}"],
                             capture_output=True, text=True).stdout.strip()
        return int(out or 0)

    def groups() -> dict[str, list[int]]:
        return {"api": tree(api.pid), "worker": tree(worker.pid) if worker else [],
                "postgres": tree(prod.postgres.proc.pid),  # type: ignore[union-attr]
                "redis": tree(prod.redis.proc.pid)}  # type: ignore[union-attr]

    def stop() -> None:
        for p in (api, worker):
            if p is not None and p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
                p.wait(15)

    return Running(f"http://127.0.0.1:{port}", REFERENCES / "loan_post.lua", {}, groups,
                   stored, stop)


def measure(name: str, running: Running, seconds: int, conns: int) -> str:
    env = {**os.environ, **running.env, "WRK_NONCE": uuid.uuid4().hex[:8]}
    wrk = ["wrk", "-t1", f"-c{conns}", "-s", str(running.path_script), running.url]
    subprocess.run([*wrk[:3], "-d3s", *wrk[3:]], capture_output=True, env=env)  # warm-up
    deadline = time.monotonic() + 60
    last = -2
    while time.monotonic() < deadline:  # the warm-up drained
        n = running.stored()
        if n == last:
            break
        last = n
        time.sleep(0.5)
    stored0 = last
    groups = running.groups()
    before = {g: cpu_seconds(p) for g, p in groups.items()}
    env["WRK_NONCE"] = uuid.uuid4().hex[:8]
    t0 = time.monotonic()
    out = subprocess.run([*wrk[:3], f"-d{seconds}s", *wrk[3:]], capture_output=True, text=True,
                         env=env).stdout
    m = re.search(r"RESULT (.*)", out)
    if not m:
        return f"{name}: no result: {out[-300:]}"
    res = dict(kv.split("=") for kv in m.group(1).split())
    answered = float(res["requests"]) - float(res["non2xx"])
    e2e = None
    if stored0 >= 0:
        last, t_last = -1, time.monotonic()
        while time.monotonic() - t0 < seconds + DRAIN_TIMEOUT_S:
            n = running.stored()
            if n == last:
                break
            last, t_last = n, time.monotonic()
            time.sleep(0.5)
        e2e = (last - stored0) / (t_last - t0)
        count = last - stored0
    else:
        count = int(answered)
    groups = running.groups()
    after = {g: cpu_seconds(p) for g, p in groups.items()}
    cpu = {g: (after[g] - before.get(g, 0.0)) * 1e6 / max(1, count) for g in after}
    total = sum(cpu.values())
    e2e_part = f" e2e={e2e:.0f}" if e2e is not None else ""
    parts = " ".join(f"{g}={v:.0f}" for g, v in cpu.items())
    return (f"{name:22} rps={float(res['rps']):.0f}{e2e_part} p99_ms={res['p99_ms']} "
            f"non2xx={res['non2xx']} sock_err={res['sock_err']} cpu_us total={total:.0f} {parts}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=15)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--conns", type=int, default=64)
    ap.add_argument("--only", default="")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="roundrobin-"))
    bodies = work / "bodies.ndjson"
    write_bodies(bodies)
    redis, postgres = RedisServer(), PostgresServer()
    redis.start()
    postgres.start()
    prod = Production(redis, postgres)
    targets = {
        "naive": lambda: naive_target(prod, work, bodies),
        "lean-onehop": lambda: reference_target(prod, work, "app_batched"),
        "lean-twohop": lambda: reference_target(prod, work, "app_twohop"),
        "loanflow-production": lambda: loanflow_target(
            prod, work, bodies, embedded=False, api_workers=2, processors=2),
        "loanflow-embedded": lambda: loanflow_target(
            prod, work, bodies, embedded=True, api_workers=1, processors=1),
    }
    chosen = [t for t in args.only.split(",") if t] or list(targets)
    try:
        for r in range(args.rounds):
            for name in chosen:
                running = targets[name]()
                try:
                    print(f"round {r + 1} {measure(name, running, args.seconds, args.conns)}",
                          flush=True)
                finally:
                    running.stop()
    finally:
        redis.remove()
        postgres.remove()


if __name__ == "__main__":
    main()
