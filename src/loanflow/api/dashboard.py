"""The dashboard's pages and login: `/` (login or dashboard), `/login`, `/logout`, `/v1/session`,
and the API's documentation, `/docs`.

Every page is static (no inline script, so the Content-Security-Policy can
forbid it); the browser learns who it is from `/v1/session`. Only a POST to
`/login` signs in, with a one-time login code (what `serve` and `loanflow
login-code` print; the printed link carries it in the URL fragment, which no
server or proxy sees, and the login page posts it) or an API key with the read
scope. A GET never signs in, whatever its query says.
"""

from __future__ import annotations

import logging
import time
import urllib.parse
from importlib import resources

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from loanflow.api.applications import read_body
from loanflow.api.auth import Authenticator
from loanflow.api.session import COOKIE
from loanflow.apikeys import Scope, hash_key
from loanflow.errors import RequestError, Unavailable
from loanflow.logins import CODE_PREFIX, Redeemed, Session, hash_secret
from loanflow.metrics.engagement import SIGN_IN
from loanflow.process.runtime import Runtime

STATIC = resources.files("loanflow.dashboard") / "static"
LOGIN_BODY_LIMIT = 4096
#: Where a refused sign-in is sent: the login page says why (login.js).
FAILED = {
    Redeemed.USED: "/?failed=used",
    Redeemed.EXPIRED: "/?failed=expired",
    Redeemed.UNKNOWN: "/?failed=1",
}
log = logging.getLogger(__name__)


def _page(name: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse((STATIC / name).read_text(), status_code=status)


def _auth(request: Request) -> Authenticator:
    auth: Authenticator = request.app.state.auth
    return auth


async def index(request: Request) -> Response:
    try:
        await _auth(request).require(request, Scope.READ)
    except RequestError:
        return _page("login.html")
    return _page("index.html")


async def docs(request: Request) -> Response:
    """The API's documentation, rendered in the page from /openapi.json: public, as the
    document is."""
    return _page("docs.html")


async def login(request: Request) -> Response:
    if request.headers.get("sec-fetch-site") == "cross-site":
        # Another site's form must not sign an operator into a session it chose.
        return RedirectResponse("/?failed=cross-site", status_code=303)
    # A urlencoded form of one field: parsed here rather than with a multipart library.
    body = await read_body(request, LOGIN_BODY_LIMIT)
    secret = urllib.parse.parse_qs(body.decode("latin-1")).get("token", [""])[0].strip()
    if secret.startswith(CODE_PREFIX):
        return await _log_in_with_code(request, secret)
    return await _log_in_with_key(request, secret)


async def _log_in_with_code(request: Request, code: str) -> Response:
    rt: Runtime = request.app.state.runtime
    outcome, redeemed = await rt.store.redeem_login_code(hash_secret(code), time.time_ns())
    if redeemed is None:
        return RedirectResponse(FAILED[outcome], status_code=303)
    cookie, opened = await _auth(request).sessions.open(
        actor=f"login-{redeemed.id}", label=redeemed.label or "login code",
        scopes=redeemed.scopes,
    )
    return await _signed_in(request, cookie, opened)


async def _log_in_with_key(request: Request, secret: str) -> Response:
    auth = _auth(request)
    try:
        key = await auth.key_for_secret(secret)
    except RequestError:
        return RedirectResponse(FAILED[Redeemed.UNKNOWN], status_code=303)
    if Scope.READ not in key.scopes:
        return RedirectResponse("/?failed=scope", status_code=303)
    cookie, opened = await auth.sessions.open(
        actor=key.id, label=key.label, scopes=key.scopes, key_hash=hash_key(secret),
        not_after_ns=key.expires_at_ns,
    )
    return await _signed_in(request, cookie, opened)


async def _signed_in(request: Request, cookie: str, opened: Session) -> Response:
    await _record_sign_in(request, opened.actor)
    answer = RedirectResponse("/", status_code=303)
    answer.set_cookie(
        COOKIE, cookie, max_age=max(0, (opened.expires_at_ns - time.time_ns()) // 1_000_000_000),
        httponly=True, samesite="strict", secure=request.url.scheme == "https", path="/",
    )
    return answer


async def _record_sign_in(request: Request, actor: str) -> None:
    # Best effort: during a store outage is when operators most need to get in.
    rt: Runtime = request.app.state.runtime
    try:
        await rt.store.record_audit(at_ns=time.time_ns(), actor=actor, action=SIGN_IN,
                                    target="dashboard", detail={})
    except Unavailable as exc:
        log.warning("sign-in of %s not recorded in the audit trail: %s", actor, exc)


async def logout(request: Request) -> Response:
    auth = _auth(request)
    await auth.require(request, Scope.READ)  # checks the CSRF header too
    active = await auth.sessions.current(request)
    if active is not None:
        await auth.sessions.revoke(active)  # the cookie, if kept or copied, no longer works
    answer = RedirectResponse("/", status_code=303)
    answer.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return answer


async def session(request: Request) -> Response:
    auth = _auth(request)
    key = await auth.require(request, Scope.READ)
    active = await auth.sessions.current(request)
    return JSONResponse({
        "key_id": key.id,
        "label": key.label,
        "scopes": sorted(key.scopes),
        "csrf": active.csrf if active else None,
    })
