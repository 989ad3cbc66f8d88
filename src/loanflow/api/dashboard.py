"""The dashboard's pages and login: `/` (login or dashboard), `/login`, `/logout`, `/v1/session`.

Every page is static (no inline script, so the Content-Security-Policy can
forbid it); the browser learns who it is from `/v1/session`.
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
from loanflow.metrics.engagement import SIGN_IN
from loanflow.runtime import Runtime

STATIC = resources.files("loanflow.dashboard") / "static"
LOGIN_BODY_LIMIT = 4096
log = logging.getLogger(__name__)


def _page(name: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse((STATIC / name).read_text(), status_code=status)


def _auth(request: Request) -> Authenticator:
    auth: Authenticator = request.app.state.auth
    return auth


async def index(request: Request) -> Response:
    token = request.query_params.get("token")
    if token is not None:
        # The link `serve` prints: log in, then drop the token from the address bar.
        return await _log_in(request, token)
    try:
        await _auth(request).require(request, Scope.READ)
    except RequestError:
        return _page("login.html")
    return _page("index.html")


async def login(request: Request) -> Response:
    # A urlencoded form of one field: parsed here rather than with a multipart library.
    body = await read_body(request, LOGIN_BODY_LIMIT)
    tokens = urllib.parse.parse_qs(body.decode("latin-1")).get("token", [""])
    return await _log_in(request, tokens[0])


async def _log_in(request: Request, secret: str) -> Response:
    auth = _auth(request)
    try:
        key = await auth.key_for_secret(secret.strip())
    except RequestError:
        return RedirectResponse("/?failed=1", status_code=303)
    if Scope.READ not in key.scopes:
        return RedirectResponse("/?failed=scope", status_code=303)
    cookie, opened = await auth.sessions.open(
        actor=key.id, label=key.label, scopes=key.scopes, key_hash=hash_key(secret.strip()),
        not_after_ns=key.expires_at_ns,
    )
    await _record_sign_in(request, key.id)
    answer = RedirectResponse("/", status_code=303)
    answer.set_cookie(
        COOKIE, cookie, max_age=max(0, (opened.expires_at_ns - time.time_ns()) // 1_000_000_000),
        httponly=True, samesite="strict", secure=request.url.scheme == "https", path="/",
    )
    return answer


async def _record_sign_in(request: Request, key_id: str) -> None:
    # Best effort: during a store outage is when operators most need to get in.
    rt: Runtime = request.app.state.runtime
    try:
        await rt.store.record_audit(at_ns=time.time_ns(), actor=key_id, action=SIGN_IN,
                                    target="dashboard", detail={})
    except Unavailable as exc:
        log.warning("sign-in of %s not recorded in the audit trail: %s", key_id, exc)


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
