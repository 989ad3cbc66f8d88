"""Where each PII key is still needed, and whether an old one can be dropped now.

A key is needed while a value sealed with it is kept: an application's sealed PII or
a dead letter in the store (`loanflow pii reseal` moves those to the current key), an
envelope in the broker (sealed with the key that was current when it was accepted,
until it is processed). And while the keyed hashes derive from it: the oldest key
listed, unless LOANFLOW_PII_HASH_KEY pins the hash key. Dropping that one unpinned
would change every duplicate-SSN hash, idempotency fingerprint and velocity count.

The hash check opens a few applications of the last 24 h and hashes their SSN again
with the hash key in force: a configuration about to be deployed can be tried here
first, and a wrong pin shows before it breaks duplicate checks and retries.
"""

from __future__ import annotations

import hmac
from collections import Counter
from dataclasses import dataclass

import msgspec

from loanflow.broker.base import Broker
from loanflow.models import UNREADABLE_ENVELOPE, envelope_key_id
from loanflow.pii import PiiCipher, PiiKeyError
from loanflow.pipeline.review_flags import DAY_NS
from loanflow.store.base import Store

#: Applications the hash check opens at each end of the last 24 h.
HASH_SAMPLES = 10
#: Dead letters read per query while counting.
DEAD_LETTER_PAGE = 1000


class _StoredPii(msgspec.Struct):
    """The processor's sealed PII (`{"ssn": digits, "dob": …}`): the SSN alone."""

    ssn: str


_decode_pii = msgspec.json.Decoder(_StoredPii).decode


@dataclass(frozen=True, kw_only=True)
class KeyUse:
    key_id: str
    #: current (seals new values), old (configured: opens only), or unknown (found but
    #: not configured: nothing opens those values now).
    role: str
    applications: int
    dead_letters: int
    broker: int

    @property
    def stored(self) -> int:
        return self.applications + self.dead_letters


@dataclass(frozen=True, kw_only=True)
class HashKeyState:
    pinned: bool
    #: A fingerprint of the hash key, never the key: equal ids, equal hashes.
    id: str
    #: The configured PII keys it derives from (the oldest when not pinned).
    derivable_from: list[str]
    #: Applications of the last 24 h sampled; of them, those whose SSN hashed alike,
    #: those whose hash another hash key made, and those no configured key opened.
    sampled: int
    matching: int
    mismatched: int
    unopenable: int


@dataclass(frozen=True, kw_only=True)
class Verdict:
    key_id: str
    can_drop: bool
    #: Why not, each with what to do; empty when it can.
    reasons: list[str]


@dataclass(frozen=True, kw_only=True)
class KeyStatus:
    current_key_id: str
    #: Configured keys in their order, then unknown ones found.
    keys: list[KeyUse]
    unreadable_dead_letters: int
    broker_held: int
    unreadable_broker: int
    hash_key: HashKeyState
    #: What needs an operator's attention whatever is dropped, one sentence each.
    warnings: list[str]
    #: One for each configured key but the current one.
    verdicts: list[Verdict]

    def use_of(self, key_id: str) -> KeyUse | None:
        return next((k for k in self.keys if k.key_id == key_id), None)


async def key_status(*, store: Store, broker: Broker, cipher: PiiCipher, now_ns: int) -> KeyStatus:
    applications = await store.count_sealed_applications()
    dead_letters = await count_dead_letters(store)
    in_broker = Counter(await broker.sealed_key_counts())
    unreadable_letters = dead_letters.pop(UNREADABLE_ENVELOPE, 0)
    unreadable_broker = in_broker.pop(UNREADABLE_ENVELOPE, 0)
    configured = cipher.key_ids
    found = set(applications) | set(dead_letters) | set(in_broker)
    keys = [
        KeyUse(key_id=key_id,
               role=("current" if key_id == cipher.key_id
                     else "old" if key_id in configured else "unknown"),
               applications=applications.get(key_id, 0),
               dead_letters=dead_letters.get(key_id, 0),
               broker=in_broker.get(key_id, 0))
        for key_id in configured + sorted(found - set(configured))
    ]
    hash_key = await check_hash_key(store, cipher, now_ns=now_ns)
    status = KeyStatus(
        current_key_id=cipher.key_id, keys=keys, unreadable_dead_letters=unreadable_letters,
        broker_held=sum(in_broker.values()) + unreadable_broker,
        unreadable_broker=unreadable_broker, hash_key=hash_key,
        warnings=_warnings(keys, unreadable_letters, unreadable_broker, hash_key), verdicts=[],
    )
    status.verdicts.extend(verdict(status, key_id) for key_id in configured[1:])
    return status


async def count_dead_letters(store: Store) -> Counter[str]:
    """Dead letters by the key that sealed each one's application (UNREADABLE_ENVELOPE:
    not an envelope)."""
    counts: Counter[str] = Counter()
    after = ""
    while page := await store.dead_letter_envelopes(after_id=after, limit=DEAD_LETTER_PAGE):
        counts.update(envelope_key_id(envelope) for _, envelope in page)
        after = page[-1][0]
    return counts


async def check_hash_key(store: Store, cipher: PiiCipher, *, now_ns: int) -> HashKeyState:
    samples = await store.ssn_hash_samples(since_ns=now_ns - DAY_NS, limit=HASH_SAMPLES)
    matching = mismatched = unopenable = 0
    for _, ssn_hash, sealed in samples:
        try:
            ssn = _decode_pii(cipher.open(sealed)).ssn
        except (PiiKeyError, msgspec.DecodeError):
            unopenable += 1
            continue
        # As the processor hashes it (pipeline/review_flags.py): the digits alone.
        if hmac.compare_digest(cipher.keyed_hash(ssn.replace("-", "").encode()), ssn_hash):
            matching += 1
        else:
            mismatched += 1
    return HashKeyState(pinned=cipher.hash_key_pinned, id=cipher.hash_key_id,
                        derivable_from=cipher.hash_key_derivable_from, sampled=len(samples),
                        matching=matching, mismatched=mismatched, unopenable=unopenable)


def _warnings(
    keys: list[KeyUse], unreadable_letters: int, unreadable_broker: int,
    hash_key: HashKeyState,
) -> list[str]:
    warnings = [
        f"key {use.key_id} is not configured: {use.stored + use.broker:,} values sealed with it"
        f" cannot be opened ({use.applications:,} applications, {use.dead_letters:,} dead"
        f" letters, {use.broker:,} broker entries)"
        for use in keys if use.role == "unknown"
    ]
    if unreadable_letters:
        warnings.append(f"{unreadable_letters:,} dead letters hold no readable envelope")
    if unreadable_broker:
        warnings.append(f"{unreadable_broker:,} broker entries hold no readable envelope")
    if hash_key.mismatched:
        warnings.append(
            f"{hash_key.mismatched} of {hash_key.sampled} sampled SSN hashes of the last 24 h"
            " were made with another hash key than the one in force: duplicate checks and"
            " idempotent retries will not match them. Set LOANFLOW_PII_HASH_KEY to the hash"
            " key they were made with (`loanflow pii hash-key` under the earlier"
            " configuration)")
    return warnings


def verdict(status: KeyStatus, key_id: str) -> Verdict:
    """Whether `key_id` can be dropped from LOANFLOW_PII_KEY now, and if not, why."""
    use = status.use_of(key_id)
    if use is None:
        return Verdict(key_id=key_id, can_drop=True, reasons=[])  # nothing needs it
    if use.role == "current":
        return Verdict(key_id=key_id, can_drop=False, reasons=[
            "it is the current key, which seals every new value: list a new key first"])
    reasons = []
    if use.role == "unknown":
        reasons.append(f"it is not configured: {use.stored + use.broker:,} values sealed"
                       " with it cannot be opened (configure it again to re-seal them)")
    elif use.stored:
        reasons.append(f"{use.stored:,} stored values are sealed with it ({use.applications:,}"
                       f" applications, {use.dead_letters:,} dead letters): run"
                       " `loanflow pii reseal`")
    if use.broker and use.role != "unknown":
        reasons.append(f"{use.broker:,} entries in the broker are sealed with it and need it"
                       " until processed: let the workers drain them")
    hash_key = status.hash_key
    if not hash_key.pinned and key_id in hash_key.derivable_from:
        reasons.append("the keyed hashes derive from it: pin the hash key first (`loanflow pii"
                       " hash-key`, as LOANFLOW_PII_HASH_KEY on every process, restarted)")
    if hash_key.mismatched:
        reasons.append(f"{hash_key.mismatched} of {hash_key.sampled} sampled SSN hashes of the"
                       " last 24 h were made with another hash key than the one in force:"
                       " set LOANFLOW_PII_HASH_KEY to the one they were made with first")
    return Verdict(key_id=key_id, can_drop=not reasons, reasons=reasons)
