"""The processor loop: take a batch, assess each application, store the batch, ack.

Delivery is at least once; the store write is idempotent on the application
id, so the effect is exactly once. A failure (an exception, not a rule
violation) is retried with exponential backoff and full jitter; after the
last attempt the application is stored as `dead_lettered` with every error.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import random
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import msgspec

from loanflow.broker.base import Broker, Delivery
from loanflow.domain import rules
from loanflow.domain.assess import Assessment, assess
from loanflow.domain.flags import FLAG_DUPLICATE_SSN as FLAG_DUPLICATE_SSN
from loanflow.domain.flags import NO_FINDINGS, Findings
from loanflow.domain.product import Product, ProductSource
from loanflow.errors import Unavailable
from loanflow.metrics import names
from loanflow.metrics.events import Event, EventPublisher, make_event
from loanflow.metrics.recorder import Recorder
from loanflow.models import Application, AttemptRecord, Envelope, Status
from loanflow.pii import MASKED_DATE, PiiCipher, mask_ssn
from loanflow.pipeline.backlog import Backlog
from loanflow.pipeline.poison import crash_if_marked, isolate_suspect
from loanflow.pipeline.refusals import save_isolating
from loanflow.pipeline.review_flags import ReviewFlags
from loanflow.pipeline.velocity import VelocityCheck
from loanflow.store.base import ApplicationRecord, Store, StoreRefused
from loanflow.store.review import DeadLetter, DeadLetterStatus

log = logging.getLogger(__name__)

_decode_application = msgspec.msgpack.Decoder(Application).decode
_encode_json = msgspec.json.Encoder().encode
_encode_msgpack = msgspec.msgpack.Encoder().encode

#: Backoff for failed attempts: full jitter over base * 2**attempt, capped.
RETRY_BASE_S = 0.5
RETRY_CAP_S = 60.0
#: How long to leave a batch in the broker when a backend is down.
OUTAGE_DELAY_S = 1.0
#: Deliveries beyond max_attempts before an application that never gets an answer
#: (its processor dies each time) is dead-lettered; margin for ordinary redeliveries.
CRASH_MARGIN = 2


class ProcessorCrashLoop(Exception):
    """An application was delivered many times and no attempt ever ended."""


class InjectedFault(Exception):
    """Test-only: raised for applications marked by LOANFLOW_FAIL_MARKER."""


@dataclass(frozen=True, slots=True)
class _Failure:
    delivery: Delivery
    envelope: Envelope  # with this attempt recorded


class Processor:
    """One processing loop. Several may run per process and across hosts."""

    def __init__(
        self,
        broker: Broker,
        store: Store,
        *,
        cipher: PiiCipher,
        product: Product | ProductSource,
        name: str,
        velocity: VelocityCheck | None = None,
        batch_size: int = 200,
        max_attempts: int = 5,
        clock_ns: Callable[[], int] = time.time_ns,
        fail_marker: str = "",
        crash_marker: str = "",
        recorder: Recorder | None = None,
        events: EventPublisher | None = None,
        backlog: Backlog | None = None,
        backlog_only: bool = False,
    ) -> None:
        if batch_size < 1 or max_attempts < 1:
            raise ValueError(
                f"expected batch_size and max_attempts >= 1, got {batch_size}, {max_attempts}"
            )
        self._broker, self._store = broker, store
        self._cipher = cipher
        # A bare Product never changes; a ProductSource follows its file.
        self._product = product if isinstance(product, ProductSource) else ProductSource(product)
        self._flags = ReviewFlags(store, cipher, velocity)
        self.name = name
        self._batch_size, self._max_attempts = batch_size, max_attempts
        self._clock_ns = clock_ns
        self._fail_marker = fail_marker
        self._crash_marker = crash_marker
        self._recorder = recorder if recorder is not None else Recorder()
        self._events = events
        self._backlog = backlog if backlog is not None else Backlog()
        #: An extra loop: it takes batches only while a backlog waits.
        self._backlog_only = backlog_only
        #: Deliveries whose results are committed, acked with the next reserve.
        self._committed: list[Delivery] = []

    async def run(self, stop: asyncio.Event, wake: asyncio.Event | None = None) -> None:
        """Process until `stop` is set; waits for work when idle (`wake`: set by appends
        in this process), backs off when a backend is down."""
        while not stop.is_set():
            try:
                if self._backlog_only and not self._backlog.waiting():
                    await self.ack_committed()  # before a wait of unknown length
                    await _unless_stopped(stop, self._backlog.wait())
                elif await self.process_batch() == 0:
                    await _unless_stopped(stop, self._broker.wait_for_work(self.name, wake=wake))
            except Unavailable as exc:
                log.warning("processor %s: backend unavailable, waiting: %s", self.name, exc)
                await _pause(stop, OUTAGE_DELAY_S)
            except Exception:
                # A bug or an unexpected backend error: the batch stays in the broker
                # (redelivered after the visibility timeout); the loop must live on.
                log.exception("processor %s: batch failed unexpectedly", self.name)
                await _pause(stop, OUTAGE_DELAY_S)
        try:
            await self.ack_committed()
        except Unavailable as exc:  # they are stored: a redelivery is stored again, no more
            log.warning("processor %s: stopped with %d stored results unacked: %s",
                        self.name, len(self._committed), exc)

    async def drain(self) -> int:
        """Process what is ready now and return how many were taken (burst mode)."""
        total = 0
        while taken := await self.process_batch():
            total += taken
        return total

    async def ack_committed(self) -> None:
        """Ack the last batch's committed results now, not with the next reserve."""
        if self._committed:
            await self._broker.ack(self._committed)
            self._committed = []

    async def process_batch(self) -> int:
        """Take a batch (acking the previous one's in the same round trip), assess it,
        store it; its acks wait for the next reserve or `ack_committed`."""
        deliveries = await self._broker.reserve(
            self._batch_size, consumer=self.name, ack=self._committed)
        self._committed = []
        self._backlog.saw(len(deliveries), self._batch_size)
        deliveries = await isolate_suspect(self._broker, deliveries, consumer=self.name)
        if not deliveries:
            return 0
        records: list[ApplicationRecord] = []
        dead_letters: list[DeadLetter] = []
        done: list[Delivery] = []
        failures: list[_Failure] = []
        events: list[Event] = []
        taken_ns = self._clock_ns()
        opened = self._open_all(deliveries)
        product = self._product.current()  # one configuration for the whole batch
        try:
            findings = await self._flags.find(
                [(d.envelope, opened[d.envelope.id]) for d in deliveries
                 if d.envelope.id in opened],
                now_ns=taken_ns,
            )
        except Unavailable:
            # The store or the velocity counter is down: hand the batch back untouched,
            # as for a failed write.
            await self._broker.release(deliveries, OUTAGE_DELAY_S)
            raise
        for delivery in deliveries:
            if delivery.deliveries == 1:
                wait_s = (taken_ns - delivery.envelope.received_at_ns) / 1e9
                self._recorder.observe(names.QUEUE_WAIT, max(0.0, wait_s))
            if delivery.deliveries > self._max_attempts + CRASH_MARGIN:
                # Handed out again and again without an answer: it kills its processor.
                failure = self._record_failure(delivery, ProcessorCrashLoop(
                    f"delivered {delivery.deliveries} times without a result"))
            else:
                try:
                    record, rejection = self._assess(
                        delivery.envelope, opened.get(delivery.envelope.id),
                        findings.get(delivery.envelope.id, NO_FINDINGS), product)
                    records.append(record)
                    if rejection is not None:
                        events.append(rejection)
                    done.append(delivery)
                    continue
                except Exception as exc:  # a processing failure, not a rejection: retried
                    failure = self._record_failure(delivery, exc)
                    events.append(self._event(names.EVENT_FAILURE, failure.envelope))
                if len(failure.envelope.attempts) < self._max_attempts:
                    failures.append(failure)
                    continue
            dead, letter = self._dead_letter(failure.envelope)
            records.append(dead)
            dead_letters.append(letter)
            events.append(self._event(names.EVENT_DEAD_LETTER, failure.envelope))
            done.append(delivery)
        try:
            if records:
                started = time.perf_counter()
                await self._store.save_results(records, dead_letters)
                self._recorder.observe(names.STORE, time.perf_counter() - started)
        except Unavailable:
            # Nothing is dead-lettered for an outage: the batch waits in the broker.
            await self._broker.release(deliveries, OUTAGE_DELAY_S)
            raise
        except StoreRefused as refusal:
            records, done, refused = await self._isolate_refused(
                refusal, deliveries, records, dead_letters, done)
            failures += refused
        self._after_commit(records, events)
        self._committed = done
        for failure in failures:
            attempt = len(failure.envelope.attempts)
            delay_s = retry_delay_s(attempt)
            await self._broker.retry_later(failure.delivery, failure.envelope, delay_s)
        return len(deliveries)

    def _after_commit(self, records: list[ApplicationRecord], events: list[Event]) -> None:
        """Count and announce only what the store has committed."""
        committed_ns = self._clock_ns()
        for record in records:
            self._recorder.completed(
                record.status, end_to_end_s=(committed_ns - record.received_at_ns) / 1e9
            )
        if self._events is not None:
            for event in events:
                self._events.publish(event)

    def _event(
        self, kind: str, envelope: Envelope, *, code: str = "", message: str = "",
        applicant_name: str | None = None,
    ) -> Event:
        if not code and envelope.attempts:
            code, message = envelope.attempts[-1].error_code, envelope.attempts[-1].message
        return make_event(kind, application_id=envelope.id, code=code, message=message,
                          channel=envelope.channel, applicant_name=applicant_name)

    def _open_all(self, deliveries: list[Delivery]) -> dict[str, Application]:
        """Each application that opens; one that does not fails again in `_assess`."""
        opened = {}
        for delivery in deliveries:
            try:
                opened[delivery.envelope.id] = self._open(delivery.envelope)
            except Exception:  # recorded as a failed attempt in `_assess`
                continue
        return opened

    def _open(self, envelope: Envelope) -> Application:
        return _decode_application(self._cipher.open(envelope.sealed_application))

    def _assess(
        self, envelope: Envelope, application: Application | None, findings: Findings,
        product: Product,
    ) -> tuple[ApplicationRecord, Event | None]:
        """The result to store, and the rejection event when it is one."""
        if application is None:
            application = self._open(envelope)  # raises: why it did not open before
        marker = self._fail_marker
        if marker and (application.external_id or "").startswith(marker):
            raise InjectedFault(f"external_id starts with the fault marker {marker!r}")
        crash_if_marked(self._crash_marker, application.external_id)
        # Decide as of the day it was received, so a retry or replay decides the same way.
        received = dt.datetime.fromtimestamp(envelope.received_at_ns / 1e9, tz=dt.UTC).date()
        assessment = assess(application, product=product, today=received,
                            flags=findings.flags, evidence=findings.evidence,
                            observe=self._recorder.observe)
        ssn_digits = application.applicant.ssn.replace("-", "")
        document = stored_document(application, assessment)
        if envelope.attempts:  # what failed before this attempt, for its timeline
            document["attempts"] = msgspec.to_builtins(envelope.attempts)
        rejection = None
        if assessment.violations:
            applicant = application.applicant
            rejection = self._event(
                names.EVENT_REJECTION, envelope,
                code=assessment.violations[0].code,
                message="; ".join(v.message for v in assessment.violations),
                applicant_name=f"{applicant.first_name} {applicant.last_name}",
            )
        record = self._record(
            envelope,
            status=Status(assessment.outcome),
            route=assessment.enrichment.route if assessment.enrichment is not None else None,
            document=document,
            ssn_hash=self._flags.ssn_hash(application),
            pii_sealed=self._cipher.seal(
                _encode_json({"ssn": ssn_digits, "dob": application.applicant.date_of_birth})
            ),
            rules_version=assessment.rules_version,
            product_version=assessment.product_version,
        )
        return record, rejection

    def _record_failure(self, delivery: Delivery, exc: Exception) -> _Failure:
        envelope = delivery.envelope
        record = AttemptRecord(
            attempt=len(envelope.attempts) + 1,
            at_ns=self._clock_ns(),
            error_code=type(exc).__name__,
            message=str(exc)[:500],
        )
        log.warning(
            "processor %s: application %s attempt %d failed: %s",
            self.name, envelope.id, record.attempt, record.error_code,
        )
        self._recorder.count(names.FAILED)
        attempts = (*envelope.attempts, record)
        return _Failure(delivery, msgspec.structs.replace(envelope, attempts=attempts))

    def _dead_letter(self, envelope: Envelope) -> tuple[ApplicationRecord, DeadLetter]:
        """The application's `dead_lettered` row and its dead letter (the whole envelope,
        the application still sealed, so an operator can replay it)."""
        record = self._record(
            envelope,
            status=Status.DEAD_LETTERED,
            route=None,
            document={"attempts": msgspec.to_builtins(envelope.attempts)},
            ssn_hash=None,
            pii_sealed=None,
            rules_version="",
            product_version="",
        )
        last = envelope.attempts[-1]
        letter = DeadLetter(
            id=envelope.id,
            status=DeadLetterStatus.OPEN.value,
            api_key_id=envelope.api_key_id,
            idempotency_key=envelope.idempotency_key,
            channel=envelope.channel,
            partner_id=envelope.partner_id,
            external_id=envelope.external_id,
            received_at_ns=envelope.received_at_ns,
            dead_lettered_at_ns=record.processed_at_ns,
            error_code=last.error_code,
            last_error=last.message,
            attempts=envelope.attempts,
            envelope=_encode_msgpack(envelope),
        )
        return record, letter

    def _record(
        self,
        envelope: Envelope,
        *,
        status: Status,
        route: str | None,
        document: dict[str, object],
        ssn_hash: str | None,
        pii_sealed: bytes | None,
        rules_version: str,
        product_version: str,
    ) -> ApplicationRecord:
        return ApplicationRecord(
            id=envelope.id,
            status=status.value,
            route=route,
            api_key_id=envelope.api_key_id,
            idempotency_key=envelope.idempotency_key,
            channel=envelope.channel,
            partner_id=envelope.partner_id,
            external_id=envelope.external_id,
            received_at_ns=envelope.received_at_ns,
            processed_at_ns=self._clock_ns(),
            ssn_hash=ssn_hash,
            pii_sealed=pii_sealed,
            document=_encode_json(document),
            rules_version=rules_version,
            product_version=product_version,
        )

    async def _isolate_refused(
        self,
        refusal: StoreRefused,
        deliveries: list[Delivery],
        records: list[ApplicationRecord],
        dead_letters: list[DeadLetter],
        done: list[Delivery],
    ) -> tuple[list[ApplicationRecord], list[Delivery], list[_Failure]]:
        """The store refused the batch for its data: save it in parts to find the
        result(s) at fault (refusals.py). Each becomes a failed attempt; its neighbours
        are stored. Returns the records saved, the deliveries done, the failures to retry."""
        try:
            refused = await save_isolating(self._store, records, dead_letters, refusal)
            failures: list[_Failure] = []
            saved = [r for r in records if r.id not in refused]
            for delivery in [d for d in done if d.envelope.id in refused]:
                failure = self._record_failure(delivery, refused[delivery.envelope.id])
                if len(failure.envelope.attempts) < self._max_attempts:
                    failures.append(failure)
                    continue
                dead, letter = self._dead_letter(failure.envelope)
                try:
                    await self._store.save_results([dead], [letter])
                    saved.append(dead)
                except StoreRefused:
                    # Its dead letter holds the same data: it can only wait, in sight.
                    log.error("processor %s: application %s: the store refuses even its"
                              " dead letter; left in the broker, tried again in %.0f s",
                              self.name, delivery.envelope.id, RETRY_CAP_S)
                    await self._broker.release([delivery], RETRY_CAP_S)
        except Unavailable:
            await self._broker.release(deliveries, OUTAGE_DELAY_S)
            raise
        saved_ids = {r.id for r in saved}
        return saved, [d for d in done if d.envelope.id in saved_ids], failures


def stored_document(application: Application, assessment: Assessment) -> dict[str, object]:
    """The document stored for an assessed application: masked application, assessment.

    Both are encoded as the Structs they are: converting them to dicts first (as
    masked() does) cost more than the encode.
    """
    applicant = application.applicant
    # For encoding only: replace() does not check types, and date_of_birth holds the
    # mask text, as it does in masked().
    shown = msgspec.structs.replace(
        applicant, ssn=mask_ssn(applicant.ssn), date_of_birth=MASKED_DATE
    )
    return {
        "application": msgspec.structs.replace(application, applicant=shown),
        "assessment": assessment,
    }


def masked(application: Application) -> dict[str, object]:
    """The application as JSON-ready data with SSN and date of birth masked."""
    data: dict[str, object] = msgspec.to_builtins(application)
    applicant = dict(data["applicant"])  # type: ignore[call-overload]
    applicant["ssn"] = mask_ssn(application.applicant.ssn)
    applicant["date_of_birth"] = MASKED_DATE
    data["applicant"] = applicant
    return data


def retry_delay_s(attempt: int, rng: random.Random | None = None) -> float:
    """Full jitter: uniform in [0, min(cap, base * 2**attempt)] after failed attempt n.

    The worst case before the dead letters is the sum of the ceilings for attempts
    1 .. MAX_ATTEMPTS-1 (with the defaults, 1 + 2 + 4 + 8 = 15 s).
    """
    return (rng or random).uniform(0, max_retry_delay_s(attempt))


def max_retry_delay_s(attempt: int) -> float:
    return float(min(RETRY_CAP_S, RETRY_BASE_S * 2**attempt))


def warm_up() -> None:
    """Load the lookup tables now, so the first application does not pay for them."""
    rules.load_tables()


async def _unless_stopped(stop: asyncio.Event, wait: Coroutine[Any, Any, None]) -> None:
    """Await `wait`, or cancel it as soon as `stop` is set."""
    waiting = asyncio.ensure_future(wait)
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait([waiting, stopping], return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
        waiting.cancel()
    if waiting.done() and not waiting.cancelled():
        waiting.result()  # a broker error goes to the caller


async def _pause(stop: asyncio.Event, seconds: float) -> None:
    """Sleep up to `seconds`, waking early on `stop`."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
