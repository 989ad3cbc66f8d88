"""The conditions of the shipped alerting rules (`alerts.yml`), judged from the same
numbers, for the dashboard's banner: an operator sees what Prometheus would page on.

The rules add a `for:` duration to ride out a blip; the banner shows the condition as
it stands now, over the same windows.
"""

from __future__ import annotations

from typing import Final, Literal

import msgspec

from loanflow.metrics import names
from loanflow.metrics.series_base import QueueState
from loanflow.metrics.tally import Tally

#: The thresholds of alerts.yml (tests/metrics/test_alerting.py holds the two together).
QUEUE_LAG_S: Final = 60
ERROR_SHARE: Final = 0.01
ERROR_WINDOW_S: Final = 300
DEAD_LETTER_WINDOW_S: Final = 900
STALLED_WINDOW_S: Final = 300

Severity = Literal["warning", "critical"]


class Alert(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    severity: Severity
    summary: str


def firing(
    *, queue: QueueState | None, last_5_min: Tally, last_15_min: Tally,
    backends_up: dict[str, bool],
) -> list[Alert]:
    """The alerts whose condition holds, critical first."""
    alerts = [
        Alert(name="LoanflowBackendDown", severity="critical",
              summary=f"The {backend} is unreachable from loanflow")
        for backend, up in sorted(backends_up.items()) if not up
    ]
    counters = last_5_min.counters
    stored = counters.get(names.STORED, 0)
    # Queued for the whole window (the oldest waited that long) and nothing stored in it.
    if (queue is not None and queue.depth > 0 and queue.lag_s is not None
            and queue.lag_s >= STALLED_WINDOW_S and stored == 0):
        alerts.append(Alert(name="LoanflowProcessingStalled", severity="critical",
                            summary="Applications are queued and none was stored"
                                    " for 5 minutes"))
    received = counters.get(names.RECEIVED, 0)
    prefix = names.UNAVAILABLE_5XX + names.LABEL_SEP
    unavailable = sum(v for k, v in counters.items() if k.startswith(prefix))
    if received and unavailable / received > ERROR_SHARE:
        alerts.append(Alert(name="LoanflowErrorRateHigh", severity="critical",
                            summary=f"{unavailable / received:.1%} of submissions"
                                    " answered 5xx in 5 minutes"))
    if queue is not None and queue.lag_s is not None and queue.lag_s > QUEUE_LAG_S:
        alerts.append(Alert(name="LoanflowQueueLagHigh", severity="warning",
                            summary=f"The oldest queued application has waited"
                                    f" {queue.lag_s:.0f} s"))
    dead = last_15_min.counters.get(names.DEAD_LETTERED, 0)
    if dead:
        alerts.append(Alert(name="LoanflowDeadLettersGrowing", severity="warning",
                            summary=f"Dead letters grew by {dead} in 15 minutes"))
    return alerts
