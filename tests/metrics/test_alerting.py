"""The banner's conditions: the shipped rules' thresholds and windows, judged from the
same numbers (alerting.py beside alerts.yml)."""

from __future__ import annotations

import re
from importlib import resources

from loanflow.metrics import alerting, names
from loanflow.metrics.alerting import firing
from loanflow.metrics.series_base import QueueState
from loanflow.metrics.tally import Tally

UP = {"broker": True, "store": True, "metrics": True}


def tally(**counters: int) -> Tally:
    t = Tally()
    t.counters.update(counters)
    return t


def names_of(**inputs: object) -> list[str]:
    args: dict[str, object] = {"queue": QueueState(depth=0, lag_s=None),
                               "last_5_min": Tally(), "last_15_min": Tally(),
                               "backends_up": UP, **inputs}
    return [a.name for a in firing(**args)]  # type: ignore[arg-type]


def test_a_quiet_healthy_system_raises_nothing() -> None:
    assert names_of() == []


def test_a_backend_down_is_named_and_critical() -> None:
    [alert] = firing(queue=None, last_5_min=Tally(), last_15_min=Tally(),
                     backends_up={**UP, "store": False})
    assert (alert.name, alert.severity) == ("LoanflowBackendDown", "critical")
    assert alert.summary == "The store is unreachable from loanflow"


def test_queue_lag_over_a_minute_raises_the_lag_alert_and_a_minute_does_not() -> None:
    assert names_of(queue=QueueState(depth=5, lag_s=61.0)) == ["LoanflowQueueLagHigh"]
    assert names_of(queue=QueueState(depth=5, lag_s=60.0)) == []


def test_a_5xx_share_over_1_percent_of_received_raises_the_error_alert() -> None:
    over = tally(**{names.RECEIVED: 1000, names.labelled(names.UNAVAILABLE_5XX, 503): 11})
    under = tally(**{names.RECEIVED: 1000, names.labelled(names.UNAVAILABLE_5XX, 503): 10,
                     names.labelled(names.REFUSED_4XX, 422): 500})
    assert names_of(last_5_min=over) == ["LoanflowErrorRateHigh"]
    assert names_of(last_5_min=under) == []  # 4xx are the clients' errors, not ours


def test_a_dead_letter_in_15_minutes_raises_the_dead_letter_alert() -> None:
    assert names_of(last_15_min=tally(**{names.DEAD_LETTERED: 2})) == [
        "LoanflowDeadLettersGrowing"]


def test_work_queued_5_minutes_with_nothing_stored_is_stalled_and_a_fresh_burst_is_not() -> None:
    stalled = QueueState(depth=40, lag_s=300.0)
    assert "LoanflowProcessingStalled" in names_of(queue=stalled)
    assert names_of(queue=stalled, last_5_min=tally(**{names.STORED: 1})) == [
        "LoanflowQueueLagHigh"]
    assert names_of(queue=QueueState(depth=40, lag_s=2.0)) == []


def test_the_banner_and_the_shipped_rules_use_the_same_thresholds() -> None:
    rules = resources.files("loanflow.metrics").joinpath("alerts.yml").read_text()
    assert f"max(loanflow_queue_lag_seconds) > {alerting.QUEUE_LAG_S}" in rules
    assert f"> {alerting.ERROR_SHARE}" in rules
    assert f"[{alerting.ERROR_WINDOW_S // 60}m]" in rules
    assert re.search(rf"dead_lettered_total\[{alerting.DEAD_LETTER_WINDOW_S // 60}m\]", rules)
    assert f"stored_total[{alerting.STALLED_WINDOW_S // 60}m]" in rules
