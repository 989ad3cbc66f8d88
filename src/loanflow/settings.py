"""One frozen Settings object, read from LOANFLOW_* variables and flags once at start.

Every field is both an environment variable (`LOANFLOW_<NAME>`) and a CLI flag
(`--<name-with-dashes>`); the flag wins. Nothing else in the package reads the
environment.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

ENV_PREFIX = "LOANFLOW_"
#: `processors` left to the mode: an embedded worker does its SQLite writes itself and is
#: the busiest process, so two of them share it across the cores (docs/benchmarks.md).
AUTO_PROCESSORS = -1


def _setting(default: Any, help: str, *, secret: bool = False) -> Any:
    return dataclasses.field(
        default=default, metadata={"help": help, "secret": secret}, repr=not secret
    )


@dataclasses.dataclass(frozen=True, kw_only=True)
class Settings:
    # URLs may carry passwords: kept out of the repr like the PII key.
    broker_url: str = _setting("", "broker URL; empty = SQLite file in the data dir", secret=True)
    store_url: str = _setting("", "store URL; empty = SQLite file in the data dir", secret=True)
    data_dir: Path = _setting(Path(".loanflow"), "directory of the embedded SQLite files")
    host: str = _setting("127.0.0.1", "address the HTTP API listens on")
    port: int = _setting(8000, "port the HTTP API listens on")
    api_workers: int = _setting(1, "HTTP API processes")
    processors: int = _setting(
        AUTO_PROCESSORS, "processor loops, or worker processes beside `serve`'s API (0 = accept"
        " only; -1 = 2 worker processes beside an embedded `serve` on 2 or more cores, else 1)")
    backlog_loops: int = _setting(
        2, "extra processor loops per worker process, run only while full batches wait (one"
        " batch is assessed while another is written)")
    batch_size: int = _setting(200, "applications a processor takes per batch")
    max_attempts: int = _setting(5, "processing attempts before an application is dead-lettered")
    max_queue_depth: int = _setting(100_000, "queue depth above which submissions get 503")
    idempotency_window_s: int = _setting(
        24 * 3600, "seconds an idempotency key is remembered (a replay answers the first 202;"
        " after it the key makes a new application); Redis memory grows with it")
    visibility_timeout_s: float = _setting(
        30.0, "seconds before a batch taken by a processor that died is delivered again"
    )
    store_timeout_s: float = _setting(
        5.0, "seconds a PostgreSQL statement may run (the client gives up 1 s later)"
    )
    poll_interval_s: float = _setting(
        0.01, "seconds between a processor's looks at the embedded queue while work flows"
        " (0.1 once idle; an append in the same process wakes it at once)")
    pii_key: str = _setting(
        "", "PII keys (base64 of 32 bytes, NEW,OLD); empty = key file", secret=True
    )
    pii_hash_key: str = _setting(
        "", "the hash key of the duplicate-SSN hashes, idempotency fingerprints and velocity"
        " counts, as `loanflow pii hash-key` prints it; pin it before dropping the oldest PII"
        " key (empty = derived from the oldest PII key)", secret=True
    )
    rate_limit_per_s: float = _setting(
        5000.0, "submissions per second each API key may make (0 = no limit)"
    )
    rate_limit_burst: int = _setting(10000, "submissions a key may make at once, above its rate")
    max_connections: int = _setting(
        4096, "connections plus in-flight requests per API process; beyond: 503"
    )
    keep_alive_s: float = _setting(
        65.0, "seconds an idle keep-alive connection stays open; keep it above the idle"
        " timeout of a load balancer in front (60 s on AWS ALB)")
    trusted_proxies: str = _setting(
        "", "comma-separated addresses or networks of the reverse proxies in front, whose"
        " X-Forwarded-Proto and X-Forwarded-For are believed (empty = none)")
    max_body_bytes: int = _setting(64 * 1024, "largest single submission body")
    fail_marker: str = _setting(
        "", "TEST ONLY: applications whose external_id starts with this fail every attempt"
    )
    crash_marker: str = _setting(
        "", "TEST ONLY: a processor assessing an application whose external_id starts with"
        " this ends its process at once (os._exit), as a segfault or OOM kill would"
    )
    velocity_limit: int = _setting(
        3, "applications one email or phone may make per velocity window; more are flagged"
        " for review (0 = no check)"
    )
    velocity_ip_limit: int = _setting(
        10, "applications one client IP may make per velocity window (web and mobile only;"
        " 0 = no check)"
    )
    velocity_window_s: float = _setting(3600.0, "the velocity window, seconds")
    product_file: str = _setting(
        "", "product configuration TOML, re-read when it changes; empty = the packaged one"
    )
    redis_min_replicas: int = _setting(
        0, "Redis replicas that must confirm an append (WAIT) before its 202; fewer within"
        " LOANFLOW_REDIS_WAIT_MS: 503 (0 = the primary's AOF alone)")
    redis_wait_ms: int = _setting(
        100, "milliseconds an append waits for LOANFLOW_REDIS_MIN_REPLICAS replicas")
    unsafe_redis: bool = _setting(
        False, "DEVELOPMENT ONLY: start on a Redis that may lose accepted applications (no"
        " AOF, or an evicting maxmemory-policy); /readyz and the dashboard say UNSAFE")
    log_level: str = _setting("info", "log level: debug, info, warning, error")
    log_format: str = _setting("json", "json (one object per line) or text")

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, **overrides: Any
    ) -> Settings:
        """Build from `LOANFLOW_*` variables, then apply explicit overrides (flags)."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for field in dataclasses.fields(cls):
            raw = env.get(ENV_PREFIX + field.name.upper())
            if raw is not None and raw != "":
                values[field.name] = _parse(field, raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def __post_init__(self) -> None:
        if self.idempotency_window_s < 1:
            raise ValueError("LOANFLOW_IDEMPOTENCY_WINDOW_S: expected 1 or more seconds,"
                             f" got {self.idempotency_window_s}")
        if self.redis_min_replicas < 0 or self.redis_wait_ms < 1:
            raise ValueError("LOANFLOW_REDIS_MIN_REPLICAS, LOANFLOW_REDIS_WAIT_MS: expected 0 or"
                             " more replicas and 1 or more ms, got"
                             f" {self.redis_min_replicas} and {self.redis_wait_ms}")
        if self.processors < AUTO_PROCESSORS:
            raise ValueError("LOANFLOW_PROCESSORS: expected 0 or more, or -1 for the mode's"
                             f" default, got {self.processors}")
        if self.backlog_loops < 0:
            raise ValueError("LOANFLOW_BACKLOG_LOOPS: expected 0 or more, got"
                             f" {self.backlog_loops}")
        for proxy in self.trusted_proxy_list:
            try:
                ipaddress.ip_network(proxy)  # strict, as uvicorn parses it
            except ValueError:
                raise ValueError("LOANFLOW_TRUSTED_PROXIES: expected IP addresses or networks,"
                                 f" got {proxy!r}") from None

    @property
    def trusted_proxy_list(self) -> list[str]:
        return [part.strip() for part in self.trusted_proxies.split(",") if part.strip()]

    @property
    def embedded(self) -> bool:
        return not self.broker_url and not self.store_url

    @property
    def processor_count(self) -> int:
        """`processors`, the mode's default resolved."""
        if self.processors != AUTO_PROCESSORS:
            return self.processors
        return min(2, os.cpu_count() or 1) if self.embedded else 1


#: How a boolean variable may be written (`str(True)` too: how `serve` hands settings down).
_BOOLEANS = {"1": True, "true": True, "yes": True, "on": True,
             "0": False, "false": False, "no": False, "off": False}


def _parse(field: dataclasses.Field[Any], raw: str) -> Any:
    kind: type[Any] = type(field.default)
    try:
        if kind is Path:
            return Path(raw)
        if kind is bool:
            return _BOOLEANS[raw.strip().lower()]
        return kind(raw)
    except (ValueError, KeyError) as exc:
        env = ENV_PREFIX + field.name.upper()
        expected = "1 or 0" if kind is bool else kind.__name__
        raise ValueError(f"{env}: expected {expected}, got {raw!r}") from exc


def setting_fields() -> list[dataclasses.Field[Any]]:
    """The fields, for building CLI flags from the same source."""
    return list(dataclasses.fields(Settings))
