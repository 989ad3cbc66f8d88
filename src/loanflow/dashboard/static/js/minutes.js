// The 24 h and 7 d ranges' per-minute points: the whole range once, then each minute
// only what is new or may have changed. The server says up to which minute its points
// are final (`final_through`: rolled up, a minute never changes again); a refresh asks
// for the points after it (`after=`) and puts them in place of the ones held.

import { normalizeSeries, RANGES } from "./series.js";

/**
 * Per-minute points of a range longer than WINDOW_S, as charts read a RollingSeries:
 * `{ cols, length, lastT, stepS, finalThrough }`. `get` is the page's API call (api.js);
 * `held`, this range's previous result: given, only the part after its `finalThrough` is
 * fetched and merged into it (a new object: `held` is left as it was).
 */
export async function loadRange(get, seconds, held = null) {
  const after = held?.finalThrough;
  const incremental = Number.isInteger(after);
  const query = `range=${RANGES[seconds]}${incremental ? `&after=${after}` : ""}`;
  const body = await get(`/v1/metrics/series?${query}`);
  const part = normalizeSeries(body);
  const cols = incremental ? mergeByT(held.cols, part, seconds) : part;
  const n = cols.t.length;
  return {
    cols,
    length: n,
    lastT: n ? cols.t[n - 1] : -Infinity,
    stepS: body.step_s,
    // Without one (a server that predates it) the next refresh loads the whole range.
    finalThrough: Number.isInteger(body.final_through) ? body.final_through : null,
  };
}

/**
 * `held` with `part` in place of its points of the same minutes, then cut to `spanS`
 * before the newest. `part` is every minute after some `t`, without gaps (the server
 * answers so), so it replaces the held points of its span whole: revised ones and all.
 */
export function mergeByT(held, part, spanS) {
  const n = part.t.length;
  const from = n ? indexWhere(held.t, (t) => t >= part.t[0]) : held.t.length;
  // Held points newer than the part stay: an answer from a process whose clock is behind.
  const to = n ? indexWhere(held.t, (t) => t > part.t[n - 1]) : held.t.length;
  const cols = {};
  for (const name of Object.keys(held)) {
    cols[name] = held[name].slice(0, from).concat(part[name], held[name].slice(to));
  }
  // As the server's range: it ends at the newest point and spans `spanS`.
  const oldest = cols.t.length ? cols.t[cols.t.length - 1] - spanS : -Infinity;
  const drop = indexWhere(cols.t, (t) => t > oldest);
  if (drop) for (const name of Object.keys(cols)) cols[name].splice(0, drop);
  return cols;
}

/** The first index of sorted `values` where `test` holds, or their length. */
function indexWhere(values, test) {
  const i = values.findIndex(test);
  return i < 0 ? values.length : i;
}
