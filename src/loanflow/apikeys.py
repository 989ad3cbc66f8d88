"""API keys: random, shown once, kept only as a SHA-256 hash, each with scopes.

A key looks like `lf_<id>_<secret>`. The id is public (logs, audit trail);
the secret has 256 bits, so a fast hash is enough: nobody can guess it.
"""

from __future__ import annotations

import enum
import hashlib
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


def generate() -> tuple[str, str]:
    """A new (key id, full secret key)."""
    key_id = secrets.token_hex(6)
    return key_id, f"{PREFIX}{key_id}_{secrets.token_urlsafe(32)}"


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()
