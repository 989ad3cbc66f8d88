"""Finding the application(s) whose result the store refuses for its data.

A data or constraint error fails the same batch write every time (StoreRefused).
Rather than hold the whole batch, it is saved again in halves, and halves of the
half that is refused, down to single results: log2(batch) extra transactions for
one bad result. The neighbours are stored; each refused result becomes a failed
attempt of its application (retried with backoff, then dead-lettered).
"""

from __future__ import annotations

from collections.abc import Sequence

from loanflow.store.base import ApplicationRecord, Store, StoreRefused
from loanflow.store.review import DeadLetter


async def save_isolating(
    store: Store,
    records: Sequence[ApplicationRecord],
    dead_letters: Sequence[DeadLetter],
    refusal: StoreRefused,
) -> dict[str, StoreRefused]:
    """After the store refused `records` as one batch (`refusal`): save them in parts,
    each with its dead letters; application id -> the refusal of each one the store
    refuses on its own. StoreUnavailable passes through (some parts may be saved)."""
    if len(records) <= 1:
        return {record.id: refusal for record in records}
    middle = len(records) // 2
    refused: dict[str, StoreRefused] = {}
    for part in (records[:middle], records[middle:]):
        ids = {record.id for record in part}
        letters = [letter for letter in dead_letters if letter.id in ids]
        try:
            await store.save_results(part, letters)
        except StoreRefused as exc:
            refused.update(await save_isolating(store, part, letters, exc))
    return refused
