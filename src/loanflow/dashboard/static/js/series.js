// The charts' data: one point per second for the last hour, in columns (uPlot's own
// layout). History from `GET /v1/metrics/series` is loaded once; live snapshots append
// after it, so a dashboard opened late still shows the recent past. Longer ranges are
// per-minute points the charts load themselves (minutes.js).

export const STAGES = ["api", "queue_wait", "validation", "enrichment", "store"];
/** Seconds of per-second points the page keeps (the server keeps as many). */
export const WINDOW_S = 3600;
/** The charts' ranges (seconds shown) and the API's name for each. */
export const RANGES = { 300: "5m", 3600: "1h", 86400: "24h", 604800: "7d" };
const COLUMNS = [
  "t", "received", "stored", "rejected", "error_pct", "p50", "p95", "p99",
  ...STAGES.map((s) => `stage_${s}`), "queue_depth", "queue_lag_s",
];

const num = (v) => (typeof v === "number" && Number.isFinite(v) ? v : null);
const pct = (v) => (num(v) == null ? null : v * 100);

export class RollingSeries {
  constructor(windowS = WINDOW_S) {
    this.windowS = windowS;
    this.cols = Object.fromEntries(COLUMNS.map((c) => [c, []]));
  }

  get length() {
    return this.cols.t.length;
  }

  get lastT() {
    const t = this.cols.t;
    return t.length ? t[t.length - 1] : -Infinity;
  }

  /** Replace the past with `history` (columns), keeping live points newer than it. */
  load(history) {
    const until = history.t.length ? history.t[history.t.length - 1] : -Infinity;
    const newer = this.points().filter((p) => p.t > until);
    for (const c of COLUMNS) this.cols[c] = (history[c] || []).slice();
    for (const p of newer) this.append(p);
    this.trim();
  }

  /** Add one second; older or repeated seconds are ignored (snapshots come at 2 Hz). */
  append(point) {
    if (point == null || !(point.t > this.lastT)) return false;
    // A gap (the feed was down) gets one empty point, so the line breaks there instead
    // of drawing a straight, invented line across the missing time.
    if (this.length && point.t > this.lastT + 2) this.push({ t: this.lastT + 1 });
    this.push(point);
    this.trim();
    return true;
  }

  push(point) {
    for (const c of COLUMNS) this.cols[c].push(c === "t" ? point.t : num(point[c]));
  }

  trim() {
    const oldest = this.lastT - this.windowS;
    let drop = 0;
    while (drop < this.length && this.cols.t[drop] <= oldest) drop += 1;
    if (drop) for (const c of COLUMNS) this.cols[c].splice(0, drop);
  }

  points() {
    return this.cols.t.map((t, i) => Object.fromEntries(COLUMNS.map((c) => [c, this.cols[c][i]])));
  }
}

/** `GET /v1/metrics/series` (the server's `Series`, metrics/views.py) as chart columns. */
export function normalizeSeries(body) {
  if (!body || !Array.isArray(body.t)) throw new Error("expected a series with a `t` column");
  const pick = (name) => (Array.isArray(body[name]) ? body[name] : []);
  const stages = isObject(body.p99_ms) ? body.p99_ms : {};
  const cols = {
    t: body.t.slice(),
    received: pick("received_per_s"),
    stored: pick("stored_per_s"),
    rejected: pick("rejected_per_s"),
    error_pct: pick("error_rate").map(pct),
    p50: pick("e2e_p50_ms"),
    p95: pick("e2e_p95_ms"),
    p99: pick("e2e_p99_ms"),
    queue_depth: pick("queue_depth"),
    queue_lag_s: pick("queue_lag_s"),
  };
  for (const s of STAGES) cols[`stage_${s}`] = Array.isArray(stages[s]) ? stages[s] : [];
  // Every column as long as `t`: a missing one draws as a gap, never shifts in time.
  for (const [name, col] of Object.entries(cols)) {
    cols[name] = body.t.map((_, i) => (i < col.length ? num(col[i]) : null));
  }
  cols.t = body.t.slice();
  return cols;
}

/** The chart point a snapshot gives: its own newest settled second when it has one. */
export function pointFromSnapshot(snap) {
  const second = snap.latest_second;
  if (isObject(second) && num(second.t) != null) {
    const stages = isObject(second.p99_ms) ? second.p99_ms : {};
    return {
      t: second.t,
      received: second.received_per_s,
      stored: second.stored_per_s,
      rejected: second.rejected_per_s,
      error_pct: pct(second.error_rate),
      p50: second.e2e_p50_ms,
      p95: second.e2e_p95_ms,
      p99: second.e2e_p99_ms,
      queue_depth: second.queue_depth,
      queue_lag_s: second.queue_lag_s,
      ...Object.fromEntries(STAGES.map((s) => [`stage_${s}`, stages[s]])),
    };
  }
  const at = Date.parse(snap.at);
  if (Number.isNaN(at)) return null;
  const rates = snap.rates || {};
  const latency = snap.latency_ms || {};
  const e2e = latency.end_to_end || {};
  return {
    t: Math.floor(at / 1000),
    received: rates.received_per_s,
    stored: rates.stored_per_s,
    rejected: rates.rejected_per_s,
    error_pct: pct(snap.error_rate),
    p50: e2e.p50,
    p95: e2e.p95,
    p99: e2e.p99,
    queue_depth: snap.queue?.depth,
    queue_lag_s: snap.queue?.lag_s,
    ...Object.fromEntries(STAGES.map((s) => [`stage_${s}`, latency[s]?.p99])),
  };
}

function isObject(v) {
  return v != null && typeof v === "object" && !Array.isArray(v);
}
