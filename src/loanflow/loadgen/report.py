"""What a load run measured: latency histograms, counters, and the summary they make.

Latencies go into an HdrHistogram in microseconds (1 µs to 1 h, 3 significant
digits), so p99.9 and max are exact to 0.1% whatever the spread. Each second
of the run also gets a coarser one (2 digits) for the charts. A tally crosses
process boundaries as plain builtins (`to_wire`), histograms in HdrHistogram's
own compressed encoding, so `--processes K` merges exactly.
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from typing import Any

from hdrh.histogram import HdrHistogram  # type: ignore[import-untyped]

#: The percentiles of HTTP latency a summary reports, by their name in it.
PERCENTILES = {"p50": 50.0, "p90": 90.0, "p99": 99.0, "p99.9": 99.9}
#: The percentiles of each second in the series (coarser: 2 significant digits).
SECOND_PERCENTILES = {"p50": 50.0, "p90": 90.0, "p99": 99.0}
_LOWEST_US, _HIGHEST_US = 1, 3_600_000_000


class LatencyHistogram:
    """Seconds in, milliseconds out; values past one hour are clamped to it."""

    def __init__(self, *, digits: int = 3) -> None:
        self._digits = digits
        self._hdr = HdrHistogram(_LOWEST_US, _HIGHEST_US, digits)
        # Bound once: this is called for every answer.
        self._record = self._hdr.record_value

    def record_s(self, seconds: float) -> None:
        us = int(seconds * 1e6)
        self._record(_LOWEST_US if us < _LOWEST_US else min(us, _HIGHEST_US))

    @property
    def count(self) -> int:
        count: int = self._hdr.get_total_count()
        return count

    def percentile_ms(self, percentile: float) -> float | None:
        if not self.count:
            return None
        value_us: int = self._hdr.get_value_at_percentile(percentile)
        return round(value_us / 1000, 3)

    def max_ms(self) -> float | None:
        return round(self._hdr.get_max_value() / 1000, 3) if self.count else None

    def summary_ms(self, percentiles: dict[str, float] = PERCENTILES) -> dict[str, float | None]:
        view = {name: self.percentile_ms(p) for name, p in percentiles.items()}
        view["max"] = self.max_ms()
        return view

    def encode(self) -> str:
        encoded: bytes = self._hdr.encode()
        return encoded.decode("ascii")

    def merge(self, encoded: str) -> None:
        """Add a histogram of the same precision, as `encode()` wrote it."""
        self._hdr.decode_and_add(encoded.encode("ascii"))


@dataclasses.dataclass(kw_only=True)
class SecondStats:
    """One second of the run: requests sent in it, answers completed in it."""

    sent: int = 0
    answered: int = 0
    errors: int = 0
    http: LatencyHistogram = dataclasses.field(
        default_factory=lambda: LatencyHistogram(digits=2))


@dataclasses.dataclass(kw_only=True)
class Tally:
    """Counters of one run, updated by the driver as answers come in."""

    sent: int = 0
    by_status: Counter[int] = dataclasses.field(default_factory=Counter)
    #: Transport failures (connect, closed mid-request, timeout, protocol) by name.
    transport_errors: Counter[str] = dataclasses.field(default_factory=Counter)
    #: Answers with 202 + `Idempotent-Replayed`, or batch items marked replayed.
    replayed: int = 0
    items_sent: int = 0
    items_accepted: int = 0
    items_refused: int = 0
    #: TCP connections opened, reconnects included: equal to the pool when kept alive.
    connects: int = 0
    #: Failed attempts to reopen a connection the server had closed.
    connect_errors: int = 0
    http: LatencyHistogram = dataclasses.field(default_factory=LatencyHistogram)
    #: How late each request left after its intended time: the driver's own lag,
    #: including any wait for a free connection.
    send_lag: LatencyHistogram = dataclasses.field(default_factory=LatencyHistogram)
    first_send_s: float = math.inf
    last_send_s: float = 0.0
    #: CPU seconds the generator used while sending (all its processes), and the wall time.
    cpu_s: float = 0.0
    wall_s: float = 0.0
    #: Unix time of t0 (second 0 of `seconds`), to line runs up with the service's series.
    t0_unix_s: float = 0.0
    #: Per second since the run's start (index = whole seconds after t0).
    seconds: list[SecondStats] = dataclasses.field(default_factory=list)

    def second(self, index: int) -> SecondStats:
        seconds = self.seconds
        while len(seconds) <= index:
            seconds.append(SecondStats())
        return seconds[index]

    @property
    def answered(self) -> int:
        return sum(self.by_status.values())

    @property
    def errors(self) -> int:
        """Transport failures plus answers outside 2xx."""
        return sum(self.transport_errors.values()) + sum(
            n for code, n in self.by_status.items() if not 200 <= code < 300
        )

    def to_wire(self) -> dict[str, Any]:
        """The tally as picklable builtins, for another process to `merge_wire`."""
        plain = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                 if f.name not in ("http", "send_lag", "seconds")}
        plain["http"], plain["send_lag"] = self.http.encode(), self.send_lag.encode()
        plain["seconds"] = [(s.sent, s.answered, s.errors, s.http.encode())
                            for s in self.seconds]
        return plain

    def merge_wire(self, wire: dict[str, Any]) -> None:
        """Add another process's `to_wire()` into this tally."""
        for name in ("sent", "replayed", "items_sent", "items_accepted", "items_refused",
                     "connects", "connect_errors", "cpu_s"):
            setattr(self, name, getattr(self, name) + wire[name])
        self.by_status.update(wire["by_status"])
        self.transport_errors.update(wire["transport_errors"])
        self.http.merge(wire["http"])
        self.send_lag.merge(wire["send_lag"])
        self.wall_s = max(self.wall_s, wire["wall_s"])
        self.t0_unix_s = wire["t0_unix_s"]  # the same in every process
        self.first_send_s = min(self.first_send_s, wire["first_send_s"])
        self.last_send_s = max(self.last_send_s, wire["last_send_s"])
        for index, (sent, answered, errors, http) in enumerate(wire["seconds"]):
            second = self.second(index)
            second.sent += sent
            second.answered += answered
            second.errors += errors
            second.http.merge(http)


def summarize(
    tally: Tally, *, target: str, planned: int, rate_per_s: float, duration_s: float,
    batch_size: int, end_to_end: dict[str, Any], connections: int, processes: int = 1,
) -> dict[str, Any]:
    """The run as JSON-ready builtins (the `--json` output)."""
    span_s = max(duration_s, tally.last_send_s - tally.first_send_s) if tally.sent else duration_s
    summary: dict[str, Any] = {
        "target": target,
        "offered_rate_per_s": rate_per_s,
        "duration_s": duration_s,
        "planned": planned,
        "sent": tally.sent,
        "not_sent": planned - tally.sent,
        "answered": tally.answered,
        "unanswered": tally.sent - tally.answered - sum(tally.transport_errors.values()),
        "by_status": {str(code): n for code, n in sorted(tally.by_status.items())},
        "transport_errors": dict(sorted(tally.transport_errors.items())),
        "errors": tally.errors,
        "replayed": tally.replayed,
        "achieved_rate_per_s": round(tally.sent / span_s, 1),
        # From the first intended send to the last answer (or the deadline).
        "wall_s": round(tally.wall_s, 3),
        "t0_unix_s": round(tally.t0_unix_s, 3),
        "latency_ms": tally.http.summary_ms(),
        "send_lag_ms": {"p50": tally.send_lag.percentile_ms(50.0),
                        "p99": tally.send_lag.percentile_ms(99.0),
                        "max": tally.send_lag.max_ms()},
        "connections": {"pool": connections, "opened": tally.connects,
                        "failed_to_open": tally.connect_errors},
        "processes": processes,
        "generator_cpu_cores": round(tally.cpu_s / tally.wall_s, 3) if tally.wall_s else None,
        "end_to_end": end_to_end,
        "series": [
            {"t_s": index, "sent": s.sent, "answered": s.answered, "errors": s.errors,
             "latency_ms": s.http.summary_ms(SECOND_PERCENTILES)}
            for index, s in enumerate(tally.seconds)
        ],
    }
    if batch_size:
        summary["batch"] = {"size": batch_size, "items_sent": tally.items_sent,
                            "accepted": tally.items_accepted, "refused": tally.items_refused}
    return summary


def progress_line(*, sent: int, errors: int, p99_ms: float | None, elapsed_s: float,
                  rate_per_s: float) -> str:
    return (f"{elapsed_s:5.1f}s  sent {sent}  rate {rate_per_s:,.0f}/s  "
            f"errors {errors}  p99 {'-' if p99_ms is None else f'{p99_ms:.1f}'} ms")


def format_text(summary: dict[str, Any]) -> str:
    """The summary for a person: a few aligned lines."""
    by_class: Counter[str] = Counter()
    for code, n in summary["by_status"].items():
        by_class[code if code.startswith("2") else code[0] + "xx"] += n
    conns = summary["connections"]
    lines = [
        f"target      {summary['target']}",
        f"sent        {summary['sent']} of {summary['planned']} planned"
        f" at {summary['achieved_rate_per_s']:,}/s (offered {summary['offered_rate_per_s']:,}/s)"
        f" over {conns['pool']} connections ({conns['opened']} opened)"
        + (f", {summary['processes']} processes" if summary["processes"] > 1 else ""),
        f"answered    {summary['answered']}  "
        + "  ".join(f"{k}: {v}" for k, v in sorted(by_class.items()))
        + (f"  unanswered: {summary['unanswered']}" if summary["unanswered"] else ""),
        f"by status   {_pairs(summary['by_status']) or '-'}",
        f"transport   {sum(summary['transport_errors'].values())} errors  "
        f"{_pairs(summary['transport_errors'])}".rstrip(),
        f"replayed    {summary['replayed']}",
    ]
    if "batch" in summary:
        batch = summary["batch"]
        lines.append(f"batch       {batch['items_sent']} items in batches of {batch['size']}:"
                     f" {batch['accepted']} accepted, {batch['refused']} refused")
    lines.append(f"HTTP ms     {_pairs(summary['latency_ms'])}")
    lines.append(f"send lag ms {_pairs(summary['send_lag_ms'])}")
    if summary["generator_cpu_cores"] is not None:
        lines.append(f"generator   {summary['generator_cpu_cores']} cores busy while sending")
    e2e = summary["end_to_end"]
    if e2e.get("latency_ms"):
        lines.append(f"end-to-end  {_pairs(e2e['latency_ms'])}  (service, {e2e['window_s']}s)")
    else:
        lines.append(f"end-to-end  skipped: {e2e.get('note', 'not read')}")
    return "\n".join(lines)


def _pairs(values: dict[str, Any]) -> str:
    return "  ".join(f"{k} {'-' if v is None else v}" for k, v in values.items())
