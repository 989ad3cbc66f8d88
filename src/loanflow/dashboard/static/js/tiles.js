// The six numbers an operator reads first, and the counts by status and channel.

import { h } from "./dom.js";
import * as fmt from "./format.js";

/**
 * When a number deserves attention. Starting points for a lender's intake, to be tuned
 * with the team: a few rejections are normal, sustained errors and a growing lag are not.
 */
const THRESHOLDS = {
  error_rate: { warn: 0.02, bad: 0.1 },
  p99: { warn: 1000, bad: 5000 },
  lag: { warn: 5, bad: 30 },
};

export function createTiles(root) {
  const tiles = Object.fromEntries(
    [...root.querySelectorAll("[data-tile]")].map((t) => [t.dataset.tile, t]),
  );

  function show(name, value, text) {
    const tile = tiles[name];
    if (!tile) return;
    tile.querySelector(".value").textContent = text;
    const limits = THRESHOLDS[name];
    tile.dataset.level = !limits || typeof value !== "number" ? ""
      : value >= limits.bad ? "bad" : value >= limits.warn ? "warn" : "ok";
  }

  function update(snap) {
    const rates = snap.rates || {};
    const p99 = snap.latency_ms?.end_to_end?.p99;
    show("received", rates.received_per_s, fmt.rate(rates.received_per_s));
    show("stored", rates.stored_per_s, fmt.rate(rates.stored_per_s));
    show("error_rate", snap.error_rate, fmt.percent(snap.error_rate));
    show("p99", p99, fmt.ms(p99));
    show("depth", snap.queue?.depth, fmt.count(snap.queue?.depth));
    show("lag", snap.queue?.lag_s, fmt.seconds(snap.queue?.lag_s));
  }

  /** Unknown again (the feed is down): old numbers must not pass for current ones. */
  function stale(isStale) {
    root.classList.toggle("is-stale", isStale);
  }

  return { update, stale };
}

/** Counts as rows with a bar, largest first; `engagement` when the server sends it. */
export function createCounts({ byStatus, byChannel, engagement }) {
  function fill(table, counts) {
    const rows = Object.entries(counts || {}).filter(([, n]) => typeof n === "number");
    rows.sort((a, b) => b[1] - a[1]);
    const max = Math.max(1, ...rows.map(([, n]) => n));
    const body = table.tBodies[0];
    body.replaceChildren(...rows.map(([name, n]) => {
      const bar = h("span", { class: "bar" });
      // A width set through the CSSOM, which the CSP allows (a style attribute it does not).
      bar.style.width = `${(100 * n) / max}%`;
      return h("tr", { dataset: { key: name } },
        h("th", { text: name }),
        h("td", { class: "bar-cell" }, bar),
        h("td", { class: "num", text: fmt.count(n) }));
    }));
    if (!rows.length) body.append(h("tr", {}, h("td", { class: "muted", text: "none yet" })));
  }

  function update(snap) {
    fill(byStatus, snap.counts?.by_status);
    fill(byChannel, snap.counts?.by_channel);
    const e = snap.engagement;
    engagement.hidden = !e;
    if (e) {
      engagement.textContent = `Viewers now ${fmt.count(e.viewers)} · sessions today ${
        fmt.count(e.sessions_today)} · actions today ${fmt.count(e.actions_today)}`;
    }
  }

  return { update };
}
