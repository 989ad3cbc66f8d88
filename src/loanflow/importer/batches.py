"""Records grouped into requests for `POST /v1/applications/batch`."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

from loanflow.importer.readers import Record

#: The batch endpoint's item limit (api/batch.py MAX_ITEMS).
MAX_BATCH_ITEMS = 1000
#: Half the endpoint's 16 MiB body limit: a batch of unusually long lines still fits.
MAX_BATCH_BYTES = 8 * 1024 * 1024
#: Lines rejected here ride along in batches (they keep their place in the order);
#: this bounds a batch of a file that is mostly unmappable.
MAX_BATCH_LINES = 4 * MAX_BATCH_ITEMS


@dataclasses.dataclass(slots=True)
class Batch:
    """Consecutive records; the sendable ones form the request, in order."""

    seq: int
    records: list[Record]

    @property
    def sendable(self) -> list[Record]:
        return [r for r in self.records if r.item is not None]

    @property
    def end_offset(self) -> int:
        return self.records[-1].end_offset

    @property
    def next_line(self) -> int:
        return self.records[-1].next_line

    def body(self) -> bytes:
        """The request body: a JSON array of the sendable items."""
        return b"[" + b",".join(r.item for r in self.records if r.item is not None) + b"]"


def batches(records: Iterator[Record], *, size: int) -> Iterator[Batch]:
    """Batches of at most `size` sendable records (and MAX_BATCH_BYTES of them)."""
    if not 1 <= size <= MAX_BATCH_ITEMS:
        raise ValueError(f"expected a batch size of 1-{MAX_BATCH_ITEMS}, got {size}")
    current: list[Record] = []
    seq, items, size_bytes = 0, 0, 0
    for record in records:
        item_bytes = len(record.item) + 1 if record.item is not None else 0
        if items and size_bytes + item_bytes > MAX_BATCH_BYTES:
            yield Batch(seq, current)
            seq, current, items, size_bytes = seq + 1, [], 0, 0
        current.append(record)
        items += record.item is not None
        size_bytes += item_bytes
        if items >= size or len(current) >= MAX_BATCH_LINES:
            yield Batch(seq, current)
            seq, current, items, size_bytes = seq + 1, [], 0, 0
    if current:
        yield Batch(seq, current)
