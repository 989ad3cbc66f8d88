"""Seeded synthetic loan applications, in the JSON shape of `models.Application`.

`generate()` makes realistic applications that pass every business rule: SSNs
valid by SSA rules, real active ZIPs with their USPS city and state, phone numbers
in the reserved-for-fiction 555-0100..0199 block of an area code serving that ZIP,
emails at the reserved example.* domains. `make_invalid()` then breaks exactly one
rule and says which code the processor must report.

Reproducible: the same `random.Random` seed and `now` give the same applications.
"""

from __future__ import annotations

import datetime as dt
import functools
import random
from collections.abc import Callable
from typing import Any

import msgspec
import phonenumbers
from stdnum.us import ssn as stdnum_ssn

from loanflow.domain.rules import (
    OFFERED_TERMS_MONTHS,
    us_phone_regions,
    usps_state_codes,
    zip_index,
)

#: An application as JSON-ready builtins, in the shape models.Application decodes.
ApplicationDict = dict[str, Any]


def _words(text: str, sep: str | None = None) -> tuple[str, ...]:
    """A word list written as one string: a few lines instead of one line per word."""
    return tuple(text.split(sep))


_FIRST = _words(
    "Ada Grace Alan Katherine Edsger Barbara Donald Frances John Mary James Patricia "
    "Robert Jennifer Michael Linda David Elizabeth Maria Jose Wei Mei Aiko Hiroshi Priya "
    "Arjun Fatima Omar Olga Ivan Chloe Liam Noah Emma Sofia Mateo Amara Kwame Lucia "
    "Diego Nia Zoe Ethan Ava Mason Isabella Lucas Mia Elijah Harper Jamal Keisha"
)
_LAST = _words(
    "Lovelace Hopper Turing Johnson Dijkstra Liskov Knuth Allen Smith Williams Brown "
    "Jones Garcia Miller Davis Rodriguez Martinez Hernandez Lopez Gonzalez Wilson "
    "Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson White Harris Sanchez "
    "Clark Ramirez Lewis Robinson Walker Young Nguyen Kim Chen Patel Singh O'Brien "
    "Murphy Cohen Okafor"
)
_STREETS = _words(
    "Main Oak Pine Maple Cedar Elm Washington Lake Hill Park Sunset Lincoln Jefferson "
    "Highland River Church Mill"
)
_SUFFIXES = _words("St Ave Rd Blvd Ln Dr Ct Way Pl")
_EMPLOYERS = _words(
    "Acme Corp|Globex|Initech|Umbrella Health|Stark Industries|Wayne Logistics|Hooli|"
    "Vandelay Imports|City of Springfield|Springfield General Hospital|Northwind Traders|"
    "Contoso|Tyrell Systems",
    "|",
)
_DOMAINS = ("example.com", "example.org", "example.net")  # RFC 2606: never delivered
_PHONE_FORMATS = ("+1 {a} 555 01{n}", "({a}) 555-01{n}", "{a}-555-01{n}", "+1{a}55501{n}")

_STATUSES = ("employed", "self_employed", "retired", "student", "unemployed", "other")
_STATUS_WEIGHTS = (70, 10, 8, 5, 3, 4)
#: Median and log-spread of annual income in dollars, by employment status.
_INCOME = {
    "employed": (68_000.0, 0.5),
    "self_employed": (72_000.0, 0.7),
    "retired": (42_000.0, 0.5),
    "student": (14_000.0, 0.6),
    "unemployed": (15_000.0, 0.4),
    "other": (35_000.0, 0.6),
}
_PURPOSES = _words(
    "debt_consolidation credit_card_refinancing home_improvement major_purchase medical "
    "auto education business moving vacation wedding other"
)
_PURPOSE_WEIGHTS = (38, 15, 12, 7, 5, 5, 3, 4, 3, 3, 3, 2)
_TERM_WEIGHTS = (6, 14, 32, 14, 24, 6, 4)  # for OFFERED_TERMS_MONTHS
_CHANNELS = ("web", "mobile", "broker", "partner_api", "branch", "phone")
_CHANNEL_WEIGHTS = (48, 27, 8, 10, 4, 3)
_PARTNERED_CHANNELS = ("broker", "partner_api")


class _Place(msgspec.Struct, frozen=True):
    zip5: str
    city: str
    state: str
    area_codes: tuple[str, ...]


@functools.cache
def _valid_area_codes() -> frozenset[str]:
    """Area codes whose 555-01xx numbers phonenumbers accepts as US numbers."""
    codes = {code for info in zip_index().values() for code in info.area_codes}
    regions = us_phone_regions()
    valid: set[str] = set()
    for code in codes:
        number = phonenumbers.parse(f"+1 {code} 555 0100", None)
        if (
            phonenumbers.is_valid_number(number)
            and phonenumbers.region_code_for_number(number) in regions
        ):
            valid.add(code)
    return frozenset(valid)


@functools.cache
def _places() -> tuple[_Place, ...]:
    """Active street-address ZIPs in a USPS state with a usable area code (~30k)."""
    states, valid_codes = usps_state_codes(), _valid_area_codes()
    places = []
    for info in zip_index().values():
        codes = tuple(c for c in info.area_codes if c in valid_codes)
        if info.active and info.kind == "STANDARD" and info.state in states and codes:
            places.append(_Place(info.zip5, info.city, info.state, codes))
    return tuple(places)


@functools.cache
def _unused_zips() -> tuple[str, ...]:
    index = zip_index()
    return tuple(z for z in (f"{n:05d}" for n in range(100_000)) if z not in index)


def _ssn(rng: random.Random) -> str:
    while True:
        area = rng.randrange(1, 900)
        if area == 666:
            continue
        number = f"{area:03d}{rng.randrange(1, 100):02d}{rng.randrange(1, 10_000):04d}"
        # Only stdnum's few blocklisted numbers can still be invalid; check rarely.
        if area in (78, 219, 457) and not stdnum_ssn.is_valid(number):
            continue
        if rng.random() < 0.9:
            return f"{number[:3]}-{number[3:5]}-{number[5:]}"
        return number


def _money(cents: int) -> float:
    return cents / 100


def _income_cents(rng: random.Random, status: str) -> int:
    median, spread = _INCOME[status]
    dollars = min(max(rng.lognormvariate(0.0, spread) * median, 6_000.0), 900_000.0)
    if rng.random() < 0.8:
        return int(dollars / 1_000) * 100_000  # incomes are mostly stated in thousands
    return int(dollars * 100)


def generate(rng: random.Random, *, now: dt.datetime | None = None) -> ApplicationDict:
    """One valid application as a JSON-ready dict; `now` defaults to the current UTC time."""
    now = now if now is not None else dt.datetime.now(dt.UTC)
    choice, randrange, random_ = rng.choice, rng.randrange, rng.random
    first, last = choice(_FIRST), choice(_LAST)
    place = choice(_places())
    status = rng.choices(_STATUSES, _STATUS_WEIGHTS)[0]

    co_signer = random_() < 0.03
    income = _income_cents(rng, status)
    if status in ("retired", "student") and random_() < 0.15:
        income, co_signer = 0, True  # no income, allowed with a co-signer
    monthly = income // 12
    debts = 0 if random_() < 0.2 else int(monthly * rng.uniform(0.02, 0.18)) // 100 * 100
    housing = int(monthly * rng.uniform(0.10, 0.30)) // 100 * 100
    housing = 0 if random_() < 0.15 else min(max(housing, 40_000), 600_000)
    amount = int(min(max(rng.lognormvariate(0.0, 0.8) * 12_000, 1_000), 100_000))
    amount_cents = amount // 500 * 50_000 if random_() < 0.85 else amount * 100 + randrange(100)
    amount_cents = min(max(amount_cents, 100_000), 10_000_000)
    channel = rng.choices(_CHANNELS, _CHANNEL_WEIGHTS)[0]
    zip_code = place.zip5 if random_() < 0.9 else f"{place.zip5}-{randrange(1, 10_000):04d}"
    # Ages 21-79 at generation, so the application stays valid for years.
    dob = now.date() - dt.timedelta(days=randrange(21 * 366, 79 * 365))
    return {
        "applicant": {
            "first_name": first,
            "last_name": last,
            "date_of_birth": dob.isoformat(),
            "ssn": _ssn(rng),
            "email": f"{first}.{last}{randrange(1000)}@{choice(_DOMAINS)}".lower().replace("'", ""),
            "phone": choice(_PHONE_FORMATS).format(
                a=choice(place.area_codes), n=f"{randrange(100):02d}"
            ),
            "address": {
                "line1": f"{randrange(1, 10_000)} {choice(_STREETS)} {choice(_SUFFIXES)}",
                "line2": f"Apt {randrange(1, 40)}" if random_() < 0.2 else None,
                "city": place.city,
                "state": place.state,
                "zip": zip_code,
            },
            "employment_status": status,
            "employer_name": choice(_EMPLOYERS) if status == "employed" else None,
            "annual_income": _money(income),
            "monthly_debt_payments": _money(debts),
            "monthly_housing_payment": _money(housing),
            "co_signer": co_signer,
        },
        "loan": {
            "amount": _money(amount_cents),
            "term_months": rng.choices(OFFERED_TERMS_MONTHS, _TERM_WEIGHTS)[0],
            "purpose": rng.choices(_PURPOSES, _PURPOSE_WEIGHTS)[0],
        },
        "channel": channel,
        "partner_id": f"partner-{randrange(1, 50):03d}" if channel in _PARTNERED_CHANNELS else None,
        "external_id": f"crm-{randrange(10**9):09d}" if random_() < 0.7 else None,
        "consent": {"credit_check": True, "terms_version": "2026-01"},
        "submitted_at": now.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
    }


# -- breaking one rule on purpose -----------------------------------------------

Breaker = Callable[[ApplicationDict, random.Random, dt.date], str]


def _ssn_digits(app: ApplicationDict) -> str:
    return str(app["applicant"]["ssn"]).replace("-", "")


def _bad_area(app: ApplicationDict, rng: random.Random, today: dt.date) -> str:
    area = rng.choice(("000", "666", f"9{rng.randrange(100):02d}"))
    app["applicant"]["ssn"] = f"{area}-{_ssn_digits(app)[3:5]}-{_ssn_digits(app)[5:]}"
    return "applicant.ssn.invalid_area"


def _bad_group(app: ApplicationDict, rng: random.Random, today: dt.date) -> str:
    digits = _ssn_digits(app)
    app["applicant"]["ssn"] = f"{digits[:3]}-00-{digits[5:]}"
    return "applicant.ssn.invalid_group"


def _bad_serial(app: ApplicationDict, rng: random.Random, today: dt.date) -> str:
    digits = _ssn_digits(app)
    app["applicant"]["ssn"] = f"{digits[:3]}-{digits[3:5]}-0000"
    return "applicant.ssn.invalid_serial"


def _bad_phone(app: ApplicationDict, rng: random.Random, today: dt.date) -> str:
    # No area code starts with 1; 416 is Toronto (valid, but Canadian); then London.
    app["applicant"]["phone"] = rng.choice(
        ("+1 123 555 0100", "+1 416 555 0142", "+44 20 7946 0958", "555-0100-99")
    )
    return "applicant.phone.invalid"


def _bad_state(app: ApplicationDict, rng: random.Random, today: dt.date) -> str:
    app["applicant"]["address"]["state"] = rng.choice(("XX", "ZZ", "QQ", "YY"))
    return "applicant.address.state.unknown"


def _bad_zip(app: ApplicationDict, rng: random.Random, today: dt.date) -> str:
    app["applicant"]["address"]["zip"] = rng.choice(_unused_zips())
    return "applicant.address.zip.unknown"


def _zip_elsewhere(app: ApplicationDict, rng: random.Random, today: dt.date) -> str:
    address = app["applicant"]["address"]
    while True:
        place = rng.choice(_places())
        if place.state != address["state"]:
            address["zip"] = place.zip5
            return "applicant.address.zip.state_mismatch"


def _too_young(app: ApplicationDict, rng: random.Random, today: dt.date) -> str:
    dob = today - dt.timedelta(days=rng.randrange(1, 17 * 365))
    app["applicant"]["date_of_birth"] = dob.isoformat()
    return "applicant.age.under_minimum"


def _too_old(app: ApplicationDict, rng: random.Random, today: dt.date) -> str:
    dob = today - dt.timedelta(days=rng.randrange(102 * 365, 115 * 365))
    app["applicant"]["date_of_birth"] = dob.isoformat()
    return "applicant.age.over_maximum"


def _born_tomorrow(app: ApplicationDict, rng: random.Random, today: dt.date) -> str:
    dob = today + dt.timedelta(days=rng.randrange(1, 3650))
    app["applicant"]["date_of_birth"] = dob.isoformat()
    return "applicant.date_of_birth.in_future"


def _amount_low(app: ApplicationDict, rng: random.Random, today: dt.date) -> str:
    app["loan"]["amount"] = _money(rng.randrange(0, 100_000))
    return "loan.amount.below_minimum"


def _amount_high(app: ApplicationDict, rng: random.Random, today: dt.date) -> str:
    app["loan"]["amount"] = _money(rng.randrange(10_000_001, 100_000_000))
    return "loan.amount.above_maximum"


def _odd_term(app: ApplicationDict, rng: random.Random, today: dt.date) -> str:
    offered = set(OFFERED_TERMS_MONTHS)
    app["loan"]["term_months"] = rng.choice(
        [t for t in (6, 18, 30, 42, 90, 120, 360) if t not in offered]
    )
    return "loan.term_months.not_offered"


def _no_consent(app: ApplicationDict, rng: random.Random, today: dt.date) -> str:
    app["consent"]["credit_check"] = False
    return "consent.credit_check.missing"


def _no_income(app: ApplicationDict, rng: random.Random, today: dt.date) -> str:
    applicant = app["applicant"]
    applicant.update(annual_income=0.0, employment_status="employed", co_signer=False)
    return "applicant.annual_income.not_positive"


#: Every way make_invalid() can break an application.
BREAKERS: tuple[Breaker, ...] = (
    _bad_area,
    _bad_group,
    _bad_serial,
    _bad_phone,
    _bad_state,
    _bad_zip,
    _zip_elsewhere,
    _too_young,
    _too_old,
    _born_tomorrow,
    _amount_low,
    _amount_high,
    _odd_term,
    _no_consent,
    _no_income,
)


def make_invalid(
    app: ApplicationDict, rng: random.Random, *, today: dt.date | None = None
) -> tuple[ApplicationDict, str]:
    """A copy of a valid `app` with exactly one rule broken, and that rule's code.

    `today` is the decision date the age breakers aim at (default: today, UTC).
    """
    today = today if today is not None else dt.datetime.now(dt.UTC).date()
    applicant = app["applicant"]
    broken = {
        **app,
        "applicant": {**applicant, "address": {**applicant["address"]}},
        "loan": {**app["loan"]},
        "consent": {**app["consent"]},
    }
    code = rng.choice(BREAKERS)(broken, rng, today)
    return broken, code
