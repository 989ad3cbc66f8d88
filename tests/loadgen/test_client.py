"""The load generator's own HTTP client, against a sink and against loanflow."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest
from tests.conftest import ServerProcess, create_key

from loanflow.loadgen.driver import LoadSpec, run
from loanflow.loadgen.sink import start_sink


def _spec(port: int, **options: Any) -> LoadSpec:
    defaults: dict[str, Any] = {"url": f"http://127.0.0.1:{port}", "key": "lf_test",
                                "end_to_end_wait_s": None, "distinct": 50, "grace_s": 5.0}
    return LoadSpec(**{**defaults, **options})


async def _against_sink(**options: Any) -> tuple[dict[str, Any], int, int]:
    """(summary, requests the sink saw, connections it accepted)."""
    sink_options = {k: options.pop(k) for k in ("close_every", "delay_s") if k in options}
    server, port, stats = await start_sink(**sink_options)
    async with server:
        summary = await run(_spec(port, **options))
    return summary, stats.requests, stats.connections


def test_every_answer_is_counted_by_its_code_over_kept_alive_connections() -> None:
    summary, requests, connections = asyncio.run(_against_sink(
        rate_per_s=400, duration_s=1, connections=4))
    assert summary["by_status"] == {"202": 400}
    assert requests == 400
    assert connections == 4 == summary["connections"]["opened"]  # reused, never reopened
    assert summary["transport_errors"] == {} and summary["unanswered"] == 0


def test_a_server_closing_after_its_answer_is_followed_by_a_new_connection() -> None:
    summary, requests, connections = asyncio.run(_against_sink(
        rate_per_s=200, duration_s=1, connections=2, close_every=5))
    assert summary["by_status"] == {"202": 200} and requests == 200
    assert summary["transport_errors"] == {}
    assert connections == summary["connections"]["opened"] >= 200 // 5


def test_a_server_hanging_up_mid_request_counts_a_transport_error_and_the_run_ends() -> None:
    class HangUp(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = cast(asyncio.Transport, transport)

        def data_received(self, data: bytes) -> None:
            self.transport.close()  # no answer at all

    async def scenario() -> dict[str, Any]:
        server = await asyncio.get_running_loop().create_server(HangUp, "127.0.0.1", 0)
        async with server:
            port = server.sockets[0].getsockname()[1]
            return await run(_spec(port, rate_per_s=40, duration_s=0.5, connections=2))

    summary = asyncio.run(scenario())
    assert summary["sent"] == 20
    assert summary["answered"] == 0
    assert sum(summary["transport_errors"].values()) == 20


@pytest.mark.slow  # runs for seconds
def test_latency_runs_from_the_intended_send_time_not_the_actual_one() -> None:
    # One connection, a server taking 50 ms, 40 requests intended within one second:
    # they queue in the generator, and the last one waits ~1.5 s before it is even sent.
    summary, _, _ = asyncio.run(_against_sink(
        rate_per_s=40, duration_s=1, connections=1, delay_s=0.05))
    assert summary["by_status"] == {"202": 40}
    assert summary["latency_ms"]["max"] > 1_000
    assert summary["send_lag_ms"]["max"] > 900
    assert summary["latency_ms"]["p50"] > 200  # a closed-loop client would say ~50


def test_a_request_without_answer_in_time_is_cut_and_counted_as_a_timeout() -> None:
    summary, _, _ = asyncio.run(_against_sink(
        rate_per_s=5, duration_s=0.2, connections=1, delay_s=30, grace_s=0.5))
    assert summary["transport_errors"] == {"Timeout": 1}
    assert summary["sent"] == 1 and summary["unanswered"] == 0


@pytest.mark.slow  # starts a process
def test_processes_share_the_schedule_and_their_histograms_merge() -> None:
    summary, requests, connections = asyncio.run(_against_sink(
        rate_per_s=400, duration_s=1, connections=4, processes=2))
    assert summary["by_status"] == {"202": 400} and requests == 400
    assert summary["processes"] == 2 and connections == 4
    assert sum(second["answered"] for second in summary["series"]) == 400
    assert summary["latency_ms"]["p99"] is not None


@pytest.fixture(scope="module")
def key(embedded_server: ServerProcess) -> str:
    return create_key(embedded_server.deployment, "submit,read")


def test_against_loanflow_keys_are_fresh_per_request_and_connections_kept(
    embedded_server: ServerProcess, key: str,
) -> None:
    spec = LoadSpec(url=embedded_server.url, key=key, rate_per_s=100, duration_s=1,
                    connections=4, invalid_ratio=0.2, end_to_end_wait_s=None)
    summary = asyncio.run(run(spec))
    assert summary["by_status"] == {"202": 100}  # a broken rule is still accepted
    assert summary["replayed"] == 0  # no key was reused
    assert summary["connections"] == {"pool": 4, "opened": 4, "failed_to_open": 0}
