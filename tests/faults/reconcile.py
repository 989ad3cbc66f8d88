"""Count, after the fault: what the clients were promised against what the store holds.

Jepsen-style bookkeeping: the clients' ledger (every 202 and its id) is set
against the store's rows and the broker's leftovers. Every figure but
`acknowledged` and `stored` must be zero.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from tests.faults.driver import LoadDriver
from tests.faults.state import DepthMonitor, Snapshot

#: The status every valid synthetic application ends in (all pass the business rules).
VALID_STATUS = "stored"
POISON_STATUS = "dead_lettered"


@dataclass(frozen=True)
class Outcome:
    fault: str
    #: Idempotency keys answered 202 (each promised one application).
    acknowledged: int
    #: Of those, the ones whose promised id is in the store.
    stored: int
    #: Promised, yet neither in the store nor still held by the broker.
    lost: int
    #: Extra rows for one key, or two different ids answered for one key.
    doubled: int
    #: Rows no 202 promised (a key refused or never answered, or another id).
    phantom: int
    #: Promised and still queued or in processing after the drain deadline.
    stuck: int
    #: Keys the clients never got a definite answer for (settle deadline passed).
    unresolved: int
    #: Rows in the wrong final status (a valid one not stored, a poison one not
    #: dead-lettered, or a dead-lettered row without its dead letter).
    misfiled: int
    #: From the end of the fault until intake answers 202 again and the backlog is drained.
    recovery_s: float
    answers: Counter[int]
    shed: int

    def line(self) -> str:
        answers = " ".join(f"{k or 'none'}:{v}" for k, v in sorted(self.answers.items()))
        return (
            f"{self.fault}, acknowledged={self.acknowledged}, stored={self.stored},"
            f" lost={self.lost}, doubled={self.doubled}, stuck={self.stuck},"
            f" recovery_s={self.recovery_s:.1f}, phantom={self.phantom},"
            f" unresolved={self.unresolved}, misfiled={self.misfiled},"
            f" answers=[{answers}], shed={self.shed}"
        )

    def assert_clean(self) -> None:
        bad = {name: getattr(self, name) for name in (
            "lost", "doubled", "phantom", "stuck", "unresolved", "misfiled")}
        assert not any(bad.values()), f"{self.line()}"
        assert self.stored == self.acknowledged > 0, self.line()
        # An outage we cause is a 503 with Retry-After; a 500 means a backend error
        # escaped untranslated (still "unknown" to the client, but a bug).
        assert self.answers[500] == 0, self.line()


def reconcile(fault: str, driver: LoadDriver, snap: Snapshot, *, recovery_s: float) -> Outcome:
    subs = driver.submissions.values()
    promised = {s.key: s for s in subs if s.ids}
    rows_by_key: dict[str, list[tuple[str, str]]] = {}
    for app_id, key, status in snap.rows:
        rows_by_key.setdefault(key, []).append((app_id, status))
    stored_ids = snap.stored_ids

    stored = lost = stuck = doubled = misfiled = 0
    for sub in promised.values():
        doubled += len(sub.ids) - 1  # the clients heard two ids for one key
        (app_id, *_) = sorted(sub.ids)
        if app_id in stored_ids:
            stored += 1
        elif app_id in snap.held:
            stuck += 1
        else:
            lost += 1
    phantom = 0
    for key, rows in rows_by_key.items():
        doubled += len(rows) - 1
        owner = promised.get(key)
        for app_id, status in rows:
            if owner is None or app_id not in owner.ids:
                phantom += 1
                continue
            expected = POISON_STATUS if owner.poison else VALID_STATUS
            if status != expected or (owner.poison and app_id not in snap.dead_letters):
                misfiled += 1
    return Outcome(
        fault=fault,
        acknowledged=len(promised),
        stored=stored,
        lost=lost,
        doubled=doubled,
        phantom=phantom,
        stuck=stuck,
        unresolved=len(driver.unresolved()),
        misfiled=misfiled,
        recovery_s=recovery_s,
        answers=driver.statuses(),
        shed=driver.shed,
    )


def recovery_s(driver: LoadDriver, monitor: DepthMonitor, healed_at: float, *,
               normal_depth: int) -> float:
    """Seconds from `healed_at` until a submission sent after it was answered 202 and then
    the broker's depth was back to `normal_depth` or less (the fault's backlog drained)."""
    accepted = [a.answered_at for a in list(driver.answers)
                if a.status == 202 and a.sent_at >= healed_at]
    if not accepted:
        return float("inf")
    intake_at = min(accepted)
    drained = [t for t, depth in list(monitor.samples)
               if t >= intake_at and depth is not None and depth <= normal_depth]
    return (min(drained) if drained else float("inf")) - healed_at
