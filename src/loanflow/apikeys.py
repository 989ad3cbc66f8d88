"""API keys: random, shown once, kept only as a SHA-256 hash, each with scopes.

A key looks like `lf_<id>_<secret>`. The id is public (logs, audit trail);
the secret has 256 bits, so a fast hash is enough: nobody can guess it.
"""

from __future__ import annotations

import enum
import hashlib
import math
import secrets

import msgspec

PREFIX = "lf_"


class Scope(enum.StrEnum):
    SUBMIT = "submit"
    READ = "read"
    OPERATE = "operate"
    ADMIN = "admin"


class ApiKey(msgspec.Struct, frozen=True, kw_only=True):
    """A stored key: everything but the secret."""

    id: str
    label: str
    scopes: frozenset[Scope]
    created_at_ns: int
    expires_at_ns: int | None = None
    revoked_at_ns: int | None = None
    #: A partner's key submits for that partner only (a broker cannot pose as another).
    partner_id: str | None = None
    #: This key's own rate limit, over the service's default (LOANFLOW_RATE_LIMIT_*).
    rate_per_s: float | None = None
    burst: int | None = None

    def limit(self, rate_per_s: float, burst: int) -> tuple[float, int]:
        """Its own rate and burst, each where set, else the service's defaults given."""
        return (rate_per_s if self.rate_per_s is None else self.rate_per_s,
                burst if self.burst is None else self.burst)

    def usable(self, now_ns: int) -> bool:
        if self.revoked_at_ns is not None and self.revoked_at_ns <= now_ns:
            return False
        return self.expires_at_ns is None or now_ns < self.expires_at_ns


def parse_scopes(text: str) -> frozenset[Scope]:
    """`"submit,read"` to scopes; raises ValueError naming an unknown scope."""
    scopes = set()
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            scopes.add(Scope(part))
        except ValueError:
            known = ", ".join(s.value for s in Scope)
            raise ValueError(f"expected scopes among {known}, got {part!r}") from None
    if not scopes:
        raise ValueError("expected at least one scope")
    return frozenset(scopes)


#: As the application's `partner_id` field allows (models.py).
MAX_PARTNER_ID = 100


class KeyTermError(ValueError):
    """A key's partner or limit is out of bounds; `field` names which."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class KeyTerms(msgspec.Struct, frozen=True, kw_only=True):
    """What binds or limits a key beyond its scopes (ApiKey's fields of the same names)."""

    partner_id: str | None = None
    rate_per_s: float | None = None
    burst: int | None = None


def terms(*, partner_id: str | None, rate_per_s: float | None, burst: int | None) -> KeyTerms:
    """A new key's partner and own limit, checked; raises KeyTermError naming what is wrong.
    A rate without a burst gets one second's worth (at least 1)."""
    if partner_id is not None and not (
            0 < len(partner_id) <= MAX_PARTNER_ID and partner_id == partner_id.strip()
            and partner_id.isprintable()):
        raise KeyTermError("partner_id", f"expected a partner id of 1-{MAX_PARTNER_ID}"
                           " printable characters without surrounding spaces,"
                           f" got {partner_id!r}")
    if rate_per_s is not None and not (rate_per_s >= 0 and math.isfinite(rate_per_s)):
        raise KeyTermError("rate_per_s",
                           f"expected a rate limit >= 0 per second, got {rate_per_s:g}")
    if burst is not None and burst < 1:
        raise KeyTermError("burst", f"expected a burst >= 1, got {burst}")
    if burst is None and rate_per_s:
        burst = max(1, math.ceil(rate_per_s))
    return KeyTerms(partner_id=partner_id, rate_per_s=rate_per_s, burst=burst)


def new_key(*, scopes: frozenset[Scope], label: str, now_ns: int,
            expires_at_ns: int | None = None,
            terms: KeyTerms | None = None) -> tuple[ApiKey, str]:
    """A new key (to store with the hash of its secret) and its secret, shown once."""
    terms = terms or KeyTerms()
    key_id, secret = generate()
    key = ApiKey(id=key_id, label=label, scopes=scopes, created_at_ns=now_ns,
                 expires_at_ns=expires_at_ns, partner_id=terms.partner_id,
                 rate_per_s=terms.rate_per_s, burst=terms.burst)
    return key, secret


def generate() -> tuple[str, str]:
    """A new (key id, full secret key)."""
    key_id = secrets.token_hex(6)
    return key_id, f"{PREFIX}{key_id}_{secrets.token_urlsafe(32)}"


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()
