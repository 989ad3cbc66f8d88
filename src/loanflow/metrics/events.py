"""The live event log: rejections, failures, dead letters and operator actions, for display.

Any process appends, any process reads since a cursor (opaque: a SQLite row
number or a Redis stream id). It is a log for the dashboard, not the record
of truth (that is the store): the newest `names.EVENTS_KEPT` are kept.

Events never carry an SSN or a date of birth: `make_event` masks anything
shaped like one in the free-text fields, and `Event` refuses to be built
with one left (the stored event is checked again when decoded).
`EventPublisher` keeps the hot path free of I/O: `publish()` only appends to
a bounded buffer that a task writes out every `PUBLISH_INTERVAL_S`.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import re
import time
from collections.abc import Iterable, Sequence
from typing import Protocol

import msgspec

from loanflow.metrics import names
from loanflow.models import format_ts

log = logging.getLogger(__name__)

#: Every event kind.
KINDS = frozenset({
    names.EVENT_REJECTION, names.EVENT_FAILURE, names.EVENT_DEAD_LETTER,
    names.EVENT_OPERATOR_ACTION,
})
#: How often buffered events are written.
PUBLISH_INTERVAL_S = 0.2
#: Events buffered per process while the log is slow or down; beyond, the oldest go.
MAX_BUFFERED = 10_000
MAX_MESSAGE_CHARS = 500
MAX_NAME_CHARS = 200

# Nine digits as an SSN is written (123-45-6789, 123 45 6789, 123456789), not inside a
# longer number; dates as ISO or US text. Masked wherever they appear in free text.
_SSN = re.compile(r"(?<![0-9])[0-9]{3}[- ]?[0-9]{2}[- ]?[0-9]{4}(?![0-9])")
_DATE = re.compile(
    r"(?<![0-9])(?:[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}|[0-9]{1,2}/[0-9]{1,2}/[0-9]{2,4})(?![0-9])"
)


class Event(msgspec.Struct, frozen=True, kw_only=True):
    kind: str
    at: str  # RFC 3339, UTC
    id: str  # the application (or dead letter) id
    code: str
    message: str
    channel: str | None = None
    applicant_name: str | None = None  # display only; the dashboard shows it as text

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"expected an event kind of {sorted(KINDS)}, got {self.kind!r}")
        for text in (self.code, self.message, self.applicant_name or ""):
            if _SSN.search(text) or _DATE.search(text):
                raise ValueError("expected no SSN or date in an event's text; use make_event()")


def scrub(text: str, limit: int) -> str:
    """`text` cut to `limit` characters with SSN- and date-shaped parts masked."""
    return _DATE.sub("****-**-**", _SSN.sub("***-**-****", text[: limit + 20]))[:limit]


def make_event(
    kind: str,
    *,
    application_id: str,
    code: str,
    message: str,
    channel: str | None = None,
    applicant_name: str | None = None,
    at_ns: int | None = None,
) -> Event:
    """An Event with its free text masked and cut to length."""
    return Event(
        kind=kind,
        at=format_ts(time.time_ns() if at_ns is None else at_ns),
        id=application_id,
        code=scrub(code, MAX_NAME_CHARS),
        message=scrub(message, MAX_MESSAGE_CHARS),
        channel=channel,
        applicant_name=None if applicant_name is None else scrub(applicant_name, MAX_NAME_CHARS),
    )


encode_event = msgspec.json.Encoder().encode
_decode_event = msgspec.json.Decoder(Event).decode


def decode_events(bodies: Iterable[bytes]) -> list[Event]:
    """Decode stored events, skipping (and logging) any that fail: a bad entry (another
    version's, or one that would leak PII) must not stop every reader at that cursor."""
    events = []
    for body in bodies:
        try:
            events.append(_decode_event(body))
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            log.warning("skipped an undecodable event: %s", exc)
    return events


class EventAppender(Protocol):
    """The part of a log an EventPublisher needs."""

    async def append(self, events: Sequence[Event]) -> None: ...


class EventLog(Protocol):
    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def append(self, events: Sequence[Event]) -> None:
        """Append in order; trims the oldest beyond names.EVENTS_KEPT."""
        ...

    async def read_since(self, cursor: str, *, limit: int = 1000) -> tuple[list[Event], str]:
        """Up to `limit` events after `cursor`, oldest first, and the cursor after them."""
        ...

    async def latest_cursor(self) -> str:
        """The cursor after the newest event ("0" style cursors start before the first)."""
        ...

    async def recent(self, limit: int) -> tuple[list[Event], str]:
        """The newest `limit` events, oldest first, and the cursor after them."""
        ...


class EventPublisher:
    """Buffers events from the hot path and writes them in batches."""

    def __init__(self, events: EventAppender, *, max_buffered: int = MAX_BUFFERED) -> None:
        self._events = events
        self._buffer: collections.deque[Event] = collections.deque(maxlen=max_buffered)
        #: Events lost because the buffer was full (the log was down or slow).
        self.dropped = 0
        #: Appends that failed (each is retried with the next batch).
        self.failed_appends = 0

    def publish(self, event: Event) -> None:
        """Queue an event for the log; never blocks, never raises for I/O."""
        if len(self._buffer) == self._buffer.maxlen:
            self.dropped += 1
        self._buffer.append(event)

    async def flush(self) -> int:
        """Write what is buffered; returns how many were written (0 when the log is down)."""
        if not self._buffer:
            return 0
        batch = list(self._buffer)
        self._buffer.clear()
        try:
            await self._events.append(batch)
        except Exception as exc:
            # Display-only: keep the events (bounded, oldest dropped) and retry next tick.
            self.failed_appends += 1
            log.warning("event log append of %d events failed: %r", len(batch), exc)
            kept = [*batch, *self._buffer]
            limit = self._buffer.maxlen or len(kept)
            self.dropped += max(0, len(kept) - limit)
            self._buffer = collections.deque(kept[-limit:], maxlen=limit)
            return 0
        return len(batch)

    async def run(self, stop: asyncio.Event, *, interval_s: float = PUBLISH_INTERVAL_S) -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval_s)
            await self.flush()
        await self.flush()
