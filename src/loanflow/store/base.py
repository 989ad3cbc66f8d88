"""What a store promises. Every backend passes the same contract tests.

- `save_results` writes a whole batch in one transaction and is idempotent on
  the application id: saving the same result twice leaves one row. A batch the
  store refuses for its data (the same write would fail every time) raises
  StoreRefused and writes nothing; an outage raises StoreUnavailable.
- A record's `document` reads back as equal JSON, not necessarily the same
  bytes (a store may keep it in a normalised form).
- API keys are kept as hashes only; dashboard logins as store/logins.py says.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import msgspec

from loanflow.apikeys import ApiKey
from loanflow.errors import LoanflowError
from loanflow.store.export import ExportStore
from loanflow.store.logins import LoginStore
from loanflow.store.review import DeadLetter, ReviewStore
from loanflow.store.review_queue import ReviewDecision, ReviewQueueStore
from loanflow.store.sealed import SealedStore
from loanflow.store.search import ApplicationFilter, ApplicationSummary


class StoreRefused(LoanflowError):
    """The store refused a batch for its data (a data or constraint error): the fault
    of an application in it, not an outage; retrying the same write cannot succeed."""


class ApplicationRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One processed application as the store keeps it (no PII in clear)."""

    id: str
    status: str
    #: The recommended route (domain/route.py) of an assessed application; None for a
    #: rejected or dead-lettered one.
    route: str | None = None
    api_key_id: str
    idempotency_key: str
    channel: str
    partner_id: str | None
    external_id: str | None
    received_at_ns: int
    processed_at_ns: int
    ssn_hash: str | None
    #: SSN and date of birth, sealed with the PII key.
    pii_sealed: bytes | None
    #: JSON: the masked application, the assessment (reasons, enrichment, trace).
    document: bytes
    rules_version: str
    product_version: str
    #: The business review's decision (store/review_queue.py), None until one is
    #: recorded. Read back by get_application; save_results never writes it.
    review: ReviewDecision | None = None


class Store(ReviewStore, ReviewQueueStore, ExportStore, LoginStore, SealedStore, Protocol):
    async def open(self) -> None:
        """Connect and apply pending migrations."""
        ...

    async def close(self) -> None: ...

    async def save_results(
        self, records: Sequence[ApplicationRecord], dead_letters: Sequence[DeadLetter] = ()
    ) -> None:
        """One transaction for the batch and its dead letters. A record whose id is
        already stored is left as it is, unless that row is dead_lettered or replayed
        (a replay's result replaces it)."""
        ...

    async def get_application(self, application_id: str) -> ApplicationRecord | None: ...

    async def search_applications(
        self, where: ApplicationFilter, *, limit: int, cursor: str | None = None
    ) -> tuple[list[ApplicationSummary], str | None]:
        """Newest received first, every filter index-backed (store/search.py); the next
        page's cursor, or None at the end. ValueError for a cursor not made here."""
        ...

    async def ssn_matches(
        self, ssn_hashes: Sequence[str], since_ns: int
    ) -> set[tuple[str, str]]:
        """(ssn_hash, application id) of applications received since `since_ns` whose SSN
        hash is among `ssn_hashes`: the "same SSN in 24 h" flag, across every process."""
        ...

    async def create_api_key(self, key: ApiKey, key_hash: str, *, actor: str) -> None:
        """Store the key and its `key_created` audit entry, by `actor`, together."""
        ...

    async def find_api_key(self, key_hash: str) -> ApiKey | None: ...

    async def list_api_keys(self) -> list[ApiKey]: ...

    async def revoke_api_key(self, key_id: str, at_ns: int, *, actor: str) -> bool:
        """Revoke the active key and audit it (`key_revoked`) together; False when no
        active key has that id (nothing audited)."""
        ...

    async def ping(self) -> None:
        """Raise StoreUnavailable when the store cannot be reached."""
        ...
