"""One fault test's bench: the processes, the load, the depth monitor, and the count.

    with bench(max_attempts="3") as b:     # the conftest fixture: processes up, load on
        b.load_for(PRE_S)
        ...break something, heal it...
        outcome = b.finish("fault name", healed_at=healed)
    outcome.assert_clean()
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

from tests.conftest import Deployment, create_key
from tests.faults.cluster import Cluster
from tests.faults.driver import LoadDriver
from tests.faults.reconcile import Outcome, reconcile, recovery_s
from tests.faults.state import Backends, DepthMonitor, Snapshot, wait_drained

#: The steady load of every fault test, and its share of repeated keys.
RATE_PER_S = 300.0
DUPLICATE_RATIO = 0.05
#: How long the backlog may take to drain after the load stops.
DRAIN_TIMEOUT_S = 60.0


class Bench:
    def __init__(
        self, deployment: Deployment, log_dir: Path, record: Callable[[Outcome], None], *,
        serve: bool = False, driver_options: dict[str, Any] | None = None,
        settings: dict[str, str] | None = None, cluster: Cluster | None = None,
    ) -> None:
        self.deployment = deployment
        self.backends = Backends(deployment)
        # `cluster`: processes laid out otherwise (behind a load balancer, say); the load
        # goes to its `urls`.
        self.cluster = cluster or Cluster(deployment, log_dir, serve=serve, settings=settings)
        self._driver_options = driver_options or {}
        self._record = record
        self.monitor = DepthMonitor(self.backends)
        self.driver: LoadDriver | None = None
        self.snapshot: Snapshot | None = None

    def __enter__(self) -> Bench:
        key = create_key(self.deployment, "submit,read")
        try:
            self.cluster.start()
            self.monitor.__enter__()
            self.driver = LoadDriver(
                self.cluster.urls, key, rate_per_s=RATE_PER_S, duplicate_ratio=DUPLICATE_RATIO,
                **self._driver_options,
            ).start()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            if self.driver is not None and self.driver.running:
                self.driver.stop()
        finally:
            self.monitor.__exit__()
            self.cluster.stop()

    @property
    def load(self) -> LoadDriver:
        assert self.driver is not None
        return self.driver

    def load_for(self, seconds: float) -> None:
        """Let the steady load run (the driver keeps going in its thread)."""
        time.sleep(seconds)
        assert self.load.error is None, self.load.error

    def finish(
        self, fault: str, *, healed_at: float | None = None, recovery: float | None = None,
        drain_timeout_s: float = DRAIN_TIMEOUT_S,
    ) -> Outcome:
        """Stop the load, let every answer settle and the backlog drain, then count.

        `recovery` defaults to `recovery_s()` from `healed_at`, or without one to the
        drain: from the end of the load until the broker is empty and all is stored."""
        stopped_at = time.monotonic()
        self.load.stop()
        promised = {app_id for sub in self.load.submissions.values() for app_id in sub.ids}
        self.snapshot = wait_drained(self.backends, promised, timeout_s=drain_timeout_s)
        if recovery is None and healed_at is None:
            recovery = time.monotonic() - stopped_at
        elif recovery is None:
            assert healed_at is not None
            recovery = recovery_s(self.load, self.monitor, healed_at,
                                  normal_depth=int(RATE_PER_S))
        outcome = reconcile(fault, self.load, self.snapshot, recovery_s=recovery)
        self._record(outcome)
        return outcome
