"""The processor's entry point: rules, then enrichment, as one JSON-encodable result."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from typing import Literal

import msgspec

from loanflow.domain.enrich import Enrichment, enrich
from loanflow.domain.product import Product
from loanflow.domain.rules import RULES_VERSION, Violation, check_application
from loanflow.domain.trace import TraceEntry
from loanflow.models import Application

Outcome = Literal["stored", "rejected"]


class Assessment(msgspec.Struct, frozen=True, kw_only=True):
    """What the processor stores for one application.

    `rejected` carries every violation and no enrichment; `stored` carries the
    enrichment and no violations. Both name the rules and product versions.
    """

    outcome: Outcome
    violations: tuple[Violation, ...]
    enrichment: Enrichment | None
    rules_version: str
    product_version: str


def assess(
    application: Application,
    *,
    product: Product,
    today: dt.date,
    flags: tuple[str, ...] = (),
    evidence: tuple[TraceEntry, ...] = (),
    observe: Callable[[str, float], None] | None = None,
) -> Assessment:
    """Check and enrich one application; pure and total (never raises on a decoded one).

    `today` is the decision date (use the day the application was received, so a
    replay decides the same way); `flags` are review flags the caller found in the
    store (same SSN in 24 h, velocity), which keep the application off the fast track;
    `evidence` are the trace entries behind them (the velocity counts).
    `observe(stage, seconds)` receives the time of "validation" and "enrichment".
    """
    started = time.perf_counter()
    violations = check_application(application, today=today)
    checked = time.perf_counter()
    if observe is not None:
        observe("validation", checked - started)
    if violations:
        return Assessment(
            outcome="rejected",
            violations=violations,
            enrichment=None,
            rules_version=RULES_VERSION,
            product_version=product.version,
        )
    enrichment = enrich(application, product=product, today=today, flags=flags, evidence=evidence)
    if observe is not None:
        observe("enrichment", time.perf_counter() - checked)
    return Assessment(
        outcome="stored",
        violations=(),
        enrichment=enrichment,
        rules_version=RULES_VERSION,
        product_version=product.version,
    )
