// The audit trail (GET /v1/audit): every operator action (sign-ins, replays, discards,
// review decisions), newest first, in the pages the server gives.

import { query } from "./api.js";
import { h } from "./dom.js";
import * as fmt from "./format.js";
import { pagedTable } from "./paged.js";

/** The server's page: a shorter one is the last. */
const SERVER_PAGE = 500;

/** `els`: the table's elements. Returns {load}. */
export function createAudit({ api, els }) {
  const { load, next } = pagedTable({
    els,
    async fetchPage(before) {
      const body = await api.get(`/v1/audit${query({ before })}`);
      const items = Array.isArray(body?.items) ? body.items : [];
      const last = items.at(-1);
      return { items, next: items.length >= SERVER_PAGE && last ? last.seq : null };
    },
    row,
    failed: (err) => `Audit trail unavailable: ${err.summary || err.message}. Refresh to try again.`,
    settle() {
      els.empty.hidden = els.rows.children.length > 0 || !els.status.hidden;
      els.more.hidden = next() == null;
    },
    clearOnFailure: false, // the entries already shown stay, under the failure
  });

  function row(entry) {
    const detail = entry.detail && typeof entry.detail === "object"
      ? Object.entries(entry.detail).map(([k, v]) => `${k}: ${typeof v === "object" && v !== null ? JSON.stringify(v) : fmt.text(v)}`).join(", ")
      : fmt.text(entry.detail);
    return h("tr", { dataset: { seq: String(entry.seq ?? ""), action: String(entry.action ?? ""), target: String(entry.target ?? "") } },
      h("td", { class: "nowrap", text: fmt.stamp(entry.at), title: entry.at }),
      h("td", { text: fmt.text(entry.actor), title: entry.actor }),
      h("td", { class: "code", text: fmt.text(entry.action) }),
      h("td", { class: "id", text: fmt.text(entry.target), title: entry.target }),
      h("td", { class: "message", text: detail || "—", title: detail }));
  }

  els.refresh.addEventListener("click", () => load());
  els.more.addEventListener("click", () => load({ more: true }));
  return { load };
}
