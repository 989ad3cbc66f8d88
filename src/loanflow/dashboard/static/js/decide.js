// A business-review decision: approve or decline one application of the review queue,
// with the reason the operator types (required, kept in the audit trail). Decisions are
// final: when another operator decided first, the server answers 409 and this says so.

import { say } from "./dom.js";
import * as fmt from "./format.js";

const VERBS = {
  approve: { title: "Approve application", button: "Approve", done: "Approved" },
  decline: { title: "Decline application", button: "Decline", done: "Declined" },
};

/**
 * `els`: the dialog's elements. `onDecided(id, review)` once the application has left the
 * queue: decided here (`review` the recorded decision) or already decided elsewhere
 * (`review` the one the server holds). Returns {open(item, decision)}.
 */
export function createDecide({ api, els, onDecided, toast }) {
  const run = { item: null, decision: null, ticket: 0, settled: false };

  function open(item, decision) {
    run.ticket += 1;
    Object.assign(run, { item, decision, settled: false });
    const verb = VERBS[decision];
    els.title.textContent = verb.title;
    els.target.textContent = [item.id, item.external_id && `external id ${item.external_id}`,
      item.risk_tier && `tier ${item.risk_tier}`].filter(Boolean).join(" · ");
    els.reason.value = "";
    els.reason.disabled = false;
    els.confirm.textContent = verb.button;
    els.confirm.classList.toggle("danger", decision === "decline");
    els.cancel.textContent = "Cancel";
    els.dialog.dataset.outcome = "";
    say(els.status, "");
    ready();
    els.dialog.showModal();
    els.reason.focus();
  }

  function ready() {
    els.confirm.disabled = run.settled || !els.reason.value.trim();
  }

  async function confirm() {
    const reason = els.reason.value.trim();
    if (!reason || run.settled) return;
    const { item, decision, ticket } = run;
    els.confirm.disabled = true;
    say(els.status, "Recording…");
    try {
      const answer = await api.post(`/v1/applications/${encodeURIComponent(item.id)}/review`, { decision, reason });
      if (ticket !== run.ticket) return;
      toast(`${VERBS[decision].done} ${item.id}`);
      els.dialog.close();
      onDecided(item.id, answer?.review ?? null);
    } catch (err) {
      if (ticket !== run.ticket) return;
      if (err.status === 409 && err.type === "review-already-decided") {
        // Someone was quicker: their decision stands, and the row is no longer open.
        run.settled = true;
        els.reason.disabled = true;
        els.cancel.textContent = "Close";
        els.dialog.dataset.outcome = "conflict";
        const held = err.problem?.review;
        say(els.status, held
          ? `Already decided: ${held.decision === "approve" ? "approved" : "declined"} by ${
            fmt.text(held.reviewed_by)} at ${fmt.stamp(held.reviewed_at)} (“${fmt.text(held.reason)}”). A decision is final.`
          : `Already decided: ${err.message}`, "bad");
        onDecided(item.id, held ?? null);
      } else {
        say(els.status, `Not recorded: ${err.summary || err.message}`, "bad");
        ready();
      }
    }
  }

  function cancel() {
    run.ticket += 1;
    els.dialog.close();
  }

  // Enter in the reason field confirms, rather than submitting the form unconfirmed.
  els.form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    confirm();
  });
  els.reason.addEventListener("input", ready);
  els.confirm.addEventListener("click", confirm);
  els.cancel.addEventListener("click", cancel);
  els.dialog.addEventListener("cancel", () => { run.ticket += 1; });
  return { open };
}
