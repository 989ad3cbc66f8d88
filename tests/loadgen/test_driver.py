"""The open-loop load generator against a real server: rate held, answers counted."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from typing import Any

import pytest
from tests.conftest import ServerProcess, create_key

from loanflow.loadgen.driver import LoadSpec, run


@pytest.fixture(scope="module")
def key(embedded_server: ServerProcess) -> str:
    return create_key(embedded_server.deployment, "submit,read")


def _assert_all_accepted_at_rate(summary: dict[str, Any]) -> None:
    assert summary["by_status"] == {"202": summary["sent"]}
    assert summary["transport_errors"] == {}
    assert abs(summary["sent"] - 600) <= 30
    assert summary["replayed"] > 0  # the duplicates came back as replays, still 202
    assert summary["latency_ms"]["p99"] is not None


def test_cli_holds_the_rate_and_every_submission_is_accepted(
    embedded_server: ServerProcess, key: str
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "loanflow", "loadgen", "--url", embedded_server.url,
         "--key", key, "--rate", "200", "--duration", "3", "--duplicate-ratio", "0.05",
         "--seed", "7", "--json"],
        capture_output=True, text=True, timeout=30, check=True,
    )
    summary = json.loads(done.stdout)
    _assert_all_accepted_at_rate(summary)
    assert summary["end_to_end"]["latency_ms"]["p99"] is not None


def test_driver_holds_the_rate_and_reads_back_end_to_end_latency(
    embedded_server: ServerProcess, key: str
) -> None:
    spec = LoadSpec(url=embedded_server.url, key=key, rate_per_s=200, duration_s=3,
                    duplicate_ratio=0.05, seed=7)
    summary = asyncio.run(run(spec))
    _assert_all_accepted_at_rate(summary)
    assert summary["end_to_end"]["latency_ms"]["p99"] is not None


def test_batches_are_answered_200_with_every_item_accepted(
    embedded_server: ServerProcess, key: str
) -> None:
    spec = LoadSpec(url=embedded_server.url, key=key, rate_per_s=20, duration_s=2,
                    batch_size=50, seed=8, end_to_end_wait_s=None)
    summary = asyncio.run(run(spec))
    assert summary["by_status"] == {"200": 40}
    assert summary["batch"] == {"size": 50, "items_sent": 2000, "accepted": 2000, "refused": 0}
    assert summary["latency_ms"]["p99"] is not None


def test_a_read_only_run_without_read_scope_skips_end_to_end(
    embedded_server: ServerProcess,
) -> None:
    submit_only = create_key(embedded_server.deployment, "submit")
    spec = LoadSpec(url=embedded_server.url, key=submit_only, rate_per_s=20, duration_s=0.5)
    summary = asyncio.run(run(spec))
    assert summary["by_status"] == {"202": 10}
    assert summary["end_to_end"] == {"note": "403: the key lacks the read scope"}


def test_invalid_settings_are_refused_with_what_was_expected() -> None:
    with pytest.raises(ValueError, match=r"expected batch_size in 0\.\.1000, got 5000"):
        LoadSpec(url="http://x", key="k", rate_per_s=1, duration_s=1, batch_size=5000)
