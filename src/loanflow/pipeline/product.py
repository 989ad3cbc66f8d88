"""The product configuration: APR by tier, scorecard tables, route thresholds.

It lives in `product.toml` (each key documented there) and is loaded into frozen
Structs once at start; the processor passes the `Product` to `assess()`. Its
`version` is stored with every result.
"""

from __future__ import annotations

import importlib.resources
import tomllib
from itertools import pairwise
from pathlib import Path
from typing import Annotated, Literal

import msgspec

Tier = Literal["A", "B", "C", "D", "E"]
TIERS: tuple[Tier, ...] = ("A", "B", "C", "D", "E")

Bps = Annotated[int, msgspec.Meta(ge=0, le=1_000_000)]

_DEFAULT_RESOURCE = "product.toml"


class ProductConfigError(ValueError):
    """The product configuration is malformed or inconsistent."""


class Band(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Points for values up to `upto` (inclusive); no `upto` = everything above."""

    points: int
    upto: int | None = None


class AprByTier(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    A: Bps
    B: Bps
    C: Bps
    D: Bps
    E: Bps

    def for_tier(self, tier: Tier) -> int:
        """The tier's APR in basis points."""
        apr: int = getattr(self, tier)
        return apr


class TierMinScore(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Lowest score of each tier; anything below `D` is tier E."""

    A: int
    B: int
    C: int
    D: int


class EmploymentPoints(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    employed: int
    self_employed: int
    unemployed: int
    retired: int
    student: int
    other: int


class Factors(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    dti_bps: tuple[Band, ...]
    pti_bps: tuple[Band, ...]
    annual_income_dollars: tuple[Band, ...]
    loan_to_income_bps: tuple[Band, ...]
    age_years: tuple[Band, ...]
    employment_status: EmploymentPoints


class Scorecard(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    base_points: int
    scoring_apr_bps: Bps
    tier_min_score: TierMinScore
    factors: Factors


class RouteConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    fast_track_tiers: frozenset[Tier]
    fast_track_max_dti_bps: Bps
    fast_track_max_amount_dollars: Annotated[int, msgspec.Meta(ge=0)]
    decline_tiers: frozenset[Tier]
    decline_above_dti_bps: Bps


class Product(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    version: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    apr_bps: AprByTier
    scorecard: Scorecard
    route: RouteConfig


def load_product(path: Path | None = None) -> Product:
    """Load and check a product file; None loads the packaged `product.toml`.

    Raises ProductConfigError naming the offending key.
    """
    if path is None:
        resource = importlib.resources.files(__package__ or "loanflow.pipeline")
        text = resource.joinpath(_DEFAULT_RESOURCE).read_text(encoding="utf-8")
        origin = f"packaged {_DEFAULT_RESOURCE}"
    else:
        text = path.read_text(encoding="utf-8")
        origin = str(path)
    try:
        raw = tomllib.loads(text)
        product = msgspec.convert(raw, Product)
    except (tomllib.TOMLDecodeError, msgspec.ValidationError) as exc:
        raise ProductConfigError(f"{origin}: {exc}") from exc
    _check_consistency(product, origin)
    return product


def _check_consistency(product: Product, origin: str) -> None:
    """What the types cannot say: orderings that keep tiers and bands meaningful."""
    aprs = [product.apr_bps.for_tier(t) for t in TIERS]
    if aprs != sorted(aprs):
        raise ProductConfigError(
            f"{origin}: apr_bps: expected non-decreasing from A to E, got {aprs}"
        )
    mins = product.scorecard.tier_min_score
    floors = [mins.A, mins.B, mins.C, mins.D]
    if any(a <= b for a, b in pairwise(floors)):
        raise ProductConfigError(
            f"{origin}: scorecard.tier_min_score: expected strictly decreasing "
            f"from A to D, got {floors}"
        )
    factors = product.scorecard.factors
    tables = {
        "dti_bps": factors.dti_bps,
        "pti_bps": factors.pti_bps,
        "annual_income_dollars": factors.annual_income_dollars,
        "loan_to_income_bps": factors.loan_to_income_bps,
        "age_years": factors.age_years,
    }
    for name, bands in tables.items():
        _check_bands(bands, f"{origin}: scorecard.factors.{name}")
    age_points = [band.points for band in factors.age_years]
    if age_points != sorted(age_points):
        # Regulation B: older applicants must never score fewer points for age.
        raise ProductConfigError(
            f"{origin}: scorecard.factors.age_years: expected points non-decreasing "
            f"with age, got {age_points}"
        )


def _check_bands(bands: tuple[Band, ...], where: str) -> None:
    if not bands:
        raise ProductConfigError(f"{where}: expected at least one band, got none")
    if bands[-1].upto is not None:
        raise ProductConfigError(
            f"{where}: expected the last band without `upto`, got upto={bands[-1].upto}"
        )
    bounds = [band.upto for band in bands[:-1]]
    if any(bound is None for bound in bounds):
        raise ProductConfigError(f"{where}: expected `upto` on every band but the last")
    ints = [bound for bound in bounds if bound is not None]
    if any(a >= b for a, b in pairwise(ints)):
        raise ProductConfigError(f"{where}: expected `upto` strictly ascending, got {ints}")
