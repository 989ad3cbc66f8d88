"""Every stored sealed value not under the current PII key, sealed again under it.

Applications' sealed PII, then dead letters' envelopes, each read a window of
`batch` rows at a time in id order and written back in one transaction per window,
optimistically (store/sealed.py): a value changed between the read and the write is
left as its writer made it and its window read again, at most WINDOW_ATTEMPTS times.
Workers and operators go on meanwhile. A value already under the current key is
never touched, so a run that stops anywhere is resumed by running it again, and a
second run finds nothing to do. A value no configured key opens is counted, named by
id and left as it is. Nothing here shows a value, sealed or opened.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec

from loanflow.models import Envelope
from loanflow.pii import PiiCipher, PiiKeyError, sealed_key_id
from loanflow.store.base import Store
from loanflow.store.sealed import SealedChange

#: Reads of one window while values in it keep changing under the re-seal; what still
#: changed after them is reported ("run again").
WINDOW_ATTEMPTS = 3
#: Ids of unopenable values kept for the report and the audit trail (of applications and
#: dead letters together); the count is whole.
IDS_KEPT = 100
#: The audit trail's action and the target it names (the key values were sealed with).
AUDIT_ACTION = "pii_reseal"

_decode_envelope = msgspec.msgpack.Decoder(Envelope).decode
_encode_envelope = msgspec.msgpack.Encoder().encode


@dataclass
class ResealTally:
    """What a run did so far; `on_progress` gets it after every window."""

    to_key: str
    #: Applications not under the current key when the run began (its progress' 100%).
    applications_to_do: int = 0
    applications: int = 0
    dead_letters: int = 0
    #: Values re-sealed, by the key they were sealed with before.
    from_keys: Counter[str] = field(default_factory=Counter)
    #: Values no configured key opens (or dead letters that are not envelopes): left.
    unopenable: int = 0
    #: Their ids, by where they are ("applications", "dead_letters"), IDS_KEPT at most.
    unopenable_ids: dict[str, list[str]] = field(
        default_factory=lambda: {"applications": [], "dead_letters": []})
    #: Values that kept changing under the re-seal: left to their writer, read next run.
    changed_meanwhile: int = 0
    started_at: float = field(default_factory=time.monotonic)
    complete: bool = False

    @property
    def resealed(self) -> int:
        return self.applications + self.dead_letters

    @property
    def elapsed_s(self) -> float:
        return time.monotonic() - self.started_at

    def left_unopenable(self, where: str, item_id: str) -> None:
        self.unopenable += 1
        if sum(map(len, self.unopenable_ids.values())) < IDS_KEPT:
            self.unopenable_ids[where].append(item_id)

    def summary(self) -> dict[str, Any]:
        """For the terminal, `--json` and the audit trail: counts and ids, no values."""
        elapsed = self.elapsed_s
        return {
            "complete": self.complete,
            "to_key": self.to_key,
            "resealed": {"applications": self.applications, "dead_letters": self.dead_letters},
            "from_keys": dict(sorted(self.from_keys.items())),
            "unopenable": {"count": self.unopenable, **self.unopenable_ids},
            "changed_meanwhile": self.changed_meanwhile,
            "elapsed_s": round(elapsed, 3),
            "per_s": round(self.resealed / elapsed) if elapsed > 0 else 0,
        }


async def reseal(
    store: Store, cipher: PiiCipher, tally: ResealTally, *, batch: int,
    on_progress: Callable[[ResealTally], None] | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Re-seal what the store holds, counting in `tally` (the caller's, so a run cut
    short by an error still tells what it did); `stop` ends the run after the window
    in hand, `complete` left False."""
    if batch < 1:
        raise ValueError(f"expected a batch of 1 or more rows, got {batch}")
    if tally.to_key != cipher.key_id:
        raise ValueError(f"expected a tally for key {cipher.key_id}, got {tally.to_key}")
    counts = await store.count_sealed_applications()
    tally.applications_to_do = sum(n for key_id, n in counts.items() if key_id != cipher.key_id)
    report = on_progress or (lambda _: None)
    halted = stop if stop is not None else asyncio.Event()
    await _reseal_applications(store, cipher, tally, batch, report, halted)
    if not halted.is_set():
        await _reseal_dead_letters(store, cipher, tally, batch, report, halted)
    tally.complete = not halted.is_set()


async def _reseal_applications(
    store: Store, cipher: PiiCipher, tally: ResealTally, batch: int,
    report: Callable[[ResealTally], None], stop: asyncio.Event,
) -> None:
    after: str | None = ""
    unopenable: set[str] = set()
    while after is not None and not stop.is_set():
        for attempt in range(1, WINDOW_ATTEMPTS + 1):
            window = await store.sealed_applications(after_id=after, window=batch,
                                                     current_key_id=cipher.key_id)
            changes = []
            for app_id, sealed in window.rows:
                try:
                    changes.append(SealedChange(app_id, sealed, cipher.reseal(sealed)))
                except PiiKeyError:
                    if app_id not in unopenable:
                        unopenable.add(app_id)
                        tally.left_unopenable("applications", app_id)
            done = set(await store.replace_sealed_applications(changes))
            tally.applications += len(done)
            tally.from_keys.update(sealed_key_id(c.old) for c in changes if c.id in done)
            missed = len(changes) - len(done)
            if not missed:
                break
            if attempt == WINDOW_ATTEMPTS:
                tally.changed_meanwhile += missed
        after = window.last_id
        report(tally)


async def _reseal_dead_letters(
    store: Store, cipher: PiiCipher, tally: ResealTally, batch: int,
    report: Callable[[ResealTally], None], stop: asyncio.Event,
) -> None:
    after = ""
    unopenable: set[str] = set()
    while not stop.is_set():
        for attempt in range(1, WINDOW_ATTEMPTS + 1):
            page = await store.dead_letter_envelopes(after_id=after, limit=batch)
            changes, from_key = [], {}
            for letter_id, encoded in page:
                try:
                    envelope = _decode_envelope(encoded)
                    if cipher.is_current(envelope.sealed_application):
                        continue
                    resealed = msgspec.structs.replace(
                        envelope, sealed_application=cipher.reseal(envelope.sealed_application))
                except (msgspec.DecodeError, PiiKeyError):
                    if letter_id not in unopenable:
                        unopenable.add(letter_id)
                        tally.left_unopenable("dead_letters", letter_id)
                    continue
                changes.append(SealedChange(letter_id, encoded, _encode_envelope(resealed)))
                from_key[letter_id] = sealed_key_id(envelope.sealed_application)
            done = set(await store.replace_dead_letter_envelopes(changes))
            tally.dead_letters += len(done)
            tally.from_keys.update(from_key[letter_id] for letter_id in done)
            missed = len(changes) - len(done)
            if not missed:
                break
            if attempt == WINDOW_ATTEMPTS:
                tally.changed_meanwhile += missed
        if not page:
            return
        after = page[-1][0]
        report(tally)
