"""`loanflow pii status | reseal | hash-key`: rotating the PII key, from the terminal.

The procedure: docs/deployment.md, "Rotating the PII key". These run against the
configured store (and, for `status`, the broker) directly, beside running
workers. Nothing here prints a PII value or a PII key; `hash-key` prints the hash
key, a secret of its own, as its last line (as `keys create` prints a key).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import re
import signal
import sys
import time
from collections.abc import AsyncIterator
from typing import Any, TextIO

from loanflow.backends import make_store
from loanflow.cli.actor import terminal_actor
from loanflow.errors import LoanflowError, StartupError, Unavailable
from loanflow.pii import PiiCipher, PiiKeyError, load_cipher
from loanflow.process.runtime import open_runtime
from loanflow.process.startup import cannot_start
from loanflow.rotation.reseal import AUDIT_ACTION, ResealTally, reseal
from loanflow.rotation.status import KeyStatus, Verdict, key_status, verdict
from loanflow.settings import Settings
from loanflow.store.base import Store
from loanflow.terminal import ProgressLine

#: Rows per window (and transaction) of a re-seal unless --batch says otherwise.
DEFAULT_BATCH = 500
MAX_BATCH = 10_000
#: Exit statuses beyond 0: not done (a value left, an error), a usage error, a stop.
EXIT_NOT_DONE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

#: What `--key` takes: a key id as `status` lists them.
KEY_ID = re.compile(r"[0-9a-f]{8}")
_FLAGS = ("data_dir", "store_url", "broker_url", "pii_key", "pii_hash_key", "unsafe_redis",
          "store_timeout_s", "log_level")


def add_commands(commands: Any, add_flags: Any) -> None:
    group = commands.add_parser(
        "pii", help="rotate the PII key: status, reseal, hash-key",
        description="Rotating the PII key (docs/deployment.md, 'Rotating the PII key').")
    sub = group.add_subparsers(title="pii commands", required=True)
    status = sub.add_parser(
        "status", help="which key sealed what, what the hashes derive from, and whether an"
        " old key can be dropped now")
    status.add_argument("--key", metavar="ID", help="judge this key id alone: exit status 0"
                        " if it can be dropped now, 1 if not")
    status.add_argument("--json", action="store_true", help="print it as one JSON object")
    status.set_defaults(run=_status)
    resealing = sub.add_parser(
        "reseal", help="seal every stored value not under the current key again, in batches;"
        " safe beside running workers, resumable")
    resealing.add_argument("--batch", type=_batch, default=DEFAULT_BATCH, metavar="N",
                           help=f"rows per transaction (1-{MAX_BATCH:,}; {DEFAULT_BATCH})")
    resealing.add_argument("--json", action="store_true",
                           help="print the summary as one JSON object; no progress line")
    resealing.set_defaults(run=_reseal)
    hash_key = sub.add_parser(
        "hash-key", help="print the hash key in force (the last line), to pin as"
        " LOANFLOW_PII_HASH_KEY before the oldest PII key is dropped")
    hash_key.set_defaults(run=_hash_key)
    for parser in (status, resealing, hash_key):
        add_flags(parser, only=_FLAGS)


def _batch(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if not 1 <= value <= MAX_BATCH:
        raise argparse.ArgumentTypeError(f"expected 1 to {MAX_BATCH:,}, got {value}")
    return value


# --- status ------------------------------------------------------------------------------


def _status(settings: Settings, args: argparse.Namespace) -> int:
    async def look() -> KeyStatus:
        async with open_runtime(settings) as rt:
            return await key_status(store=rt.store, broker=rt.broker, cipher=rt.cipher,
                                    now_ns=time.time_ns())

    try:
        status = asyncio.run(look())
    except StartupError:
        raise  # one line from `main`, with its exit status
    except LoanflowError as exc:
        print(f"loanflow pii status: {exc}", file=sys.stderr)
        return EXIT_NOT_DONE
    verdicts = status.verdicts
    if args.key is not None:
        key_id = args.key.strip().lower()
        if not KEY_ID.fullmatch(key_id):
            # Never echoed: it may be a key pasted by mistake.
            print("loanflow pii status: --key: expected a key id, 8 hex digits as the table"
                  f" lists them (not the key itself); the keys:"
                  f" {', '.join(k.key_id for k in status.keys)}", file=sys.stderr)
            return EXIT_USAGE
        if status.use_of(key_id) is None:
            print(f"loanflow pii status: no key with id {key_id!r} is configured or holds a"
                  f" value; the keys: {', '.join(k.key_id for k in status.keys)}",
                  file=sys.stderr)
            return EXIT_USAGE
        verdicts = [verdict(status, key_id)]
    if args.json:
        print(json.dumps({**dataclasses.asdict(status),
                          "verdicts": [dataclasses.asdict(v) for v in verdicts]}, indent=2))
    else:
        print(format_status(status, verdicts))
    if args.key is not None and not verdicts[0].can_drop:
        return EXIT_NOT_DONE
    return 0


def format_status(status: KeyStatus, verdicts: list[Verdict]) -> str:
    lines = ["PII keys, as listed in LOANFLOW_PII_KEY (current first), then any other found:",
             f"  {'key':<10}{'role':<9}{'applications':>14}{'dead letters':>14}{'broker':>10}"]
    for use in status.keys:
        lines.append(f"  {use.key_id:<10}{use.role:<9}{use.applications:>14,}"
                     f"{use.dead_letters:>14,}{use.broker:>10,}")
    lines.append(f"The broker holds {status.broker_held:,} entries (queued, waiting to be"
                 " retried or in processing); each needs the key that sealed it until it is"
                 " processed.")
    lines.append(_hash_key_line(status))
    lines.append(_hash_check_line(status))
    lines.extend(f"! {warning}" for warning in status.warnings)
    for v in verdicts:
        if v.can_drop:
            pinned = (" (every process must have LOANFLOW_PII_HASH_KEY already)"
                      if status.hash_key.pinned else "")
            lines.append(f"Can key {v.key_id} be dropped now? Yes: no stored value or broker"
                         " entry needs it and the keyed hashes do not depend on it. Remove it"
                         f" from LOANFLOW_PII_KEY{pinned} and restart every process; keep it"
                         " in your secret store as long as backups sealed with it are kept.")
        else:
            lines.append(f"Can key {v.key_id} be dropped now? No:")
            lines.extend(f"  - {reason}" for reason in v.reasons)
    if not verdicts:
        lines.append("No old key is configured: nothing to drop.")
    return "\n".join(lines)


def _hash_key_line(status: KeyStatus) -> str:
    hash_key = status.hash_key
    prefix = (f"Keyed hashes (duplicate SSN, idempotency fingerprints, velocity): hash key"
              f" {hash_key.id}")
    if not hash_key.pinned:
        return (f"{prefix}, derived from the oldest key listed, {hash_key.derivable_from[0]}"
                " (not pinned).")
    source = (f"the hash key of key {', '.join(hash_key.derivable_from)}"
              if hash_key.derivable_from else "derived from no key listed")
    return f"{prefix}, pinned by LOANFLOW_PII_HASH_KEY ({source})."


def _hash_check_line(status: KeyStatus) -> str:
    hash_key = status.hash_key
    if not hash_key.sampled:
        return "Hash check: no application of the last 24 h to check the hash key against."
    line = (f"Hash check: {hash_key.matching} of {hash_key.sampled} sampled SSN hashes of the"
            " last 24 h match the hash key in force")
    if hash_key.unopenable:
        line += f" ({hash_key.unopenable} did not open)"
    return line + "."


# --- reseal ------------------------------------------------------------------------------


def _reseal(settings: Settings, args: argparse.Namespace) -> int:
    progress = None if args.json else _Progress(sys.stderr)
    tallies: list[ResealTally] = []

    async def run() -> None:
        async with _store_and_cipher(settings) as (store, cipher):
            tally = ResealTally(to_key=cipher.key_id)
            tallies.append(tally)
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            try:
                await reseal(store, cipher, tally, batch=args.batch, stop=stop,
                             on_progress=progress.show if progress else None)
            finally:
                if progress:
                    progress.end(tally)
                await _audit(store, tally)

    failed = False
    try:
        asyncio.run(run())
    except StartupError:
        raise  # one line from `main`, with its exit status
    except LoanflowError as exc:  # the store went away mid-run: what was done stays done
        print(f"loanflow pii reseal: stopped: {exc}", file=sys.stderr)
        failed = True
    if not tallies:
        return EXIT_NOT_DONE
    tally = tallies[0]
    summary = tally.summary()
    print(json.dumps(summary, indent=2) if args.json else format_reseal(summary))
    if failed or tally.unopenable or tally.changed_meanwhile:
        return EXIT_NOT_DONE
    return 0 if tally.complete else EXIT_INTERRUPTED


@contextlib.asynccontextmanager
async def _store_and_cipher(settings: Settings) -> AsyncIterator[tuple[Store, PiiCipher]]:
    """The store alone (a re-seal needs no broker), opened as a start opens it."""
    try:
        cipher = load_cipher(configured=settings.pii_key, data_dir=settings.data_dir,
                             embedded=settings.embedded, hash_key=settings.pii_hash_key)
        store = make_store(settings)
        await store.open()
    except (Unavailable, ValueError) as exc:  # PiiKeyError is a ValueError
        raise cannot_start(exc) from exc
    try:
        yield store, cipher
    finally:
        await store.close()


async def _audit(store: Store, tally: ResealTally) -> None:
    """The run's evidence in the audit trail, whatever its end: counts and ids only."""
    try:
        await store.record_audit(at_ns=time.time_ns(), actor=terminal_actor(), action=AUDIT_ACTION,
                                 target=f"pii-key:{tally.to_key}", detail=tally.summary())
    except Unavailable as exc:
        print(f"loanflow pii reseal: the audit entry could not be written: {exc}",
              file=sys.stderr)


def format_reseal(summary: dict[str, Any]) -> str:
    resealed = summary["resealed"]
    sources = ", ".join(f"{n:,} from key {key_id}" for key_id, n in summary["from_keys"].items())
    lines = [f"Re-sealed under key {summary['to_key']}: {resealed['applications']:,}"
             f" applications and {resealed['dead_letters']:,} dead letters"
             + (f" ({sources})" if sources else "")
             + f" in {summary['elapsed_s']:.1f} s ({summary['per_s']:,}/s)."]
    unopenable = summary["unopenable"]
    if unopenable["count"]:
        named = [f"{where.replace('_', ' ')} {', '.join(ids)}"
                 for where in ("applications", "dead_letters")
                 if (ids := unopenable[where])]
        more = unopenable["count"] - len(unopenable["applications"]) - len(
            unopenable["dead_letters"])
        lines.append(f"Left as they are, no configured key opens them: {unopenable['count']:,}"
                     f" ({'; '.join(named)}{f'; and {more:,} more' if more > 0 else ''}).")
    if summary["changed_meanwhile"]:
        lines.append(f"Changed by another writer while being re-sealed, left to it:"
                     f" {summary['changed_meanwhile']:,}; run `loanflow pii reseal` again.")
    if not summary["complete"]:
        lines.append("Stopped before the end: run `loanflow pii reseal` again to go on.")
    elif not unopenable["count"] and not summary["changed_meanwhile"]:
        lines.append("Every stored value is under the current key. `loanflow pii status`"
                     " tells whether an old key can be dropped.")
    return "\n".join(lines)


class _Progress:
    """The re-seal's progress line on stderr, at most every `interval_s`."""

    def __init__(self, stream: TextIO) -> None:
        self._line = ProgressLine(stream)
        self._shown_at = time.monotonic()

    def show(self, tally: ResealTally, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._shown_at < self._line.interval_s:
            return
        self._shown_at = now
        self._line.show(progress_line(tally))

    def end(self, tally: ResealTally) -> None:
        self.show(tally, force=True)
        self._line.end()


def progress_line(tally: ResealTally) -> str:
    to_do = tally.applications_to_do
    share = f" ({tally.applications / to_do:.0%})" if to_do else ""
    rate = tally.resealed / tally.elapsed_s if tally.elapsed_s > 0 else 0.0
    return (f"re-sealed {tally.applications:,} of {to_do:,} applications{share},"
            f" {tally.dead_letters:,} dead letters  {rate:,.0f}/s"
            f"  unopenable {tally.unopenable:,}  changed meanwhile {tally.changed_meanwhile:,}")


# --- hash-key ----------------------------------------------------------------------------


def _hash_key(settings: Settings, args: argparse.Namespace) -> int:
    try:
        cipher = load_cipher(configured=settings.pii_key, data_dir=settings.data_dir,
                             embedded=settings.embedded, hash_key=settings.pii_hash_key)
    except PiiKeyError as exc:
        raise cannot_start(exc) from exc
    if cipher.hash_key_pinned:
        source = "pinned by LOANFLOW_PII_HASH_KEY"
    else:
        source = f"derived from the oldest PII key listed, {cipher.hash_key_derivable_from[0]}"
    print(f"hash key {cipher.hash_key_id}, {source}. Set LOANFLOW_PII_HASH_KEY to the next"
          " line on every process (restarted) before that key leaves LOANFLOW_PII_KEY; keep"
          " it as secret as the PII key.")
    print(cipher.hash_key_text())
    return 0
