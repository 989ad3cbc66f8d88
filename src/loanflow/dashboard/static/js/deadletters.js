// The dead-letter table: the manual-review queue, filtered and searched by the server
// (it holds 100,000 of them; the page holds one page), newest first, cursor pages.

import { query } from "./api.js";
import { h, say } from "./dom.js";
import * as fmt from "./format.js";

export const PAGE_SIZE = 50;
const FILTER_FIELDS = ["error_code", "channel", "partner_id", "q"];

/**
 * `els`: the table's elements from index.html. `onInspect(id)` opens the drawer;
 * `onReplay(item)` replays one as it is. Returns {reload, notifyNew, filter}.
 */
export function createDeadLetters({ api, state, els, onInspect, onReplay }) {
  const view = {
    filter: {}, // as applied (the form may hold unapplied edits)
    cursors: [null], // cursors[i] opens page i; going back needs the ones before
    page: 0,
    next: null,
    loading: 0,
  };

  async function load() {
    const ticket = ++view.loading; // a slow answer must not overwrite a newer one
    els.table.setAttribute("aria-busy", "true");
    const params = { ...view.filter, limit: PAGE_SIZE, cursor: view.cursors[view.page] };
    try {
      const body = await api.get(`/v1/dead-letters${query(params)}`);
      if (ticket !== view.loading) return;
      const items = Array.isArray(body?.items) ? body.items : [];
      view.next = body?.next_cursor || null;
      els.rows.replaceChildren(...items.map(row));
      els.empty.hidden = items.length > 0;
      say(els.status, "");
      els.newPill.hidden = true;
    } catch (err) {
      if (ticket !== view.loading) return;
      view.next = null;
      els.rows.replaceChildren();
      els.empty.hidden = true;
      say(els.status, `Dead letters unavailable: ${err.summary || err.message}. Refresh to try again.`, "bad");
    } finally {
      if (ticket === view.loading) {
        els.table.removeAttribute("aria-busy");
        els.prev.disabled = view.page === 0;
        els.next.disabled = !view.next;
        els.pageLabel.textContent = `page ${view.page + 1}`;
      }
    }
  }

  function row(item) {
    const attempts = Array.isArray(item.attempts) ? item.attempts.length : item.attempts;
    const actions = h("td", { class: "row-actions" },
      h("button", { type: "button", class: "ghost small", text: "Inspect",
        onclick: () => onInspect(item.id) }));
    if (state.canOperate) {
      actions.append(
        h("button", { type: "button", class: "small", text: "Replay", dataset: { action: "replay" },
          onclick: (ev) => onReplay(item, ev.currentTarget) }),
        h("button", { type: "button", class: "small danger", text: "Discard…", dataset: { action: "discard" },
          onclick: () => onInspect(item.id, { discard: true }) }));
    }
    return h("tr", { dataset: { id: String(item.id ?? "") } },
      h("td", { class: "nowrap", text: fmt.stamp(item.dead_lettered_at), title: item.dead_lettered_at }),
      h("td", { class: "id", text: fmt.text(item.id), title: item.id }),
      h("td", { text: fmt.text(item.channel) }),
      h("td", { text: fmt.text(item.partner_id) }),
      h("td", { text: fmt.text(item.external_id) }),
      h("td", { class: "code", text: fmt.text(item.error_code) }),
      h("td", { class: "message", text: fmt.text(item.last_error), title: item.last_error }),
      h("td", { class: "num", text: fmt.count(attempts) }),
      actions);
  }

  els.form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const data = new FormData(els.form);
    view.filter = Object.fromEntries(
      FILTER_FIELDS.map((f) => [f, String(data.get(f) || "").trim()]).filter(([, v]) => v));
    view.cursors = [null];
    view.page = 0;
    load();
  });
  els.refresh.addEventListener("click", load);
  els.newPill.addEventListener("click", load);
  els.prev.addEventListener("click", () => {
    if (view.page > 0) view.page -= 1;
    load();
  });
  els.next.addEventListener("click", () => {
    if (!view.next) return;
    view.cursors[view.page + 1] = view.next;
    view.page += 1;
    load();
  });

  return {
    reload: load,
    /** A dead letter arrived: say so rather than move the rows under the operator's eyes. */
    notifyNew: () => {
      els.newPill.hidden = false;
    },
    filter: () => ({ ...view.filter }),
  };
}
