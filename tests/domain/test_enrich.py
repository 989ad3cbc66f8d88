"""Enrichment, scorecard and product configuration: figures, tiers, routes, trace."""

from __future__ import annotations

import copy
import datetime as dt
import random
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import numpy_financial as npf
import pytest

from loanflow.domain.enrich import (
    FLAG_CITY_NOT_IN_ZIP,
    Enrichment,
    enrich,
    monthly_payment_cents,
    ratio_bps,
)
from loanflow.domain.product import TIERS, Band, Product, ProductConfigError, load_product
from loanflow.domain.scorecard import band_points, tier_for_score
from loanflow.loadgen.synthetic import generate
from loanflow.models import Application
from tests.conftest import sample_application

TODAY = dt.date(2026, 11, 25)
PRODUCT = load_product()
PACKAGED_TOML = (
    Path(__file__).parents[2] / "src" / "loanflow" / "domain" / "product.toml"
).read_text()

#: The DESIGN example without its optional fields.
BASE: dict[str, Any] = sample_application(
    applicant__employer_name=None, submitted_at=None, external_id=None
)


def enriched(product: Product = PRODUCT, flags: tuple[str, ...] = (), **changes: Any) -> Enrichment:
    """Enrich the example application with dotted-path changes (applicant__x=...)."""
    data = copy.deepcopy(BASE)
    for path, value in changes.items():
        *parents, leaf = path.split("__")
        node = data
        for key in parents:
            node = node[key]
        node[leaf] = value
    app = msgspec.convert(data, Application)
    return enrich(app, product=product, today=TODAY, flags=flags)


def npf_payment_cents(amount_cents: int, apr_bps: int, term_months: int) -> int:
    payment = -npf.pmt(apr_bps / 10_000 / 12, term_months, amount_cents / 100)
    return round(float(payment) * 100)


# -- payment arithmetic ------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount_cents", "apr_bps", "term_months"),
    [
        (1_500_000, 799, 36),
        (100_000, 2999, 12),
        (10_000_000, 599, 84),
        (1_234_567, 1549, 60),
        (500_000, 1, 24),
        (9_999_999, 3599, 72),
        (250_050, 2199, 48),
    ],
)
def test_monthly_payment_equals_numpy_financial_pmt_to_the_cent(
    amount_cents: int, apr_bps: int, term_months: int
) -> None:
    expected = npf_payment_cents(amount_cents, apr_bps, term_months)
    assert monthly_payment_cents(amount_cents, apr_bps, term_months) == expected


def test_monthly_payment_matches_numpy_financial_across_random_loans() -> None:
    rng = random.Random(7)
    for _ in range(500):
        amount, apr = rng.randrange(100_000, 10_000_001), rng.randrange(1, 4000)
        term = rng.choice((12, 24, 36, 48, 60, 72, 84))
        assert monthly_payment_cents(amount, apr, term) == npf_payment_cents(amount, apr, term)


@pytest.mark.slow  # ten thousand loans: seconds
def test_monthly_payment_matches_numpy_financial_on_10_000_generated_loans() -> None:
    # Given 10,000 realistic applications, priced by the whole enrichment (both the
    # scoring payment at the stress APR and the payment at the tier's APR)
    rng = random.Random(10_000)
    now = dt.datetime(2026, 11, 25, 12, tzinfo=dt.UTC)
    loans: list[tuple[int, int, int, int]] = []
    for _ in range(10_000):
        app = msgspec.convert(generate(rng, now=now), Application)
        result = enrich(app, product=PRODUCT, today=TODAY)
        figures = {entry.name: entry for entry in result.trace}
        scoring = figures["scoring_monthly_payment_cents"]
        loans.append((result.loan_amount_cents, result.apr_bps, app.loan.term_months,
                      result.monthly_payment_cents))
        loans.append((result.loan_amount_cents, PRODUCT.scorecard.scoring_apr_bps,
                      app.loan.term_months, int(scoring.value or 0)))

    # Then every payment equals numpy-financial's pmt, rounded to the cent
    amount, apr, term, _ = (np.array(column) for column in zip(*loans, strict=True))
    expected = np.rint(-npf.pmt(apr / 10_000 / 12, term, amount / 100) * 100).astype(np.int64)
    mismatches = [loan for loan, want in zip(loans, expected, strict=True) if loan[3] != want]
    assert mismatches == []
    tier_aprs = {PRODUCT.apr_bps.for_tier(tier) for tier in TIERS}
    assert {row[1] for row in loans} == tier_aprs | {PRODUCT.scorecard.scoring_apr_bps}


def test_interest_free_payment_is_the_principal_spread_evenly() -> None:
    assert monthly_payment_cents(1_200_000, 0, 12) == 100_000


def test_ratio_without_a_base_is_none_not_a_division_error() -> None:
    assert ratio_bps(50_000, 0) is None


def test_ratio_rounds_half_up_to_the_basis_point() -> None:
    assert ratio_bps(1, 20_000) == 1  # 0.5 bp


# -- figures -----------------------------------------------------------------------


def test_age_is_in_completed_years() -> None:
    assert enriched().age_years == 40


def test_zip_gives_city_county_and_time_zone() -> None:
    e = enriched()
    assert (e.city, e.county, e.time_zone) == (
        "San Francisco",
        "San Francisco County",
        "America/Los_Angeles",
    )


def test_monthly_income_is_a_twelfth_of_annual_income_in_cents() -> None:
    assert enriched(applicant__annual_income=100_000.00).monthly_income_cents == 833_333


def test_apr_is_the_product_rate_for_the_risk_tier() -> None:
    e = enriched()
    assert e.apr_bps == PRODUCT.apr_bps.for_tier(e.risk_tier)


def test_monthly_payment_uses_the_tier_apr() -> None:
    e = enriched()
    assert e.monthly_payment_cents == monthly_payment_cents(1_500_000, e.apr_bps, 36)
    assert e.total_interest_cents == e.monthly_payment_cents * 36 - 1_500_000


def test_debt_to_income_includes_debts_housing_and_the_new_payment() -> None:
    e = enriched()
    obligations = 85_000 + 210_000 + e.monthly_payment_cents
    assert e.dti_bps == round(obligations * 10_000 / 800_000)


def test_payment_to_income_is_the_new_payment_over_monthly_income() -> None:
    e = enriched()
    assert e.pti_bps == round(e.monthly_payment_cents * 10_000 / 800_000)


# -- scorecard ---------------------------------------------------------------------


def test_score_is_the_sum_of_its_reasons() -> None:
    e = enriched()
    assert e.score == sum(reason.points for reason in e.score_reasons)
    assert [r.name for r in e.score_reasons] == [
        "base_points",
        "dti_bps",
        "pti_bps",
        "annual_income_dollars",
        "employment_status",
        "loan_to_income_bps",
        "age_years",
    ]


def test_band_upper_bound_is_inclusive() -> None:
    bands = (Band(upto=10, points=5), Band(points=1))
    assert (band_points(bands, 10), band_points(bands, 11)) == (5, 1)


def test_ratio_without_a_value_scores_the_last_band() -> None:
    bands = (Band(upto=10, points=5), Band(points=1))
    assert band_points(bands, None) == 1


@pytest.mark.parametrize(
    ("score", "tier"), [(730, "A"), (729, "B"), (580, "C"), (450, "D"), (0, "E")]
)
def test_tier_is_the_best_whose_floor_the_score_reaches(score: int, tier: str) -> None:
    assert tier_for_score(score, PRODUCT.scorecard.tier_min_score) == tier


def test_higher_income_never_scores_lower() -> None:
    low = enriched(applicant__annual_income=40_000.0)
    high = enriched(applicant__annual_income=200_000.0)
    assert high.score > low.score


# -- route -------------------------------------------------------------------------


def test_strong_application_is_fast_tracked() -> None:
    e = enriched(
        applicant__annual_income=150_000.0,
        applicant__monthly_debt_payments=0.0,
        applicant__monthly_housing_payment=1500.0,
        loan__amount=10_000.0,
    )
    assert (e.risk_tier, e.route) == ("A", "fast_track")
    assert [r.code for r in e.route_reasons] == ["route.fast_track.eligible"]


def test_debt_to_income_above_60_percent_recommends_decline() -> None:
    e = enriched(applicant__monthly_housing_payment=4000.0)
    assert e.route == "decline_recommended"
    assert "route.dti.above_decline" in [r.code for r in e.route_reasons]


def test_tier_e_recommends_decline() -> None:
    e = enriched(
        applicant__annual_income=12_000.0,
        applicant__employment_status="unemployed",
        applicant__monthly_housing_payment=0.0,
        applicant__monthly_debt_payments=0.0,
        applicant__date_of_birth="2005-01-01",
        loan__amount=20_000.0,
        loan__term_months=84,
    )
    assert (e.risk_tier, e.route) == ("E", "decline_recommended")
    assert "route.tier.declined" in [r.code for r in e.route_reasons]


def test_amount_above_the_fast_track_limit_needs_review() -> None:
    e = enriched(
        applicant__annual_income=900_000.0,
        applicant__monthly_debt_payments=0.0,
        loan__amount=60_000.0,
    )
    assert e.route == "manual_review"
    assert [r.code for r in e.route_reasons] == ["route.amount.above_fast_track"]


def test_co_signed_applicant_without_income_has_no_ratios_and_needs_review() -> None:
    e = enriched(
        applicant__annual_income=0.0,
        applicant__employment_status="retired",
        applicant__co_signer=True,
        applicant__monthly_housing_payment=0.0,
        applicant__monthly_debt_payments=0.0,
        loan__amount=2_000.0,
    )
    assert (e.dti_bps, e.pti_bps, e.loan_to_income_bps) == (None, None, None)
    assert e.route != "fast_track"


def test_a_caller_flag_keeps_a_strong_application_off_the_fast_track() -> None:
    e = enriched(
        flags=("ssn.seen_within_24h",),
        applicant__annual_income=150_000.0,
        applicant__monthly_debt_payments=0.0,
        loan__amount=10_000.0,
    )
    assert e.route == "manual_review"
    assert [r.code for r in e.route_reasons] == ["route.flag.ssn.seen_within_24h"]


def test_city_that_usps_does_not_use_for_the_zip_is_flagged() -> None:
    assert enriched(applicant__address__city="Oakland").flags == (FLAG_CITY_NOT_IN_ZIP,)


def test_city_spelled_differently_is_not_flagged() -> None:
    assert enriched(applicant__address__city="SAN  FRANCISCO").flags == ()


# -- decision trace ----------------------------------------------------------------


def test_trace_records_every_computed_figure_with_its_value() -> None:
    e = enriched()
    traced = {entry.name: entry.value for entry in e.trace}
    for name in (
        "age_years",
        "city",
        "county",
        "time_zone",
        "monthly_income_cents",
        "apr_bps",
        "monthly_payment_cents",
        "total_repayment_cents",
        "total_interest_cents",
        "dti_bps",
        "pti_bps",
        "loan_to_income_bps",
        "score",
        "route",
    ):
        assert traced[name] == getattr(e, name)
    assert traced["risk_tier"] == e.risk_tier


def test_trace_names_the_inputs_of_the_monthly_payment() -> None:
    e = enriched()
    entry = next(t for t in e.trace if t.name == "monthly_payment_cents")
    assert entry.inputs == {"loan_amount_cents": 1_500_000, "apr_bps": e.apr_bps, "term_months": 36}


def test_trace_never_shows_the_date_of_birth() -> None:
    encoded = msgspec.json.encode(enriched())
    assert b"1985-12-10" not in encoded and b"1985" not in encoded


# -- product configuration ---------------------------------------------------------


def test_packaged_product_loads_with_a_version() -> None:
    assert PRODUCT.version and PRODUCT.apr_bps.for_tier("A") < PRODUCT.apr_bps.for_tier("E")


def test_product_file_loads_from_a_path(tmp_path: Path) -> None:
    path = tmp_path / "product.toml"
    path.write_text(PACKAGED_TOML.replace('version = "', 'version = "test-'))
    assert load_product(path).version.startswith("test-")


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("A = 799", "A = 3999"),  # tier A dearer than E
        ("A = 730", "A = 400"),  # tier floors out of order
        ("base_points = 300", "base_points = 300\nbonus = 1"),  # unknown key
        ("{ points = 0 },                 # above 50 %", ""),  # last band bounded
        ("{ upto = 24, points = 10 }", "{ upto = 24, points = 99 }"),  # Reg B
        ('version = "', 'version = 1 # "'),  # wrong type
    ],
)
def test_inconsistent_product_file_is_refused(tmp_path: Path, old: str, new: str) -> None:
    assert old in PACKAGED_TOML
    path = tmp_path / "product.toml"
    path.write_text(PACKAGED_TOML.replace(old, new, 1))
    with pytest.raises(ProductConfigError):
        load_product(path)
