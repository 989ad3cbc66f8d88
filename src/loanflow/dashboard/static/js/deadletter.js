// One dead letter in the drawer: its facts, every attempt's error, the masked
// application; and, with the operate scope, replay (as is or corrected) and discard.

import { h, say } from "./dom.js";
import * as fmt from "./format.js";

/**
 * `drawer`: the shell (drawer.js); `els`: this body's elements; `onChanged()` after a
 * replay or discard succeeded. Returns {open(id, {discard})}.
 */
export function createDeadLetterView({ api, drawer, els, onChanged, toast }) {
  const current = { id: null };
  const path = (id, action = "") =>
    `/v1/dead-letters/${encodeURIComponent(id)}${action ? `/${action}` : ""}`;

  async function open(id, { discard = false } = {}) {
    const isCurrent = drawer.open("dead_letter", id, { title: "Dead letter" });
    current.id = id;
    for (const node of [els.facts, els.lastError, els.attempts, els.application]) node.replaceChildren();
    els.edit.checked = false;
    els.editor.hidden = true;
    els.reason.value = "";
    els.discard.disabled = true;
    try {
      const item = await api.get(path(id));
      if (!isCurrent()) return;
      render(item);
      drawer.say("");
      if (discard) els.reason.focus();
    } catch (err) {
      if (isCurrent()) drawer.say(`Could not load it: ${err.summary || err.message}`, "bad");
    }
  }

  function render(item) {
    const facts = [
      ["Channel", item.channel], ["Partner", item.partner_id], ["External id", item.external_id],
      ["Error code", item.error_code], ["Received", fmt.stamp(item.received_at)],
      ["Dead-lettered", fmt.stamp(item.dead_lettered_at)],
      ["Attempts", Array.isArray(item.attempts) ? item.attempts.length : item.attempts],
    ];
    els.facts.replaceChildren(...facts.flatMap(([k, v]) => [h("dt", { text: k }), h("dd", { text: fmt.text(v) })]));
    els.lastError.textContent = fmt.text(item.last_error);
    const attempts = Array.isArray(item.attempts) ? item.attempts : [];
    els.attempts.replaceChildren(...attempts.map((a) => h("tr", {},
      h("td", { class: "num", text: fmt.text(a.attempt) }),
      h("td", { class: "nowrap", text: fmt.stamp(a.at) }),
      h("td", { class: "code", text: fmt.text(a.error_code) }),
      h("td", { class: "message", text: fmt.text(a.message) }))));
    const application = item.application ?? null;
    els.application.textContent = application == null ? "—" : JSON.stringify(application, null, 2);
    els.json.value = application == null ? "{}" : JSON.stringify(application, null, 2);
    checkJson();
  }

  /** The corrected application, or null (and the reason shown) when it is not a JSON object. */
  function checkJson() {
    let value = null;
    let problem = "";
    try {
      value = JSON.parse(els.json.value);
      if (value == null || typeof value !== "object" || Array.isArray(value)) {
        problem = "Expected a JSON object (the application), got " + (Array.isArray(value) ? "an array" : typeof value);
        value = null;
      }
    } catch (err) {
      problem = `Not valid JSON: ${err.message}`;
    }
    say(els.jsonError, els.edit.checked ? problem : "", "bad");
    say(els.jsonWarning, els.edit.checked && value ? stillMasked(value) : "", "warn");
    els.replay.disabled = els.edit.checked && value == null;
    return value;
  }

  /** A warning when the shown (masked) SSN or birth date would be sent back as the value. */
  function stillMasked(application) {
    const applicant = application.applicant || {};
    const masked = ["ssn", "date_of_birth"].filter((f) => String(applicant[f] ?? "").includes("*"));
    return masked.length
      ? `applicant.${masked.join(" and applicant.")} still masked: enter the real value, or the server will refuse the correction.`
      : "";
  }

  async function act(action, body, button) {
    const id = current.id;
    button.disabled = true;
    drawer.say(action === "replay" ? "Replaying…" : "Discarding…");
    try {
      await api.post(path(id, action), body);
      toast(action === "replay" ? `Replayed ${id}: queued again` : `Discarded ${id}`);
      drawer.close();
      onChanged();
    } catch (err) {
      drawer.say(`${action === "replay" ? "Replay" : "Discard"} failed: ${err.summary || err.message}`, "bad");
    } finally {
      button.disabled = false;
    }
  }

  els.edit.addEventListener("change", () => {
    els.editor.hidden = !els.edit.checked;
    checkJson();
  });
  els.json.addEventListener("input", checkJson);
  els.reason.addEventListener("input", () => {
    els.discard.disabled = !els.reason.value.trim();
  });
  els.replay.addEventListener("click", () => {
    if (!els.edit.checked) return act("replay", undefined, els.replay);
    const application = checkJson();
    if (application) act("replay", { application }, els.replay);
  });
  els.discard.addEventListener("click", () => {
    const reason = els.reason.value.trim();
    if (reason) act("discard", { reason }, els.discard);
  });

  return { open };
}
