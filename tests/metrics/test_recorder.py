"""Recorder: what the hot path records comes out of take_delta() once, encodable."""

from __future__ import annotations

import msgspec
import pytest

from loanflow.metrics import names
from loanflow.metrics.recorder import Recorder
from loanflow.metrics.tally import Tally


def test_delta_holds_what_was_recorded_and_the_next_starts_empty() -> None:
    recorder = Recorder()
    recorder.count(names.RECEIVED, 3)
    recorder.accepted("web")
    recorder.observe(names.API, 0.002)
    recorder.observe(names.API, 0.004)

    delta = recorder.take_delta()

    assert delta.counters == {"received": 3, "accepted": 1, "channel:web": 1}
    api = delta.histograms[names.API]
    assert (api.count, api.sum_ns, api.max_ns) == (2, 6_000_000, 4_000_000)
    assert sum(api.buckets.values()) == 2
    assert recorder.take_delta().is_empty()


def test_answers_are_split_into_refused_4xx_and_unavailable_5xx_by_code() -> None:
    recorder = Recorder()
    for code in (422, 422, 401, 503):
        recorder.answered(code)

    assert recorder.take_delta().counters == {
        "refused_4xx:422": 2, "refused_4xx:401": 1, "unavailable_5xx:503": 1,
    }


def test_completed_counts_stored_by_status_and_the_end_to_end_latency() -> None:
    recorder = Recorder()
    recorder.completed("stored", end_to_end_s=0.05)
    recorder.completed("rejected", end_to_end_s=0.06)
    recorder.completed("dead_lettered")

    delta = recorder.take_delta()

    assert delta.counters == {
        "stored": 3, "status:stored": 1, "status:rejected": 1, "status:dead_lettered": 1,
        "rejected": 1, "dead_lettered": 1,
    }
    assert delta.histograms[names.END_TO_END].count == 2


def test_unknown_names_are_refused_at_once() -> None:
    recorder = Recorder()
    with pytest.raises(ValueError, match="expected a counter"):
        recorder.count("recieved")
    with pytest.raises(ValueError, match="expected a counter"):
        recorder.count(names.RECEIVED, label="web")
    with pytest.raises(ValueError, match="expected a histogram"):
        recorder.observe("e2e", 0.1)
    with pytest.raises(ValueError, match="expected a 4xx or 5xx"):
        recorder.answered(202)


def test_zero_and_negative_durations_are_kept_in_the_lowest_bucket() -> None:
    recorder = Recorder()
    recorder.observe(names.STORE, 0.0)
    recorder.observe(names.STORE, -0.001)  # a wall clock stepped back

    store = recorder.take_delta().histograms[names.STORE]

    assert (store.count, store.sum_ns, store.max_ns, len(store.buckets)) == (2, 0, 0, 1)


def test_delta_round_trips_through_json_and_msgpack() -> None:
    recorder = Recorder()
    recorder.count(names.FAILED)
    recorder.observe(names.VALIDATION, 0.0003)
    delta = recorder.take_delta()

    assert msgspec.json.decode(msgspec.json.encode(delta), type=Tally) == delta
    assert msgspec.msgpack.decode(msgspec.msgpack.encode(delta), type=Tally) == delta
