"""The store contract's sealed PII (store/sealed.py), for every backend of test_contract.py:
values counted by the key that sealed them, read a window at a time in id order, and
replaced only where they are still the value read."""

from __future__ import annotations

import time

from loanflow.store.base import Store
from loanflow.store.sealed import SealedChange
from tests.store import test_contract as contract
from tests.store.test_contract import dead_letter, record, run, save

# The contract's fixtures: each backend, a fresh store per test.
event_loop_runner = contract.event_loop_runner
postgres_database = contract.postgres_database
store_factory = contract.store_factory
store = contract.store

OLD, NEW, OTHER = "0a0b0c0d", "1a1b1c1d", "2a2b2c2d"
HOUR_NS = 3600 * 1_000_000_000


def sealed(key_id: str, rest: str = "") -> bytes:
    """A value as sealed with `key_id`: the key id's 4 bytes, then anything."""
    return bytes.fromhex(key_id) + b"nonce+ciphertext" + rest.encode()


def stored(store: Store, *values: bytes | None, ids: list[str] | None = None) -> list[str]:
    """One application per value, ids in the given order (`app-00`, `app-01`, …)."""
    ids = ids or [f"app-{i:02d}" for i in range(len(values))]
    save(store, *[record(id=i, pii_sealed=v) for i, v in zip(ids, values, strict=True)])
    return ids


def value_of(store: Store, application_id: str) -> bytes | None:
    found = run(store.get_application(application_id))
    assert found is not None
    return found.pii_sealed


def test_applications_are_counted_by_the_key_that_sealed_them(store: Store) -> None:
    stored(store, sealed(OLD), sealed(NEW), sealed(OLD), None)

    assert run(store.count_sealed_applications()) == {OLD: 2, NEW: 1}


def test_an_empty_store_counts_no_key(store: Store) -> None:
    assert run(store.count_sealed_applications()) == {}


def test_a_window_gives_the_values_not_under_the_current_key_and_its_last_id(
    store: Store,
) -> None:
    ids = stored(store, sealed(OLD, "0"), sealed(NEW), None, sealed(OTHER, "3"), sealed(OLD))

    first = run(store.sealed_applications(after_id="", window=4, current_key_id=NEW))
    second = run(store.sealed_applications(after_id=first.last_id or "", window=4,
                                           current_key_id=NEW))
    past = run(store.sealed_applications(after_id=ids[-1], window=4, current_key_id=NEW))

    assert first.rows == [(ids[0], sealed(OLD, "0")), (ids[3], sealed(OTHER, "3"))]
    assert first.last_id == ids[3]
    assert second.rows == [(ids[4], sealed(OLD))] and second.last_id == ids[4]
    assert past.rows == [] and past.last_id is None


def test_a_window_with_every_value_current_still_says_where_it_ends(store: Store) -> None:
    ids = stored(store, sealed(NEW), sealed(NEW), sealed(OLD))

    window = run(store.sealed_applications(after_id="", window=2, current_key_id=NEW))

    assert window.rows == [] and window.last_id == ids[1]


def test_values_are_replaced_where_they_are_still_the_value_read(store: Store) -> None:
    ids = stored(store, sealed(OLD, "a"), sealed(OLD, "b"))

    replaced = run(store.replace_sealed_applications([
        SealedChange(ids[0], sealed(OLD, "a"), sealed(NEW, "a")),
        SealedChange(ids[1], sealed(OLD, "b"), sealed(NEW, "b")),
    ]))

    assert sorted(replaced) == ids
    assert [value_of(store, i) for i in ids] == [sealed(NEW, "a"), sealed(NEW, "b")]


def test_a_value_changed_since_it_was_read_is_left_as_its_writer_made_it(store: Store) -> None:
    ids = stored(store, sealed(OLD, "a"), sealed(OLD, "b"))
    window = run(store.sealed_applications(after_id="", window=10, current_key_id=NEW))
    # Another writer (a second re-seal) replaces the first value between read and write.
    run(store.replace_sealed_applications([SealedChange(ids[0], sealed(OLD, "a"),
                                                        sealed(NEW, "theirs"))]))

    replaced = run(store.replace_sealed_applications(
        [SealedChange(i, v, sealed(NEW, "mine")) for i, v in window.rows]))

    assert replaced == [ids[1]]
    assert value_of(store, ids[0]) == sealed(NEW, "theirs")
    assert value_of(store, ids[1]) == sealed(NEW, "mine")


def test_replacing_nothing_changes_nothing(store: Store) -> None:
    stored(store, sealed(OLD))

    assert run(store.replace_sealed_applications([])) == []
    assert run(store.count_sealed_applications()) == {OLD: 1}


def dead_letters(store: Store, count: int) -> list[str]:
    letters = [dead_letter(record(id=f"dl-{i:02d}", status="dead_lettered"),
                           envelope=f"envelope {i}".encode()) for i in range(count)]
    run(store.save_results([], letters))
    return [d.id for d in letters]


def test_dead_letter_envelopes_are_read_in_pages_by_id(store: Store) -> None:
    ids = dead_letters(store, 5)

    first = run(store.dead_letter_envelopes(after_id="", limit=3))
    rest = run(store.dead_letter_envelopes(after_id=first[-1][0], limit=3))

    assert first == [(i, f"envelope {n}".encode()) for n, i in enumerate(ids[:3])]
    assert [i for i, _ in rest] == ids[3:]
    assert run(store.dead_letter_envelopes(after_id=ids[-1], limit=3)) == []


def test_a_dead_letter_saved_again_meanwhile_keeps_its_new_envelope(store: Store) -> None:
    ids = dead_letters(store, 2)
    again = dead_letter(record(id=ids[0], status="dead_lettered"), envelope=b"saved again")
    run(store.save_results([], [again]))  # a redelivery that failed once more

    replaced = run(store.replace_dead_letter_envelopes([
        SealedChange(ids[0], b"envelope 0", b"resealed 0"),
        SealedChange(ids[1], b"envelope 1", b"resealed 1"),
    ]))

    assert replaced == [ids[1]]
    assert run(store.dead_letter_envelopes(after_id="", limit=5)) == [
        (ids[0], b"saved again"), (ids[1], b"resealed 1")]


def test_ssn_hash_samples_are_the_first_and_last_of_the_span(store: Store) -> None:
    now = time.time_ns()
    inside = [record(id=f"in-{i:02d}", received_at_ns=now - HOUR_NS + i) for i in range(10)]
    outside = [record(id="too-old", received_at_ns=now - 30 * HOUR_NS),
               record(id="no-hash", received_at_ns=now, ssn_hash=None),
               record(id="no-pii", received_at_ns=now, pii_sealed=None)]
    save(store, *inside, *outside)

    samples = run(store.ssn_hash_samples(since_ns=now - 24 * HOUR_NS, limit=3))

    assert sorted(i for i, _, _ in samples) == ["in-00", "in-01", "in-02", "in-07", "in-08",
                                               "in-09"]
    assert {(h, v) for _, h, v in samples} == {(inside[0].ssn_hash, inside[0].pii_sealed)}

