"""Batches answered out of order are confirmed in order: the state never skips a gap."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from loanflow.importer.batches import Batch
from loanflow.importer.readers import Record
from loanflow.importer.report import Report
from loanflow.importer.run import ImportSpec, _Confirmer
from loanflow.importer.sender import ItemAnswer
from loanflow.importer.state import ResumeState, load
from tests.importer.conftest import report_of


def _batch(seq: int) -> Batch:
    """Two lines: one sendable, one rejected here; 10 bytes each."""
    line = 2 + 2 * seq
    return Batch(seq, [
        Record(line, f"k{line}", b"{}", [], 10 * line - 10, line + 1),
        Record(line + 1, None, None, [{"field": "$", "message": "bad"}], 10 * line, line + 2),
    ])


@pytest.fixture
def confirmer(tmp_path: Path) -> Iterator[_Confirmer]:
    spec = ImportSpec(path=tmp_path / "f.csv", format="csv", url="http://x", key="k",
                      report_path=tmp_path / "r.ndjson", state_path=tmp_path / "s.json")
    state = ResumeState(file="f.csv", file_id="id", format="csv")
    report = Report(spec.report_path, keep_bytes=0)
    yield _Confirmer(spec, state, report)
    report.close()


def test_a_later_batch_answered_first_waits_for_the_earlier_one(
    confirmer: _Confirmer, tmp_path: Path
) -> None:
    queued = [ItemAnswer(index=0, status="queued")]

    confirmer.answered(_batch(1), queued)
    confirmer.save()
    before = load(tmp_path / "s.json")
    assert before is not None and before.next_line == 1
    assert report_of(tmp_path / "r.ndjson") == []

    confirmer.answered(_batch(0), [ItemAnswer(index=0, status="queued", replayed=True)])
    confirmer.save()
    state = load(tmp_path / "s.json")
    assert state is not None
    assert (state.next_line, state.offset) == (6, 40)
    assert (state.accepted, state.replayed, state.rejected) == (1, 1, 2)
    assert [e["line"] for e in report_of(tmp_path / "r.ndjson")] == [3, 5]
    assert state.report_bytes == (tmp_path / "r.ndjson").stat().st_size


def test_senders_wait_rather_than_run_far_ahead_of_an_unanswered_batch(
    confirmer: _Confirmer,
) -> None:
    async def scenario() -> tuple[bool, bool]:
        await confirmer.turn(3, window=4)  # within the window: no wait
        ahead = asyncio.ensure_future(confirmer.turn(4, window=4))
        await asyncio.sleep(0)
        waited = not ahead.done()
        confirmer.answered(_batch(0), [ItemAnswer(index=0, status="queued")])
        await asyncio.wait_for(ahead, 1)
        return waited, ahead.done()

    assert asyncio.run(scenario()) == (True, True)
