"""The `loanflow` command: serve | api | worker | keys | dead-letters | pii | loadgen.

Every setting is a flag here and a `LOANFLOW_*` variable (see settings.py);
the flag wins.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
import time
from collections.abc import AsyncIterator, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import uvloop

from loanflow import __version__, apikeys, logs
from loanflow.apikeys import ApiKey, KeyTerms, Scope
from loanflow.backends import make_store
from loanflow.cli import login as cli_login
from loanflow.cli import pii as cli_pii
from loanflow.cli import review as cli_review
from loanflow.cli.actor import terminal_actor
from loanflow.errors import StartupError
from loanflow.importer import cli as import_cli
from loanflow.loadgen import cli as loadgen_cli
from loanflow.settings import Settings, setting_fields
from loanflow.store.base import Store

log = logging.getLogger("loanflow")

#: Scopes of the key `serve` creates on first start.
FIRST_KEY_SCOPES = frozenset({Scope.SUBMIT, Scope.READ, Scope.OPERATE})


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    try:
        settings = Settings.from_env(**{
            f.name: getattr(args, f.name) for f in setting_fields() if hasattr(args, f.name)
        })
    except ValueError as exc:
        parser.error(str(exc))
    logs.configure(level=settings.log_level, json=settings.log_format == "json")
    try:
        result: int = args.run(settings, args)
    except StartupError as exc:
        # One line, no traceback: what is missing and how to set it (process/startup.py).
        print(f"{parser.prog}: cannot start: {exc}", file=sys.stderr, flush=True)
        return exc.exit_status
    return result


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="loanflow", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=__version__)
    commands = parser.add_subparsers(title="commands")

    serve = _command(
        commands, "serve",
        "API, processors and dashboard: --api-workers N API processes and --processors M"
        " worker processes (a lone production API process runs its processors itself)",
        _serve,
    )
    api = _command(commands, "api", "the HTTP API only (scale-out role)", _api)
    worker = _command(commands, "worker", "processors only (scale-out role)", _worker)
    for sub in (serve, api, worker):
        _add_setting_flags(sub)

    keys = commands.add_parser("keys", help="create, list and revoke API keys")
    key_commands = keys.add_subparsers(title="keys commands", required=True)
    create = _command(
        key_commands, "create", "create a key; the key is the last line", _keys_create
    )
    create.add_argument("--scopes", default="submit,read", help="comma-separated: "
                        + ",".join(s.value for s in Scope))
    create.add_argument("--label", default="", help="who or what the key is for")
    create.add_argument("--expires-in-days", type=float, default=None)
    create.add_argument("--partner-id", default=None,
                        help="bind the key to a partner: its submissions must carry this"
                             " partner_id (a broker cannot pose as another)")
    create.add_argument("--rate-limit", type=float, default=None, metavar="PER_S",
                        help="the key's own submissions per second (0 = no limit);"
                             " default: LOANFLOW_RATE_LIMIT_PER_S")
    create.add_argument("--burst", type=int, default=None,
                        help="submissions the key may make at once, above its rate; default:"
                             " one second's worth with --rate-limit, else"
                             " LOANFLOW_RATE_LIMIT_BURST")
    listing = _command(key_commands, "list", "list keys (never their secrets)", _keys_list)
    revoke = _command(key_commands, "revoke", "revoke a key by id", _keys_revoke)
    revoke.add_argument("key_id")
    for sub in (create, listing, revoke):
        _add_setting_flags(sub, only=("data_dir", "store_url", "log_level"))
    cli_review.add_commands(commands, _add_setting_flags)
    cli_login.add_command(commands, _add_setting_flags)
    cli_pii.add_commands(commands, _add_setting_flags)
    loadgen_cli.add_command(commands)
    import_cli.add_command(commands)
    _command(commands, "alert-rules",
             "print the Prometheus alerting rules for loanflow's /metrics", _alert_rules)
    return parser


def _command(commands: Any, name: str, help: str, run: Any) -> argparse.ArgumentParser:
    sub: argparse.ArgumentParser = commands.add_parser(name, help=help, description=help)
    sub.set_defaults(run=run)
    return sub


def _add_setting_flags(parser: argparse.ArgumentParser, only: Sequence[str] = ()) -> None:
    for field in setting_fields():
        if only and field.name not in only:
            continue
        kind = type(field.default)
        if isinstance(field.default, bool):  # a switch: given means on; absent: the variable
            parser.add_argument(
                "--" + field.name.replace("_", "-"), action="store_const", const=True,
                default=None, help=f"{field.metadata['help']} (LOANFLOW_{field.name.upper()}=1)",
            )
            continue
        parser.add_argument(
            "--" + field.name.replace("_", "-"),
            type=Path if kind is Path else kind,
            default=None,
            help=f"{field.metadata['help']} (LOANFLOW_{field.name.upper()})",
        )


def _alert_rules(settings: Settings, args: argparse.Namespace) -> int:
    rules = resources.files("loanflow.metrics").joinpath("alerts.yml").read_text()
    sys.stdout.write(rules)
    return 0


# --- serve / api / worker -------------------------------------------------------------


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    _check_start(settings)
    asyncio.run(_announce(settings))
    if settings.api_workers > 1 or settings.embedded:
        from loanflow.cli.supervisor import serve_processes

        # Embedded too: processors in a process of their own, not on the API's event
        # loop and GIL beside its SQLite threads (docs/benchmarks.md, per-batch pass).
        return serve_processes(settings)
    # One production API process: processors share its event loop.
    return _run_http(settings, processors=settings.processor_count)


def _api(settings: Settings, args: argparse.Namespace) -> int:
    _check_start(settings)
    return _run_http(settings, processors=0)


def _check_start(settings: Settings) -> None:
    """Open and close what the API processes will open: a start that cannot work stops
    here with StartupError, before uvicorn (whose lifespan would print a traceback from
    each process) or any child process starts."""
    from loanflow.process.runtime import open_runtime

    async def check() -> None:
        async with open_runtime(settings):
            pass

    asyncio.run(check())


def _run_http(settings: Settings, *, processors: int) -> int:
    import uvicorn

    from loanflow.api.app import create_app
    from loanflow.api.server import uvicorn_options
    from loanflow.process.gil import tune_switch_interval

    tune_switch_interval(settings)
    uvicorn.run(create_app(settings, processors=processors), **uvicorn_options(settings))
    return 0


def _worker(settings: Settings, args: argparse.Namespace) -> int:
    from loanflow.process.gc_freeze import freeze_startup_objects
    from loanflow.process.gil import tune_switch_interval
    from loanflow.process.runtime import open_runtime

    tune_switch_interval(settings)

    async def work() -> None:
        async with open_runtime(settings) as runtime:
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, runtime.stop.set)
            runtime.start_metrics(live=False)
            # Backlog loops here only: in an API process they would take its loop's time.
            runtime.start_processors(max(1, settings.processor_count),
                                     backlog_loops=settings.backlog_loops)
            freeze_startup_objects()
            log.info("worker running %d processors and %d backlog loops",
                     max(1, settings.processor_count), settings.backlog_loops)
            await runtime.stop.wait()

    # uvloop, as the API runs on: the stdlib loop's socket writes and select led the
    # worker's profile.
    uvloop.run(work())
    return 0


async def _announce(settings: Settings) -> None:
    """First start: create and print a key. Every start: a dashboard link with a one-time
    login code (never a key: the link ends up in shell and browser history)."""
    async with _store(settings) as store:
        first = not await store.list_api_keys()
        lines = []
        if first:
            secret = await _create_key(store, FIRST_KEY_SCOPES, "created by first serve", None)
            lines.append(f"API key (scopes submit,read,operate; shown once): {secret}")
        code = await cli_login.issue_login_code(store, label="printed by serve")
    base = f"http://{settings.host}:{settings.port}"
    lines.append(cli_login.login_line(settings, code))
    lines.append(f"API: POST {base}/v1/applications  (docs: {base}/docs)")
    print("\n".join(lines), flush=True)


# --- keys -------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def _store(settings: Settings) -> AsyncIterator[Store]:
    store = make_store(settings)
    await store.open()
    try:
        yield store
    finally:
        await store.close()


async def _create_key(
    store: Store, scopes: frozenset[Scope], label: str, ttl_s: float | None,
    terms: KeyTerms | None = None,
) -> str:
    now = time.time_ns()
    key, secret = apikeys.new_key(
        scopes=scopes, label=label, now_ns=now, terms=terms,
        expires_at_ns=None if ttl_s is None else now + int(ttl_s * 1e9))
    await store.create_api_key(key, apikeys.hash_key(secret), actor=terminal_actor())
    return secret


def _keys_create(settings: Settings, args: argparse.Namespace) -> int:
    try:
        scopes = apikeys.parse_scopes(args.scopes)
        terms = apikeys.terms(partner_id=args.partner_id, rate_per_s=args.rate_limit,
                              burst=args.burst)
    except ValueError as exc:
        print(f"loanflow keys create: {exc}", file=sys.stderr)
        return 2
    ttl = None if args.expires_in_days is None else args.expires_in_days * 86400

    async def create() -> str:
        async with _store(settings) as store:
            return await _create_key(store, scopes, args.label, ttl, terms)

    secret = asyncio.run(create())
    print(f"created key {secret.split('_')[1]} with scopes {','.join(sorted(scopes))}"
          + "".join(f", {said}" for said in _terms_of(terms)))
    print(secret)
    return 0


def _terms_of(key: ApiKey | KeyTerms) -> list[str]:
    """What binds or limits a key beyond its scopes, as `keys create` and `list` say it."""
    said = []
    if key.partner_id is not None:
        said.append(f"partner {key.partner_id}")
    if key.rate_per_s is not None:
        said.append("no rate limit" if key.rate_per_s == 0 else f"{key.rate_per_s:g}/s")
    if key.burst is not None:
        said.append(f"burst {key.burst}")
    return said


def _keys_list(settings: Settings, args: argparse.Namespace) -> int:
    async def listing() -> list[ApiKey]:
        async with _store(settings) as store:
            keys: list[ApiKey] = await store.list_api_keys()
            return keys

    now = time.time_ns()
    for key in asyncio.run(listing()):
        state = "active" if key.usable(now) else ("revoked" if key.revoked_at_ns else "expired")
        terms = "; ".join(_terms_of(key)) or "-"
        print(f"{key.id}\t{state}\t{','.join(sorted(key.scopes))}\t{terms}\t{key.label}")
    return 0


def _keys_revoke(settings: Settings, args: argparse.Namespace) -> int:
    async def revoke() -> bool:
        async with _store(settings) as store:
            revoked: bool = await store.revoke_api_key(args.key_id, time.time_ns(),
                                                       actor=terminal_actor())
            return revoked

    if not asyncio.run(revoke()):
        print(f"loanflow keys revoke: no active key with id {args.key_id!r}", file=sys.stderr)
        return 1
    print(f"revoked {args.key_id}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
