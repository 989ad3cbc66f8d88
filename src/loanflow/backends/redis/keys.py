"""Every Redis key and stream name loanflow uses, in one place.

All keys carry the `{loanflow}` hash tag, so they share one hash slot: the
multi-key Lua scripts stay legal behind slot-checking proxies and on a
one-shard Cluster. Inside the stream each entry has two fields, `id` (the
application id) and `e` (the msgpack envelope); the Lua scripts in
`lua/` rely on that order.
"""

from __future__ import annotations

#: Common prefix; `{...}` is a Redis Cluster hash tag (one slot for all keys).
PREFIX = "{loanflow}:"

#: Stream of envelopes not yet acknowledged: ready ones and those a processor holds.
#: Acked entries are XDEL'd at once, so XLEN is the depth and nothing is ever trimmed.
STREAM = PREFIX + "applications"

#: Consumer group of the processors on STREAM (created with MKSTREAM on open).
GROUP = "processors"

#: Sorted set of application ids waiting out a retry or release delay;
#: score = ready time in ms (Redis server clock). Their envelopes sit in the
#: application hash (field `env`) until `reserve` moves them back to STREAM.
DELAYED = PREFIX + "delayed"

#: String: the XAUTOCLAIM cursor, so a long pending list is scanned in turns
#: instead of re-reading its head on every reserve.
CLAIM_CURSOR = PREFIX + "claim-cursor"

#: Hash per application held by the broker: `at` (received_at_ns), `entry`
#: (current stream entry id, "" while delayed), and while delayed `env` (the
#: envelope) and `n` (its deliveries so far). Whether a processor holds it is
#: the group's pending list; the stream entry's own `n` counts earlier deliveries.
#: No TTL: it lives exactly as long as the envelope and goes in the same
#: script as the XACK, so it cannot outlive it nor expire under a backlog.
APPLICATION_PREFIX = PREFIX + "app:"

#: String per idempotency key: the 40-byte record of idempotency.py (fingerprint,
#: received_at_ns, application id); TTL the idempotency window, so Redis forgets it.
#: Earlier versions wrote a hash (`fp`, `id`, `at`) here: still read until it expires.
IDEMPOTENCY_PREFIX = PREFIX + "idem:"

#: String written before each WAIT (LOANFLOW_REDIS_MIN_REPLICAS > 0): a write of the
#: connection's own, so the WAIT covers all written before it, a replayed claim too.
REPLICATION_FENCE = PREFIX + "replication-fence"

#: Hash per API key: its token bucket (`tokens`, `at` in ms of the Redis clock), shared by
#: every API process on every host; expires once it would be full again.
RATE_LIMIT_PREFIX = PREFIX + "ratelimit:"


def application_key(application_id: str) -> str:
    return APPLICATION_PREFIX + application_id


def idempotency_key(api_key_id: str, key: str) -> str:
    """`{loanflow}:idem:<api key id>:<key>`; ':' in the api key id is escaped (unambiguous)."""
    scope = api_key_id.replace("%", "%25").replace(":", "%3A")
    return f"{IDEMPOTENCY_PREFIX}{scope}:{key}"


# -- metrics (series.py, events.py) ---------------------------------------------------

#: Common prefix of the metrics keys (series.py, events.py).
METRICS_PREFIX = PREFIX + "metrics:"

#: Hash per second (unix seconds): every process's fields merged (`c:`, `b:`, `n:`,
#: `s:` add, `x:`, `g:` take the max); TTL series_base.SECOND_RETENTION_S. A roll-up
#: replaces the hashes of a finished minute by PACKED_SECOND keys.
SECOND_PREFIX = METRICS_PREFIX + "s:"

#: String per second of a rolled-up minute: the msgpack Tally (tally.pack), a tenth
#: of the hash's memory under load; TTL series_base.SECOND_RETENTION_S.
PACKED_SECOND_PREFIX = METRICS_PREFIX + "p:"

#: String per minute (its first unix second): the msgpack Tally of its seconds merged;
#: its presence means "rolled up". TTL series_base.MINUTE_RETENTION_S.
MINUTE_PREFIX = METRICS_PREFIX + "m:"

#: String per minute being rolled up: who does it (SET NX); TTL series.ROLL_UP_CLAIM_S.
#: Only saves the others the work: the roll-up's WATCH keeps it correct without.
ROLL_UP_CLAIM_PREFIX = METRICS_PREFIX + "rollup:"

#: Hash of cumulative counter fields (`c:...`); no TTL: Prometheus counters.
TOTAL_COUNTERS = METRICS_PREFIX + "total:c"

#: Hash of cumulative histogram fields (`b:`, `n:`, `s:`); no TTL.
TOTAL_HISTOGRAMS = METRICS_PREFIX + "total:h"

#: String per applied flush, `flush:<process>:<seq>`; TTL FLUSH_DEDUP_S. Makes a
#: retried flush (its reply lost) a no-op.
FLUSH_PREFIX = METRICS_PREFIX + "flush:"

#: Stream of display events (field `e`: the JSON event); XADD MAXLEN ~ names.EVENTS_KEPT.
EVENTS = METRICS_PREFIX + "events"


def second_key(second: int) -> str:
    return f"{SECOND_PREFIX}{second}"


def packed_second_key(second: int) -> str:
    return f"{PACKED_SECOND_PREFIX}{second}"


def minute_key(minute: int) -> str:
    return f"{MINUTE_PREFIX}{minute}"


def roll_up_claim_key(minute: int) -> str:
    return f"{ROLL_UP_CLAIM_PREFIX}{minute}"


def flush_key(process: str, seq: int) -> str:
    return f"{FLUSH_PREFIX}{process}:{seq}"


# -- velocity (velocity.py) ------------------------------------------------------------

#: Sorted set per hashed value, `{loanflow}:velocity:<dimension>:<keyed hash>`: members
#: application ids, scores received_at in µs; TTL KEEP_WINDOWS windows, renewed on each
#: add.
VELOCITY_PREFIX = PREFIX + "velocity:"
