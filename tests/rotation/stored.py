"""Sealed values as loanflow writes them, put straight into a store: applications' sealed
PII with their SSN hash, and dead letters' envelopes."""

from __future__ import annotations

import time
from collections.abc import Iterable

import msgspec

from loanflow.models import AttemptRecord, Envelope
from loanflow.pii import PiiCipher
from loanflow.store.base import Store
from loanflow.store.review import DeadLetter
from tests.store.test_contract import dead_letter, record, run, save

SSN = "123456789"
_decode_envelope = msgspec.msgpack.Decoder(Envelope).decode


def pii(ssn: str = SSN) -> bytes:
    """The processor's sealed PII before sealing: `{"ssn": digits, "dob": date}`."""
    return msgspec.json.encode({"ssn": ssn, "dob": "1985-12-10"})


def applications(store: Store, cipher: PiiCipher, ids: Iterable[str], *,
                 ssn: str = SSN, received_at_ns: int | None = None) -> list[str]:
    """Stored applications, their PII sealed and SSN hashed by `cipher`."""
    now = time.time_ns() if received_at_ns is None else received_at_ns
    ids = list(ids)
    save(store, *[record(id=i, received_at_ns=now, pii_sealed=cipher.seal(pii(ssn)),
                         ssn_hash=cipher.keyed_hash(ssn.encode())) for i in ids])
    return ids


def envelope(cipher: PiiCipher, application_id: str) -> bytes:
    return msgspec.msgpack.encode(Envelope(
        id=application_id, received_at_ns=1, api_key_id="key-a", idempotency_key="idem-1",
        channel="web", external_id="crm-1", sealed_application=cipher.seal(b"application"),
        attempts=(AttemptRecord(attempt=1, at_ns=1, error_code="Boom", message="boom"),)))


def letter(cipher: PiiCipher | None, application_id: str, *, attempts: int = 1,
           encoded: bytes | None = None) -> DeadLetter:
    """A dead letter whose envelope `cipher` sealed (or `encoded` as given)."""
    history = tuple(AttemptRecord(attempt=n, at_ns=n, error_code="Boom", message="boom")
                    for n in range(1, attempts + 1))
    if encoded is None:
        assert cipher is not None
        encoded = envelope(cipher, application_id)
    return dead_letter(record(id=application_id, status="dead_lettered"), attempts=history,
                       envelope=encoded)


def dead_letters(store: Store, *letters: DeadLetter) -> list[str]:
    run(store.save_results([], letters))
    return [d.id for d in letters]


def sealed_pii(store: Store, application_id: str) -> bytes:
    found = run(store.get_application(application_id))
    assert found is not None and found.pii_sealed is not None
    return found.pii_sealed


def envelope_of(store: Store, letter_id: str) -> Envelope:
    found = run(store.get_dead_letter(letter_id))
    assert found is not None
    return _decode_envelope(found.envelope)
