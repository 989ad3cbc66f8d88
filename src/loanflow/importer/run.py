"""One import: the file's records, batched, sent by concurrent senders, confirmed in order.

Batches are answered out of order, but a line counts as confirmed (in the
summary, the report and the resume state) only once every batch before it was
answered too. So the state always names a point with nothing unanswered
before it, and the report lists rejected lines in line order.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

from loanflow.importer import state as resume
from loanflow.importer.batches import MAX_BATCH_ITEMS, Batch, batches
from loanflow.importer.progress import Snapshot
from loanflow.importer.readers import Format, file_identity, records
from loanflow.importer.report import Report
from loanflow.importer.sender import ImportStopped, ItemAnswer, Sender
from loanflow.importer.state import ResumeState, StateError

#: The state is saved at most this often (and at the end): a kill re-sends at most
#: this much, and the re-sent lines come back as replays.
SAVE_INTERVAL_S = 0.2
#: Batches a sender may run ahead of the oldest unanswered one, per sender: answered
#: batches wait in memory for it, so a batch retried for minutes must not let the
#: others read the whole file in the meantime.
WINDOW_PER_SENDER = 4


@dataclasses.dataclass(frozen=True, kw_only=True)
class ImportSpec:
    path: Path
    format: Format
    url: str
    key: str = dataclasses.field(repr=False)
    report_path: Path
    state_path: Path
    batch_size: int = 500
    concurrency: int = 4
    timeout_s: float = 60.0
    retry_for_s: float = 300.0
    #: Ignore a saved state and start at line 1 (same keys: nothing is duplicated).
    restart: bool = False

    def __post_init__(self) -> None:
        if not self.url.startswith(("http://", "https://")):
            raise ValueError(f"expected an http(s):// URL, got {self.url!r}")
        if not 1 <= self.batch_size <= MAX_BATCH_ITEMS:
            raise ValueError(f"expected a batch size of 1-{MAX_BATCH_ITEMS}, got"
                             f" {self.batch_size}")
        for name in ("concurrency", "timeout_s", "retry_for_s"):
            if getattr(self, name) <= 0:
                raise ValueError(f"expected {name} > 0, got {getattr(self, name)!r}")


class _Confirmer:
    """Takes answered batches in any order; confirms them in order into state and report."""

    def __init__(self, spec: ImportSpec, state: ResumeState, report: Report) -> None:
        self.spec, self.state, self.report = spec, state, report
        self._answered: dict[int, tuple[Batch, list[ItemAnswer]]] = {}
        self._next_seq = 0
        self._advanced = asyncio.Event()
        self._saved_at = 0.0
        #: Lines answered this run, in any order: the progress line's rate.
        self.answered_lines = 0

    async def turn(self, seq: int, *, window: int) -> None:
        """Returns once batch `seq` is within `window` batches of the oldest unanswered."""
        while seq >= self._next_seq + window:
            self._advanced.clear()
            await self._advanced.wait()

    def answered(self, batch: Batch, answers: list[ItemAnswer]) -> None:
        self.answered_lines += len(batch.records)
        self._answered[batch.seq] = (batch, answers)
        while self._next_seq in self._answered:
            self._confirm(*self._answered.pop(self._next_seq))
            self._next_seq += 1
            self._advanced.set()
        if time.monotonic() - self._saved_at >= SAVE_INTERVAL_S:
            self.save()

    def _confirm(self, batch: Batch, answers: list[ItemAnswer]) -> None:
        state, report = self.state, self.report
        sent = iter(answers)
        for record in batch.records:
            if record.item is None:
                report.local(record.line, record.key, record.errors)
                state.rejected += 1
                continue
            answer = next(sent)
            if answer.status == "queued":
                state.replayed += answer.replayed
                state.accepted += not answer.replayed
            else:
                report.refused(record.line, record.key, answer.type, answer.errors)
                state.rejected += 1
        state.next_line, state.offset = batch.next_line, batch.end_offset

    def save(self) -> None:
        self.report.sync()  # first: the state points into the report
        self.state.report_bytes = self.report.size_bytes
        resume.save(self.spec.state_path, self.state)
        self._saved_at = time.monotonic()


def starting_state(spec: ImportSpec, file_id: str) -> ResumeState:
    """The saved state to resume from, or a fresh one; StateError when it is for other content."""
    fresh = ResumeState(file=str(spec.path), file_id=file_id, format=spec.format)
    saved = None if spec.restart else resume.load(spec.state_path)
    if saved is None:
        return fresh
    if saved.file_id != file_id or saved.format != spec.format:
        raise StateError(
            f"{spec.state_path} records an import of other content ({saved.file}, id"
            f" {saved.file_id}, {saved.format}). This file's lines get other keys, so lines"
            " imported before would be imported again. To import it as a new file anyway,"
            " pass another --state, or --restart.")
    return saved


async def run_import(spec: ImportSpec, *, on_progress: Callable[[Snapshot], None] | None = None,
                     progress_interval_s: float = 1.0) -> dict[str, Any]:
    """Import the file from where a previous run stopped; the summary.

    Raises StateError or columns.HeaderError before sending anything; a fatal
    stop during the import is reported in the summary (`stopped`), not raised.
    """
    started = time.monotonic()
    file_id = await asyncio.to_thread(file_identity, spec.path)
    state = starting_state(spec, file_id)
    resumed_from = state.next_line if state.next_line > 1 else None
    source = records(spec.path, spec.format, file_id=file_id, offset=state.offset,
                     next_line=state.next_line)
    report = Report(spec.report_path, keep_bytes=state.report_bytes)
    confirmer = _Confirmer(spec, state, report)
    start_offset, size = state.offset, spec.path.stat().st_size
    stopped: str | None = None
    limits = httpx.Limits(max_connections=spec.concurrency,
                          max_keepalive_connections=spec.concurrency)
    async with httpx.AsyncClient(
        base_url=spec.url, limits=limits, timeout=httpx.Timeout(spec.timeout_s, connect=10.0),
        headers={"Authorization": f"Bearer {spec.key}", "Content-Type": "application/json"},
    ) as client:
        sender = Sender(client, retry_for_s=spec.retry_for_s)

        def snapshot() -> Snapshot:
            elapsed = max(time.monotonic() - started, 1e-9)
            done_bytes = state.offset - start_offset
            left = size - state.offset
            return Snapshot(
                lines=state.lines, rejected=state.rejected,
                rate_per_s=confirmer.answered_lines / elapsed,
                done_fraction=state.offset / size if size else 1.0,
                eta_s=left * elapsed / done_bytes if done_bytes else None,
                retrying=sender.last_retry if sender.retries else None)

        ticker = (asyncio.create_task(_tick(on_progress, snapshot, progress_interval_s))
                  if on_progress else None)
        try:
            if not state.complete:
                await _pump(batches(source, size=spec.batch_size), sender, confirmer,
                            concurrency=spec.concurrency)
                state.complete = True
        except ImportStopped as exc:
            stopped = str(exc)
        finally:
            if ticker is not None:
                ticker.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await ticker
            confirmer.save()
            report.close()
        if on_progress is not None:
            on_progress(snapshot())
    elapsed_s = time.monotonic() - started
    return {
        "file": str(spec.path), "format": spec.format, "file_id": file_id,
        "complete": state.complete, "stopped": stopped,
        "lines": state.lines, "accepted": state.accepted, "replayed": state.replayed,
        "rejected": state.rejected, "resumed_from_line": resumed_from,
        "next_line": state.next_line,
        "lines_this_run": confirmer.answered_lines, "elapsed_s": round(elapsed_s, 3),
        "rate_per_s": round(confirmer.answered_lines / elapsed_s, 1) if elapsed_s else 0.0,
        "retries": sender.retries,
        "report": str(spec.report_path), "state": str(spec.state_path),
    }


async def _pump(source: Iterator[Batch], sender: Sender, confirmer: _Confirmer, *,
                concurrency: int) -> None:
    """Reads batches in a thread (the loop keeps serving answers) and sends them concurrently."""
    queue: asyncio.Queue[Batch | None] = asyncio.Queue(maxsize=concurrency)

    async def read() -> None:
        while (batch := await asyncio.to_thread(next, source, None)) is not None:
            await queue.put(batch)
        for _ in range(concurrency):
            await queue.put(None)

    async def send() -> None:
        while (batch := await queue.get()) is not None:
            await confirmer.turn(batch.seq, window=WINDOW_PER_SENDER * concurrency)
            sendable = batch.sendable
            lines = f"lines {batch.records[0].line}-{batch.records[-1].line}"
            answers = (await sender.send(batch.body(), items=len(sendable), lines=lines)
                       if sendable else [])
            confirmer.answered(batch, answers)

    # A stop in one sender cancels the others and the reader: nothing is left running.
    try:
        async with asyncio.TaskGroup() as group:
            group.create_task(read())
            for _ in range(concurrency):
                group.create_task(send())
    except* Exception as group:  # the first cause is the story; the rest were cancelled
        raise group.exceptions[0] from None


async def _tick(on_progress: Callable[[Snapshot], None], snapshot: Callable[[], Snapshot],
                interval_s: float) -> None:
    while True:
        await asyncio.sleep(interval_s)
        on_progress(snapshot())
