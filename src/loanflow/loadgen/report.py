"""What a load run measured: latency histograms, counters, and the summary they make.

Latencies go into an HdrHistogram in microseconds (1 µs to 1 h, 3 significant
digits), so p99.9 and max are exact to 0.1% whatever the spread.
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from typing import Any

from hdrh.histogram import HdrHistogram  # type: ignore[import-untyped]

#: The percentiles of HTTP latency a summary reports, by their name in it.
PERCENTILES = {"p50": 50.0, "p90": 90.0, "p99": 99.0, "p99.9": 99.9}
_LOWEST_US, _HIGHEST_US, _DIGITS = 1, 3_600_000_000, 3


class LatencyHistogram:
    """Seconds in, milliseconds out; values past one hour are clamped to it."""

    def __init__(self) -> None:
        self._hdr = HdrHistogram(_LOWEST_US, _HIGHEST_US, _DIGITS)

    def record_s(self, seconds: float) -> None:
        self._hdr.record_value(min(max(int(seconds * 1e6), _LOWEST_US), _HIGHEST_US))

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

    def summary_ms(self) -> dict[str, float | None]:
        view = {name: self.percentile_ms(p) for name, p in PERCENTILES.items()}
        view["max"] = self.max_ms()
        return view


@dataclasses.dataclass(kw_only=True)
class Tally:
    """Counters of one run, updated by the driver as answers come in."""

    sent: int = 0
    by_status: Counter[int] = dataclasses.field(default_factory=Counter)
    #: Transport failures (connect, read timeout, ...) by httpx exception name.
    transport_errors: Counter[str] = dataclasses.field(default_factory=Counter)
    #: Answers with 202 + `Idempotent-Replayed`, or batch items marked replayed.
    replayed: int = 0
    items_sent: int = 0
    items_accepted: int = 0
    items_refused: int = 0
    http: LatencyHistogram = dataclasses.field(default_factory=LatencyHistogram)
    #: How late each request left after its intended time: the driver's own lag.
    send_lag: LatencyHistogram = dataclasses.field(default_factory=LatencyHistogram)
    first_send_s: float = math.inf
    last_send_s: float = 0.0

    @property
    def answered(self) -> int:
        return sum(self.by_status.values())

    @property
    def errors(self) -> int:
        """Transport failures plus answers outside 2xx."""
        return sum(self.transport_errors.values()) + sum(
            n for code, n in self.by_status.items() if not 200 <= code < 300
        )


def summarize(
    tally: Tally, *, target: str, planned: int, rate_per_s: float, duration_s: float,
    batch_size: int, end_to_end: dict[str, Any],
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
        "by_status": {str(code): n for code, n in sorted(tally.by_status.items())},
        "transport_errors": dict(sorted(tally.transport_errors.items())),
        "errors": tally.errors,
        "replayed": tally.replayed,
        "achieved_rate_per_s": round(tally.sent / span_s, 1),
        "latency_ms": tally.http.summary_ms(),
        "send_lag_ms": {"p99": tally.send_lag.percentile_ms(99.0),
                        "max": tally.send_lag.max_ms()},
        "end_to_end": end_to_end,
    }
    if batch_size:
        summary["batch"] = {"size": batch_size, "items_sent": tally.items_sent,
                            "accepted": tally.items_accepted, "refused": tally.items_refused}
    return summary


def progress_line(tally: Tally, *, elapsed_s: float, rate_per_s: float) -> str:
    p99 = tally.http.percentile_ms(99.0)
    return (f"{elapsed_s:5.1f}s  sent {tally.sent}  rate {rate_per_s:,.0f}/s  "
            f"errors {tally.errors}  p99 {'-' if p99 is None else f'{p99:.1f}'} ms")


def format_text(summary: dict[str, Any]) -> str:
    """The summary for a person: a few aligned lines."""
    by_class: Counter[str] = Counter()
    for code, n in summary["by_status"].items():
        by_class[code if code.startswith("2") else code[0] + "xx"] += n
    lines = [
        f"target      {summary['target']}",
        f"sent        {summary['sent']} of {summary['planned']} planned"
        f" at {summary['achieved_rate_per_s']:,}/s (offered {summary['offered_rate_per_s']:,}/s)",
        f"answered    {summary['answered']}  "
        + "  ".join(f"{k}: {v}" for k, v in sorted(by_class.items())),
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
    e2e = summary["end_to_end"]
    if e2e.get("latency_ms"):
        lines.append(f"end-to-end  {_pairs(e2e['latency_ms'])}  (service, {e2e['window_s']}s)")
    else:
        lines.append(f"end-to-end  skipped: {e2e.get('note', 'not read')}")
    return "\n".join(lines)


def _pairs(values: dict[str, Any]) -> str:
    return "  ".join(f"{k} {'-' if v is None else v}" for k, v in values.items())
