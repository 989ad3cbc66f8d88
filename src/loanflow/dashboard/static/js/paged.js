// A table filled a page at a time ("More" adds the next page below), as the search, the
// review queue and the audit trail show theirs: the newest request wins (a slow answer
// must not overwrite a newer one), the table says it is busy meanwhile, and a failure is
// said in the status line.

import { say } from "./dom.js";

/**
 * `els`: {table, rows, status}. `fetchPage(cursor)` resolves to {items, next} (`cursor`:
 * null for the first page, else the `next` of the last); `row(item)` makes a <tr>;
 * `failed(err)` is the status line's text; `settle()` runs after every answer that still
 * counts. `clearOnFailure`: a first page that fails empties the table. Returns
 * {load({more}), next()}.
 */
export function pagedTable({ els, fetchPage, row, failed, settle, clearOnFailure = true }) {
  const view = { next: null, ticket: 0 };

  async function load({ more = false } = {}) {
    const ticket = ++view.ticket;
    els.table.setAttribute("aria-busy", "true");
    try {
      const page = await fetchPage(more ? view.next : null);
      if (ticket !== view.ticket) return;
      view.next = page.next;
      if (more) els.rows.append(...page.items.map(row));
      else els.rows.replaceChildren(...page.items.map(row));
      say(els.status, "");
    } catch (err) {
      if (ticket !== view.ticket) return;
      view.next = null;
      if (!more && clearOnFailure) els.rows.replaceChildren();
      say(els.status, failed(err), "bad");
    } finally {
      if (ticket === view.ticket) {
        els.table.removeAttribute("aria-busy");
        settle();
      }
    }
  }

  return { load, next: () => view.next };
}

/** The items and next cursor of an API list answer ({items, next_cursor}). */
export function listPage(body) {
  return { items: Array.isArray(body?.items) ? body.items : [], next: body?.next_cursor || null };
}
