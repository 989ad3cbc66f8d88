"""What both stores share of API keys: their columns, a row as a key, and the audit entries
of a key's life (created, revoked), written in the same transaction as the change."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from loanflow.apikeys import ApiKey, Scope

KEY_COLUMNS = ("id, label, scopes, created_at_ns, expires_at_ns, revoked_at_ns, partner_id,"
               " rate_per_s, burst")
#: Audit actions; the target is the key's id, never its secret or hash.
KEY_CREATED = "key_created"
KEY_REVOKED = "key_revoked"


def key_row(key: ApiKey, key_hash: str) -> tuple[object, ...]:
    """`key_hash` then KEY_COLUMNS' values, as an INSERT takes them."""
    return (key_hash, key.id, key.label, ",".join(sorted(key.scopes)), key.created_at_ns,
            key.expires_at_ns, key.revoked_at_ns, key.partner_id, key.rate_per_s, key.burst)


def key_from_row(row: Sequence[Any]) -> ApiKey:
    key_id, label, scopes, created, expires, revoked, partner, rate, burst = row
    return ApiKey(
        id=str(key_id),
        label=str(label),
        scopes=frozenset(Scope(s) for s in str(scopes).split(",")),
        created_at_ns=int(created),
        expires_at_ns=None if expires is None else int(expires),
        revoked_at_ns=None if revoked is None else int(revoked),
        partner_id=None if partner is None else str(partner),
        rate_per_s=None if rate is None else float(rate),
        burst=None if burst is None else int(burst),
    )


def created_detail(key: ApiKey) -> dict[str, Any]:
    """What a security review asks of a new key: who it is for and what it may do."""
    return {"label": key.label, "scopes": sorted(key.scopes), "partner_id": key.partner_id,
            "rate_per_s": key.rate_per_s, "burst": key.burst,
            "expires_at_ns": key.expires_at_ns}
