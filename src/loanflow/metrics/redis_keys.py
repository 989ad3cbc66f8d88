"""Every Redis key the metrics stage uses, in one place.

All carry the `{loanflow}` hash tag (as the broker's do), so the flush script,
which touches several keys, stays legal on a one-shard Cluster.
"""

from __future__ import annotations

#: Common prefix; `{...}` is a Redis Cluster hash tag.
PREFIX = "{loanflow}:metrics:"

#: Hash per second (unix seconds): every process's fields merged (`c:`, `b:`, `n:`,
#: `s:` add, `x:`, `g:` take the max); TTL series_base.RETENTION_S.
SECOND_PREFIX = PREFIX + "s:"

#: Hash of cumulative counter fields (`c:...`); no TTL: Prometheus counters.
TOTAL_COUNTERS = PREFIX + "total:c"

#: Hash of cumulative histogram fields (`b:`, `n:`, `s:`); no TTL.
TOTAL_HISTOGRAMS = PREFIX + "total:h"

#: String per applied flush, `flush:<process>:<seq>`; TTL RETENTION_S. Makes a
#: retried flush (its reply lost) a no-op.
FLUSH_PREFIX = PREFIX + "flush:"

#: Stream of display events (field `e`: the JSON event); XADD MAXLEN ~ names.EVENTS_KEPT.
EVENTS = PREFIX + "events"


def second_key(second: int) -> str:
    return f"{SECOND_PREFIX}{second}"


def flush_key(process: str, seq: int) -> str:
    return f"{FLUSH_PREFIX}{process}:{seq}"
