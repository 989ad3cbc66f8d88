"""What a broker promises. Every backend passes the same contract tests.

- `append` returns only after the envelopes and their idempotency keys are
  durable together; a key claimed in one append is never claimed again while
  it is kept (the idempotency window, 24 h unless set), whatever the
  concurrency. A submission's rate limit is taken in the same step: one over
  its limit claims nothing (RATE_LIMITED).
- `reserve` hands out each envelope to one consumer at a time; an envelope
  not acked within the visibility timeout is handed out again (at least once).
- `ack` (alone or riding on the next `reserve`) is called only after the store
  committed the result.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from loanflow.models import Envelope

#: How long an idempotency key is remembered unless LOANFLOW_IDEMPOTENCY_WINDOW_S says
#: otherwise (Stripe's 24 h; the memory it costs: README "Idempotency").
IDEMPOTENCY_TTL_S = 24 * 3600


class AppendOutcome(enum.Enum):
    ACCEPTED = "accepted"  # new: durable now
    REPLAYED = "replayed"  # same key, same body: the original answer
    KEY_REUSED = "key_reused"  # same key, other body: refused, nothing stored
    IN_FLIGHT = "in_flight"  # same key still being accepted elsewhere: retry
    RATE_LIMITED = "rate_limited"  # over its API key's rate: refused, nothing stored


@dataclass(frozen=True, slots=True)
class RateLimit:
    """A token bucket per API key: `rate_per_s` steady, `burst` on top."""

    bucket: str  # the API key id
    rate_per_s: float
    burst: int


@dataclass(frozen=True, slots=True)
class Submission:
    envelope: Envelope
    fingerprint: str  # keyed hash of the canonical body
    #: Taken in the same atomic step as the key claim; None: no limit.
    rate_limit: RateLimit | None = None


@dataclass(frozen=True, slots=True)
class AppendResult:
    outcome: AppendOutcome
    application_id: str
    received_at_ns: int
    #: RATE_LIMITED: how long until the bucket holds a token again.
    retry_after_s: float = 0.0


@dataclass(frozen=True, slots=True)
class Delivery:
    """One envelope handed to one processor; `token` is backend-specific."""

    token: str
    envelope: Envelope
    deliveries: int  # how many times it was handed out, this one included


class Broker(Protocol):
    @property
    def durability(self) -> str:
        """What a 202 rests on, for /readyz and the dashboard ("redis aof always")."""
        ...

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def append(self, submissions: Sequence[Submission]) -> list[AppendResult]:
        """Durably enqueue; one result per submission, in order."""
        ...

    async def requeue(self, envelopes: Sequence[Envelope]) -> None:
        """Durably enqueue again under the same ids, claiming no idempotency key (a replay
        from the dead letters), each as a new delivery (count 0). What the broker still
        holds of an application is replaced, and its holder's late ack, retry or release
        then touches nothing: a dead-lettered delivery's ack may still be pending."""
        ...

    async def reserve(
        self, max_count: int, *, consumer: str, ack: Sequence[Delivery] = ()
    ) -> list[Delivery]:
        """Take up to `max_count` ready envelopes (oldest first); may return none.

        `ack`: deliveries whose results the store has committed, acked first in the
        same round trip or transaction (as `ack` would). If this raises, they may or may
        not be acked: ack them again (a second ack is harmless)."""
        ...

    async def wait_for_work(self, consumer: str, *, wake: asyncio.Event | None = None) -> None:
        """After a `reserve` by `consumer` found nothing: return once more may be ready
        (`wake` is set by this process's appends), at the latest after a short poll
        interval, since due retries and expired leases are only found by looking."""
        ...

    async def ack(self, deliveries: Sequence[Delivery]) -> None:
        """Forget envelopes whose results the store has committed."""
        ...

    async def retry_later(self, delivery: Delivery, envelope: Envelope, delay_s: float) -> None:
        """Put back an updated envelope (its attempts recorded) to be ready after `delay_s`."""
        ...

    async def release(self, deliveries: Sequence[Delivery], delay_s: float) -> None:
        """Hand back untouched (e.g. the store is down); no attempt is counted."""
        ...

    async def pending_state(self, application_id: str) -> tuple[str, int] | None:
        """(`queued` or `processing`, received_at_ns) while the broker holds it, else None."""
        ...

    async def depth(self) -> int:
        """Envelopes held: ready, delayed and in processing."""
        ...

    async def sealed_key_counts(self) -> dict[str, int]:
        """Envelopes held (ready, delayed, in processing) by the id of the PII key that
        sealed each one's application (models.envelope_key_id): each needs its key until
        it is processed. A read of everything held, for an operator's command, not a
        hot path. An envelope moved while it runs (a retry, a lease run out) may be
        counted twice; it is missed only if moved twice within the count."""
        ...

    async def oldest_wait_s(self) -> float | None:
        """How long the oldest ready or held envelope has waited since it (re)entered
        the queue; None when none is. Delayed retries don't count until they are due
        (as in Sidekiq's queue latency: retries show as failures, not as lag)."""
        ...

    async def expire_idempotency_keys(self, now_ns: int | None = None) -> int:
        """Forget keys older than the broker's idempotency window; returns how many."""
        ...

    async def ping(self) -> None:
        """Raise BrokerUnavailable when the broker cannot be reached."""
        ...
