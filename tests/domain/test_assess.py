"""assess(): the processor's entry point is total, versioned and JSON-encodable."""

from __future__ import annotations

import datetime as dt
import random
import string
from typing import Any

import msgspec
import pytest

from loanflow.domain.assess import Assessment, assess
from loanflow.domain.product import load_product
from loanflow.domain.rules import RULE_CODES, RULES_VERSION
from loanflow.loadgen.synthetic import generate
from loanflow.models import Application

NOW = dt.datetime(2026, 11, 25, 10, 0, tzinfo=dt.UTC)
TODAY = NOW.date()
PRODUCT = load_product()


def valid_application(seed: int = 1) -> Application:
    return msgspec.convert(generate(random.Random(seed), now=NOW), Application)


def rejected_application() -> Application:
    data = generate(random.Random(1), now=NOW)
    data["consent"]["credit_check"] = False
    data["applicant"]["ssn"] = "666-12-3456"
    return msgspec.convert(data, Application)


def test_valid_application_is_stored_with_its_enrichment() -> None:
    result = assess(valid_application(), product=PRODUCT, today=TODAY)
    assert (result.outcome, result.violations) == ("stored", ())
    assert result.enrichment is not None


def test_application_breaking_rules_is_rejected_with_every_violation_and_no_enrichment() -> None:
    result = assess(rejected_application(), product=PRODUCT, today=TODAY)
    assert result.outcome == "rejected"
    assert result.enrichment is None
    assert [v.code for v in result.violations] == [
        "applicant.ssn.invalid_area",
        "consent.credit_check.missing",
    ]


@pytest.mark.parametrize("make", [valid_application, rejected_application])
def test_assessment_names_the_rules_and_product_versions(make: Any) -> None:
    result = assess(make(), product=PRODUCT, today=TODAY)
    assert (result.rules_version, result.product_version) == (RULES_VERSION, PRODUCT.version)


@pytest.mark.parametrize("make", [valid_application, rejected_application])
def test_assessment_round_trips_through_json(make: Any) -> None:
    result = assess(make(), product=PRODUCT, today=TODAY)
    assert msgspec.json.decode(msgspec.json.encode(result), type=Assessment) == result


def test_same_application_and_date_give_the_same_assessment() -> None:
    first = assess(valid_application(5), product=PRODUCT, today=TODAY)
    assert assess(valid_application(5), product=PRODUCT, today=TODAY) == first


def test_caller_flags_reach_the_enrichment() -> None:
    result = assess(valid_application(), product=PRODUCT, today=TODAY, flags=("ssn.seen_24h",))
    assert result.enrichment is not None and "ssn.seen_24h" in result.enrichment.flags


def test_rejection_messages_never_contain_the_ssn() -> None:
    for area in ("000", "666", "901"):
        data = generate(random.Random(area), now=NOW)
        ssn = f"{area}-00-0000"
        data["applicant"]["ssn"] = ssn
        result = assess(msgspec.convert(data, Application), product=PRODUCT, today=TODAY)
        encoded = msgspec.json.encode(result).decode()
        assert ssn not in encoded and ssn.replace("-", "") not in encoded


# -- totality: no schema-admitted application makes assess() raise ----------------

# Other scripts' digits match the schema's \d: Arabic-Indic and fullwidth.
_DIGITS = string.digits + "".join(chr(base + i) for base in (0x0660, 0xFF10) for i in range(10))


def _digits(rng: random.Random, n: int, ascii_only: bool = False) -> str:
    pool = string.digits if ascii_only or rng.random() < 0.8 else _DIGITS
    return "".join(rng.choice(pool) for _ in range(n))


def _money(rng: random.Random) -> float:
    return rng.choice(
        (
            0.0,
            0.01,
            0.001,
            5e-324,
            999.995,
            1000.0,
            100_000.0,
            100_000.01,
            1e9,
            round(rng.uniform(0, 200_000), 2),
            rng.uniform(0, 1e9),
        )
    )


def _date(rng: random.Random) -> str:
    return rng.choice(
        (
            dt.date(1, 1, 1),
            dt.date(9999, 12, 31),
            TODAY,
            dt.date(2000, 2, 29),
            TODAY - dt.timedelta(days=rng.randrange(0, 80_000)),
            TODAY + dt.timedelta(days=rng.randrange(1, 1_000)),
        )
    ).isoformat()


def _phone(rng: random.Random) -> str:
    alphabet = string.printable + "ａ٣+()-. \u200b"
    return rng.choice(
        (
            "".join(rng.choice(alphabet) for _ in range(rng.randrange(7, 31))),
            f"+1 {_digits(rng, 3, True)} {_digits(rng, 3, True)} {_digits(rng, 4, True)}",
            "+" + _digits(rng, rng.randrange(6, 20)),
        )
    )


def _edge_case(rng: random.Random) -> dict[str, Any]:
    """A generated valid application with a few fields replaced by edge values."""
    data = generate(rng, now=NOW)
    applicant, address, loan = data["applicant"], data["applicant"]["address"], data["loan"]

    def sometimes() -> bool:
        return rng.random() < 0.25

    if sometimes():
        sep = rng.choice(("-", ""))
        end = rng.choice(("", "", "\n"))  # the schema's $ admits a trailing newline
        applicant["ssn"] = f"{_digits(rng, 3)}{sep}{_digits(rng, 2)}{sep}{_digits(rng, 4)}{end}"
    if sometimes():
        applicant["date_of_birth"] = _date(rng)
    if sometimes():
        applicant["phone"] = _phone(rng)
    if sometimes():
        letters = rng.choice(string.ascii_uppercase) + rng.choice(string.ascii_uppercase)
        address["state"] = letters + rng.choice(("", "", "\n"))
    if sometimes():
        plus4 = f"-{_digits(rng, 4)}" if rng.random() < 0.3 else ""
        address["zip"] = _digits(rng, 5) + plus4 + rng.choice(("", "", "\n"))
    for field in ("annual_income", "monthly_debt_payments", "monthly_housing_payment"):
        if sometimes():
            applicant[field] = _money(rng)
    if sometimes():
        applicant["employment_status"] = rng.choice(
            ("employed", "self_employed", "unemployed", "retired", "student", "other")
        )
        applicant["co_signer"] = rng.random() < 0.5
    if sometimes():
        loan["amount"] = _money(rng)
    if sometimes():
        loan["term_months"] = rng.choice((1, 12, 13, 36, 84, 85, 600, rng.randrange(1, 601)))
    if sometimes():
        data["consent"]["credit_check"] = False
    return data


def test_assess_never_raises_on_any_application_the_schema_admits() -> None:
    rng = random.Random(20261125)
    outcomes: set[str] = set()
    admitted = 0
    for _ in range(3_000):
        try:
            app = msgspec.convert(_edge_case(rng), Application)
        except msgspec.ValidationError:
            continue  # the schema refuses it at the API: never reaches assess
        admitted += 1
        result = assess(app, product=PRODUCT, today=TODAY)
        msgspec.json.encode(result)
        assert {v.code for v in result.violations} <= RULE_CODES
        outcomes.add(result.outcome)
    assert outcomes == {"stored", "rejected"}
    assert admitted > 1_000


def test_assess_survives_a_struct_built_in_code_with_non_finite_money() -> None:
    # Built without decoding, a Struct skips the schema's bounds: still no crash.
    app = valid_application()
    broken = msgspec.structs.replace(
        app, loan=msgspec.structs.replace(app.loan, amount=float("nan"))
    )
    result = assess(broken, product=PRODUCT, today=TODAY)
    assert [v.code for v in result.violations] == ["loan.amount.not_whole_cents"]
