"""After start-up a full garbage collection no longer walks the start-up objects.

Such a pass took 330 ms on a slow 2-core VM: a pause every request in flight waited out.
"""

from __future__ import annotations

import asyncio
import gc
import time
from pathlib import Path

from loanflow.api.app import create_app
from loanflow.settings import Settings


def test_a_started_service_leaves_its_start_up_objects_to_no_collection(tmp_path: Path):
    app = create_app(Settings(data_dir=tmp_path), processors=1)

    async def start_then_collect() -> tuple[int, float]:
        async with app.router.lifespan_context(app):
            frozen = gc.get_freeze_count()
            started = time.perf_counter()
            gc.collect()
            return frozen, time.perf_counter() - started

    gc.unfreeze()
    try:
        frozen, collect_s = asyncio.run(start_then_collect())
    finally:
        gc.unfreeze()  # the rest of the test session collects as usual
    assert frozen > 100_000  # the rules' tables, phonenumbers' metadata, modules
    assert collect_s < 0.1, collect_s
