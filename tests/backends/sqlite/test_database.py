"""The embedded SQLite files: several openers of a new file at once all get it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from loanflow.backends.sqlite.database import connect
from tests.conftest import all_at_once

OPENERS = 6
#: Each round is one race on a new file; the losers used to fail in ~1 round of 8.
ROUNDS = 200


def open_at_once(path: Path) -> list[Exception]:
    """OPENERS threads connect to `path` together; the errors they got."""
    outcomes = all_at_once(OPENERS, lambda: connect(path).close())
    return [outcome for outcome in outcomes if isinstance(outcome, Exception)]


@pytest.mark.slow  # many rounds of races: seconds
def test_openers_racing_to_switch_a_new_file_to_wal_all_get_it(tmp_path: Path) -> None:
    errors = [error for n in range(ROUNDS) for error in open_at_once(tmp_path / f"{n}.db")]

    assert errors == []
    with sqlite3.connect(tmp_path / "0.db") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)


#: PRAGMA synchronous's answers.
FULL, NORMAL = 2, 1


def test_the_queue_and_the_results_fsync_each_commit_and_derived_data_does_not(
    tmp_path: Path,
) -> None:
    # A 202 and a stored result rest on their commits; velocity counts and metrics are
    # derived data, kept across a crash of any process but not worth an fsync each.
    import asyncio

    from loanflow.backends.sqlite.broker import SQLiteBroker
    from loanflow.backends.sqlite.events import SQLiteEventLog
    from loanflow.backends.sqlite.series import SQLiteSeries
    from loanflow.backends.sqlite.store import SQLiteStore
    from loanflow.backends.sqlite.velocity import SQLiteVelocityCounter

    async def level(owner: object, *, durable: bool = True) -> int:
        db = owner._db  # type: ignore[attr-defined]
        answer: int = await db.write(lambda c: c.execute("PRAGMA synchronous").fetchone()[0],
                                     durable=durable)
        return answer

    async def levels() -> dict[str, int]:
        owners = {
            "broker": SQLiteBroker(tmp_path / "broker.sqlite", visibility_timeout_s=30),
            "store": SQLiteStore(tmp_path / "store.sqlite"),
            "series": SQLiteSeries(tmp_path / "metrics.sqlite"),
            "events": SQLiteEventLog(tmp_path / "metrics.sqlite"),
        }
        found = {}
        for name, owner in owners.items():
            await owner.open()  # type: ignore[attr-defined]
            try:
                found[name] = await level(owner)
                if name == "store":  # the velocity counts' writes, then the store's again
                    velocity = SQLiteVelocityCounter(owner.database)  # type: ignore[attr-defined]
                    found["velocity"] = await level(velocity, durable=False)
                    found["store after"] = await level(owner)
            finally:
                await owner.close()  # type: ignore[attr-defined]
        return found

    assert asyncio.run(levels()) == {"broker": FULL, "store": FULL, "velocity": NORMAL,
                                     "store after": FULL, "series": NORMAL, "events": NORMAL}
