"""Properties of the domain over hypothesis-drawn applications.

Two sources: applications drawn from the schema's own constraints (mostly rejected by
the rules, which is the point: rules must be total), and realistic synthetic ones with
drawn perturbations at the edges (zero and extreme incomes, huge amounts, terms 1 and
600, birthdays on the age limits), which mostly reach enrichment and the scorecard.
"""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from loanflow.domain.assess import assess
from loanflow.domain.enrich import enrich
from loanflow.domain.product import TIERS, load_product
from loanflow.domain.rules import RULE_CODES, check_application, zip_index
from loanflow.loadgen.synthetic import generate
from loanflow.models import Application

PRODUCT = load_product()
TODAY = dt.date(2026, 11, 25)
NOW = dt.datetime(2026, 11, 25, 12, tzinfo=dt.UTC)
CALLER_FLAGS = ("applicant.ssn.seen_in_last_24h",)

#: Bounded so the file runs in a few seconds; no example database in the shared tree.
FAST = settings(
    max_examples=300, deadline=None, database=None,
    suppress_health_check=[HealthCheck.too_slow],
)

_decode = msgspec.json.Decoder(Application).decode
_encode = msgspec.json.encode

# -- strategies -------------------------------------------------------------------------------

# Any character JSON can carry (lone surrogates cannot be encoded).
_chars = st.characters(exclude_categories=["Cs"])


def _text(min_size: int, max_size: int) -> st.SearchStrategy[str]:
    return st.text(_chars, min_size=min_size, max_size=max_size)


#: Dollars with at most 2 decimals within the schema's 0..1e9, edges favoured.
money = st.one_of(
    st.sampled_from([0, 1, 99_999, 100_000, 10_000_000, 10_000_001, 100_000_000_000]),
    st.integers(0, 100_000_000_000),
).map(lambda cents: cents / 100)


def _years_before(years: int, days: int = 0) -> dt.date:
    return TODAY.replace(year=TODAY.year - years) + dt.timedelta(days=days)


birthdays = st.one_of(
    st.sampled_from([
        _years_before(18),  # 18 today: admitted
        _years_before(18, 1),  # 18 tomorrow: too young
        _years_before(100),  # 100 today: admitted
        _years_before(101, 1),  # 101 tomorrow: still 100
        _years_before(101),  # 101 today: too old
        dt.date(2000, 2, 29), TODAY, TODAY + dt.timedelta(days=1),
        dt.date(1, 1, 1), dt.date(9999, 12, 31),
    ]),
    st.dates(),
)
terms = st.one_of(st.sampled_from([1, 11, 12, 84, 85, 600]), st.integers(1, 600))
statuses = st.sampled_from(
    ["employed", "self_employed", "unemployed", "retired", "student", "other"]
)
real_zips = st.sampled_from(sorted(zip_index()))
phones = st.one_of(
    st.from_regex(r"\+1 [2-9][0-9]{2} [0-9]{3} [0-9]{4}", fullmatch=True),
    _text(7, 30),
)


@st.composite
def schema_applications(draw: st.DrawFn) -> dict[str, Any]:
    """Anything the schema admits, field by field from its constraints."""
    return {
        "applicant": {
            "first_name": draw(_text(1, 100)),
            "last_name": draw(_text(1, 100)),
            "date_of_birth": draw(birthdays).isoformat(),
            "ssn": draw(st.from_regex(r"^[0-9]{3}-?[0-9]{2}-?[0-9]{4}$")),
            "email": draw(_text(3, 254)),
            "phone": draw(phones),
            "address": {
                "line1": draw(_text(1, 200)),
                "line2": draw(st.none() | _text(0, 200)),
                "city": draw(_text(1, 100)),
                "state": draw(st.from_regex(r"^[A-Z]{2}$")),
                "zip": draw(real_zips | st.from_regex(r"^[0-9]{5}(-[0-9]{4})?$")),
            },
            "employment_status": draw(statuses),
            "employer_name": draw(st.none() | _text(0, 200)),
            "annual_income": draw(money),
            "monthly_debt_payments": draw(money),
            "monthly_housing_payment": draw(money),
            "co_signer": draw(st.booleans()),
        },
        "loan": {
            "amount": draw(money),
            "term_months": draw(terms),
            "purpose": draw(st.sampled_from(["debt_consolidation", "medical", "other"])),
        },
        "channel": draw(st.sampled_from(["web", "mobile", "broker", "partner_api"])),
        "consent": {"credit_check": draw(st.booleans()), "terms_version": "2026-01"},
    }


#: What an edge application may have pushed to its edges (a few at a time, so that
#: many still pass the rules and reach enrichment).
_EDGES = ("annual_income", "monthly_debt_payments", "monthly_housing_payment", "amount",
          "term_months", "date_of_birth", "employment_status")


@st.composite
def edge_applications(draw: st.DrawFn) -> dict[str, Any]:
    """A realistic synthetic application with a few fields pushed to their edges."""
    data = generate(random.Random(draw(st.integers(0, 2**32))), now=NOW)
    applicant, loan = data["applicant"], data["loan"]
    for edge in draw(st.sets(st.sampled_from(_EDGES), max_size=3)):
        if edge == "amount":
            loan["amount"] = draw(money)
        elif edge == "term_months":
            loan["term_months"] = draw(terms)
        elif edge == "date_of_birth":
            applicant["date_of_birth"] = draw(birthdays).isoformat()
        elif edge == "employment_status":
            applicant["employment_status"] = draw(statuses)
            applicant["co_signer"] = draw(st.booleans())
        else:
            applicant[edge] = draw(money)
    return data


def decoded(data: dict[str, Any]) -> Application:
    """As the API decodes it; an example the schema refuses never reaches assess."""
    try:
        return _decode(_encode(data))
    except msgspec.ValidationError:
        assume(False)
        raise AssertionError("unreachable") from None


# -- properties ---------------------------------------------------------------------------------


def _check_assessment(app: Application) -> None:
    """assess() is total, and what it returns holds together."""
    result = assess(app, product=PRODUCT, today=TODAY, flags=CALLER_FLAGS)
    msgspec.json.encode(result)  # storable as it is
    assert {v.code for v in result.violations} <= RULE_CODES
    assert (result.outcome == "rejected") == bool(result.violations)
    if result.enrichment is None:
        assert result.outcome == "rejected"
        return
    e = result.enrichment
    assert e.score == sum(reason.points for reason in e.score_reasons)
    assert e.risk_tier in TIERS
    assert e.apr_bps == PRODUCT.apr_bps.for_tier(e.risk_tier)
    assert e.total_repayment_cents == e.monthly_payment_cents * app.loan.term_months
    assert e.total_interest_cents >= 0
    assert set(CALLER_FLAGS) <= set(e.flags)
    assert e.route != "fast_track"  # a flag always keeps it off the fast track


@pytest.mark.slow  # many examples: seconds
@settings(FAST, max_examples=150)  # long random texts make these slower to draw
@given(schema_applications())
def test_assess_never_raises_on_any_schema_valid_application(data: dict[str, Any]) -> None:
    _check_assessment(decoded(data))


@FAST
@given(edge_applications())
def test_assess_never_raises_on_applications_at_the_edges(data: dict[str, Any]) -> None:
    _check_assessment(decoded(data))


@settings(FAST, max_examples=200)
@given(edge_applications())
def test_enrichment_is_deterministic(data: dict[str, Any]) -> None:
    app = decoded(data)
    assume(not check_application(app, today=TODAY))  # enrichment runs on valid ones only
    again = decoded(msgspec.json.decode(_encode(app)))  # an equal copy, not the same object

    first = enrich(app, product=PRODUCT, today=TODAY)
    second = enrich(again, product=PRODUCT, today=TODAY)

    assert _encode(first) == _encode(second)


def test_edge_applications_reach_enrichment_often_enough() -> None:
    # Guards the strategy: a property that only ever sees rejections proves little.
    outcomes: list[str] = []

    @settings(max_examples=200, deadline=None, database=None, derandomize=True)
    @given(edge_applications())
    def collect(data: dict[str, Any]) -> None:
        outcomes.append(assess(decoded(data), product=PRODUCT, today=TODAY).outcome)

    collect()
    assert outcomes.count("stored") > len(outcomes) // 4
    assert outcomes.count("rejected") > 0
