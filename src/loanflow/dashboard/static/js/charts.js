// The five time-series charts (uPlot, vendored: no network needed). Up to an hour they
// read the shared RollingSeries columns (per second, live); `redraw()` after new points
// is all it takes. Over 24 h or 7 d they read per-minute points loaded here, the whole
// range on choosing it, then each minute only what is new or may have changed
// (minutes.js). The chosen range is remembered in localStorage.

import { createApi } from "./api.js";
import { say } from "./dom.js";
import { loadRange } from "./minutes.js";
import { RANGES, STAGES, WINDOW_S } from "./series.js";

const AXIS = "#94a3b8";
const GRID = "rgba(148, 163, 184, 0.12)";
const COLORS = {
  received: "#38bdf8", stored: "#4ade80", rejected: "#fbbf24", error: "#f87171",
  p50: "#a78bfa", p95: "#fbbf24", p99: "#f87171", queue: "#38bdf8", lag: "#fbbf24",
  api: "#38bdf8", queue_wait: "#fbbf24", validation: "#a78bfa", enrichment: "#34d399", store: "#f472b6",
};
const HEIGHT_PX = 170;
/** Per-minute points are new once a minute: refreshed that often while shown. */
const MINUTE_REFRESH_MS = 60_000;
const STORAGE_KEY = "loanflow.chartRangeS";
const DEFAULT_RANGE_S = 300;

/**
 * What each chart shows: [label, column, colour, dash?, scale?] per line, the y-axis unit,
 * and `right`, a second y-axis for the lines on its scale.
 */
const CHARTS = {
  throughput: { unit: "/s", lines: [
    ["received", "received", COLORS.received], ["stored", "stored", COLORS.stored, [6, 3]],
    ["rejected", "rejected", COLORS.rejected]] },
  error_rate: { unit: "%", lines: [["error rate", "error_pct", COLORS.error]] },
  latency: { unit: "ms", lines: [
    ["p50", "p50", COLORS.p50], ["p95", "p95", COLORS.p95], ["p99", "p99", COLORS.p99]] },
  stages: { unit: "ms", lines: STAGES.map((s) => [s.replace("_", " "), `stage_${s}`, COLORS[s]]) },
  // Lag (seconds) on its own right-hand scale: depth and age differ in unit and size.
  queue: { unit: "", right: { scale: "lag", unit: "s" }, lines: [
    ["depth", "queue_depth", COLORS.queue], ["lag", "queue_lag_s", COLORS.lag, [6, 3], "lag"]] },
};

/**
 * Charts in every `[data-chart]` box of `root`. Returns `redraw()`; `null` when the chart
 * library failed to load (the page then says so instead of breaking).
 */
export function createCharts(root, series) {
  const UPlot = window.uPlot;
  if (typeof UPlot !== "function") return null;
  const charts = [];
  // `minutes`: the loaded per-minute points while a range over WINDOW_S is shown.
  const view = { windowS: DEFAULT_RANGE_S, minutes: null, drawn: null, timer: 0 };
  const api = createApi({}, { onSignedOut: () => window.location.assign("/") });
  const status = root.querySelector("#history-status");
  for (const box of root.querySelectorAll("[data-chart]")) {
    const spec = CHARTS[box.dataset.chart];
    if (!spec) continue;
    const plot = box.querySelector(".plot");
    const chart = new UPlot(options(spec, plot.clientWidth || 400), data(series, spec), plot);
    // Charts follow their grid cell: a wall screen, a laptop, a window resized.
    new ResizeObserver(() => {
      const width = Math.floor(plot.clientWidth);
      if (width > 0 && width !== chart.width) chart.setSize({ width, height: HEIGHT_PX });
    }).observe(plot);
    charts.push({ box, spec, chart });
  }

  function redraw() {
    const perMinute = view.windowS > WINDOW_S;
    const source = perMinute ? view.minutes || EMPTY : series;
    // Live snapshots call this twice a second; per-minute points change once a minute.
    if (perMinute && source === view.drawn) return;
    view.drawn = source;
    // The chosen window ends at the newest point; uPlot would otherwise fit all it holds.
    const last = source.lastT;
    const range = Number.isFinite(last) ? { min: last - view.windowS, max: last } : null;
    for (const { box, spec, chart } of charts) {
      chart.setData(data(source, spec), !range);
      if (range) chart.setScale("x", range);
      const { drawn, firstBusyT } = countPoints(source, spec);
      // Tests and people both read these: how many points have a value, the newest, the
      // oldest that is not zero, and the range and step shown.
      box.dataset.points = String(drawn);
      if (range) box.dataset.lastT = String(last);
      if (firstBusyT != null) box.dataset.firstBusyT = String(firstBusyT);
      else delete box.dataset.firstBusyT;
      box.dataset.range = RANGES[view.windowS] || "";
      box.dataset.stepS = perMinute ? "60" : "1";
      box.classList.toggle("has-data", drawn > 0);
    }
  }

  async function loadMinutes() {
    const seconds = view.windowS;
    try {
      // `view.minutes` is this range's (setWindow clears it): only what is new is fetched.
      // On an error it stays, drawn, and the next minute asks for the same part again.
      const loaded = await loadRange(api.get, seconds, view.minutes);
      if (view.windowS !== seconds) return; // another range was chosen meanwhile
      view.minutes = loaded;
      say(status, "");
    } catch (err) {
      if (view.windowS !== seconds) return;
      say(status, `History of ${RANGES[seconds]} unavailable (${err.summary || err.message}); retrying each minute.`, "warn");
    }
    redraw();
  }

  /** Show the last `seconds`: 5 min or 1 h live, per second; 24 h or 7 d per minute. */
  function setWindow(seconds) {
    if (!RANGES[seconds]) return;
    view.windowS = seconds;
    view.minutes = null;
    view.drawn = null;
    clearInterval(view.timer);
    try {
      localStorage.setItem(STORAGE_KEY, String(seconds));
    } catch {
      // Storage refused (a private window): the range just isn't remembered.
    }
    for (const button of root.querySelectorAll("[data-window]")) {
      button.setAttribute("aria-pressed", String(Number(button.dataset.window) === seconds));
    }
    if (seconds > WINDOW_S) {
      loadMinutes();
      view.timer = setInterval(loadMinutes, MINUTE_REFRESH_MS);
    }
    redraw();
  }

  setWindow(storedRange() || DEFAULT_RANGE_S);
  return { redraw, setWindow };
}

const EMPTY = { cols: null, length: 0, lastT: -Infinity };

function storedRange() {
  try {
    const seconds = Number(localStorage.getItem(STORAGE_KEY));
    return RANGES[seconds] ? seconds : null;
  } catch {
    return null;
  }
}

function data(series, spec) {
  if (!series.cols) return [[], ...spec.lines.map(() => [])];
  return [series.cols.t, ...spec.lines.map(([, column]) => series.cols[column])];
}

/** Points with a value on any line, and the oldest with one that is not zero. */
function countPoints(series, spec) {
  let drawn = 0;
  let firstBusyT = null;
  for (let i = 0; i < series.length; i += 1) {
    const values = spec.lines.map(([, column]) => series.cols[column][i]);
    if (values.some((v) => v != null)) drawn += 1;
    if (firstBusyT == null && values.some((v) => v != null && v !== 0)) firstBusyT = series.cols.t[i];
  }
  return { drawn, firstBusyT };
}

function options(spec, width) {
  const axis = { stroke: AXIS, grid: { stroke: GRID, width: 1 }, ticks: { stroke: GRID, width: 1 } };
  // From zero: a rate or a latency read against its own minimum exaggerates noise.
  const fromZero = { range: (u, min, max) => [0, max > 0 ? max * 1.1 : 1] };
  const right = spec.right;
  const unitOf = (scale) => (right && scale === right.scale ? right.unit : spec.unit);
  return {
    width,
    height: HEIGHT_PX,
    legend: { live: true },
    cursor: { drag: { x: false, y: false } },
    scales: { x: { time: true }, y: fromZero, ...(right && { [right.scale]: fromZero }) },
    axes: [
      { ...axis, values: clockTicks },
      { ...axis, size: 64, values: (u, ticks) => ticks.map((v) => short(v) + spec.unit) },
      ...(right ? [{ ...axis, scale: right.scale, side: 1, size: 56, grid: { show: false },
        values: (u, ticks) => ticks.map((v) => short(v) + right.unit) }] : []),
    ],
    series: [
      {},
      // Dashed where lines often overlap (stored under received when nothing is rejected).
      ...spec.lines.map(([label, , stroke, dash, scale = "y"]) => ({
        label, stroke, dash, scale, width: 2, spanGaps: false, points: { show: false },
        value: (u, v) => (v == null ? "—" : short(v) + unitOf(scale)),
      })),
    ],
  };
}

/**
 * Time ticks as a 24-hour clock, with seconds only when ticks are under a minute apart,
 * and the weekday when they are hours apart (the 7-day range).
 */
function clockTicks(u, ticks) {
  const step = ticks.length > 1 ? ticks[1] - ticks[0] : 0;
  const shape = { hour: "2-digit", minute: "2-digit", hour12: false,
    ...(step > 0 && step < 60 && { second: "2-digit" }), ...(step >= 6 * 3600 && { weekday: "short" }) };
  return ticks.map((t) => new Date(t * 1000).toLocaleString("en-GB", shape));
}

/** Axis numbers that fit: 1.2k, 35, 0.25. */
function short(v) {
  if (v == null) return "";
  const a = Math.abs(v);
  if (a >= 1e6) return `${+(v / 1e6).toFixed(1)}M`;
  if (a >= 1e3) return `${+(v / 1e3).toFixed(1)}k`;
  if (a >= 10 || a === 0) return `${Math.round(v)}`;
  return `${+v.toFixed(2)}`;
}
