"""`loanflow login-code`: a one-time dashboard login code, and the link that carries it.

`serve` prints such a link on every start; a code works once, so operators (and
scale-out deployments, where no `serve` prints anything) ask for another here.
It runs against the store directly: any API process of any host redeems it.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from typing import Any

from loanflow import apikeys
from loanflow.apikeys import Scope
from loanflow.backends import make_store
from loanflow.cli.actor import terminal_actor
from loanflow.logins import LOGIN_CODE_SCOPES, LOGIN_CODE_TTL_S, hash_secret, new_login_code
from loanflow.settings import Settings
from loanflow.store.base import Store


def add_command(commands: Any, add_flags: Any) -> None:
    help = (f"print a one-time dashboard login link and code (works once, for"
            f" {LOGIN_CODE_TTL_S // 60} minutes); the code is the last line")
    command = commands.add_parser("login-code", help=help, description=help)
    command.add_argument("--label", default=None,
                         help="whom the session is for (default: cli:<user>@<host>)")
    command.add_argument("--scopes", default=None,
                         help="the session's scopes, comma-separated, among read, operate and"
                              " admin (default: read,operate; admin opens the Keys view)")
    command.set_defaults(run=_login_code)
    add_flags(command, only=("data_dir", "store_url", "host", "port", "log_level"))


async def issue_login_code(store: Store, *, label: str,
                           scopes: frozenset[Scope] = LOGIN_CODE_SCOPES) -> str:
    """A new code, kept hashed in the store; the code itself is returned only here."""
    code, secret = new_login_code(label=label, now_ns=time.time_ns(), scopes=scopes)
    await store.create_login_code(code, hash_secret(secret))
    return secret


def login_line(settings: Settings, code: str) -> str:
    """The printed link: the code rides in the fragment, which browsers never send, so it
    reaches no server log or proxy; the login page posts it."""
    return (f"Dashboard: http://{settings.host}:{settings.port}/#code={code}"
            f"  (one-time login code, valid {LOGIN_CODE_TTL_S // 60} minutes;"
            f" `loanflow login-code` prints another)")


def _login_code(settings: Settings, args: argparse.Namespace) -> int:
    label = args.label or terminal_actor()
    try:
        scopes = (LOGIN_CODE_SCOPES if args.scopes is None
                  else apikeys.parse_scopes(args.scopes))
        if Scope.SUBMIT in scopes:
            raise ValueError("a dashboard session submits nothing: expected read, operate"
                             " or admin, got submit")
    except ValueError as exc:
        print(f"loanflow login-code: {exc}", file=sys.stderr)
        return 2

    async def make() -> str:
        store = make_store(settings)
        await store.open()
        try:
            return await issue_login_code(store, label=label, scopes=scopes)
        finally:
            await store.close()

    code = asyncio.run(make())
    print(login_line(settings, code))
    print(code)
    return 0
