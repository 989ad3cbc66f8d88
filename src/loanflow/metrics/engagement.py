"""The dashboard's engagement figures, the seed's "user engagement" metric.

Viewers now: every API process reports its open live sockets as a gauge of
its own (`viewers@<process>`) and the newest settled second sums them, so the
figure covers every process and host. Sessions and operator actions today
(UTC) come from the audit trail, the durable record of sign-ins, replays,
discards and review decisions, read at most once per `CACHE_S` however many
dashboards ask. Administration (API keys made or revoked, PII re-sealed) is in the
trail too, but is not work on applications: it is not counted as an action.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Mapping
from typing import Protocol

import msgspec

from loanflow.errors import Unavailable

log = logging.getLogger(__name__)

#: Prefix of the per-process viewer gauges.
VIEWERS_PREFIX = "viewers@"
#: The audit action of a dashboard sign-in.
SIGN_IN = "sign_in"
#: Audit actions of administration (store/api_keys.py, rotation/reseal.py), not counted.
ADMINISTRATION = frozenset({"key_created", "key_revoked", "pii_reseal"})
#: Seconds the audit counts are reused before the store is asked again.
CACHE_S = 5.0


class AuditCounts(Protocol):
    async def audit_counts(self, since_ns: int) -> dict[str, int]: ...


class Engagement(msgspec.Struct, kw_only=True):
    viewers: int
    sessions_today: int
    actions_today: int


def viewers_gauge(process: str, viewers: int) -> dict[str, int]:
    """The gauge one process flushes; none at all while it has no viewer."""
    return {VIEWERS_PREFIX + process: viewers} if viewers else {}


def viewers_of(gauges: Mapping[str, int]) -> int:
    return sum(v for k, v in gauges.items() if k.startswith(VIEWERS_PREFIX))


def start_of_day_ns(now_s: float) -> int:
    day = dt.datetime.fromtimestamp(now_s, dt.UTC).replace(hour=0, minute=0, second=0,
                                                           microsecond=0)
    return int(day.timestamp()) * 1_000_000_000


class EngagementReader:
    def __init__(self, audit: AuditCounts, *, clock_s: Callable[[], float] = time.time) -> None:
        self._audit, self._clock_s = audit, clock_s
        self._counts: dict[str, int] | None = None
        self._read_at_s = float("-inf")

    async def read(self, gauges: Mapping[str, int]) -> Engagement | None:
        """None until the audit trail could be read once; then its last known counts."""
        now_s = self._clock_s()
        if now_s - self._read_at_s >= CACHE_S:
            self._read_at_s = now_s
            try:
                self._counts = await self._audit.audit_counts(start_of_day_ns(now_s))
            except Unavailable as exc:
                log.warning("engagement counts kept from the last read: %s", exc)
        if self._counts is None:
            return None
        actions = sum(n for action, n in self._counts.items()
                      if action != SIGN_IN and action not in ADMINISTRATION)
        return Engagement(viewers=viewers_of(gauges), sessions_today=self._counts.get(SIGN_IN, 0),
                          actions_today=actions)
