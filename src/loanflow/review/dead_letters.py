"""What operators do with dead letters: replay (as it was, or corrected) and discard.

Shared by the API and the CLI. A replay puts the application back in the
broker under its own id before the dead letter is marked, so a crash in
between leaves it open (replay again: harmless, the store cannot double it)
rather than marked but never queued.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import msgspec

from loanflow.broker.base import Broker
from loanflow.errors import MalformedRequest, NotFound, NotOpen
from loanflow.models import Application, Envelope
from loanflow.pii import PiiCipher
from loanflow.pipeline.processor import masked
from loanflow.store.base import Store
from loanflow.store.review import DeadLetter, DeadLetterFilter, DeadLetterStatus

#: Most dead letters one bulk action touches; a larger set is done in several calls.
BULK_LIMIT = 10_000

_decode_envelope = msgspec.msgpack.Decoder(Envelope).decode
_decode_application = msgspec.msgpack.Decoder(Application).decode
_encode_msgpack = msgspec.msgpack.Encoder().encode


@dataclass(frozen=True)
class ManualReview:
    store: Store
    broker: Broker
    cipher: PiiCipher

    async def open_letter(self, application_id: str) -> DeadLetter:
        letter = await self.store.get_dead_letter(application_id)
        if letter is None:
            raise NotFound(f"no dead letter for application {application_id!r}")
        return letter

    def masked_application(self, letter: DeadLetter) -> dict[str, object] | None:
        """The application as an operator may see it; None if it cannot be opened."""
        try:
            envelope = _decode_envelope(letter.envelope)
            return masked(_decode_application(self.cipher.open(envelope.sealed_application)))
        except (msgspec.DecodeError, ValueError):
            return None  # the very reason it was dead-lettered, perhaps

    async def replay(
        self, application_id: str, *, actor: str, corrected: Application | None = None
    ) -> DeadLetter:
        letter = await self.open_letter(application_id)
        _require_open(letter)
        envelope = _decode_envelope(letter.envelope)
        detail: dict[str, Any] = {"before": "dead_lettered", "after": "replayed",
                                  "last_error": letter.error_code, "corrected": False}
        if corrected is not None:
            detail.update(corrected=True, original=self.masked_application(letter),
                          correction=masked(corrected))
            envelope = msgspec.structs.replace(
                envelope,
                channel=corrected.channel,
                partner_id=corrected.partner_id,
                external_id=corrected.external_id,
                sealed_application=self.cipher.seal(_encode_msgpack(corrected)),
            )
        await self.broker.requeue([msgspec.structs.replace(envelope, attempts=())])
        await self._resolve(letter, DeadLetterStatus.REPLAYED, actor,
                            "replay with correction" if corrected else "replay", detail)
        return letter

    async def discard(self, application_id: str, *, actor: str, reason: str) -> DeadLetter:
        if not reason.strip():
            raise MalformedRequest("a discard needs a reason")
        letter = await self.open_letter(application_id)
        _require_open(letter)
        detail = {"before": "dead_lettered", "after": "discarded", "reason": reason,
                  "last_error": letter.error_code}
        await self._resolve(letter, DeadLetterStatus.DISCARDED, actor, reason, detail)
        return letter

    async def bulk(
        self, where: DeadLetterFilter, *, action: str, actor: str, reason: str = "",
        dry_run: bool,
    ) -> int:
        """How many open dead letters match (dry run), or how many were acted on."""
        where = msgspec.structs.replace(where, status=DeadLetterStatus.OPEN.value)
        if dry_run:
            return await self.store.count_dead_letters(where)
        if action == "discard" and not reason.strip():
            raise MalformedRequest("a discard needs a reason")
        letters, _ = await self.store.list_dead_letters(where, limit=BULK_LIMIT)
        done = 0
        for letter in letters:
            try:
                if action == "replay":
                    await self.replay(letter.id, actor=actor)
                else:
                    await self.discard(letter.id, actor=actor, reason=reason)
                done += 1
            except NotOpen:
                continue  # resolved by someone else meanwhile
        return done

    async def _resolve(
        self, letter: DeadLetter, status: DeadLetterStatus, actor: str, reason: str,
        detail: dict[str, Any],
    ) -> None:
        resolved = await self.store.resolve_dead_letter(
            letter.id, seen_dead_lettered_at_ns=letter.dead_lettered_at_ns, status=status,
            actor=actor, at_ns=time.time_ns(), reason=reason, detail=detail,
        )
        if not resolved:
            raise NotOpen(f"dead letter {letter.id} changed meanwhile; look at it again")


def _require_open(letter: DeadLetter) -> None:
    if letter.status != DeadLetterStatus.OPEN.value:
        raise NotOpen(f"dead letter {letter.id} is already {letter.status}")
