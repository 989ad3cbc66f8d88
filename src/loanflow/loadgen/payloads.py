"""Request bytes, built before the clock starts so the hot loop only joins bytes.

Generating and encoding a synthetic application costs more than sending it, so a
pool of distinct applications is generated up front (at most `MAX_DISTINCT` of
them) and request i sends application
`i % pool` with its own Idempotency-Key `<run prefix><i>`. A run longer than
the pool resends an application under a new key: to the service that is a new
submission, and a business duplicate (same SSN) it flags for review, which is
computed for every application anyway.
"""

from __future__ import annotations

import random
import secrets
from typing import NamedTuple, TypeVar

import msgspec

from loanflow.loadgen import wire
from loanflow.loadgen.synthetic import generate, make_invalid

SUBMIT_PATH = "/v1/applications"
BATCH_PATH = "/v1/applications/batch"
#: Distinct applications generated before a run (bodies of ~700 bytes: ~35 MB).
MAX_DISTINCT = 50_000
#: Earlier accepted requests (or batch items) kept for --duplicate-ratio to resend.
DUPLICATE_POOL = 10_000

_encode = msgspec.json.Encoder().encode
_T = TypeVar("_T")


class Item(NamedTuple):
    """One application of a batch: its idempotency key and JSON body."""

    key: bytes
    body: bytes


class Payloads:
    """The bytes of request i of a run; remembers accepted ones for duplicates."""

    def __init__(
        self, *, host: str, key: str, distinct: int, seed: int | None, invalid_ratio: float,
        duplicate_ratio: float, batch_size: int, get_path: str | None,
    ) -> None:
        self.batch_size, self.duplicate_ratio = batch_size, duplicate_ratio
        self.rng = random.Random(seed)
        # Seeded bodies, but keys unique per run: a rerun must not collide with the last.
        self.key_prefix = f"lg-{secrets.token_hex(4)}-".encode()
        self.duplicates: list[bytes] = []
        self.duplicate_items: list[Item] = []
        auth = {"Authorization": f"Bearer {key}"} if key else {}
        if get_path is not None:
            self.get_request: bytes | None = wire.request_head(
                "GET", get_path, host, auth) + b"\r\n\r\n"
            self.bodies: list[bytes] = []
            return
        self.get_request = None
        headers = {**auth, "Content-Type": "application/json"}
        self.single_head = wire.request_head("POST", SUBMIT_PATH, host, headers)
        self.batch_head = wire.request_head("POST", BATCH_PATH, host, headers)
        self.bodies = self._generate(max(1, distinct), invalid_ratio)
        # Everything after the key, per body: pre-joined once.
        self.tails = [b"\r\nContent-Length: %d\r\n\r\n%s" % (len(b), b) for b in self.bodies]
        self.single_prefix = self.single_head + b"\r\nIdempotency-Key: " + self.key_prefix

    def _generate(self, count: int, invalid_ratio: float) -> list[bytes]:
        rng, bodies = self.rng, []
        for _ in range(count):
            application = generate(rng)
            if invalid_ratio and rng.random() < invalid_ratio:
                application, _ = make_invalid(application, rng)  # breaks a rule: still 202
            bodies.append(_encode(application))
        return bodies

    def single(self, i: int) -> bytes:
        """POST /v1/applications number i (or an earlier accepted one, resent)."""
        if self.duplicates and self.rng.random() < self.duplicate_ratio:
            return self.rng.choice(self.duplicates)
        return b"%s%d%s" % (self.single_prefix, i, self.tails[i % len(self.tails)])

    def batch(self, i: int) -> tuple[bytes, list[Item]]:
        """POST /v1/applications/batch number i, and its items in order."""
        rng, pool, items = self.rng, self.duplicate_items, []
        first = i * self.batch_size
        for n in range(self.batch_size):
            if pool and rng.random() < self.duplicate_ratio:
                items.append(rng.choice(pool))
            else:
                key = b"%s%d-%d" % (self.key_prefix, i, n)
                items.append(Item(key, self.bodies[(first + n) % len(self.bodies)]))
        body = b"[%s]" % b",".join(
            b'{"idempotency_key":"%s","application":%s}' % item for item in items)
        return wire.with_body(self.batch_head, body), items

    def keep(self, request: bytes) -> None:
        """Remember an accepted single request for --duplicate-ratio."""
        _keep(self.duplicates, request, self.rng)

    def keep_items(self, items: list[Item]) -> None:
        for item in items:
            _keep(self.duplicate_items, item, self.rng)


def _keep(pool: list[_T], value: _T, rng: random.Random) -> None:
    if len(pool) < DUPLICATE_POOL:
        pool.append(value)
    else:
        pool[rng.randrange(DUPLICATE_POOL)] = value
