"""How long a Python thread may keep the GIL while another waits for it.

Embedded mode runs SQLite's writer and reader threads beside the event loop. A
thread back from SQLite (which runs without the GIL) waits for the busy loop to give
the GIL up, and the loop waits in turn for a thread running Python: at the default
switch interval both waits landed on requests and commits. A shorter interval cut
them (figures: docs/benchmarks.md). Production processes run no such threads and
keep the default.
"""

from __future__ import annotations

import sys

from loanflow.settings import Settings

EMBEDDED_SWITCH_INTERVAL_S = 0.0005


def tune_switch_interval(settings: Settings) -> None:
    if settings.embedded:
        sys.setswitchinterval(EMBEDDED_SWITCH_INTERVAL_S)
