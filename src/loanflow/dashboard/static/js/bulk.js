// Bulk replay or discard by the table's filter: the server counts first (dry run), the
// operator confirms the number, and only then does anything change.

import { say } from "./dom.js";

const VERBS = {
  replay: { title: "Replay all matching dead letters", done: "Replayed", button: "Replay" },
  discard: { title: "Discard all matching dead letters", done: "Discarded", button: "Discard" },
};

/** `filter()` gives the table's applied filter; `onChanged()` after the action ran. */
export function createBulk({ api, els, filter, onChanged, toast }) {
  const run = { action: null, filter: null, count: null, ticket: 0 };

  function describe(f) {
    const parts = Object.entries(f).map(([k, v]) => `${k.replace("_", " ")} = ${JSON.stringify(v)}`);
    return parts.length ? `Filter: ${parts.join(", ")}` : "No filter: this covers every open dead letter.";
  }

  async function open(action) {
    const ticket = ++run.ticket;
    const { q, ...byFields } = filter();
    Object.assign(run, { action, filter: byFields, count: null });
    const verb = VERBS[action];
    els.title.textContent = verb.title;
    els.filter.textContent = describe(run.filter);
    els.reason.hidden = action !== "discard";
    els.reason.value = "";
    els.confirm.textContent = verb.button;
    els.confirm.disabled = true;
    els.count.dataset.count = "";
    els.dialog.showModal();
    if (q) {
      // The server acts in bulk by fields only: acting on more than the operator sees is
      // exactly the mistake this dialog is here to prevent.
      say(els.count, "The search box is not a bulk filter: clear it and filter by error code, channel or partner.", "bad");
      return;
    }
    say(els.count, "Counting…");
    try {
      const body = await api.post(`/v1/dead-letters/${action}`, { filter: run.filter, dry_run: true });
      if (ticket !== run.ticket) return;
      run.count = Number(body?.count ?? 0);
      say(els.count, run.count === 1 ? "1 dead letter matches." : `${run.count} dead letters match.`);
      els.count.dataset.count = String(run.count);
      ready();
    } catch (err) {
      if (ticket === run.ticket) say(els.count, `Could not count: ${err.summary || err.message}`, "bad");
    }
  }

  function ready() {
    const needsReason = run.action === "discard" && !els.reason.value.trim();
    els.confirm.disabled = !(run.count > 0) || needsReason;
  }

  async function confirm() {
    const ticket = run.ticket;
    const body = { filter: run.filter, dry_run: false };
    if (run.action === "discard") body.reason = els.reason.value.trim();
    els.confirm.disabled = true;
    say(els.count, "Working…");
    try {
      const answer = await api.post(`/v1/dead-letters/${run.action}`, body);
      if (ticket !== run.ticket) return;
      toast(`${VERBS[run.action].done} ${Number(answer?.count ?? 0)} dead letters`);
      els.dialog.close();
      onChanged();
    } catch (err) {
      say(els.count, `Failed: ${err.summary || err.message}`, "bad");
      ready();
    }
  }

  function cancel() {
    run.ticket += 1; // a count still on its way is no longer wanted
    els.dialog.close();
  }

  // Enter in the reason field would submit the dialog's form and close it unconfirmed.
  els.form.addEventListener("submit", (ev) => ev.preventDefault());
  els.reason.addEventListener("input", ready);
  els.confirm.addEventListener("click", confirm);
  els.cancel.addEventListener("click", cancel);
  els.dialog.addEventListener("cancel", () => { run.ticket += 1; });
  return { open };
}
