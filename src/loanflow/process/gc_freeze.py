"""Keep what a process loads at startup out of the garbage collector's full passes.

After start-up a process holds hundreds of thousands of objects that live as long as
it does (the rules' lookup tables, phonenumbers' metadata, the libraries' modules). A
full collection, which Python runs now and then on its own, walks every one of them:
a pause every request in flight waits out (figures: docs/benchmarks.md).
`gc.freeze()` moves them to a generation the collector ignores; what the process
allocates later is collected as before.
"""

from __future__ import annotations

import gc


def freeze_startup_objects() -> None:
    """Call once, when start-up has loaded everything (tables, processors, routes)."""
    gc.collect()  # only survivors are frozen: no garbage of start-up kept for good
    gc.freeze()
