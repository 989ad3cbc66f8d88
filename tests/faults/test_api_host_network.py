"""Fault 13: one API host's network cut under load, HAProxy in front.

The reference deployment on one machine: each `loanflow api` on a host of its own (a
network namespace linked to this one by a veth pair: tests/faults/network.py, port
8000 of its own address), throwaway Redis and PostgreSQL and a worker here (Redis and
PostgreSQL also listen on each host's gateway), and HAProxy in front of the two APIs
with docs/deployment.md's config (tests/faults/balancer.py): health checks on
/healthz, `leastconn`, `option http-buffer-request`, `retry-on conn-failure
empty-response response-timeout` for requests safe to send twice (a submission
carries its Idempotency-Key), `option redispatch 1`. The clients talk to the
balancer alone, sending each request's head and body in two writes.

Under the steady load every packet in and out of api-0's host is dropped (iptables
DROP on INPUT and OUTPUT inside its namespace): no reset, no answer, as a pulled cable
or a partition looks. So that requests are surely in flight on it at that moment,
Redis holds its writes (`CLIENT PAUSE WRITE`) from 0.3 s before the cut until just
after it: the appends api-0 sent then are applied, but their answers never reach it.
The balancer sends each request in flight on api-0 again, to api-1, when the
submission's server timeout strikes: a new application where api-0's append never
left it, a replay of the one it appended where it had. After CUT_S the link is
healed: the appends api-0 still held reach Redis late, after api-1 claimed their keys
(they write nothing), and api-0 must come back into rotation.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from tests.conftest import Deployment
from tests.faults.balancer import BACKEND, BalancedCluster, Request
from tests.faults.conftest import VISIBILITY_TIMEOUT_S
from tests.faults.driver import LoadDriver
from tests.faults.harness import Bench
from tests.faults.network import NamespaceHosts
from tests.faults.reconcile import Outcome
from tests.throwaway.postgres import SERVER_SETTINGS, PostgresServer, fresh_database
from tests.throwaway.redis import RedisServer

pytestmark = pytest.mark.faults

PRE_S = 3.0
#: How long api-0's host stays cut off, and the load after it is healed.
CUT_S = 5.0
POST_S = 3.0
#: Redis holds writes this long before the cut (then until the cut is in place).
PAUSE_BEFORE_CUT_S = 0.3
#: Bounds: intake through the balancer after the cut (the first 202 to a request sent
#: after it, and the longest wait between two 202s while api-0 is cut off); the
#: balancer marking api-0 down (2 failed checks: a connect that gets no answer in
#: 200 ms, 200 ms apart) and up again once healed (2 good checks).
INTAKE_GAP_S = 5.0
DOWN_WITHIN_S = 5.0
UP_WITHIN_S = 5.0
#: A request arriving this soon after api-0 was seen down may have been routed before.
ROUTING_MARGIN_S = 0.2


@pytest.fixture
def hosts() -> Iterator[NamespaceHosts]:
    with NamespaceHosts(2) as made:
        yield made


@pytest.fixture
def network_bench(
    hosts: NamespaceHosts, tmp_path: Path, record_outcome: Callable[[Outcome], None],
) -> Iterator[Bench]:
    gateways = [host.gateway for host in hosts]
    (tmp_path / "redis").mkdir()
    # Listening beyond loopback, Redis wants a password (protected mode), as in production.
    redis_server = RedisServer(tmp_path / "redis", bind=gateways,
                               password=secrets.token_hex(8))
    postgres = PostgresServer(
        settings={**SERVER_SETTINGS, "listen_addresses": ",".join(["127.0.0.1", *gateways])},
        trusted_networks=hosts.networks)
    try:
        redis_server.start()
        postgres.start()
        with fresh_database(postgres.url) as store_url:
            deployment = Deployment(tmp_path / "data", broker_url=redis_server.url,
                                    store_url=store_url)
            cluster = BalancedCluster(deployment, tmp_path / "logs", hosts, settings={
                "visibility_timeout_s": VISIBILITY_TIMEOUT_S})
            # Head and body in two writes, as many clients send them: a balancer that
            # forwarded the head before it had the body cannot send the request again.
            yield Bench(deployment, tmp_path / "logs", record_outcome, cluster=cluster,
                        driver_options={"split_body": True})
    finally:
        redis_server.stop()
        postgres.remove()


def cut_with_requests_in_flight(b: Bench, host_index: int) -> tuple[float, float]:
    """Cut the host off while Redis holds the writes its API just sent; (wall clock time
    just before the cut, monotonic time once it is in place)."""
    with redis.Redis.from_url(b.deployment.broker_url, socket_timeout=5) as r:
        r.execute_command("CLIENT", "PAUSE", "10000", "WRITE")
        try:
            time.sleep(PAUSE_BEFORE_CUT_S)
            before_wall = time.time()
            cluster(b).hosts[host_index].cut()
            return before_wall, time.monotonic()
        finally:
            r.execute_command("CLIENT", "UNPAUSE")


def cluster(b: Bench) -> BalancedCluster:
    assert isinstance(b.cluster, BalancedCluster)
    return b.cluster


def intake_gaps_s(load: LoadDriver, since: float, until: float) -> tuple[float, float]:
    """(From `since` until a request sent after it got a 202; the longest wait between
    two 202s answered from `since` to `until`)."""
    answers = list(load.answers)
    firsts = [a.answered_at for a in answers if a.status == 202 and a.sent_at >= since]
    times = sorted(a.answered_at for a in answers
                   if a.status == 202 and since <= a.answered_at < until)
    gaps = [later - earlier for earlier, later in zip([since, *times], [*times, until],
                                                      strict=True)]
    return min(firsts, default=float("inf")) - since, max(gaps)


def in_flight_at(requests: list[Request], wall: float, victim: str) -> list[Request]:
    """Requests that arrived before `wall`, were answered after it, and were on `victim`:
    answered by it, or after a retry (the other host answers within the timeout)."""
    return [r for r in requests if r.arrived_at < wall < r.ended_at
            and (r.server == victim or r.retries > 0)]


@pytest.mark.timeout(90)
def test_an_api_hosts_network_cut_sends_clients_to_the_other_losing_nothing(
    network_bench: Bench,
) -> None:
    with network_bench as b:
        lb = cluster(b)
        victim, other = lb.apis
        b.load_for(PRE_S)
        cut_wall, cut_at = cut_with_requests_in_flight(b, 0)
        down_s = lb.balancer.wait_status(BACKEND, victim.name, "DOWN", timeout_s=DOWN_WITHIN_S)
        down_wall = time.time()
        b.load_for(max(0.0, cut_at + CUT_S - time.monotonic()))
        lb.hosts[0].heal()
        healed_at, healed_wall = time.monotonic(), time.time()
        up_s = lb.balancer.wait_status(BACKEND, victim.name, "UP", timeout_s=UP_WITHIN_S)
        b.load_for(POST_S)
        first_s, longest_s = intake_gaps_s(b.load, cut_at, healed_at)
        # Long answered by now: the balancer retried them after its server timeout.
        cut_off = in_flight_at(lb.requests(), cut_wall, victim.name)
        replays = [r for r in cut_off if r.replayed]
        outcome = b.finish(
            f"13 API host's network cut (iptables DROP) behind HAProxy (down after"
            f" {down_s:.1f} s, up {up_s:.1f} s after healing; {len(cut_off)} requests in"
            f" flight on it, {len(replays)} answered by a replay; longest wait for a 202"
            f" {longest_s:.2f} s)", recovery=first_s)
        requests = lb.requests()

    outcome.assert_clean()
    assert first_s < INTAKE_GAP_S and longest_s < INTAKE_GAP_S, outcome.line()

    # While api-0 was down nothing was sent to it: no request arriving then was retried.
    while_down = [r for r in requests
                  if down_wall + ROUTING_MARGIN_S <= r.arrived_at < healed_wall]
    assert while_down, "no request reached the balancer while api-0 was down"
    assert all(r.server == other.name and r.retries == 0 for r in while_down), [
        r for r in while_down if r.server != other.name or r.retries]

    # What was in flight on api-0 at the cut was sent again by the balancer, with its key,
    # to api-1 (no client saw an error); where api-0's append had landed, api-1 answered a
    # replay of that application.
    assert cut_off, "no request was in flight on api-0 at the cut"
    assert all(r.server == other.name and r.status == 202 for r in cut_off), [
        r for r in cut_off if r.server != other.name or r.status != 202]
    assert replays, f"no append of api-0's was answered by a replay: {cut_off}"
    for r in cut_off:
        sub = b.load.submissions[r.idempotency_key]
        assert len(sub.ids) == 1 and not sub.refused, (r, sub)

    # Healed, api-0 serves again.
    assert any(r.server == victim.name and r.status == 202 and r.arrived_at > healed_wall
               for r in requests), "api-0 answered nothing after it was healed"
