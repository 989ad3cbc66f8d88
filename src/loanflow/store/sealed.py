"""The sealed PII a store holds, for the key's rotation (rotation/): counted by the key
that sealed it, and sealed again in place.

Two columns hold sealed values: `applications.pii_sealed` (a processed application's
SSN and date of birth) and `dead_letters.envelope` (the queued envelope whole, the
application sealed inside). Both are read in keyset order of id, a window at a time,
so a pass over a large table is many short queries, resumable anywhere.

A replacement is optimistic: one transaction per batch, and each value is replaced
only where it is still the one read (`WHERE id = … AND <column> = <as read>`). A value
changed meanwhile (a replay's result saved, a dead letter saved again) is left as
the writer made it and reported, never overwritten with a re-sealed older one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, Protocol

from loanflow.pii import KEY_ID_BYTES


class SealedChange(NamedTuple):
    """One value to replace: `new` where the row's value is still `old`."""

    id: str
    old: bytes
    new: bytes


class SealedWindow(NamedTuple):
    #: (id, sealed PII) of the window's applications not under the current key, by id.
    rows: list[tuple[str, bytes]]
    #: The window's last id, where the next window starts; None: past the last row.
    last_id: str | None


class SealedStore(Protocol):
    async def count_sealed_applications(self) -> dict[str, int]:
        """Applications with sealed PII, by the id (hex) of the key each value carries.
        Reads the whole table: for an operator's command, allowed minutes."""
        ...

    async def sealed_applications(
        self, *, after_id: str, window: int, current_key_id: str
    ) -> SealedWindow:
        """Of the `window` applications next by id after `after_id`, those whose sealed
        PII does not carry `current_key_id`."""
        ...

    async def replace_sealed_applications(self, changes: Sequence[SealedChange]) -> list[str]:
        """In one transaction, each application's sealed PII becomes `new` where it is
        still `old`; the ids replaced."""
        ...

    async def dead_letter_envelopes(self, *, after_id: str, limit: int) -> list[tuple[str, bytes]]:
        """(id, envelope) of the `limit` dead letters next by id after `after_id`, of
        any status: a replayed or discarded one still holds its sealed application."""
        ...

    async def replace_dead_letter_envelopes(self, changes: Sequence[SealedChange]) -> list[str]:
        """In one transaction, each dead letter's envelope becomes `new` where it is
        still `old`; the ids replaced."""
        ...

    async def ssn_hash_samples(
        self, *, since_ns: int, limit: int
    ) -> list[tuple[str, str, bytes]]:
        """(id, ssn_hash, sealed PII) of up to `limit` of the first and `limit` of the last
        applications received since `since_ns` that have both, to check that the hash key
        in force made their hashes."""
        ...


def count_sql() -> str:
    return (f"SELECT substr(pii_sealed, 1, {KEY_ID_BYTES}), count(*) FROM applications"
            " WHERE pii_sealed IS NOT NULL GROUP BY 1")


def window_sql(placeholder: Callable[[int], str]) -> str:
    """The window's last id on every row (one row, its other columns NULL, when none in
    it needs a re-seal), then the id and value of each that does. Parameters: after id,
    window size, current key id (bytes)."""
    after, size, current = placeholder(1), placeholder(2), placeholder(3)
    return (
        f"WITH w AS (SELECT id, pii_sealed FROM applications WHERE id > {after}"
        f" ORDER BY id LIMIT {size})"
        " SELECT (SELECT max(id) FROM w), c.id, c.pii_sealed FROM (SELECT 1 AS one) AS o"
        " LEFT JOIN (SELECT id, pii_sealed FROM w WHERE pii_sealed IS NOT NULL"
        f" AND substr(pii_sealed, 1, {KEY_ID_BYTES}) <> {current}) AS c ON true"
        " ORDER BY c.id"
    )


def window_from_rows(rows: Sequence[Sequence[Any]]) -> SealedWindow:
    last = rows[0][0] if rows else None
    found = [(str(row[1]), bytes(row[2])) for row in rows if row[1] is not None]
    return SealedWindow(found, None if last is None else str(last))


def dead_letters_sql(placeholder: Callable[[int], str]) -> str:
    return (f"SELECT id, envelope FROM dead_letters WHERE id > {placeholder(1)}"
            f" ORDER BY id LIMIT {placeholder(2)}")


def samples_sql(placeholder: Callable[[int], str]) -> str:
    """Both ends of the span through applications_time (received_at_ns, id). Parameters:
    since ns, limit."""
    since, limit = placeholder(1), placeholder(2)
    select = ("SELECT id, ssn_hash, pii_sealed FROM applications"
              f" WHERE received_at_ns >= {since} AND ssn_hash IS NOT NULL"
              " AND pii_sealed IS NOT NULL")
    return (f"SELECT * FROM ({select} ORDER BY received_at_ns, id LIMIT {limit}) AS oldest"
            f" UNION SELECT * FROM ({select} ORDER BY received_at_ns DESC, id DESC"
            f" LIMIT {limit}) AS newest")


def key_counts(rows: Sequence[Sequence[Any]]) -> dict[str, int]:
    return {bytes(prefix).hex(): int(n) for prefix, n in rows}
