"""The Redis idempotency record: one string per key, `SET … EX window`, 40 bytes.

`fingerprint (16) | received_at_ns (8, big-endian) | application id (16, the UUID's
bytes)`: short enough for Redis's one-allocation string encoding (44 bytes at
most). The fingerprint is the first 16 bytes of a BLAKE2b of the submission's
fingerprint string: a body that differs is taken for the same one with odds of
2^-128. Measured bytes per key: README "Idempotency".

Records written before it (a hash `fp`, `id`, `at` under the same key name) are
still read, so a key claimed before an upgrade replays after it; they expire on
their own TTL. The key name did not change on purpose: an old process meeting a
new record fails its script with WRONGTYPE (503, retried with the same key)
instead of missing the claim and making a second application.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

FINGERPRINT_BYTES = 16
_AT = slice(FINGERPRINT_BYTES, FINGERPRINT_BYTES + 8)
_ID = slice(FINGERPRINT_BYTES + 8, None)


def fingerprint_bytes(fingerprint: str) -> bytes:
    return hashlib.blake2b(fingerprint.encode(), digest_size=FINGERPRINT_BYTES).digest()


def record(fingerprint: str, application_id: str, received_at_ns: int) -> bytes:
    """The value claimed for a key; `application_id` a UUID string (models.new_application_id)."""
    return (fingerprint_bytes(fingerprint) + received_at_ns.to_bytes(8, "big")
            + bytes.fromhex(application_id.replace("-", "")))


@dataclass(frozen=True, slots=True)
class Claim:
    """Who holds a key: the application id and when it was received."""

    same_body: bool
    application_id: str
    received_at_ns: int


def prior_claim(fingerprint: str, reply: list[Any]) -> Claim:
    """The append script's `{1, record}` (this format) or `{1, fp, id, at}` (the hash of
    earlier versions), as seen by a submission of `fingerprint`."""
    if len(reply) == 2:
        value: bytes = reply[1]
        h = value[_ID].hex()
        return Claim(value[:FINGERPRINT_BYTES] == fingerprint_bytes(fingerprint),
                     f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}",
                     int.from_bytes(value[_AT], "big"))
    _, fp, application_id, received_at_ns = reply
    return Claim(fp.decode() == fingerprint, application_id.decode(), int(received_at_ns))
