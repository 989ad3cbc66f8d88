"""The product configuration: APR by tier, scorecard tables, route thresholds.

It lives in `product.toml` (each key documented there) and is loaded into frozen
Structs; the processor passes the `Product` to `assess()`. Its `version` is stored
with every result. A `ProductSource` re-reads the file when it changes, so an edit
takes effect without a restart.
"""

from __future__ import annotations

import importlib.resources
import logging
import os
import time
import tomllib
from collections.abc import Callable
from itertools import pairwise
from pathlib import Path
from typing import Annotated, Literal

import msgspec

Tier = Literal["A", "B", "C", "D", "E"]
TIERS: tuple[Tier, ...] = ("A", "B", "C", "D", "E")

Bps = Annotated[int, msgspec.Meta(ge=0, le=1_000_000)]

_DEFAULT_RESOURCE = "product.toml"
#: How often a ProductSource looks at its file for a change (one stat call).
RELOAD_CHECK_INTERVAL_S = 1.0

log = logging.getLogger(__name__)


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
        resource = importlib.resources.files(__package__ or "loanflow.domain")
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


def packaged_product_path() -> Path | None:
    """The packaged `product.toml` on disk; None when installed where it cannot change."""
    resource = importlib.resources.files(__package__ or "loanflow.domain") / _DEFAULT_RESOURCE
    return resource if isinstance(resource, Path) else None


_Stamp = tuple[int, int, int]


def _stamp(path: Path) -> _Stamp | None:
    """What changes when the file is edited or replaced; None when it cannot be read."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size, st.st_ino


class ProductSource:
    """The product configuration in force, re-read when its file changes.

    `current()` looks at the file at most once per `check_interval_s` (one stat). A
    changed file is loaded and checked as at start; one that does not load, or that
    changes values but keeps its `version` (results would name a version that no
    longer says how they were priced), is refused with an error in the log, and the
    last good configuration stays in force: an edit never stops processing.
    """

    def __init__(
        self,
        product: Product,
        *,
        path: Path | None = None,
        check_interval_s: float = RELOAD_CHECK_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._product, self._path = product, path
        self._stamp = _stamp(path) if path is not None else None
        self._check_interval_s, self._clock = check_interval_s, clock
        self._next_check = clock() + check_interval_s

    @classmethod
    def from_file(
        cls,
        path: Path | None = None,
        *,
        check_interval_s: float = RELOAD_CHECK_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> ProductSource:
        """Load `path` (None: the packaged file) and watch it; raises ProductConfigError."""
        watched = path if path is not None else packaged_product_path()
        # Stamp first: an edit landing during the load is then seen at the next check.
        stamp = _stamp(watched) if watched is not None else None
        source = cls(load_product(path), path=watched,
                      check_interval_s=check_interval_s, clock=clock)
        source._stamp = stamp
        return source

    def __repr__(self) -> str:
        return f"ProductSource(version={self._product.version!r}, path={self._path})"

    def current(self) -> Product:
        """The configuration in force; never raises."""
        now = self._clock()
        if self._path is None or now < self._next_check:
            return self._product
        self._next_check = now + self._check_interval_s
        stamp = _stamp(self._path)
        if stamp == self._stamp:
            return self._product
        # Remember the stamp even when refusing: a refused edit is reported once.
        self._stamp = stamp
        self._product = self._reload(self._path, readable=stamp is not None)
        return self._product

    def _reload(self, path: Path, *, readable: bool) -> Product:
        keep = self._product
        if not readable:
            log.error("product file %s cannot be read; keeping version %s", path, keep.version)
            return keep
        try:
            product = load_product(path)
        except (OSError, ValueError) as exc:  # ProductConfigError is a ValueError
            log.error("product file refused, keeping version %s: %s", keep.version, exc)
            return keep
        if product == keep:
            return keep
        if product.version == keep.version:
            log.error(
                "product file %s refused: values changed but version is still %r;"
                " give it a new version", path, keep.version,
            )
            return keep
        log.info("product configuration %s loaded from %s (was %s)",
                 product.version, path, keep.version)
        return product
