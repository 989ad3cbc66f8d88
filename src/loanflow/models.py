"""The application schema, the queued envelope and the statuses.

The schema here is the synchronous API check: types, required fields,
lengths, enums and formats. Business rules (age, SSN area, ZIP in state, ...)
run later in the processor (`loanflow.pipeline`).
"""

from __future__ import annotations

import datetime as dt
import enum
import functools
import math
import os
import time
from typing import Annotated, Literal

import msgspec

from loanflow.pii import sealed_key_id

#: Version of the envelope layout; bump when a field changes meaning.
ENVELOPE_VERSION = 1

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
ShortText = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
#: Dollars as a JSON number; checked for at most 2 decimals after decoding.
Money = Annotated[float, msgspec.Meta(ge=0, le=1_000_000_000)]
# [0-9], not \d: \d admits other scripts' digits. Newlines are refused in every field.
Ssn = Annotated[str, msgspec.Meta(pattern=r"^[0-9]{3}-?[0-9]{2}-?[0-9]{4}$")]
Email = Annotated[str, msgspec.Meta(min_length=3, max_length=254)]
Phone = Annotated[str, msgspec.Meta(min_length=7, max_length=30)]
StateCode = Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{2}$")]
Zip = Annotated[str, msgspec.Meta(pattern=r"^[0-9]{5}(-[0-9]{4})?$")]

EmploymentStatus = Literal[
    "employed", "self_employed", "unemployed", "retired", "student", "other"
]
Purpose = Literal[
    "debt_consolidation",
    "credit_card_refinancing",
    "home_improvement",
    "major_purchase",
    "medical",
    "auto",
    "education",
    "business",
    "moving",
    "vacation",
    "wedding",
    "other",
]
Channel = Literal["web", "mobile", "broker", "partner_api", "branch", "phone"]


class Address(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    line1: ShortText
    line2: Annotated[str, msgspec.Meta(max_length=200)] | None = None
    city: Name
    state: StateCode
    zip: Zip


class Applicant(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    first_name: Name
    last_name: Name
    date_of_birth: dt.date
    ssn: Ssn
    email: Email
    phone: Phone
    address: Address
    employment_status: EmploymentStatus
    employer_name: Annotated[str, msgspec.Meta(max_length=200)] | None = None
    annual_income: Money
    monthly_debt_payments: Money = 0.0
    monthly_housing_payment: Money = 0.0
    #: Extension: a co-signer lets retired/student applicants apply without income.
    co_signer: bool = False


class Loan(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    amount: Money
    term_months: Annotated[int, msgspec.Meta(ge=1, le=600)]
    purpose: Purpose


class Consent(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    credit_check: bool
    terms_version: Annotated[str, msgspec.Meta(min_length=1, max_length=40)]


class Application(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    applicant: Applicant
    loan: Loan
    channel: Channel
    partner_id: Annotated[str, msgspec.Meta(min_length=1, max_length=100)] | None = None
    external_id: Annotated[str, msgspec.Meta(min_length=1, max_length=100)] | None = None
    consent: Consent
    submitted_at: dt.datetime | None = None


#: Where each money field lives, for the 2-decimals check and cents conversion.
MONEY_FIELDS: tuple[tuple[str, str], ...] = (
    ("applicant", "annual_income"),
    ("applicant", "monthly_debt_payments"),
    ("applicant", "monthly_housing_payment"),
    ("loan", "amount"),
)


def to_cents(dollars: float) -> int | None:
    """Dollars to integer cents; None when not finite or with more than 2 decimals."""
    # On every application's hot path: the tolerance is written out because a max()
    # call costs more than the arithmetic; round() of a float is already an int.
    if not math.isfinite(dollars):
        return None
    scaled = dollars * 100
    cents = round(scaled)
    magnitude = abs(dollars)
    if abs(scaled - cents) > 1e-6 * (magnitude if magnitude > 1.0 else 1.0):
        return None
    return cents


class Status(enum.StrEnum):
    QUEUED = "queued"
    PROCESSING = "processing"
    STORED = "stored"
    REJECTED = "rejected"
    DEAD_LETTERED = "dead_lettered"
    REPLAYED = "replayed"
    DISCARDED = "discarded"


class AttemptRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One failed processing attempt, kept for the dead-letter review."""

    attempt: int
    at_ns: int
    error_code: str
    message: str


class Envelope(msgspec.Struct, frozen=True, kw_only=True):
    """What the broker holds for one accepted application."""

    v: int = ENVELOPE_VERSION
    id: str
    received_at_ns: int
    api_key_id: str
    idempotency_key: str
    client_ip: str | None = None
    channel: str
    #: Copied out of the application (no PII) so dead letters can be searched by them.
    partner_id: str | None = None
    external_id: str | None = None
    #: The Application as msgpack, sealed with the PII key: the queue holds no clear PII.
    sealed_application: bytes
    attempts: tuple[AttemptRecord, ...] = ()


class SealedPart(msgspec.Struct, frozen=True):
    """An encoded Envelope's sealed application alone: counting the keys that sealed
    many envelopes decodes nothing else."""

    sealed_application: bytes


#: What `envelope_key_id` gives for bytes that are not an encoded Envelope.
UNREADABLE_ENVELOPE = "unreadable"
_decode_sealed_part = msgspec.msgpack.Decoder(SealedPart).decode


def envelope_key_id(encoded: bytes) -> str:
    """The id (hex) of the PII key that sealed an encoded envelope's application, or
    UNREADABLE_ENVELOPE."""
    try:
        return sealed_key_id(_decode_sealed_part(encoded).sealed_application)
    except msgspec.DecodeError:
        return UNREADABLE_ENVELOPE


def new_application_id(now_ns: int | None = None) -> str:
    """A time-ordered UUIDv7 string, so ids sort by arrival."""
    ms = (now_ns if now_ns is not None else time.time_ns()) // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76  # version 7
    value |= ((rand >> 62) & 0xFFF) << 64  # rand_a
    value |= 0b10 << 62  # variant
    value |= rand & ((1 << 62) - 1)  # rand_b
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


#: A time in an answer: RFC 3339 UTC with microseconds, as `format_ts` writes it.
Moment = Annotated[str, msgspec.Meta(extra_json_schema={"format": "date-time"})]


def format_ts(ns: int) -> str:
    """Nanoseconds since the epoch as RFC 3339 UTC with microseconds."""
    seconds, micros = divmod(ns // 1000, 1_000_000)
    return f"{_second(seconds)}.{micros:06d}Z"


@functools.lru_cache(maxsize=64)
def _second(seconds: int) -> str:
    """`YYYY-MM-DDTHH:MM:SS` of a second (answers of one second share it)."""
    return dt.datetime.fromtimestamp(seconds, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
