// The search view over GET /v1/applications: filters in the page's address (so a view
// can be shared and survives a reload), newest first, "More" for the next page.

import { query } from "./api.js";
import { h } from "./dom.js";
import * as fmt from "./format.js";
import { listPage, pagedTable } from "./paged.js";

export const PAGE_SIZE = 100;
/** The API's filters, in the order the form shows them. */
export const FIELDS = ["status", "route", "channel", "review", "partner_id", "external_id", "since", "until"];
const TIMES = new Set(["since", "until"]);

/** The filter an address carries: its non-empty FIELDS, as written there. */
export function filterFrom(params) {
  const filter = {};
  for (const field of FIELDS) {
    const value = (params.get(field) || "").trim();
    if (value) filter[field] = value;
  }
  return filter;
}

/**
 * `els`: the view's elements; `go(params)` puts a new address in the history and shows
 * it; `onInspect(id)` opens the drawer. Returns {show(params), filter()}.
 */
export function createSearch({ api, els, go, onInspect }) {
  const view = { filter: null, key: null };

  /** Show the search an address names; ask the server only when it is a new one. */
  function show(params) {
    const filter = filterFrom(params);
    const key = JSON.stringify(filter);
    fillForm(filter);
    els.navLink.href = `?${new URLSearchParams({ view: "search", ...filter })}`;
    if (key === view.key) return;
    Object.assign(view, { filter, key });
    load();
  }

  const { load, next } = pagedTable({
    els,
    fetchPage: async (cursor) => listPage(await api.get(
      `/v1/applications${query({ ...view.filter, limit: PAGE_SIZE, cursor })}`)),
    row,
    failed: (err) => `Search failed: ${err.summary || err.message}`,
    settle() {
      const n = els.rows.children.length;
      els.empty.hidden = n > 0 || !els.status.hidden;
      els.more.hidden = !next();
      els.count.textContent = n ? `${fmt.count(n)} shown${next() ? ", more match" : ""}` : "";
      els.count.dataset.count = String(n);
    },
  });

  function row(item) {
    const review = item.review_decision ? `${item.review} (${item.review_decision})` : item.review;
    return h("tr", { dataset: { id: String(item.id ?? "") }, onclick: (ev) => {
      if (!ev.target.closest("button")) onInspect(item.id);
    } },
    h("td", { class: "nowrap", text: fmt.stamp(item.received_at), title: item.received_at }),
    h("td", { class: "id" }, h("button", { type: "button", class: "link", text: fmt.text(item.id),
      title: `Open ${item.id}`, onclick: () => onInspect(item.id) })),
    h("td", { text: fmt.text(item.status) }),
    h("td", { text: fmt.text(item.route) }),
    h("td", { text: fmt.text(item.channel) }),
    h("td", { text: fmt.text(item.partner_id), title: item.partner_id }),
    h("td", { text: fmt.text(item.external_id), title: item.external_id }),
    h("td", { text: fmt.text(item.risk_tier) }),
    h("td", { text: fmt.text(review) }));
  }

  /** The form shows the applied filter; times in the operator's own zone. */
  function fillForm(filter) {
    for (const field of FIELDS) {
      const input = els.form.elements.namedItem(field);
      const value = filter[field] ?? "";
      input.value = TIMES.has(field) ? toLocalInput(value) : value;
    }
  }

  /** The form's filter, times as RFC 3339 in UTC (what the API reads, whoever opens the link). */
  function fromForm() {
    const data = new FormData(els.form);
    const filter = {};
    for (const field of FIELDS) {
      let value = String(data.get(field) || "").trim();
      if (value && TIMES.has(field)) value = toUtc(value);
      if (value) filter[field] = value;
    }
    return filter;
  }

  els.form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const filter = fromForm();
    view.key = null; // searching again asks again, even for the same filter
    go(new URLSearchParams({ view: "search", ...filter }));
  });
  els.clear.addEventListener("click", () => {
    view.key = null;
    go(new URLSearchParams({ view: "search" }));
  });
  els.more.addEventListener("click", () => load({ more: true }));

  return { show, filter: () => ({ ...(view.filter || {}) }) };
}

/** "2026-12-07T09:30" in this browser's zone as "2026-12-07T08:30:00Z". */
function toUtc(local) {
  const at = new Date(local);
  return Number.isNaN(at.getTime()) ? local : at.toISOString().replace(/\.000Z$/, "Z");
}

/** An RFC 3339 time as a datetime-local value in this browser's zone; "" if it is not one. */
function toLocalInput(iso) {
  const at = new Date(iso);
  if (!iso || Number.isNaN(at.getTime())) return "";
  const pad = (n) => String(n).padStart(2, "0");
  return `${at.getFullYear()}-${pad(at.getMonth() + 1)}-${pad(at.getDate())}T${pad(at.getHours())}:${
    pad(at.getMinutes())}:${pad(at.getSeconds())}`;
}
