"""`pii reseal`'s work (rotation/reseal.py), on each store of the store contract: every
value under an old key sealed again under the current one, never over a writer's newer
value, unopenable values left and named, resumable, idempotent."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from typing import Any

import msgspec
import pytest

from loanflow.pii import PiiCipher
from loanflow.rotation.reseal import IDS_KEPT, ResealTally, reseal
from loanflow.store.base import Store
from loanflow.store.review import DeadLetterStatus
from loanflow.store.sealed import SealedChange
from tests.rotation.stored import (
    applications,
    dead_letters,
    envelope_of,
    letter,
    pii,
    sealed_pii,
)
from tests.store import test_contract as contract
from tests.store.test_contract import resolve, run

# The contract's fixtures: each backend, a fresh store per test.
event_loop_runner = contract.event_loop_runner
postgres_database = contract.postgres_database
store_factory = contract.store_factory
store = contract.store

OLD_KEY, NEW_KEY, LOST_KEY = os.urandom(32), os.urandom(32), os.urandom(32)
OLD, ROTATED, NEW_ONLY = PiiCipher([OLD_KEY]), PiiCipher([NEW_KEY, OLD_KEY]), PiiCipher([NEW_KEY])
LOST = PiiCipher([LOST_KEY])


def run_reseal(store: Store, cipher: PiiCipher = ROTATED, *, batch: int = 2,
               **options: Any) -> ResealTally:
    tally = ResealTally(to_key=cipher.key_id)
    run(reseal(store, cipher, tally, batch=batch, **options))
    return tally


def test_every_value_under_an_old_key_is_sealed_again_under_the_current_one(
    store: Store,
) -> None:
    old_apps = applications(store, OLD, [f"app-{i}" for i in range(5)])
    new_apps = applications(store, ROTATED, ["app-5", "app-6"])
    kept_new = {i: sealed_pii(store, i) for i in new_apps}
    open_letter, done_letter, new_letter = dead_letters(
        store, letter(OLD, "dl-0"), letter(OLD, "dl-1"), letter(ROTATED, "dl-2"))
    before = {i: envelope_of(store, i) for i in (open_letter, done_letter)}
    assert resolve(store, run(store.get_dead_letter(done_letter)), DeadLetterStatus.DISCARDED)

    tally = run_reseal(store)

    assert (tally.applications, tally.dead_letters, tally.complete) == (5, 2, True)
    assert dict(tally.from_keys) == {OLD.key_id: 7}
    assert run(store.count_sealed_applications()) == {ROTATED.key_id: 7}
    for app_id in old_apps:  # the same PII, now opened by the new key alone
        assert NEW_ONLY.open(sealed_pii(store, app_id)) == pii()
    assert {i: sealed_pii(store, i) for i in new_apps} == kept_new  # untouched
    for letter_id, was in before.items():
        now = envelope_of(store, letter_id)
        assert NEW_ONLY.open(now.sealed_application) == b"application"
        assert msgspec.structs.replace(now, sealed_application=b"") == msgspec.structs.replace(
            was, sealed_application=b"")
    assert run(store.get_dead_letter(done_letter)).status == "discarded"
    assert envelope_of(store, new_letter).sealed_application[:4].hex() == ROTATED.key_id


def test_a_second_run_finds_nothing_to_do(store: Store) -> None:
    applications(store, OLD, ["app-0", "app-1", "app-2"])
    dead_letters(store, letter(OLD, "dl-0"))
    run_reseal(store)

    again = run_reseal(store)

    assert again.summary()["resealed"] == {"applications": 0, "dead_letters": 0}
    assert (again.applications_to_do, again.complete, again.unopenable) == (0, True, 0)


class Interposed:
    """The real store, with another writer's change made just before each batch is
    written (between the re-seal's read and its write): the race, made certain."""

    def __init__(self, store: Store, *, before_applications: Any = None,
                 before_dead_letters: Any = None) -> None:
        self._store = store
        self._before_applications = before_applications
        self._before_dead_letters = before_dead_letters

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def replace_sealed_applications(self, changes: Sequence[SealedChange]) -> list[str]:
        if self._before_applications is not None:
            await self._before_applications(changes)
        return await self._store.replace_sealed_applications(changes)

    async def replace_dead_letter_envelopes(self, changes: Sequence[SealedChange]) -> list[str]:
        if self._before_dead_letters is not None:
            await self._before_dead_letters(changes)
        return await self._store.replace_dead_letter_envelopes(changes)


def test_a_value_changed_between_read_and_write_is_left_as_its_writer_made_it(
    store: Store,
) -> None:
    ids = applications(store, OLD, ["app-0", "app-1"])
    theirs = ROTATED.seal(pii())
    raced = []

    async def second_reseal(changes: Sequence[SealedChange]) -> None:
        [ours] = [c for c in changes if c.id == ids[0]] or [None]
        if ours is not None and not raced:
            raced.append(ours.id)
            await store.replace_sealed_applications([SealedChange(ids[0], ours.old, theirs)])

    tally = run_reseal(Interposed(store, before_applications=second_reseal))

    assert raced == [ids[0]]
    assert sealed_pii(store, ids[0]) == theirs
    assert ROTATED.is_current(sealed_pii(store, ids[1]))
    # Read again, the window held nothing more to do: nothing left, nothing overwritten.
    assert (tally.applications, tally.changed_meanwhile, tally.complete) == (1, 0, True)


def test_a_value_that_keeps_changing_is_left_and_reported(store: Store) -> None:
    ids = applications(store, OLD, ["app-0", "app-1"])
    written = []

    async def writer_under_the_old_key(changes: Sequence[SealedChange]) -> None:
        for change in changes:
            if change.id == ids[0]:
                written.append(OLD.seal(pii()))
                await store.replace_sealed_applications(
                    [SealedChange(ids[0], change.old, written[-1])])

    tally = run_reseal(Interposed(store, before_applications=writer_under_the_old_key))

    assert sealed_pii(store, ids[0]) == written[-1]  # the writer's, never overwritten
    assert ROTATED.is_current(sealed_pii(store, ids[1]))
    assert (tally.applications, tally.changed_meanwhile) == (1, 1)
    assert len(written) == 3  # the window was read three times


def test_a_dead_letter_saved_again_meanwhile_keeps_its_attempts_and_is_resealed(
    store: Store,
) -> None:
    [letter_id] = dead_letters(store, letter(OLD, "dl-0"))
    saved_again = letter(OLD, letter_id, attempts=2)

    async def redelivery_failed_again(changes: Sequence[SealedChange]) -> None:
        found = await store.get_dead_letter(letter_id)
        if found is not None and len(found.attempts) == 1:
            await store.save_results([], [saved_again])

    tally = run_reseal(Interposed(store, before_dead_letters=redelivery_failed_again))

    found = run(store.get_dead_letter(letter_id))
    assert found is not None and len(found.attempts) == 2
    now = envelope_of(store, letter_id)
    assert ROTATED.is_current(now.sealed_application)
    assert NEW_ONLY.open(now.sealed_application) == b"application"
    assert (tally.dead_letters, tally.changed_meanwhile) == (1, 0)


def test_values_no_configured_key_opens_are_left_as_they_are_and_named(store: Store) -> None:
    [fine] = applications(store, OLD, ["app-0"])
    [lost] = applications(store, LOST, ["app-1"])
    [tampered] = applications(store, OLD, ["app-2"])
    broken = bytearray(sealed_pii(store, tampered))
    broken[-1] ^= 1
    run(store.replace_sealed_applications(
        [SealedChange(tampered, sealed_pii(store, tampered), bytes(broken))]))
    letters = dead_letters(store, letter(OLD, "dl-0"), letter(LOST, "dl-1"),
                           letter(None, "dl-2", encoded=b"not an envelope"))
    before = {i: sealed_pii(store, i) for i in (lost, tampered)}

    tally = run_reseal(store)

    assert tally.unopenable == 4
    assert tally.unopenable_ids == {"applications": sorted([lost, tampered]),
                                    "dead_letters": [letters[1], letters[2]]}
    assert {i: sealed_pii(store, i) for i in (lost, tampered)} == before
    assert run(store.get_dead_letter(letters[2])).envelope == b"not an envelope"
    assert LOST.is_current(envelope_of(store, letters[1]).sealed_application)
    assert ROTATED.is_current(sealed_pii(store, fine))
    assert ROTATED.is_current(envelope_of(store, letters[0]).sealed_application)
    assert (tally.applications, tally.dead_letters, tally.complete) == (1, 1, True)


def test_a_stopped_run_is_resumed_by_running_it_again(store: Store) -> None:
    ids = applications(store, OLD, [f"app-{i}" for i in range(6)])
    stop = asyncio.Event()

    first = run_reseal(store, on_progress=lambda tally: stop.set(), stop=stop)
    second = run_reseal(store)

    assert (first.applications, first.complete) == (2, False)
    assert (second.applications, second.complete) == (4, True)
    assert all(ROTATED.is_current(sealed_pii(store, i)) for i in ids)


def test_only_the_first_unopenable_ids_are_kept_but_every_one_is_counted() -> None:
    tally = ResealTally(to_key=ROTATED.key_id)

    for n in range(IDS_KEPT - 1):
        tally.left_unopenable("applications", f"app-{n}")
    for n in range(5):
        tally.left_unopenable("dead_letters", f"dl-{n}")

    assert tally.unopenable == IDS_KEPT + 4
    assert tally.unopenable_ids == {"applications": [f"app-{n}" for n in range(IDS_KEPT - 1)],
                                    "dead_letters": ["dl-0"]}


def test_a_batch_below_one_row_is_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="batch of 1 or more"):
        run_reseal(store, batch=0)


def test_a_tally_of_another_key_is_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="tally for key"):
        run(reseal(store, ROTATED, ResealTally(to_key=OLD.key_id), batch=5))
