"""How long a Python thread may keep the GIL while another waits for it.

Embedded mode runs SQLite's writer and reader threads beside the event loop.
Each time a thread comes back from SQLite (which runs without the GIL) it
waits for the GIL, and the event loop, busy with requests, gives it up only
after the switch interval (5 ms by default); the loop waits in turn for a
thread running Python. Both delays landed on requests and commits. At 0.5 ms,
measured alternately on 2 cores at 500/s: p50 end-to-end 6 to 10 -> 5 ms,
p99 HTTP 6.5 to 15 -> 5 to 6 ms; at 950/s p99 HTTP 56 to 107 -> 33 to 36 ms;
batch intake stored 1,480 to 1,570 -> 1,750 to 1,840/s. Production processes run no such
threads and keep the default.
"""

from __future__ import annotations

import sys

from loanflow.settings import Settings

EMBEDDED_SWITCH_INTERVAL_S = 0.0005


def tune_switch_interval(settings: Settings) -> None:
    if settings.embedded:
        sys.setswitchinterval(EMBEDDED_SWITCH_INTERVAL_S)
