"""`pii status`'s findings (rotation/status.py), on each store of the store contract with
an embedded broker: which key sealed what, what the hashes derive from and whether they
match the stored ones, and whether an old key can be dropped now."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from loanflow.backends.sqlite.broker import SQLiteBroker
from loanflow.broker.base import Broker, Submission
from loanflow.models import Envelope
from loanflow.pii import PiiCipher, derive_hash_key
from loanflow.rotation.reseal import ResealTally, reseal
from loanflow.rotation.status import KeyStatus, key_status, verdict
from loanflow.store.base import Store
from tests.rotation.stored import applications, dead_letters, letter
from tests.store import test_contract as contract
from tests.store.test_contract import run

# The contract's fixtures: each backend, a fresh store per test.
event_loop_runner = contract.event_loop_runner
postgres_database = contract.postgres_database
store_factory = contract.store_factory
store = contract.store

OLD_KEY, NEW_KEY, LOST_KEY = os.urandom(32), os.urandom(32), os.urandom(32)
OLD, ROTATED = PiiCipher([OLD_KEY]), PiiCipher([NEW_KEY, OLD_KEY])
PINNED = PiiCipher([NEW_KEY, OLD_KEY], hash_key=derive_hash_key(OLD_KEY))
RETIRED = PiiCipher([NEW_KEY], hash_key=derive_hash_key(OLD_KEY))
LOST = PiiCipher([LOST_KEY])


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    broker = SQLiteBroker(tmp_path / "broker.db", visibility_timeout_s=30)
    run(broker.open())
    yield broker
    run(broker.close())


def queued(broker: Broker, cipher: PiiCipher, application_id: str) -> None:
    envelope = Envelope(id=application_id, received_at_ns=time.time_ns(), api_key_id="key-a",
                        idempotency_key=application_id, channel="web",
                        sealed_application=cipher.seal(b"application"))
    run(broker.append([Submission(envelope, "fingerprint")]))


def status_of(store: Store, broker: Broker, cipher: PiiCipher) -> KeyStatus:
    return run(key_status(store=store, broker=broker, cipher=cipher, now_ns=time.time_ns()))


def test_each_key_is_counted_where_its_values_are(store: Store, broker: Broker) -> None:
    applications(store, OLD, ["app-0", "app-1"])
    applications(store, ROTATED, ["app-2"])
    applications(store, LOST, ["app-3"])
    dead_letters(store, letter(OLD, "dl-0"), letter(None, "dl-1", encoded=b"garbage"))
    queued(broker, OLD, "queued-0")
    queued(broker, ROTATED, "queued-1")

    status = status_of(store, broker, ROTATED)

    assert [(k.key_id, k.role, k.applications, k.dead_letters, k.broker)
            for k in status.keys] == [(ROTATED.key_id, "current", 1, 0, 1),
                                      (OLD.key_id, "old", 2, 1, 1),
                                      (LOST.key_id, "unknown", 1, 0, 0)]
    assert (status.broker_held, status.unreadable_dead_letters) == (2, 1)
    assert any(LOST.key_id in w and "not configured" in w for w in status.warnings)
    assert any("1 dead letters hold no readable envelope" in w for w in status.warnings)


def test_an_old_key_in_use_cannot_be_dropped_and_each_reason_says_what_to_do(
    store: Store, broker: Broker,
) -> None:
    applications(store, OLD, ["app-0"])
    dead_letters(store, letter(OLD, "dl-0"))
    queued(broker, OLD, "queued-0")

    [judged] = status_of(store, broker, ROTATED).verdicts

    assert judged.key_id == OLD.key_id and not judged.can_drop
    assert [reason.split(":")[0] for reason in judged.reasons] == [
        "2 stored values are sealed with it (1 applications, 1 dead letters)",
        "1 entries in the broker are sealed with it and need it until processed",
        "the keyed hashes derive from it",
    ]
    assert "`loanflow pii reseal`" in judged.reasons[0]
    assert "`loanflow pii hash-key`" in judged.reasons[2]


def test_an_old_key_resealed_drained_and_pinned_can_be_dropped(
    store: Store, broker: Broker,
) -> None:
    applications(store, OLD, ["app-0"])
    dead_letters(store, letter(OLD, "dl-0"))
    queued(broker, OLD, "queued-0")
    [delivery] = run(broker.reserve(10, consumer="worker"))
    run(broker.ack([delivery]))  # processed
    run(reseal(store, PINNED, ResealTally(to_key=PINNED.key_id), batch=10))

    status = status_of(store, broker, PINNED)

    assert status.verdicts == [verdict(status, OLD.key_id)]
    assert status.verdicts[0].can_drop and status.verdicts[0].reasons == []
    assert status.hash_key.pinned and status.hash_key.derivable_from == [OLD.key_id]
    assert status.warnings == []


def test_the_current_key_cannot_be_dropped(store: Store, broker: Broker) -> None:
    judged = verdict(status_of(store, broker, ROTATED), ROTATED.key_id)

    assert not judged.can_drop
    assert judged.reasons == ["it is the current key, which seals every new value: list a new"
                              " key first"]


def test_a_key_no_longer_configured_is_judged_by_what_it_still_seals(
    store: Store, broker: Broker,
) -> None:
    applications(store, LOST, ["app-0"])

    judged = verdict(status_of(store, broker, ROTATED), LOST.key_id)

    assert not judged.can_drop
    assert judged.reasons[0].startswith("it is not configured: 1 values sealed with it cannot"
                                        " be opened")


def test_the_hash_check_finds_the_stored_hashes_made_by_the_hash_key_in_force(
    store: Store, broker: Broker,
) -> None:
    applications(store, OLD, [f"app-{i:02d}" for i in range(25)])
    run(reseal(store, ROTATED, ResealTally(to_key=ROTATED.key_id), batch=10))

    for cipher in (ROTATED, PINNED, RETIRED):
        hash_key = status_of(store, broker, cipher).hash_key
        assert (hash_key.sampled, hash_key.matching, hash_key.mismatched) == (20, 20, 0)


def test_pinning_keeps_the_hash_key_id_and_dropping_unpinned_changes_it(
    store: Store, broker: Broker,
) -> None:
    dropped_unpinned = PiiCipher([NEW_KEY])
    ciphers = {"old": OLD, "rotated": ROTATED, "pinned": PINNED, "retired": RETIRED,
               "dropped unpinned": dropped_unpinned}

    ids = {name: status_of(store, broker, c).hash_key.id for name, c in ciphers.items()}

    assert ids["old"] == ids["rotated"] == ids["pinned"] == ids["retired"]
    assert ids["dropped unpinned"] != ids["old"]


def test_a_hash_key_that_did_not_make_the_stored_hashes_is_found_and_blocks_every_drop(
    store: Store, broker: Broker,
) -> None:
    applications(store, OLD, ["app-0", "app-1"])
    run(reseal(store, ROTATED, ResealTally(to_key=ROTATED.key_id), batch=10))
    # The old key dropped without the pin: the hash key is the new key's now. Another
    # key listed, to have a verdict to look at.
    unpinned = PiiCipher([NEW_KEY, OLD_KEY], hash_key=derive_hash_key(NEW_KEY))

    status = status_of(store, broker, unpinned)

    assert (status.hash_key.sampled, status.hash_key.mismatched) == (2, 2)
    assert any("were made with another hash key" in w for w in status.warnings)
    assert any("another hash key" in reason for reason in status.verdicts[0].reasons)


def test_a_sample_no_configured_key_opens_is_counted_apart(store: Store, broker: Broker) -> None:
    applications(store, OLD, ["app-0"])
    applications(store, LOST, ["app-1"])

    hash_key = status_of(store, broker, ROTATED).hash_key

    assert (hash_key.sampled, hash_key.matching, hash_key.unopenable) == (2, 1, 1)


def test_applications_older_than_a_day_are_not_sampled(store: Store, broker: Broker) -> None:
    applications(store, OLD, ["app-0"], received_at_ns=time.time_ns() - 25 * 3600 * 10**9)

    assert status_of(store, broker, ROTATED).hash_key.sampled == 0

