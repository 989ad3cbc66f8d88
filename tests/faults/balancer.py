"""The reference deployment's front (docs/deployment.md): HAProxy in this namespace,
health-checking and balancing `loanflow api` processes that each run on a host of
their own (a network namespace, tests/faults/network.py), with the workers here.

    cluster = BalancedCluster(deployment, log_dir, hosts, settings={…})
    Bench(deployment, log_dir, record, cluster=cluster)     # the load goes to the balancer

The config is docs/deployment.md's without TLS, with shorter intervals so that a
fault test stays short: health checks every 200 ms (1 s there) and a submission's
server timeout 3 s (10 s there). Each request is logged as one line (`Request`):
when it ended, the server that answered last, the retries, the status, the
Idempotency-Key and whether the answer was a replay.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import Deployment
from tests.faults.cluster import Cluster, Proc
from tests.faults.network import NamespaceHosts
from tests.throwaway import free_port
from tests.throwaway.haproxy import Haproxy

BACKEND = "loanflow_api"
#: Each API host listens on this port of its own address, as in production.
API_PORT = 8000
#: Between two health checks of a server (1s in docs/deployment.md).
CHECK_INTERVAL = "200ms"
#: How long the balancer waits for a submission's answer before it sends it to the other
#: host (10s in docs/deployment.md).
SUBMIT_TIMEOUT = "3s"
#: Bound on the balancer seeing a started API process (a check passed `rise` times).
UP_TIMEOUT_S = 10.0


def haproxy_config(
    *, listen: str, servers: Sequence[tuple[str, str]], stats_socket: Path,
    check_interval: str = CHECK_INTERVAL, submit_timeout: str = SUBMIT_TIMEOUT,
) -> str:
    """docs/deployment.md's `haproxy.cfg` without TLS, with a request log; `servers`:
    (name, address:port)."""
    lines = "\n".join(f"    server {name} {address} check" for name, address in servers)
    return f"""\
global
    log stdout format raw local0
    stats socket {stats_socket} mode 600 level admin

defaults
    mode http
    log global
    timeout connect 1s
    timeout client  65s
    timeout http-request 10s
    timeout server  30s
    timeout check   1s
    timeout http-keep-alive 60s
    retries 3
    option redispatch 1

frontend loanflow
    bind {listen}
    option forwardfor
    capture request header Idempotency-Key len 255
    capture response header Idempotent-Replayed len 5
    log-format "%[date(0,ms)] %s %rc %ST %Ta %tsc %hr %hs"
    default_backend {BACKEND}

backend {BACKEND}
    balance leastconn
    option httpchk GET /readyz
    http-check expect status 200
    default-server inter {check_interval} fall 2 rise 2 slowstart 5s
    retry-on conn-failure empty-response response-timeout
    acl resendable method GET HEAD
    acl resendable req.hdr(Idempotency-Key) -m found
    acl resendable path /v1/applications/batch
    http-request disable-l7-retry unless resendable
    option http-buffer-request
    http-request set-timeout server {submit_timeout} if {{ req.hdr(Idempotency-Key) -m found }}
{lines}
"""


@dataclass(frozen=True)
class Request:
    """One line of the balancer's request log."""

    #: When the balancer sent the last byte of its answer (wall clock, seconds).
    ended_at: float
    #: The server that answered (after any retries), or "<NOSRV>".
    server: str
    retries: int
    #: A retry went to another server (`option redispatch`).
    redispatched: bool
    status: int
    #: From the request's arrival to the end of its answer.
    active_ms: int
    #: HAProxy's termination state ("----" = normal; "sH" = server timeout, …).
    termination: str
    idempotency_key: str
    replayed: bool

    @property
    def arrived_at(self) -> float:
        return self.ended_at - self.active_ms / 1000


def parse_request(line: str) -> Request | None:
    """The request a log line records, or None for other lines (a server going down)."""
    parts = line.split(" ")
    if len(parts) != 8 or not parts[0].isdigit():
        return None
    ended_ms, server, retries, status, active_ms, termination, key, replayed = parts
    return Request(
        ended_at=int(ended_ms) / 1000, server=server, retries=int(retries.lstrip("+")),
        redispatched=retries.startswith("+"), status=int(status), active_ms=int(active_ms),
        termination=termination, idempotency_key=key.strip("{}"),
        replayed=replayed.strip("{}") == "true",
    )


class BalancedCluster(Cluster):
    """An API process on each of `hosts` (on port API_PORT of its address, reaching Redis
    and PostgreSQL through its gateway), `workers` here, and HAProxy in front of the APIs:
    `urls` is the balancer's alone."""

    def __init__(
        self, deployment: Deployment, log_dir: Path, hosts: NamespaceHosts, *,
        workers: int = 1, settings: dict[str, str] | None = None,
    ) -> None:
        super().__init__(deployment, log_dir, apis=0, workers=workers, settings=settings)
        self.hosts = hosts
        for host in hosts:
            env = {
                **self.env,
                "LOANFLOW_BROKER_URL": _via(deployment.broker_url, host.gateway),
                "LOANFLOW_STORE_URL": _via(deployment.store_url, host.gateway),
                # The balancer's connections come from the gateway: believe its headers.
                "LOANFLOW_TRUSTED_PROXIES": host.gateway,
            }
            self.apis.append(Proc("api", host.index, env, log_dir, prefix=host.command(),
                                  host=host.address, port=API_PORT))
        self.balancer = Haproxy(log_dir / "haproxy")
        self.port = free_port()

    @property
    def urls(self) -> list[str]:
        return [f"http://127.0.0.1:{self.port}"]

    def start(self) -> BalancedCluster:
        super().start()
        self.balancer.start(haproxy_config(
            listen=f"127.0.0.1:{self.port}", stats_socket=self.balancer.stats_socket,
            servers=[(api.name, f"{api.host}:{api.port}") for api in self.apis]))
        for api in self.apis:
            self.balancer.wait_status(BACKEND, api.name, "UP", timeout_s=UP_TIMEOUT_S)
        return self

    def stop(self) -> None:
        try:
            self.balancer.stop()
        finally:
            super().stop()

    def requests(self) -> list[Request]:
        return [r for line in self.balancer.log_lines() if (r := parse_request(line))]


def _via(url: str, address: str) -> str:
    """`url` (a throwaway server's, on 127.0.0.1) as a host reaches it: on `address`."""
    if "@127.0.0.1:" not in url and "//127.0.0.1:" not in url:
        raise ValueError(f"expected a URL on 127.0.0.1, got {url!r}")
    return url.replace("127.0.0.1:", f"{address}:", 1)
