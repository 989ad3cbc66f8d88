// The API keys (scope admin; GET /v1/keys): every key newest first, never a secret, with
// Revoke for an active one after a confirmation (POST /v1/keys/{id}/revoke; the answer
// replaces the row). A session without the admin scope is told what it needs instead:
// the page knows its scopes (/v1/session), and a 403 says the same if it was wrong.

import { h, say } from "./dom.js";
import * as fmt from "./format.js";
import { pagedTable } from "./paged.js";

/**
 * `els`: the view's and the revoke dialog's elements. Returns {load, add(key),
 * refuse()}: `add` shows a key made here at the top; `refuse` explains the admin scope.
 */
export function createKeys({ api, state, toast, els }) {
  const { load: loadRows } = pagedTable({
    els,
    // One page: the server lists every key, oldest first.
    fetchPage: async () => {
      const body = await api.get("/v1/keys");
      return { items: Array.isArray(body?.items) ? body.items.slice().reverse() : [], next: null };
    },
    row,
    failed(err) {
      if (err.status === 403) refuse(); // the session's scopes changed under the page
      return err.status === 403 ? "" : `API keys unavailable: ${err.summary || err.message}. Refresh to try again.`;
    },
    settle,
  });

  /** The list again, or the explanation for a session without the admin scope. */
  function load() {
    if (!state.canAdmin) {
      refuse();
      return Promise.resolve();
    }
    els.refused.hidden = true;
    for (const section of els.sections) section.hidden = false;
    return loadRows();
  }

  function refuse() {
    const scopes = Array.isArray(state.session?.scopes) ? state.session.scopes : [];
    els.scopes.textContent = scopes.length ? scopes.join(", ") : "no scope";
    els.refused.hidden = false;
    for (const section of els.sections) section.hidden = true;
  }

  function settle() {
    const n = els.rows.children.length;
    els.empty.hidden = n > 0 || !els.status.hidden;
    const active = els.rows.querySelectorAll("tr[data-state=active]").length;
    els.count.textContent = n ? `${fmt.count(n)} ${n === 1 ? "key" : "keys"}, ${fmt.count(active)} active` : "";
  }

  function row(key) {
    const scopes = Array.isArray(key.scopes) ? key.scopes.join(", ") : "";
    const ended = key.revoked_at ?? key.expires_at;
    const actions = h("td", { class: "row-actions" });
    if (key.state === "active") {
      actions.append(h("button", { type: "button", class: "ghost danger small", text: "Revoke…",
        dataset: { action: "revoke" }, onclick: () => revoke.open(key) }));
    }
    const limit = limitOf(key);
    return h("tr", { dataset: { id: String(key.id ?? ""), state: String(key.state ?? "") } },
      h("td", { class: "id", text: fmt.text(key.id), title: `${key.id}, created ${key.created_at}` }),
      h("td", { text: fmt.text(key.label), title: key.label }),
      h("td", { text: scopes || "—", title: scopes }),
      h("td", { class: `key-state key-${key.state}`, text: fmt.text(key.state) }),
      h("td", { text: key.partner_id ?? "any", title: key.partner_id
        ? `Submits for partner ${key.partner_id} only` : "Not bound to a partner" }),
      h("td", { text: limit.text, title: limit.title }),
      h("td", { class: "nowrap c-created", text: fmt.day(key.created_at), title: key.created_at }),
      h("td", { class: "nowrap", text: ended ? fmt.day(ended) : "never",
        title: key.revoked_at ? `revoked ${key.revoked_at}` : key.expires_at ? `expires ${key.expires_at}` : "" }),
      actions);
  }

  /** A key made here, at the top, without asking for the whole list again. */
  function add(key) {
    els.rows.prepend(row(key));
    settle();
  }

  function replace(key) {
    for (const tr of els.rows.querySelectorAll("tr")) {
      if (tr.dataset.id === key.id) tr.replaceWith(row(key));
    }
    settle();
  }

  const revoke = createRevoke({ api, state, toast, els: els.revoke, onRevoked: replace, onRefused: refuse });
  els.refresh.addEventListener("click", () => load());
  return { load, add, refuse };
}

/** The key's own token bucket, in words: null is the service's default, 0 none. */
function limitOf(key) {
  if (key.rate_per_s == null) return { text: "default", title: "The service's default rate limit" };
  if (key.rate_per_s === 0) return { text: "none", title: "No rate limit" };
  const burst = key.burst ?? Math.max(1, Math.ceil(key.rate_per_s));
  return { text: `${key.rate_per_s}/s, burst ${fmt.count(burst)}`,
    title: `${key.rate_per_s} requests a second, bursts of up to ${burst}` };
}

/** The confirmation of a revocation. Returns {open(key)}. */
function createRevoke({ api, state, toast, els, onRevoked, onRefused }) {
  const run = { key: null, ticket: 0 };

  function open(key) {
    run.ticket += 1;
    run.key = key;
    els.target.textContent = [key.id, key.label && `“${key.label}”`,
      Array.isArray(key.scopes) && key.scopes.join(", ")].filter(Boolean).join(" · ");
    els.self.hidden = key.id !== state.session?.key_id;
    els.confirm.disabled = false;
    say(els.status, "");
    els.dialog.showModal();
    els.cancel.focus(); // the safe choice is the default one
  }

  async function confirm() {
    const { key, ticket } = run;
    if (!key) return;
    els.confirm.disabled = true;
    say(els.status, "Revoking…");
    try {
      const answer = await api.post(`/v1/keys/${encodeURIComponent(key.id)}/revoke`);
      // Revoked even if the dialog was closed meanwhile: the row says so either way.
      if (ticket === run.ticket) els.dialog.close();
      onRevoked(answer?.id ? answer : { ...key, state: "revoked" });
      toast(`Revoked key ${key.id}`);
      // This session's own key: the next call is a 401, which leads to the login page.
      if (key.id === state.session?.key_id) api.get("/v1/session").catch(() => {});
    } catch (err) {
      if (ticket !== run.ticket) return;
      if (err.status === 403) {
        els.dialog.close();
        onRefused();
        return;
      }
      say(els.status, err.status === 404
        ? `Not revoked: the server knows no key ${key.id}. Refresh the list.`
        : `Not revoked: ${err.summary || err.message}`, "bad");
      els.confirm.disabled = err.status === 404;
    }
  }

  function cancel() {
    run.ticket += 1;
    els.dialog.close();
  }

  els.form.addEventListener("submit", (ev) => ev.preventDefault());
  els.confirm.addEventListener("click", confirm);
  els.cancel.addEventListener("click", cancel);
  els.dialog.addEventListener("cancel", () => { run.ticket += 1; });
  return { open };
}
