"""The embedded SQLite files: several openers of a new file at once all get it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from loanflow.embedded import connect
from tests.conftest import all_at_once

OPENERS = 6
#: Each round is one race on a new file; the losers used to fail in ~1 round of 8.
ROUNDS = 200


def open_at_once(path: Path) -> list[Exception]:
    """OPENERS threads connect to `path` together; the errors they got."""
    outcomes = all_at_once(OPENERS, lambda: connect(path).close())
    return [outcome for outcome in outcomes if isinstance(outcome, Exception)]


def test_openers_racing_to_switch_a_new_file_to_wal_all_get_it(tmp_path: Path) -> None:
    errors = [error for n in range(ROUNDS) for error in open_at_once(tmp_path / f"{n}.db")]

    assert errors == []
    with sqlite3.connect(tmp_path / "0.db") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
