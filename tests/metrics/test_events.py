"""The event log, on SQLite and on Redis: any process appends, any reads in order; no PII."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import pytest

from loanflow.backends.sqlite.events import SQLiteEventLog
from loanflow.metrics import names
from loanflow.metrics.events import Event, EventLog, EventPublisher, encode_event, make_event
from loanflow.metrics.series_base import MetricsUnavailable
from tests.metrics.conftest import Backend, opened

SSN = "123-45-6789"
DOB = "1985-12-10"


def _rejection(n: int, *, channel: str = "web") -> Event:
    return make_event(
        names.EVENT_REJECTION,
        application_id=f"app-{n}",
        code="loan.amount.above_maximum",
        message=f"amount must be at most 100,000 (#{n})",
        channel=channel,
        applicant_name=f"Ada {n}",
    )


def test_events_from_two_writers_are_read_in_order_since_a_cursor(backend: Backend) -> None:
    async def scenario() -> tuple[list[str], list[str], list[str]]:
        async with opened(backend.events()) as api, opened(backend.events()) as worker, \
                opened(backend.events()) as reader:
            start = await reader.latest_cursor()
            for n in range(6):
                await (api if n % 2 else worker).append([_rejection(n)])
            first, cursor = await reader.read_since(start, limit=4)
            rest, cursor = await reader.read_since(cursor)
            none, _ = await reader.read_since(cursor)
        return [e.id for e in first], [e.id for e in rest], [e.id for e in none]

    first, rest, none = asyncio.run(scenario())

    assert first + rest == [f"app-{n}" for n in range(6)]
    assert len(first) == 4 and none == []


def test_recent_gives_the_newest_events_and_the_cursor_after_them(backend: Backend) -> None:
    async def scenario() -> tuple[list[str], list[str]]:
        async with opened(backend.events()) as log:
            await log.append([_rejection(n) for n in range(5)])
            recent, cursor = await log.recent(2)
            await log.append([_rejection(5)])
            after, _ = await log.read_since(cursor)
        return [e.id for e in recent], [e.id for e in after]

    assert asyncio.run(scenario()) == (["app-3", "app-4"], ["app-5"])


def test_an_event_never_carries_an_ssn_or_a_date_of_birth(backend: Backend) -> None:
    event = make_event(
        names.EVENT_FAILURE,
        application_id="app-1",
        code="ValueError",
        message=f"bad applicant {{'ssn': '{SSN}', 'date_of_birth': '{DOB}'}} and 123456789",
        channel="web",
        applicant_name=f"<img src=x onerror=alert(1)> {SSN.replace('-', ' ')}",
    )

    async def scenario() -> list[Event]:
        async with opened(backend.events()) as log:
            await log.append([event])
            return (await log.recent(10))[0]

    [stored] = asyncio.run(scenario())

    text = encode_event(stored).decode()
    for secret in (SSN, "123456789", "123 45 6789", DOB):
        assert secret not in text
    assert "<img src=x onerror=alert(1)>" in text  # escaping is the dashboard's job
    assert "***-**-****" in stored.message and "****-**-**" in stored.message


def test_an_event_with_an_ssn_cannot_be_built_directly() -> None:
    with pytest.raises(ValueError, match="no SSN"):
        Event(kind=names.EVENT_REJECTION, at="2026-01-01T00:00:00Z", id="a", code="c",
              message=f"SSN {SSN} is not valid")
    with pytest.raises(ValueError, match="event kind"):
        Event(kind="explosion", at="2026-01-01T00:00:00Z", id="a", code="c", message="m")


def test_a_stored_event_that_cannot_be_decoded_is_skipped_not_fatal(tmp_path: Path) -> None:
    async def scenario() -> list[str]:
        async with opened(SQLiteEventLog(tmp_path / "events.db")) as log:
            await log.append([_rejection(1)])
            # As if another version (or a careless script) wrote it: an SSN in the message.
            await log._db.write(lambda conn: conn.execute(
                "INSERT INTO events (body) VALUES (?)",
                (b'{"kind":"failure","at":"x","id":"a","code":"c","message":"123-45-6789"}',),
            ))
            await log.append([_rejection(2)])
            events, _ = await log.read_since("0")
        return [e.id for e in events]

    assert asyncio.run(scenario()) == ["app-1", "app-2"]


def test_long_texts_are_cut() -> None:
    event = make_event(names.EVENT_FAILURE, application_id="a", code="E", message="x" * 10_000)
    assert len(event.message) == 500


def test_sqlite_log_keeps_only_the_newest_events(tmp_path: Path) -> None:
    async def scenario() -> list[str]:
        async with opened(SQLiteEventLog(tmp_path / "events.db", kept=5)) as log:
            for n in range(12):
                await log.append([_rejection(n)])
            events, _ = await log.read_since("0")
        return [e.id for e in events]

    assert asyncio.run(scenario()) == [f"app-{n}" for n in range(7, 12)]


def test_publisher_writes_in_batches_and_keeps_events_through_an_outage(
    backend: Backend,
) -> None:
    class _Outage:
        def __init__(self, log: EventLog) -> None:
            self.log, self.down = log, True

        async def append(self, events: Sequence[Event]) -> None:
            if self.down:
                raise MetricsUnavailable("event log down (test)")
            await self.log.append(events)

    async def scenario() -> tuple[int, int, int, list[str]]:
        async with opened(backend.events()) as log:
            outage = _Outage(log)
            publisher = EventPublisher(outage, max_buffered=3)
            for n in range(2):
                publisher.publish(_rejection(n))
            failed = await publisher.flush()
            for n in range(2, 4):
                publisher.publish(_rejection(n))
            outage.down = False
            written = await publisher.flush()
            events, _ = await log.read_since("0" if backend.name == "sqlite" else "0-0")
        return failed, written, publisher.dropped, [e.id for e in events]

    failed, written, dropped, ids = asyncio.run(scenario())

    assert (failed, written, dropped) == (0, 3, 1)
    assert ids == ["app-1", "app-2", "app-3"]  # the oldest went when the buffer was full
