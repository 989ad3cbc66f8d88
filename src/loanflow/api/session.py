"""Dashboard sessions: a login token or API key exchanged for a signed cookie.

The cookie is HttpOnly and SameSite=Strict and holds no secret: the key's id,
the hash the store knows it by, an expiry and a CSRF token, signed with a key
every API process derives from the same secret. So any process on any host can
check it, and revoking the API key ends the session within the auth cache TTL.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

import msgspec

#: Name of the session cookie.
COOKIE = "loanflow_session"
#: A session lasts this long (and never beyond its key's own expiry).
SESSION_TTL_S = 12 * 3600
#: Header a cookie-authenticated state change must carry (double submit).
CSRF_HEADER = "x-csrf-token"


class SessionClaims(msgspec.Struct, frozen=True):
    key_id: str
    key_hash: str
    expires_at_s: int
    csrf: str


@dataclass(frozen=True)
class SessionCodec:
    signing_key: bytes

    def issue(
        self, key_id: str, key_hash: str, *, now_s: float | None = None
    ) -> tuple[str, SessionClaims]:
        claims = SessionClaims(
            key_id=key_id,
            key_hash=key_hash,
            expires_at_s=int((now_s or time.time()) + SESSION_TTL_S),
            csrf=secrets.token_urlsafe(24),
        )
        payload = base64.urlsafe_b64encode(msgspec.json.encode(claims)).rstrip(b"=")
        return f"{payload.decode()}.{self._sign(payload)}", claims

    def read(self, cookie: str, *, now_s: float | None = None) -> SessionClaims | None:
        """The claims of a cookie we signed that has not expired, else None."""
        if not cookie.isascii():
            return None  # we sign only ASCII; compare_digest raises on other text
        payload, _, signature = cookie.encode().partition(b".")
        if not hmac.compare_digest(self._sign(payload), signature.decode(errors="replace")):
            return None
        try:
            raw = base64.urlsafe_b64decode(payload + b"=" * (-len(payload) % 4))
            claims = msgspec.json.decode(raw, type=SessionClaims)
        except (ValueError, msgspec.DecodeError):
            return None
        if claims.expires_at_s <= (now_s or time.time()):
            return None
        return claims

    def _sign(self, payload: bytes) -> str:
        digest = hmac.new(self.signing_key, payload, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
