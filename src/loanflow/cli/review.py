"""`loanflow dead-letters list | show ID | replay ID [--file F] | discard ID --reason R`.

Runs against the configured broker and store directly (no HTTP), so it works
while the API is down. Actions are audited as `cli:<user>@<host>`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import msgspec

from loanflow.api.dead_letters import summary
from loanflow.api.schema import decode_application
from loanflow.cli.actor import terminal_actor
from loanflow.errors import LoanflowError
from loanflow.process.runtime import open_runtime
from loanflow.review.dead_letters import ManualReview
from loanflow.settings import Settings
from loanflow.store.review import DeadLetterFilter


def add_commands(commands: Any, add_flags: Any) -> None:
    group = commands.add_parser("dead-letters", help="manual review from the terminal")
    sub = group.add_subparsers(title="dead-letters commands", required=True)
    listing = sub.add_parser("list", help="open dead letters, newest first")
    listing.add_argument("--error-code")
    listing.add_argument("--channel")
    listing.add_argument("--partner-id")
    listing.add_argument("--limit", type=int, default=50)
    listing.set_defaults(run=_list)
    show = sub.add_parser("show", help="one dead letter with every attempt")
    show.add_argument("id")
    show.set_defaults(run=_show)
    replay = sub.add_parser("replay", help="send it through again (optionally corrected)")
    replay.add_argument("id")
    replay.add_argument("--file", type=Path, help="a corrected application (JSON)")
    replay.set_defaults(run=_replay)
    discard = sub.add_parser("discard", help="close it for good, with a reason")
    discard.add_argument("id")
    discard.add_argument("--reason", required=True)
    discard.set_defaults(run=_discard)
    for parser in (listing, show, replay, discard):
        add_flags(parser, only=("data_dir", "store_url", "broker_url", "pii_key", "pii_hash_key",
                                "unsafe_redis", "log_level"))


def _run(settings: Settings, action: Any) -> int:
    async def go() -> Any:
        async with open_runtime(settings) as rt:
            return await action(ManualReview(store=rt.store, broker=rt.broker, cipher=rt.cipher))

    try:
        result = asyncio.run(go())
    except LoanflowError as exc:
        print(f"loanflow dead-letters: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2, default=str))
    return 0


def _list(settings: Settings, args: argparse.Namespace) -> int:
    where = DeadLetterFilter(error_code=args.error_code, channel=args.channel,
                             partner_id=args.partner_id)

    async def action(review: ManualReview) -> Any:
        letters, _ = await review.store.list_dead_letters(where, limit=args.limit)
        return [msgspec.to_builtins(summary(d)) for d in letters]

    return _run(settings, action)


def _show(settings: Settings, args: argparse.Namespace) -> int:
    async def action(review: ManualReview) -> Any:
        letter = await review.open_letter(args.id)
        return {**msgspec.to_builtins(summary(letter)),
                "errors": [a.message for a in letter.attempts],
                "application": review.masked_application(letter)}

    return _run(settings, action)


def _replay(settings: Settings, args: argparse.Namespace) -> int:
    corrected = decode_application(args.file.read_bytes()) if args.file else None

    async def action(review: ManualReview) -> Any:
        await review.replay(args.id, actor=terminal_actor(), corrected=corrected)
        return {"id": args.id, "status": "replayed", "corrected": corrected is not None}

    return _run(settings, action)


def _discard(settings: Settings, args: argparse.Namespace) -> int:
    async def action(review: ManualReview) -> Any:
        await review.discard(args.id, actor=terminal_actor(), reason=args.reason)
        return {"id": args.id, "status": "discarded"}

    return _run(settings, action)
