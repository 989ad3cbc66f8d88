"""One process's share of a run: its payloads, its connections, its part of the schedule."""

from __future__ import annotations

import math
import resource
import ssl
import time
from collections.abc import Callable
from urllib.parse import urlsplit

from loanflow.loadgen.openloop import OpenLoop
from loanflow.loadgen.payloads import Payloads
from loanflow.loadgen.report import Tally
from loanflow.loadgen.spec import LoadSpec, Share

#: Time between the pool being open and the first intended send.
START_MARGIN_S = 0.05


async def run_share(
    spec: LoadSpec, share: Share = Share(), *, start_at: Callable[[], float] | None = None,
    each_second: Callable[[Tally, float], None] | None = None,
) -> Tally:
    """This process's share of the run. `start_at()` gives t0 (perf_counter seconds)
    once the pool is open; default: now."""
    parts = urlsplit(spec.url)
    tls = parts.scheme == "https"
    host, port = parts.hostname or "", parts.port or (443 if tls else 80)
    planned = len(range(share.index, spec.planned, share.count))
    payloads = Payloads(
        host=parts.netloc, key=spec.key,
        distinct=min(spec.distinct, planned * max(spec.batch_size, 1)),
        seed=None if spec.seed is None else spec.seed + share.index,
        invalid_ratio=spec.invalid_ratio, duplicate_ratio=spec.duplicate_ratio,
        batch_size=spec.batch_size, get_path=spec.get_path,
    )
    engine = OpenLoop(
        payloads, host=host, port=port, ssl=ssl.create_default_context() if tls else None,
        connections=max(1, spec.connections // share.count), planned=planned,
        interval_s=share.count / spec.rate_per_s, batch_size=spec.batch_size,
        request_timeout_s=spec.grace_s or math.inf,
        global_index=lambda j: j * share.count + share.index,
    )
    await engine.open()
    t0 = start_at() if start_at is not None else time.perf_counter() + START_MARGIN_S
    cpu_before_s = _cpu_s()
    tally = await engine.run(
        t0=t0, first_s=t0 + share.index / spec.rate_per_s,
        deadline_s=t0 + spec.duration_s + spec.grace_s, each_second=each_second)
    tally.cpu_s, tally.wall_s = _cpu_s() - cpu_before_s, time.perf_counter() - t0
    tally.t0_unix_s = time.time() - tally.wall_s
    return tally


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
