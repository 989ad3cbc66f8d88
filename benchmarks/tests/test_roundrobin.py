"""How the round-robin turns rounds of measurements into the issue's ratios."""

from __future__ import annotations

from benchmarks.harness.roundrobin import Measured, median_by_target, round_ratios, table


def measured(target: str, round_no: int, stored: float, **cpu: float) -> Measured:
    return Measured(target, round_no, stored, stored, 5.0, 0, dict(cpu))


def test_ratios_pair_each_round_with_its_own_baseline() -> None:
    # The machine slowed between rounds: each round's ratio still compares like with like.
    runs = [measured("naive", 1, 1000), measured("loanflow-production", 1, 4000),
            measured("naive", 2, 500), measured("loanflow-production", 2, 2100)]

    assert round_ratios(runs, "loanflow-production", "naive") == [4.0, 4.2]


def test_a_round_without_the_baseline_gives_no_ratio() -> None:
    runs = [measured("loanflow-production", 1, 4000), measured("naive", 2, 500)]

    assert round_ratios(runs, "loanflow-production", "naive") == []


def test_each_target_is_represented_by_its_median_round() -> None:
    runs = [measured("naive", r, stored) for r, stored in ((1, 900), (2, 300), (3, 600))]

    assert median_by_target(runs)["naive"].stored_per_s == 600


def test_the_table_shows_cpu_per_group_and_a_dash_for_groups_a_target_lacks() -> None:
    [header, _, row] = table([measured("naive", 1, 800, api=1000.4, postgres=300, redis=90)])

    assert "worker" in header
    assert row == "| 1 | naive | 800 | 800 | 5.0 | 0 | 1,000 | — | 300 | 90 | 1,390 |"
