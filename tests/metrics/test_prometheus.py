"""`/metrics`: conventional names, accepted by `promtool check metrics`, built from the totals."""

from __future__ import annotations

import asyncio
import shutil
import subprocess

import pytest
from prometheus_client.parser import text_string_to_metric_families

from loanflow.metrics import names
from loanflow.metrics.aggregate import Aggregator
from loanflow.metrics.flusher import Flusher
from loanflow.metrics.prometheus import render
from loanflow.metrics.recorder import Recorder
from loanflow.metrics.series_base import QueueState
from loanflow.metrics.tally import Tally
from tests.metrics.conftest import Backend, opened

T0 = 1_800_000_000
QUEUE = QueueState(depth=12, lag_s=0.25)


def _body(backend: Backend) -> bytes:
    """/metrics after two processes recorded a little of everything."""

    async def scenario() -> bytes:
        async with opened(backend.series()) as series:
            for process, scale in (("api", 1), ("worker", 2)):
                recorder = Recorder()
                recorder.count(names.RECEIVED, 10 * scale)
                recorder.accepted("web")
                recorder.answered(422)
                recorder.answered(503)
                recorder.count(names.FAILED, scale)
                recorder.completed("stored", end_to_end_s=0.004 * scale)
                recorder.completed("rejected", end_to_end_s=0.2)
                for stage in names.STAGES:
                    recorder.observe(stage, 0.0007 * scale)
                await Flusher(recorder, series, process=process).flush(now_s=T0 + 1.05)
            return render(await Aggregator(series).totals(), queue=QUEUE)

    return asyncio.run(scenario())


def _promtool_check(body: bytes) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool is missing: apt-get install -y prometheus (the check must run)")
    done = subprocess.run([promtool, "check", "metrics"], input=body, capture_output=True,
                          timeout=30)
    assert done.returncode == 0, (done.stdout + done.stderr).decode()
    assert not done.stdout.strip() and not done.stderr.strip()  # no lint warnings either


@pytest.mark.slow  # starts a process
def test_promtool_accepts_the_metrics_output(backend: Backend) -> None:
    _promtool_check(_body(backend))


@pytest.mark.slow  # starts a process
def test_promtool_accepts_the_output_of_a_fresh_install_with_nothing_counted() -> None:
    _promtool_check(render(Tally(), queue=None))


def test_counters_and_histograms_carry_the_cross_process_totals(backend: Backend) -> None:
    families = {f.name: f for f in text_string_to_metric_families(_body(backend).decode())}

    def value(family: str, **labels: str) -> float:
        for sample in families[family].samples:
            if sample.labels == labels and not sample.name.endswith("_created"):
                return float(sample.value)
        raise KeyError(f"{family} {labels}")

    assert value("loanflow_applications_received") == 30
    assert value("loanflow_applications_refused", code="422") == 2
    assert value("loanflow_applications_unavailable", code="503") == 2
    assert value("loanflow_applications_completed", status="rejected") == 2
    assert value("loanflow_applications_accepted_by_channel", channel="web") == 2
    assert value("loanflow_processing_failures") == 3
    assert value("loanflow_queue_depth") == 12
    assert value("loanflow_queue_lag_seconds") == 0.25

    e2e = {s.labels.get("le"): s.value for s in families["loanflow_end_to_end_latency_seconds"]
           .samples if s.name.endswith("_bucket")}
    assert (e2e["0.0025"], e2e["0.005"], e2e["0.01"], e2e["0.25"], e2e["+Inf"]) == (0, 1, 2, 4, 4)
    count = [s.value for s in families["loanflow_end_to_end_latency_seconds"].samples
             if s.name.endswith("_count")]
    assert count == [4]
    stages = {s.labels["stage"] for s in families["loanflow_stage_latency_seconds"].samples}
    assert stages == set(names.STAGES)
