// The business review queue (GET /v1/reviews): applications the scorecard or the
// velocity flags routed to manual_review, oldest first, with why. With the operate
// scope each row offers approve and decline; a decided row leaves the table.

import { query } from "./api.js";
import { h } from "./dom.js";
import * as fmt from "./format.js";
import { listPage, pagedTable } from "./paged.js";

export const PAGE_SIZE = 50;

/**
 * `els`: the table's elements. `onInspect(id)` opens the drawer; `onDecide(item, decision)`
 * opens the decision dialog. Returns {load, remove}.
 */
export function createReviews({ api, state, els, onInspect, onDecide }) {
  const pages = pagedTable({
    els,
    fetchPage: async (cursor) => listPage(await api.get(`/v1/reviews${query({ limit: PAGE_SIZE, cursor })}`)),
    row,
    failed: (err) => `Review queue unavailable: ${err.summary || err.message}. Refresh to try again.`,
    settle,
  });

  /** The first page again (`more`: the next page, added below). */
  function load({ more = false } = {}) {
    els.readonly.hidden = state.canOperate;
    return pages.load({ more });
  }

  function settle() {
    const n = els.rows.children.length;
    els.empty.hidden = n > 0 || !els.status.hidden;
    els.more.hidden = !pages.next();
    els.count.textContent = n ? `${fmt.count(n)}${pages.next() ? "+" : ""} waiting` : "";
  }

  function row(item) {
    const reasons = Array.isArray(item.route_reasons) ? item.route_reasons : [];
    const why = reasons.map((r) => r.message || r.code).join("; ");
    const actions = h("td", { class: "row-actions" },
      h("button", { type: "button", class: "ghost small", text: "Open", onclick: () => onInspect(item.id) }));
    if (state.canOperate) {
      actions.append(
        h("button", { type: "button", class: "small", text: "Approve…", dataset: { action: "approve" },
          onclick: () => onDecide(item, "approve") }),
        h("button", { type: "button", class: "small danger", text: "Decline…", dataset: { action: "decline" },
          onclick: () => onDecide(item, "decline") }));
    }
    return h("tr", { dataset: { id: String(item.id ?? "") } },
      h("td", { class: "nowrap", text: fmt.stamp(item.received_at), title: item.received_at }),
      h("td", { class: "id", text: fmt.text(item.id), title: item.id }),
      h("td", { text: fmt.text(item.channel) }),
      h("td", { text: fmt.text(item.external_id), title: item.external_id }),
      h("td", { text: item.risk_tier ? `${item.risk_tier} · ${fmt.text(item.score)}` : "—" }),
      h("td", { class: "message", text: why || "—", title: reasons.map((r) => `${r.code}: ${r.message}`).join("\n") }),
      actions);
  }

  /** A decided application leaves the queue at once, without a reload. */
  function remove(id) {
    for (const tr of els.rows.querySelectorAll("tr")) {
      if (tr.dataset.id === id) tr.remove();
    }
    settle();
  }

  els.refresh.addEventListener("click", () => load());
  els.more.addEventListener("click", () => load({ more: true }));
  return { load, remove };
}
