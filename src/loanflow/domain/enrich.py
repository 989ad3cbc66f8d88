"""Enrichment: the figures an underwriter needs, each traced to its inputs.

Runs only on applications that passed the rules (`rules.check_application`).
All money is integer cents and all ratios integer basis points (1 bp = 0.01 %),
rounded half up, so results are exact and repeatable across machines.

Pricing and scoring depend on each other (the APR follows from the tier, and
affordability feeds the score), so the score uses the payment at the product's
fixed `scoring_apr_bps`; the priced payment then drives the reported DTI/PTI and
the route.
"""

from __future__ import annotations

import datetime as dt
import functools
import re

import msgspec

from loanflow.domain.flags import FLAG_CITY_NOT_IN_ZIP as FLAG_CITY_NOT_IN_ZIP
from loanflow.domain.product import Product, Tier
from loanflow.domain.route import Reason, Route, recommend_route
from loanflow.domain.rules import ZipInfo, age_in_years, cents_or_none, lookup_zip
from loanflow.domain.scorecard import ScoreFactor, ScoreInputs, score_application
from loanflow.domain.trace import TraceEntry
from loanflow.models import Application

_BPS = 10_000
_NOT_ALNUM = re.compile(r"[^0-9a-z]+")


class Enrichment(msgspec.Struct, frozen=True, kw_only=True):
    age_years: int
    city: str
    county: str | None
    time_zone: str | None
    annual_income_cents: int
    monthly_income_cents: int
    loan_amount_cents: int
    apr_bps: int
    monthly_payment_cents: int
    total_repayment_cents: int
    total_interest_cents: int
    #: Ratios are None when the monthly income is 0 (co-signed retiree or student).
    dti_bps: int | None
    pti_bps: int | None
    loan_to_income_bps: int | None
    score: int
    risk_tier: Tier
    score_reasons: tuple[ScoreFactor, ...]
    route: Route
    route_reasons: tuple[Reason, ...]
    #: Review flags: this stage's own plus those the caller passed in.
    flags: tuple[str, ...]
    trace: tuple[TraceEntry, ...]


def _div_half_up(numerator: int, denominator: int) -> int:
    """numerator / denominator rounded half up, for non-negative integers."""
    return (2 * numerator + denominator) // (2 * denominator)


def ratio_bps(part: int, whole: int) -> int | None:
    """part / whole in basis points, rounded half up; None when whole is 0."""
    if whole <= 0:
        return None
    return _div_half_up(part * _BPS, whole)


def monthly_payment_cents(principal_cents: int, apr_bps: int, term_months: int) -> int:
    """The level monthly payment of an amortized loan, rounded half up to the cent.

    The annuity formula P·r / (1 - (1+r)^-n) with r = apr/12, computed exactly in
    integers: with r = a/b (a = apr_bps, b = 12 · 10,000) it is
    P·a·(a+b)^n / (b·((a+b)^n - b^n)).
    """
    if term_months <= 0:
        raise ValueError(f"expected term_months > 0, got {term_months}")
    if apr_bps == 0:
        return _div_half_up(principal_cents, term_months)
    numerator_per_cent, denominator = _annuity_factors(apr_bps, term_months)
    # _div_half_up(principal_cents * a·(a+b)^n, denominator), with the 2x folded in.
    return (principal_cents * numerator_per_cent + denominator) // (2 * denominator)


@functools.lru_cache(maxsize=1024)
def _annuity_factors(apr_bps: int, term_months: int) -> tuple[int, int]:
    """2·a·(a+b)^n and b·((a+b)^n - b^n) of monthly_payment_cents, per APR and term.

    The powers are large integers: they are computed once per (APR, term) pair (a
    product has a few dozen), not once per application.
    """
    a, b = apr_bps, 12 * _BPS
    growth = (a + b) ** term_months
    return 2 * a * growth, b * (growth - b**term_months)


def _normal_city(name: str) -> str:
    return _NOT_ALNUM.sub("", name.casefold())


def address_flags(application: Application, info: ZipInfo) -> tuple[str, ...]:
    """Review flags from the address: a city USPS does not use for the ZIP."""
    city = _normal_city(application.applicant.address.city)
    known = _KNOWN_CITIES.get(info.zip5)
    if known is None:  # once per ZIP: about 42,000 of them at most
        known = _KNOWN_CITIES[info.zip5] = frozenset(
            {_normal_city(info.city), *(_normal_city(c) for c in info.acceptable_cities)})
    return () if city in known else (FLAG_CITY_NOT_IN_ZIP,)


#: ZIP -> the normalised city names USPS accepts for it.
_KNOWN_CITIES: dict[str, frozenset[str]] = {}


def _require_cents(dollars: float, field: str) -> int:
    cents = cents_or_none(dollars)
    if cents is None:
        raise ValueError(f"expected whole cents in {field}; run the rules before enrich()")
    return cents


class _Obligations(msgspec.Struct, frozen=True):
    """The applicant's monthly figures, in cents, that affordability is judged on."""

    income: int
    debts: int
    housing: int


def _affordability(
    trace: list[TraceEntry],
    *,
    prefix: str,
    amount: int,
    apr: tuple[str, int],
    term_months: int,
    monthly: _Obligations,
) -> tuple[int, int | None, int | None]:
    """The payment at an APR, and the DTI and PTI it leads to, all traced."""
    apr_name, apr_bps = apr
    payment_name, dti_name, pti_name = _affordability_names(prefix)
    payment = monthly_payment_cents(amount, apr_bps, term_months)
    dti = ratio_bps(monthly.debts + monthly.housing + payment, monthly.income)
    pti = ratio_bps(payment, monthly.income)
    trace += (
        TraceEntry(
            name=payment_name,
            value=payment,
            inputs={"loan_amount_cents": amount, apr_name: apr_bps, "term_months": term_months},
        ),
        TraceEntry(
            name=dti_name,
            value=dti,
            inputs={
                "monthly_debt_payments_cents": monthly.debts,
                "monthly_housing_payment_cents": monthly.housing,
                payment_name: payment,
                "monthly_income_cents": monthly.income,
            },
        ),
        TraceEntry(
            name=pti_name,
            value=pti,
            inputs={payment_name: payment, "monthly_income_cents": monthly.income},
        ),
    )
    return payment, dti, pti


@functools.cache
def _affordability_names(prefix: str) -> tuple[str, str, str]:
    """The trace names of the payment, DTI and PTI computed under `prefix`."""
    return f"{prefix}monthly_payment_cents", f"{prefix}dti_bps", f"{prefix}pti_bps"


def enrich(
    application: Application,
    *,
    product: Product,
    today: dt.date,
    flags: tuple[str, ...] = (),
    evidence: tuple[TraceEntry, ...] = (),
) -> Enrichment:
    """Every enrichment figure with its decision trace.

    `flags` are review flags found elsewhere (e.g. the same SSN seen in the last
    24 h, from the store); any flag keeps the application off the fast track.
    `evidence` are the trace entries of the figures behind them (velocity counts).
    Raises ValueError for an application that has not passed the rules.
    """
    applicant, loan, term = application.applicant, application.loan, application.loan.term_months
    info = lookup_zip(applicant.address.zip)
    if info is None:
        raise ValueError("expected a known ZIP; run the rules before enrich()")
    age = age_in_years(applicant.date_of_birth, today)
    annual_income = _require_cents(applicant.annual_income, "applicant.annual_income")
    amount = _require_cents(loan.amount, "loan.amount")
    monthly = _Obligations(
        income=_div_half_up(annual_income, 12),
        debts=_require_cents(applicant.monthly_debt_payments, "applicant.monthly_debt_payments"),
        housing=_require_cents(
            applicant.monthly_housing_payment, "applicant.monthly_housing_payment"
        ),
    )
    lti = ratio_bps(amount, annual_income)
    zip5 = info.zip5
    # Entries take literal dicts, not **kwargs: one dict per entry instead of two or three.
    trace = [
        # The date of birth is PII: the trace names it but never shows it.
        TraceEntry(
            name="age_years",
            value=age,
            inputs={"date_of_birth": "withheld", "as_of": today.isoformat()},
        ),
        TraceEntry(name="city", value=info.city, inputs={"zip": zip5}),
        TraceEntry(name="county", value=info.county, inputs={"zip": zip5}),
        TraceEntry(name="time_zone", value=info.time_zone, inputs={"zip": zip5}),
        TraceEntry(
            name="monthly_income_cents",
            value=monthly.income,
            inputs={"annual_income_cents": annual_income, "months": 12},
        ),
        TraceEntry(
            name="loan_to_income_bps",
            value=lti,
            inputs={"loan_amount_cents": amount, "annual_income_cents": annual_income},
        ),
    ]

    card = product.scorecard
    _, scoring_dti, scoring_pti = _affordability(
        trace,
        prefix="scoring_",
        amount=amount,
        apr=("scoring_apr_bps", card.scoring_apr_bps),
        term_months=term,
        monthly=monthly,
    )
    inputs = ScoreInputs(
        dti_bps=scoring_dti,
        pti_bps=scoring_pti,
        annual_income_cents=annual_income,
        loan_to_income_bps=lti,
        employment_status=applicant.employment_status,
        age_years=age,
    )
    result = score_application(inputs, card)
    floors = card.tier_min_score
    apr = product.apr_bps.for_tier(result.tier)
    trace += (
        TraceEntry(
            name="score", value=result.score, inputs={f.name: f.points for f in result.factors}
        ),
        TraceEntry(
            name="risk_tier",
            value=result.tier,
            inputs={
                "score": result.score,
                "min_score_A": floors.A,
                "min_score_B": floors.B,
                "min_score_C": floors.C,
                "min_score_D": floors.D,
            },
        ),
        TraceEntry(
            name="apr_bps",
            value=apr,
            inputs={"risk_tier": result.tier, "product_version": product.version},
        ),
    )

    payment, dti, pti = _affordability(
        trace, prefix="", amount=amount, apr=("apr_bps", apr), term_months=term, monthly=monthly
    )
    total = payment * term
    all_flags = address_flags(application, info) + flags
    route, reasons = recommend_route(
        tier=result.tier,
        dti_bps=dti,
        loan_amount_cents=amount,
        flags=all_flags,
        config=product.route,
    )
    trace += (
        TraceEntry(
            name="total_repayment_cents",
            value=total,
            inputs={"monthly_payment_cents": payment, "term_months": term},
        ),
        TraceEntry(
            name="total_interest_cents",
            value=total - amount,
            inputs={"total_repayment_cents": total, "loan_amount_cents": amount},
        ),
        *evidence,
        TraceEntry(
            name="route",
            value=route,
            inputs={
                "risk_tier": result.tier,
                "dti_bps": dti,
                "loan_amount_cents": amount,
                "flags": ",".join(all_flags) or None,
            },
        ),
    )
    return Enrichment(
        age_years=age,
        city=info.city,
        county=info.county,
        time_zone=info.time_zone,
        annual_income_cents=annual_income,
        monthly_income_cents=monthly.income,
        loan_amount_cents=amount,
        apr_bps=apr,
        monthly_payment_cents=payment,
        total_repayment_cents=total,
        total_interest_cents=total - amount,
        dti_bps=dti,
        pti_bps=pti,
        loan_to_income_bps=lti,
        score=result.score,
        risk_tier=result.tier,
        score_reasons=result.factors,
        route=route,
        route_reasons=reasons,
        flags=all_flags,
        trace=tuple(trace),
    )
