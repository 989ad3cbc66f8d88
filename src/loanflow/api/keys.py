"""API keys over HTTP (scope `admin`): `GET /v1/keys`, `POST /v1/keys`,
`POST /v1/keys/{id}/revoke`, as `loanflow keys` does from a terminal.

A new key's secret is in the creation's answer only; the store keeps its hash. Creation
and revocation enter the audit trail with the change, by the admin's key id (or the
dashboard session's actor). A revoked key is refused everywhere within the key lookup's
cache time (api/lookup_cache.py), at once by the process that revoked it.
"""

from __future__ import annotations

import time
from typing import Annotated, Literal

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from loanflow import apikeys
from loanflow.api.applications import read_body, runtime_of
from loanflow.api.schema import FORBIDDEN_CHARS_MESSAGE, field_errors, has_forbidden_chars
from loanflow.apikeys import ApiKey, Scope
from loanflow.errors import FieldError, MalformedRequest, NotFound, SchemaInvalid
from loanflow.models import Moment, format_ts

MAX_BODY = 16 * 1024
MAX_LABEL = 200
#: Ten years: a key that should never expire has no expiry.
MAX_EXPIRY_DAYS = 3650
_DAY_NS = 86_400 * 1_000_000_000

_encode = msgspec.json.Encoder().encode


class KeyView(msgspec.Struct, kw_only=True):
    """A key as operators see it: never its secret."""

    id: str
    label: str
    scopes: list[Scope]
    state: Literal["active", "revoked", "expired"]
    created_at: Moment
    expires_at: Moment | None
    revoked_at: Moment | None
    #: Bound: its submissions must carry this partner_id.
    partner_id: str | None
    #: Its own rate limit; null: the service's default.
    rate_per_s: float | None
    burst: int | None


class KeyList(msgspec.Struct, kw_only=True):
    """Every key, oldest first."""

    items: list[KeyView]


class NewKeyBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A key to make: its scopes, who it is for, and what binds or limits it."""

    scopes: Annotated[list[Scope], msgspec.Meta(min_length=1)]
    label: Annotated[str, msgspec.Meta(max_length=MAX_LABEL)] = ""
    partner_id: Annotated[str, msgspec.Meta(min_length=1,
                                            max_length=apikeys.MAX_PARTNER_ID)] | None = None
    rate_per_s: Annotated[float, msgspec.Meta(ge=0)] | None = None
    burst: Annotated[int, msgspec.Meta(ge=1)] | None = None
    expires_in_days: Annotated[float, msgspec.Meta(gt=0, le=MAX_EXPIRY_DAYS)] | None = None


class NewKey(msgspec.Struct, kw_only=True):
    """The key made, and its secret: shown this once, kept nowhere."""

    key: KeyView
    secret: str


def key_view(key: ApiKey, now_ns: int) -> KeyView:
    state: Literal["active", "revoked", "expired"] = (
        "active" if key.usable(now_ns) else "revoked" if key.revoked_at_ns else "expired")
    return KeyView(
        id=key.id, label=key.label, scopes=sorted(key.scopes), state=state,
        created_at=format_ts(key.created_at_ns),
        expires_at=None if key.expires_at_ns is None else format_ts(key.expires_at_ns),
        revoked_at=None if key.revoked_at_ns is None else format_ts(key.revoked_at_ns),
        partner_id=key.partner_id, rate_per_s=key.rate_per_s, burst=key.burst,
    )


async def list_keys(request: Request) -> Response:
    await request.app.state.auth.require(request, Scope.ADMIN)
    now_ns = time.time_ns()
    keys = await runtime_of(request).store.list_api_keys()
    return _json(KeyList(items=[key_view(k, now_ns) for k in keys]))


async def create_key(request: Request) -> Response:
    admin = await request.app.state.auth.require(request, Scope.ADMIN)
    body = decode_new_key(await read_body(request, MAX_BODY))
    try:
        terms = apikeys.terms(partner_id=body.partner_id, rate_per_s=body.rate_per_s,
                              burst=body.burst)
    except apikeys.KeyTermError as exc:
        raise SchemaInvalid([FieldError(exc.field, str(exc))]) from None
    now_ns = time.time_ns()
    key, secret = apikeys.new_key(
        scopes=frozenset(body.scopes), label=body.label, now_ns=now_ns, terms=terms,
        expires_at_ns=(None if body.expires_in_days is None
                       else now_ns + int(body.expires_in_days * _DAY_NS)))
    await runtime_of(request).store.create_api_key(key, apikeys.hash_key(secret),
                                                   actor=admin.id)
    return _json(NewKey(key=key_view(key, now_ns), secret=secret), status=201)


async def revoke_key(request: Request) -> Response:
    """Idempotent: a key revoked before answers as it is (its first revocation stays)."""
    admin = await request.app.state.auth.require(request, Scope.ADMIN)
    key_id = request.path_params["id"]
    store = runtime_of(request).store
    await store.revoke_api_key(key_id, time.time_ns(), actor=admin.id)
    request.app.state.auth.forget_key(key_id)  # refused here at once, not after the cache's TTL
    found = [k for k in await store.list_api_keys() if k.id == key_id]
    if not found:
        raise NotFound(f"no API key with id {key_id!r}")
    return _json(key_view(found[0], time.time_ns()))


def decode_new_key(body: bytes) -> NewKeyBody:
    """The body as a NewKeyBody, or 400 (not JSON) or 422 naming every wrong field."""
    if not body.strip():
        raise MalformedRequest("expected a JSON body")
    try:
        made = msgspec.json.decode(body, type=NewKeyBody)
    except msgspec.ValidationError as exc:
        raise SchemaInvalid(field_errors(body, NewKeyBody, exc)) from None
    except msgspec.DecodeError as exc:
        raise MalformedRequest(f"body is not valid JSON: {exc}") from None
    if has_forbidden_chars(made.label):
        raise SchemaInvalid([FieldError("label", FORBIDDEN_CHARS_MESSAGE)])
    return made


def _json(body: msgspec.Struct, status: int = 200) -> Response:
    return Response(_encode(body), status_code=status, media_type="application/json")
