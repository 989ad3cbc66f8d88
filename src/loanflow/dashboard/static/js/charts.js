// The five time-series charts (uPlot, vendored: no network needed). Each chart reads
// the shared RollingSeries columns; `redraw()` after new points is all it takes.

import { STAGES } from "./series.js";

const AXIS = "#94a3b8";
const GRID = "rgba(148, 163, 184, 0.12)";
const COLORS = {
  received: "#38bdf8", stored: "#4ade80", rejected: "#fbbf24", error: "#f87171",
  p50: "#a78bfa", p95: "#fbbf24", p99: "#f87171", queue: "#38bdf8", lag: "#fbbf24",
  api: "#38bdf8", queue_wait: "#fbbf24", validation: "#a78bfa", enrichment: "#34d399", store: "#f472b6",
};
const HEIGHT_PX = 170;

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
  const view = { windowS: 900 };
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
    // The chosen window ends at the newest second; uPlot would otherwise fit all it holds.
    const last = series.lastT;
    const range = Number.isFinite(last) ? { min: last - view.windowS, max: last } : null;
    for (const { box, spec, chart } of charts) {
      chart.setData(data(series, spec), !range);
      if (range) chart.setScale("x", range);
      const drawn = countPoints(series, spec);
      // Tests and people both read these: how many seconds have a value, and the newest.
      box.dataset.points = String(drawn);
      if (range) box.dataset.lastT = String(last);
      box.classList.toggle("has-data", drawn > 0);
    }
  }
  /** Show the last `seconds` (1, 5 or 15 minutes); the page keeps 15 either way. */
  function setWindow(seconds) {
    view.windowS = seconds;
    redraw();
  }

  redraw();
  return { redraw, setWindow };
}

function data(series, spec) {
  return [series.cols.t, ...spec.lines.map(([, column]) => series.cols[column])];
}

function countPoints(series, spec) {
  let n = 0;
  for (let i = 0; i < series.length; i += 1) {
    if (spec.lines.some(([, column]) => series.cols[column][i] != null)) n += 1;
  }
  return n;
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

/** Time ticks as a 24-hour clock, with seconds only when ticks are under a minute apart. */
function clockTicks(u, ticks) {
  const withSeconds = ticks.length > 1 && ticks[1] - ticks[0] < 60;
  const shape = { hour: "2-digit", minute: "2-digit", hour12: false, ...(withSeconds && { second: "2-digit" }) };
  return ticks.map((t) => new Date(t * 1000).toLocaleTimeString("en-GB", shape));
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
