"""The route recommendation: fast track, manual review or a recommended decline, with reasons.

Decline rules come first; an application that is not declined is fast-tracked only when
every fast-track test passes and no review flag is raised.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from loanflow.domain.flags import flag_message
from loanflow.domain.product import RouteConfig, Tier

Route = Literal["fast_track", "manual_review", "decline_recommended"]


class Reason(msgspec.Struct, frozen=True, kw_only=True):
    """Why a route was recommended: a stable code and a human message."""

    code: str
    message: str


def recommend_route(
    *,
    tier: Tier,
    dti_bps: int | None,
    loan_amount_cents: int,
    flags: tuple[str, ...],
    config: RouteConfig,
) -> tuple[Route, tuple[Reason, ...]]:
    """Decline when a decline rule holds; fast track when every fast-track test passes."""
    declines: list[Reason] = []
    if tier in config.decline_tiers:
        declines.append(
            Reason(code="route.tier.declined", message=f"risk tier {tier} is a decline tier")
        )
    if dti_bps is not None and dti_bps > config.decline_above_dti_bps:
        declines.append(
            Reason(
                code="route.dti.above_decline",
                message=f"DTI {dti_bps / 100:.2f} % is above "
                f"{config.decline_above_dti_bps / 100:.2f} %",
            )
        )
    if declines:
        return "decline_recommended", tuple(declines)

    blockers: list[Reason] = []
    if tier not in config.fast_track_tiers:
        blockers.append(
            Reason(code="route.tier.not_fast_track", message=f"risk tier {tier} needs review")
        )
    if dti_bps is None:
        blockers.append(
            Reason(
                code="route.income.none",
                message="no income: the co-signer must be assessed by an underwriter",
            )
        )
    elif dti_bps > config.fast_track_max_dti_bps:
        blockers.append(
            Reason(
                code="route.dti.above_fast_track",
                message=f"DTI {dti_bps / 100:.2f} % is above the fast-track limit "
                f"{config.fast_track_max_dti_bps / 100:.2f} %",
            )
        )
    if loan_amount_cents > config.fast_track_max_amount_dollars * 100:
        blockers.append(
            Reason(
                code="route.amount.above_fast_track",
                message=f"amount is above the fast-track limit "
                f"{config.fast_track_max_amount_dollars:,}",
            )
        )
    blockers.extend(
        Reason(code=f"route.flag.{flag}", message=flag_message(flag)) for flag in flags
    )
    if blockers:
        return "manual_review", tuple(blockers)
    return "fast_track", (
        Reason(code="route.fast_track.eligible", message="every fast-track criterion is met"),
    )
