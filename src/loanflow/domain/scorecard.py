"""A transparent points scorecard: each factor's value earns points from a table.

The score is the plain sum of the factors' points (the first factor is the base),
so the reasons explain the tier completely: an underwriter can add them up.
The tables and tier floors live in the product configuration (`product.toml`).
"""

from __future__ import annotations

import msgspec

from loanflow.domain.product import Band, Scorecard, Tier, TierMinScore
from loanflow.models import EmploymentStatus


class ScoreInputs(msgspec.Struct, frozen=True, kw_only=True):
    """The figures the scorecard looks at; a ratio is None when income is 0."""

    dti_bps: int | None
    pti_bps: int | None
    annual_income_cents: int
    loan_to_income_bps: int | None
    employment_status: EmploymentStatus
    age_years: int


class ScoreFactor(msgspec.Struct, frozen=True, kw_only=True):
    """One reason: the factor, the value it was scored on, the points it earned."""

    name: str
    value: int | str | None
    points: int


class ScoreResult(msgspec.Struct, frozen=True, kw_only=True):
    score: int
    tier: Tier
    #: Sum of their points == score.
    factors: tuple[ScoreFactor, ...]


def band_points(bands: tuple[Band, ...], value: int | None) -> int:
    """Points of the first band with `upto` >= value; None takes the last band."""
    if value is not None:
        for band in bands:
            if band.upto is None or value <= band.upto:
                return band.points
    # The open-ended last band: the worst for a ratio without a value (no income).
    return bands[-1].points


def tier_for_score(score: int, floors: TierMinScore) -> Tier:
    """The best tier whose floor the score reaches; E below D's floor."""
    if score >= floors.A:
        return "A"
    if score >= floors.B:
        return "B"
    if score >= floors.C:
        return "C"
    if score >= floors.D:
        return "D"
    return "E"


def score_application(inputs: ScoreInputs, card: Scorecard) -> ScoreResult:
    """Score the inputs with the product's scorecard; the tier and every reason."""
    tables = card.factors
    income_dollars = inputs.annual_income_cents // 100
    dti = band_points(tables.dti_bps, inputs.dti_bps)
    pti = band_points(tables.pti_bps, inputs.pti_bps)
    income = band_points(tables.annual_income_dollars, income_dollars)
    employment: int = getattr(tables.employment_status, inputs.employment_status)
    lti = band_points(tables.loan_to_income_bps, inputs.loan_to_income_bps)
    age = band_points(tables.age_years, inputs.age_years)
    factors = (
        ScoreFactor(name="base_points", value=None, points=card.base_points),
        ScoreFactor(name="dti_bps", value=inputs.dti_bps, points=dti),
        ScoreFactor(name="pti_bps", value=inputs.pti_bps, points=pti),
        ScoreFactor(name="annual_income_dollars", value=income_dollars, points=income),
        ScoreFactor(name="employment_status", value=inputs.employment_status, points=employment),
        ScoreFactor(name="loan_to_income_bps", value=inputs.loan_to_income_bps, points=lti),
        ScoreFactor(name="age_years", value=inputs.age_years, points=age),
    )
    # The points of `factors`, added up without a generator.
    score = card.base_points + dti + pti + income + employment + lti + age
    return ScoreResult(
        score=score, tier=tier_for_score(score, card.tier_min_score), factors=factors
    )
