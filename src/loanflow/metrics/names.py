"""Every metric name, label, unit and storage field name of the metrics stage, in one place.

Counters count applications (or attempts) and are plain `int`s; histograms
hold durations in seconds (stored as nanoseconds); gauges are sampled ints.
The same names are keys in `Recorder`, in the backends and in the summary
JSON; `PROMETHEUS_*` are the exported names.
"""

from __future__ import annotations

# --- counters -------------------------------------------------------------------

#: Submissions that reached the API (each item of a batch counts), whatever the answer.
RECEIVED = "received"
#: Submissions made durable in the broker: the 202s that were not replays.
ACCEPTED = "accepted"
#: Submissions answered with the original 202 again (same Idempotency-Key, same body).
REPLAYED = "replayed"
#: Submissions answered 4xx (final; nothing stored); labelled by status code.
REFUSED_4XX = "refused_4xx"
#: Submissions answered 5xx (unknown to the client; it retries); labelled by status code.
UNAVAILABLE_5XX = "unavailable_5xx"
#: Applications stored with status `rejected` (a business rule failed).
REJECTED = "rejected"
#: Processing attempts that raised (our side or a dependency); each retry counts again.
FAILED = "failed"
#: Applications stored as dead letters after their last attempt.
DEAD_LETTERED = "dead_lettered"
#: Applications whose result the store committed, whatever the final status.
STORED = "stored"
#: Accepted applications, labelled by channel (`web`, `mobile`, ...).
BY_CHANNEL = "channel"
#: Committed results, labelled by final status (`stored`, `rejected`, `dead_lettered`).
BY_STATUS = "status"

#: Unlabelled counters, in the order the summary's `totals` lists them.
PLAIN_COUNTERS = (
    RECEIVED, ACCEPTED, REPLAYED, REJECTED, FAILED, DEAD_LETTERED, STORED,
)
#: Counters that only exist with a label (`name:label`).
LABELLED_COUNTERS = (REFUSED_4XX, UNAVAILABLE_5XX, BY_CHANNEL, BY_STATUS)
#: Separator between a labelled counter's name and its label.
LABEL_SEP = ":"

# --- histograms (seconds) -------------------------------------------------------

#: received_at -> result committed by the store (`stored_at - received_at`).
END_TO_END = "end_to_end"
#: One submission's request handling in the API, first byte read to answer ready.
API = "api"
#: received_at -> taken from the broker by a processor (first delivery only).
QUEUE_WAIT = "queue_wait"
#: Business rules of one application.
VALIDATION = "validation"
#: Enrichment and scoring of one application.
ENRICHMENT = "enrichment"
#: One batch write to the store (one transaction).
STORE = "store"

#: Every histogram; `Recorder.observe` refuses other names.
HISTOGRAMS = (END_TO_END, API, QUEUE_WAIT, VALIDATION, ENRICHMENT, STORE)
#: The per-stage histograms, as exported with a `stage` label.
STAGES = (API, QUEUE_WAIT, VALIDATION, ENRICHMENT, STORE)

#: Bucket width of every histogram: bucket i holds [r**i, r**(i+1)) seconds. A bucket
#: is reported by its geometric midpoint, so a percentile is off by at most
#: sqrt(1.02) - 1 = 0.995 % of its value.
BUCKET_RATIO = 1.02
#: Durations below this (including 0 and clock steps backwards) count in its bucket.
MIN_DURATION_S = 1e-7

# --- gauges (sampled each second; merged across processes by max) ---------------

#: Envelopes held by the broker (ready, delayed, in processing).
QUEUE_DEPTH = "queue_depth"
#: Age of the oldest queued application, in milliseconds (when the caller knows it).
QUEUE_LAG_MS = "queue_lag_ms"

# --- events ----------------------------------------------------------------------

#: An application broke a business rule.
EVENT_REJECTION = "rejection"
#: A processing attempt raised (it will be retried or dead-lettered).
EVENT_FAILURE = "failure"
#: An application went to the dead letters after its last attempt.
EVENT_DEAD_LETTER = "dead_letter"
#: An operator replayed or discarded a dead letter.
EVENT_OPERATOR_ACTION = "operator_action"
#: Events kept for display (SQLite rows / Redis stream MAXLEN ~); older ones are trimmed.
EVENTS_KEPT = 10_000

# --- storage fields (the flat form both series backends store) -------------------

#: Prefix of a counter field: `c:received`, `c:refused_4xx:422`.
FIELD_COUNTER = "c:"
#: Prefix of a histogram bucket field: `b:end_to_end:-230`.
FIELD_BUCKET = "b:"
#: Prefix of a histogram's observation count: `n:end_to_end`.
FIELD_COUNT = "n:"
#: Prefix of a histogram's sum in nanoseconds: `s:end_to_end`.
FIELD_SUM_NS = "s:"
#: Prefix of a histogram's largest observation in nanoseconds (merged by max).
FIELD_MAX_NS = "x:"
#: Prefix of a gauge (merged by max).
FIELD_GAUGE = "g:"

# --- Prometheus ------------------------------------------------------------------

#: Common prefix of every exported metric.
PROMETHEUS_PREFIX = "loanflow_"
#: `_total` counters without labels: internal name -> (exported name, help).
PROMETHEUS_COUNTERS = {
    RECEIVED: ("applications_received", "Submissions that reached the API."),
    ACCEPTED: ("applications_accepted", "Submissions made durable in the broker (202)."),
    REPLAYED: ("applications_replayed", "Idempotent replays of an earlier 202."),
    REJECTED: ("applications_rejected", "Applications stored as rejected by a business rule."),
    FAILED: ("processing_failures", "Processing attempts that raised an error."),
    DEAD_LETTERED: ("applications_dead_lettered", "Applications moved to the dead letters."),
    STORED: ("applications_stored", "Application results committed to the store."),
}
#: `_total` counters with one label: internal name -> (exported name, label, help).
PROMETHEUS_LABELLED = {
    REFUSED_4XX: ("applications_refused", "code", "Submissions answered with a 4xx status."),
    UNAVAILABLE_5XX: (
        "applications_unavailable", "code", "Submissions answered with a 5xx status."
    ),
    BY_CHANNEL: ("applications_accepted_by_channel", "channel", "Accepted submissions."),
    BY_STATUS: ("applications_completed", "status", "Committed results by final status."),
}
#: The end-to-end latency histogram (seconds).
PROMETHEUS_END_TO_END = "end_to_end_latency_seconds"
#: The per-stage latency histogram (seconds), labelled `stage`.
PROMETHEUS_STAGE = "stage_latency_seconds"
#: Upper bounds (`le`, seconds) of the exported histogram buckets.
PROMETHEUS_BUCKETS_S = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
)
#: Gauge of the broker's depth.
PROMETHEUS_QUEUE_DEPTH = "queue_depth"
#: Gauge of the oldest queued application's age (seconds).
PROMETHEUS_QUEUE_LAG = "queue_lag_seconds"
#: Gauge per backend (`backend`: broker, store, metrics): 1 reachable, 0 not.
PROMETHEUS_BACKEND_UP = "backend_up"


def labelled(counter: str, label: str | int) -> str:
    """The key of a labelled counter, e.g. `refused_4xx:422`."""
    return f"{counter}{LABEL_SEP}{label}"
