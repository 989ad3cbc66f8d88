"""What only the embedded broker does: hand back a dead predecessor's reservations at
once on start, and treat an idempotency key past its TTL as free before the janitor
deletes it. (What every broker does: test_contract.py.)"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from loanflow.backends.sqlite.broker import SQLiteBroker
from loanflow.broker.base import IDEMPOTENCY_TTL_S, AppendOutcome, AppendResult, Submission
from loanflow.models import Envelope, new_application_id

#: Far longer than any test: a reservation handed back was handed back, not timed out.
LONG_VISIBILITY_S = 600.0
HOUR_NS = 3600 * 1_000_000_000
TTL_NS = IDEMPOTENCY_TTL_S * 1_000_000_000
HELD = 3

#: A process that appends and reserves HELD applications, says so, and waits to be killed.
PREDECESSOR = textwrap.dedent(f"""
    import asyncio, sys, time
    from pathlib import Path
    from loanflow.broker.base import Submission
    from loanflow.backends.sqlite.broker import SQLiteBroker
    from loanflow.models import Envelope, new_application_id

    async def main() -> None:
        broker = SQLiteBroker(Path(sys.argv[1]), visibility_timeout_s={LONG_VISIBILITY_S})
        await broker.open()
        subs = []
        for n in range({HELD}):
            now = time.time_ns()
            subs.append(Submission(Envelope(
                id=new_application_id(now), received_at_ns=now, api_key_id="key-a",
                idempotency_key=f"idem-{{n}}", channel="web", sealed_application=b"s"), "fp"))
        await broker.append(subs)
        held = await broker.reserve(10, consumer="predecessor")
        print(len(held), flush=True)
        sys.stdin.read()  # until killed

    asyncio.run(main())
""")


@pytest.fixture
def predecessor(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    """A live process holding HELD reservations on tmp_path/broker.db."""
    with subprocess.Popen(
        [sys.executable, "-c", PREDECESSOR, str(tmp_path / "broker.db")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    ) as proc:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == str(HELD)  # blocks until it holds them
        yield proc
        if proc.poll() is None:
            proc.kill()


def reserve_after_open(path: Path) -> list[int]:
    """Open a broker as a starting process does and take what is ready: deliveries."""
    async def main() -> list[int]:
        broker = SQLiteBroker(path, visibility_timeout_s=LONG_VISIBILITY_S)
        await broker.open()
        try:
            return [d.deliveries for d in await broker.reserve(10, consumer="successor")]
        finally:
            await broker.close()

    return asyncio.run(main())


@pytest.mark.slow  # starts a process
def test_a_start_after_a_sigkill_hands_back_what_the_dead_process_held_at_once(
    tmp_path: Path, predecessor: subprocess.Popen[str]
) -> None:
    predecessor.send_signal(signal.SIGKILL)
    predecessor.wait(timeout=10)

    # Counted as a delivery each, as when a lease runs out: the holder may have died of one.
    assert reserve_after_open(tmp_path / "broker.db") == [2] * HELD


@pytest.mark.slow  # starts a process
def test_a_start_beside_a_live_process_leaves_its_reservations_alone(
    tmp_path: Path, predecessor: subprocess.Popen[str]
) -> None:
    assert reserve_after_open(tmp_path / "broker.db") == []


def test_a_start_after_the_last_holder_closed_hands_back_what_it_left_unacked(
    tmp_path: Path,
) -> None:
    path = tmp_path / "broker.db"
    asyncio.run(append(path, submission("idem-1")))

    assert reserve_after_open(path) == [1]
    assert reserve_after_open(path) == [2]  # the first holder closed without acking


def submission(key: str, *, fingerprint: str = "fp-1", received_at_ns: int | None = None
               ) -> Submission:
    now_ns = time.time_ns() if received_at_ns is None else received_at_ns
    envelope = Envelope(
        id=new_application_id(now_ns), received_at_ns=now_ns, api_key_id="key-a",
        idempotency_key=key, channel="web", sealed_application=b"sealed:" + key.encode(),
    )
    return Submission(envelope, fingerprint)


async def append(path: Path, *subs: Submission) -> list[AppendResult]:
    broker = SQLiteBroker(path, visibility_timeout_s=LONG_VISIBILITY_S)
    await broker.open()
    try:
        return [await broker.append([sub]) for sub in subs][-1]
    finally:
        await broker.close()
@pytest.mark.parametrize("fingerprint", ["fp-1", "fp-other"])
def test_a_key_past_its_ttl_is_free_before_the_janitor_deletes_it(
    tmp_path: Path, fingerprint: str
) -> None:
    old = submission("idem-1", received_at_ns=time.time_ns() - TTL_NS - HOUR_NS)
    fresh = submission("idem-1", fingerprint=fingerprint)

    [result] = asyncio.run(append(tmp_path / "broker.db", old, fresh))

    assert (result.outcome, result.application_id) == (AppendOutcome.ACCEPTED, fresh.envelope.id)


@pytest.mark.parametrize(("fingerprint", "outcome"), [
    ("fp-1", AppendOutcome.REPLAYED), ("fp-other", AppendOutcome.KEY_REUSED),
])
def test_a_key_within_its_ttl_still_answers_for_the_first_application(
    tmp_path: Path, fingerprint: str, outcome: AppendOutcome
) -> None:
    old = submission("idem-1", received_at_ns=time.time_ns() - TTL_NS + HOUR_NS)
    again = submission("idem-1", fingerprint=fingerprint)

    [result] = asyncio.run(append(tmp_path / "broker.db", old, again))

    assert (result.outcome, result.application_id) == (outcome, old.envelope.id)
