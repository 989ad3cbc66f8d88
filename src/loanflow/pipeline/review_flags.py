"""Review flags found across applications, for a whole batch at once.

The same SSN within 24 h (from the store) and velocity (from the velocity counter):
both see every process and host. Either backend being down raises Unavailable, and
the processor hands the batch back to the broker: nothing is decided without them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from loanflow.domain.flags import FLAG_DUPLICATE_SSN, NO_FINDINGS, Findings
from loanflow.models import Application, Envelope
from loanflow.pii import PiiCipher
from loanflow.pipeline.velocity import VelocityCheck
from loanflow.store.base import Store

#: How far back another application with the same SSN raises FLAG_DUPLICATE_SSN.
DAY_NS = 24 * 3600 * 1_000_000_000


class ReviewFlags:
    def __init__(
        self, store: Store, cipher: PiiCipher, velocity: VelocityCheck | None = None
    ) -> None:
        self._store, self._cipher, self._velocity = store, cipher, velocity
        #: SSN -> its keyed hash, for the batch `find` last saw: the processor stores the
        #: hash `find` already made.
        self._hashes: dict[str, str] = {}

    def ssn_hash(self, application: Application) -> str:
        ssn = application.applicant.ssn
        known = self._hashes.get(ssn)
        if known is None:
            known = self._cipher.keyed_hash(ssn.replace("-", "").encode())
        return known

    async def find(
        self, batch: Sequence[tuple[Envelope, Application]], *, now_ns: int
    ) -> dict[str, Findings]:
        """Application id -> what was found for it (absent: nothing)."""
        self._hashes = {}
        self._hashes = {app.applicant.ssn: self.ssn_hash(app) for _, app in batch}
        if self._velocity is None:
            return await self._duplicate_ssns(batch, now_ns)
        # Two backends, two round trips at once.
        found, velocity = await asyncio.gather(
            self._duplicate_ssns(batch, now_ns), self._velocity.check(batch, now_ns=now_ns)
        )
        for application_id, findings in velocity.items():
            found[application_id] = found.get(application_id, NO_FINDINGS) + findings
        return found

    async def _duplicate_ssns(
        self, batch: Sequence[tuple[Envelope, Application]], now_ns: int
    ) -> dict[str, Findings]:
        """FLAG_DUPLICATE_SSN when another application with its SSN arrived in the last
        24 h: in the store, or earlier in this batch. A business duplicate is flagged
        for review, never refused."""
        hashes = {envelope.id: self.ssn_hash(app) for envelope, app in batch}
        seen = await self._store.ssn_matches(list(hashes.values()), now_ns - DAY_NS)
        owners: dict[str, set[str]] = {}
        for ssn_hash, owner in seen:
            owners.setdefault(ssn_hash, set()).add(owner)
        found: dict[str, Findings] = {}
        for application_id, ssn_hash in hashes.items():
            if owners.get(ssn_hash, set()) - {application_id}:
                found[application_id] = Findings(flags=(FLAG_DUPLICATE_SSN,))
            owners.setdefault(ssn_hash, set()).add(application_id)
        return found
