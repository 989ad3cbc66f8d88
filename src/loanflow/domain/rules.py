"""Business rules: small named checks with stable codes, all violations reported together.

The schema (`loanflow.models`) has already checked shape: types, lengths, enums,
formats. These rules check meaning, using the field's own libraries (python-stdnum
for SSNs, phonenumbers, `us`, `zipcodes`) rather than hand-written tables.

Every check is total: any value the schema admits yields violations or none, never
an exception. Messages never echo the SSN, the date of birth or the phone number,
because violations are stored, logged and shown on the dashboard.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

import msgspec
import phonenumbers
import us
import zipcodes
from stdnum.exceptions import InvalidComponent, ValidationError
from stdnum.us import ssn as stdnum_ssn

from loanflow.models import MONEY_FIELDS, Application, to_cents

#: Stored with every result; bump whenever a rule, a code or a threshold changes.
RULES_VERSION: Final = "2026.2"

MIN_AGE_YEARS: Final = 18
MAX_AGE_YEARS: Final = 100
MIN_AMOUNT_CENTS: Final = 1_000_00
MAX_AMOUNT_CENTS: Final = 100_000_00
OFFERED_TERMS_MONTHS: Final = (12, 24, 36, 48, 60, 72, 84)
#: Employment statuses that may apply without income, provided a co-signer is named.
NO_INCOME_STATUSES: Final = frozenset({"retired", "student"})


class Violation(msgspec.Struct, frozen=True, kw_only=True):
    """One broken business rule: a stable `code`, the dotted `field`, a human message."""

    code: str
    field: str
    message: str


class ZipInfo(msgspec.Struct, frozen=True, kw_only=True):
    """What the `zipcodes` data says about one 5-digit ZIP."""

    zip5: str
    #: USPS type: STANDARD (street addresses), PO BOX, UNIQUE (one organisation), MILITARY.
    kind: str
    state: str
    city: str
    #: Other city names USPS accepts for this ZIP.
    acceptable_cities: tuple[str, ...]
    county: str | None
    time_zone: str | None
    active: bool
    area_codes: tuple[str, ...]


Check = Callable[[Application, dt.date], tuple[Violation, ...]]


@dataclass(frozen=True, slots=True)
class Rule:
    """A named business rule and the codes it can report."""

    name: str
    codes: tuple[str, ...]
    check: Check


# -- read-only data tables, loaded once on first use ------------------------------


@functools.cache
def zip_index() -> Mapping[str, ZipInfo]:
    """Every ZIP in the `zipcodes` data by its 5 digits (built once: ~1 s, ~40k ZIPs)."""
    # zipcodes.matching() scans the whole table (~0.4 ms a call); a dict is ~100 ns.
    index = {
        z["zip_code"]: ZipInfo(
            zip5=z["zip_code"],
            kind=z["zip_code_type"],
            state=z["state"],
            city=z["city"],
            acceptable_cities=tuple(z["acceptable_cities"]),
            county=z["county"] or None,
            time_zone=z["timezone"] or None,
            active=bool(z["active"]),
            area_codes=tuple(z["area_codes"]),
        )
        for z in zipcodes.list_all()  # type: ignore[no-untyped-call]  # untyped library
    }
    return MappingProxyType(index)


def lookup_zip(zip_code: str) -> ZipInfo | None:
    """The ZIP's data, for `12345` or ZIP+4 `12345-6789`; None when unknown."""
    return zip_index().get(zip_code[:5])


@functools.cache
def usps_state_codes() -> frozenset[str]:
    """USPS codes of the states, DC and the inhabited territories, per the `us` package."""
    return frozenset(state.abbr for state in us.STATES_AND_TERRITORIES)


@functools.cache
def us_phone_regions() -> tuple[str, ...]:
    """phonenumbers regions that are US jurisdictions: "US" first, then the territories."""
    # The territories' ISO codes equal their USPS codes (PR, GU, VI, AS, MP). Only
    # territories: a state's USPS code can be a foreign ISO code (CA is Canada), and
    # Canada and the Caribbean nations share +1 without being US numbers.
    nanp = set(phonenumbers.region_codes_for_country_code(1))
    return ("US", *sorted(nanp & {territory.abbr for territory in us.TERRITORIES}))


#: The plain spellings of a NANP number: optional +1 or 1, area code, exchange, line.
_PLAIN_NANP = re.compile(
    r"(?:\+?1[ .-]?)?\(?([2-9][0-9]{2})\)?[ .-]?([0-9]{3})[ .-]?([0-9]{4})", re.ASCII
)


@functools.lru_cache(maxsize=1024)
def parse_phone(text: str) -> phonenumbers.PhoneNumber:
    """phonenumbers.parse(text, "US"), with a fast path for plain NANP spellings.

    parse() costs ~20 us, most of this stage's time; the plain spellings that nearly
    every application uses give the same number from a regex in ~1 us.
    Raises phonenumbers.NumberParseException like parse().

    Cached, so that a phone is parsed once for the velocity check (run on the whole
    batch first) and again for free by the phone rule: do not modify the number
    returned. The cache holds more numbers than a default batch has applications.
    """
    match = _PLAIN_NANP.fullmatch(text.strip())
    if match is not None:
        return phonenumbers.PhoneNumber(
            country_code=1, national_number=int("".join(match.groups()))
        )
    return phonenumbers.parse(text, "US")


def load_tables() -> None:
    """Load every data table now (about 1 s), so the first application does not wait.

    Call it once at processor start; without it the tables load on first use.
    """
    zip_index()
    us_phone_regions()
    # phonenumbers loads the US metadata on its first parse.
    phonenumbers.is_valid_number(phonenumbers.parse("+1 415 555 0100", "US"))


# -- helpers ---------------------------------------------------------------------


#: Dollars to cents; None for more than 2 decimals or a non-finite value. A Struct
#: built in code (not decoded) skips the schema's bounds: to_cents guards round(nan),
#: so that no rule can crash.
cents_or_none: Final = to_cents


def age_in_years(date_of_birth: dt.date, today: dt.date) -> int:
    """Completed years; someone born on 29 February turns a year older on 1 March."""
    had_birthday = (today.month, today.day) >= (date_of_birth.month, date_of_birth.day)
    return today.year - date_of_birth.year - (0 if had_birthday else 1)


def _v(code: str, field: str, message: str) -> Violation:
    return Violation(code=code, field=field, message=message)


def _one(code: str, field: str, message: str) -> tuple[Violation, ...]:
    return (_v(code, field, message),)


# Exact ASCII shapes: the schema's patterns use \d and $, which admit other scripts'
# digits and a trailing newline.
_SSN_SHAPE = re.compile(r"[0-9]{3}-?[0-9]{2}-?[0-9]{4}")
_ZIP_SHAPE = re.compile(r"[0-9]{5}(?:-[0-9]{4})?")
_SSN_AREA_MESSAGE = "SSN area number (first 3 digits) must not be 000, 666 or 900-999"


# -- the rules -------------------------------------------------------------------


def _check_age(app: Application, today: dt.date) -> tuple[Violation, ...]:
    field = "applicant.date_of_birth"
    dob = app.applicant.date_of_birth
    if dob > today:
        return _one(f"{field}.in_future", field, "date of birth is in the future")
    age = age_in_years(dob, today)
    if age < MIN_AGE_YEARS:
        return _one(
            "applicant.age.under_minimum",
            field,
            f"applicant must be at least {MIN_AGE_YEARS} years old",
        )
    if age > MAX_AGE_YEARS:
        return _one(
            "applicant.age.over_maximum",
            field,
            f"applicant must be at most {MAX_AGE_YEARS} years old",
        )
    return ()


def _check_ssn(app: Application, today: dt.date) -> tuple[Violation, ...]:
    field = "applicant.ssn"
    # The schema's \d and $ also admit non-ASCII digits and a trailing newline.
    if _SSN_SHAPE.fullmatch(app.applicant.ssn) is None:
        return _one(f"{field}.invalid_format", field, "SSN must be 9 ASCII digits")
    # Validate the compact form: stdnum checks its blocklist against format(number),
    # which misses single-dash spellings such as "078-051120".
    number = app.applicant.ssn.replace("-", "")
    try:
        stdnum_ssn.validate(number)
    except InvalidComponent:
        return _ssn_component_violations(number)
    except ValidationError:
        return _one(f"{field}.invalid", field, "SSN is not valid")
    return ()


def _ssn_component_violations(number: str) -> tuple[Violation, ...]:
    """Name each part stdnum refused; the digits themselves are never echoed."""
    field = "applicant.ssn"
    area, group, serial = number[:3], number[3:5], number[5:]
    parts = (
        (area in ("000", "666") or area.startswith("9"), "invalid_area", _SSN_AREA_MESSAGE),
        (group == "00", "invalid_group", "SSN group number (middle 2 digits) must not be 00"),
        (serial == "0000", "invalid_serial", "SSN serial (last 4 digits) must not be 0000"),
    )
    found = tuple(_v(f"{field}.{code}", field, text) for bad, code, text in parts if bad)
    # Well-formed parts but refused anyway: on stdnum's list of publicly misused numbers.
    return found or _one(f"{field}.blocklisted", field, "SSN is a publicly known, voided number")


def _check_phone(app: Application, today: dt.date) -> tuple[Violation, ...]:
    field = "applicant.phone"
    try:
        number = parse_phone(app.applicant.phone)
    except phonenumbers.NumberParseException:
        return _one(f"{field}.invalid", field, "phone is not a phone number")
    # Checking the few US regions directly is about 3x cheaper than is_valid_number()
    # plus region_code_for_number(), which try every +1 region in turn.
    for region in us_phone_regions():
        if phonenumbers.is_valid_number_for_region(number, region):
            return ()
    if phonenumbers.is_valid_number(number):
        return _one(f"{field}.invalid", field, "phone is not a US number")
    return _one(f"{field}.invalid", field, "phone is not a valid number")


def _check_state(app: Application, today: dt.date) -> tuple[Violation, ...]:
    field = "applicant.address.state"
    state = app.applicant.address.state
    if state not in usps_state_codes():
        return _one(f"{field}.unknown", field, f"{state!r} is not a USPS state code")
    return ()


def _check_zip(app: Application, today: dt.date) -> tuple[Violation, ...]:
    field = "applicant.address.zip"
    address = app.applicant.address
    if _ZIP_SHAPE.fullmatch(address.zip) is None:
        return _one(f"{field}.invalid_format", field, "ZIP must be 5 ASCII digits or ZIP+4")
    info = lookup_zip(address.zip)
    if info is None:
        return _one(f"{field}.unknown", field, f"ZIP {address.zip!r} does not exist")
    if not info.active:
        return _one(f"{field}.inactive", field, f"ZIP {info.zip5} is no longer in service")
    # With an unknown state the mismatch says nothing new: the state rule reports it.
    if address.state in usps_state_codes() and info.state != address.state:
        return _one(
            f"{field}.state_mismatch",
            field,
            f"ZIP {info.zip5} lies in {info.state}, not in {address.state}",
        )
    return ()


def _check_money_precision(app: Application, today: dt.date) -> tuple[Violation, ...]:
    # The API refuses sub-cent amounts; this keeps the processor total for anything
    # that arrives another way (replays, direct calls).
    found: list[Violation] = []
    for section, name in MONEY_FIELDS:
        value: float = getattr(getattr(app, section), name)
        if cents_or_none(value) is None:
            field = f"{section}.{name}"
            found.append(_v(f"{field}.not_whole_cents", field, "expected at most 2 decimals"))
    return tuple(found)


def _check_amount(app: Application, today: dt.date) -> tuple[Violation, ...]:
    field = "loan.amount"
    cents = cents_or_none(app.loan.amount)
    if cents is None:
        return ()  # reported by the precision rule
    if cents < MIN_AMOUNT_CENTS:
        return _one(
            f"{field}.below_minimum", field, f"amount must be at least {MIN_AMOUNT_CENTS // 100:,}"
        )
    if cents > MAX_AMOUNT_CENTS:
        return _one(
            f"{field}.above_maximum", field, f"amount must be at most {MAX_AMOUNT_CENTS // 100:,}"
        )
    return ()


def _check_term(app: Application, today: dt.date) -> tuple[Violation, ...]:
    field = "loan.term_months"
    if app.loan.term_months not in OFFERED_TERMS_MONTHS:
        offered = ", ".join(str(t) for t in OFFERED_TERMS_MONTHS)
        return _one(
            f"{field}.not_offered",
            field,
            f"term of {app.loan.term_months} months is not offered (offered: {offered})",
        )
    return ()


def _check_consent(app: Application, today: dt.date) -> tuple[Violation, ...]:
    field = "consent.credit_check"
    if not app.consent.credit_check:
        return _one(f"{field}.missing", field, "consent to a credit check is required")
    return ()


def _check_income(app: Application, today: dt.date) -> tuple[Violation, ...]:
    field = "applicant.annual_income"
    applicant = app.applicant
    cents = cents_or_none(applicant.annual_income)
    if cents is None or cents > 0:
        return ()
    if applicant.employment_status in NO_INCOME_STATUSES and applicant.co_signer:
        return ()
    return _one(
        f"{field}.not_positive",
        field,
        "annual income must be above 0 (unless retired or student with a co-signer)",
    )


#: Every rule, in the order its violations are listed.
RULES: Final[tuple[Rule, ...]] = (
    Rule(
        "age",
        (
            "applicant.date_of_birth.in_future",
            "applicant.age.under_minimum",
            "applicant.age.over_maximum",
        ),
        _check_age,
    ),
    Rule(
        "ssn",
        (
            "applicant.ssn.invalid_format",
            "applicant.ssn.invalid_area",
            "applicant.ssn.invalid_group",
            "applicant.ssn.invalid_serial",
            "applicant.ssn.blocklisted",
            "applicant.ssn.invalid",
        ),
        _check_ssn,
    ),
    Rule("phone", ("applicant.phone.invalid",), _check_phone),
    Rule("state", ("applicant.address.state.unknown",), _check_state),
    Rule(
        "zip",
        (
            "applicant.address.zip.invalid_format",
            "applicant.address.zip.unknown",
            "applicant.address.zip.inactive",
            "applicant.address.zip.state_mismatch",
        ),
        _check_zip,
    ),
    Rule(
        "money_precision",
        tuple(f"{section}.{name}.not_whole_cents" for section, name in MONEY_FIELDS),
        _check_money_precision,
    ),
    Rule("income", ("applicant.annual_income.not_positive",), _check_income),
    Rule("amount", ("loan.amount.below_minimum", "loan.amount.above_maximum"), _check_amount),
    Rule("term", ("loan.term_months.not_offered",), _check_term),
    Rule("consent", ("consent.credit_check.missing",), _check_consent),
)

#: Every code a rule can report; stable across releases (only ever added to).
RULE_CODES: Final = frozenset(code for rule in RULES for code in rule.codes)


def check_application(application: Application, *, today: dt.date) -> tuple[Violation, ...]:
    """Run every rule; all violations together, in rule order (empty when valid)."""
    found: list[Violation] = []
    for rule in RULES:
        found.extend(rule.check(application, today))
    return tuple(found)
