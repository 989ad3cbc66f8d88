"""What the scenarios share (`Bench`) and what each returns (`Result` of `Figure`s)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.harness.measure import Run
from benchmarks.harness.plan import Plan
from benchmarks.harness.search import SearchResult
from benchmarks.harness.service import Production, Service, loanflow_service


@dataclasses.dataclass
class Figure:
    name: str
    value: float | None
    unit: str
    target: str = ""
    passed: bool | None = None


@dataclasses.dataclass
class Result:
    scenario: str
    title: str
    figures: list[Figure] = dataclasses.field(default_factory=list)
    runs: list[Run] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)
    seconds: float = 0.0


@dataclasses.dataclass
class Bench:
    """What the scenarios share: the plan, a work directory, the production backends."""

    plan: Plan
    work_dir: Path
    naive_dir: Path
    log: Callable[[str], None]
    #: Profile production during the soak (saves a run) when both are selected.
    profile_in_soak: bool = False
    found: dict[str, SearchResult] = dataclasses.field(default_factory=dict)
    #: py-spy summaries by mode, for the profile scenario.
    profiles: dict[str, Any] = dataclasses.field(default_factory=dict)
    _production: Production | None = None

    def production(self) -> Production:
        if self._production is None:
            self.log("starting throwaway Redis (AOF, appendfsync always) and PostgreSQL")
            self._production = Production.start()
        return self._production

    def close(self) -> None:
        if self._production is not None:
            self._production.remove()

    def embedded(self) -> Service:
        return loanflow_service(self.work_dir, production=None)

    def production_service(self) -> Service:
        return loanflow_service(self.work_dir, production=self.production(),
                                api_workers=self.plan.api_workers,
                                processors=self.plan.processors)


def p99_ms(summary: dict[str, Any], *, end_to_end: bool = False) -> float | None:
    view = (summary["end_to_end"].get("latency_ms") or {}) if end_to_end \
        else summary["latency_ms"]
    value: float | None = view.get("p99")
    return value


def under(value: float | None, limit: float) -> bool:
    return value is not None and value < limit


def at_most(value: float | None, limit: float) -> bool:
    return value is not None and value <= limit


def cores(run: Run) -> str:
    wall_s = max(run.ended_s - run.started_s, 1e-9)
    parts = sorted(run.cpu_s.items(), key=lambda kv: -kv[1])
    return ", ".join(f"{name} {seconds / wall_s:.2f}" for name, seconds in parts
                     if seconds / wall_s >= 0.01)
