// Making an API key (POST /v1/keys): scopes, label, an optional partner, rate limit, burst
// and expiry. The answer carries the key's secret, this once: it is shown in a box of its
// own, with a copy button, until the operator dismisses it or leaves the view (or the
// page), and then removed from the DOM. It never reaches the address, storage or the
// console, and no variable keeps it: the box's input is its only holder.

import { h, say } from "./dom.js";

/** The body's fields, as the form names its inputs and the API its 422s. */
const FIELDS = ["scopes", "label", "partner_id", "rate_per_s", "burst", "expires_in_days"];
const NUMBERS = ["rate_per_s", "burst", "expires_in_days"];

/**
 * `els`: the form's and the secret box's elements. `onMade(key)` once a key exists;
 * `onRefused()` on a 403. Returns {leave()}: drop the secret (the view was left).
 */
export function createNewKey({ api, els, onMade, onRefused }) {
  // `ticket` moves when the view is left: a key made meanwhile is listed, its secret dropped.
  const run = { busy: false, ticket: 0 };

  function body() {
    const data = new FormData(els.form);
    const made = { scopes: data.getAll("scopes").map(String), label: String(data.get("label") ?? "") };
    const partner = String(data.get("partner_id") ?? "");
    if (partner) made.partner_id = partner; // as typed: the server says what is wrong with it
    const unreadable = [];
    for (const name of NUMBERS) {
      const input = els.form.elements.namedItem(name);
      if (input.validity.badInput) unreadable.push({ field: name, message: "expected a number" });
      else if (input.value !== "") made[name] = Number(input.value);
    }
    return { made, unreadable };
  }

  async function submit(ev) {
    ev.preventDefault();
    if (run.busy || shown()) return;
    clearErrors();
    const { made, unreadable } = body();
    if (unreadable.length) {
      showErrors(unreadable);
      return;
    }
    const ticket = run.ticket;
    run.busy = true;
    ready();
    say(els.status, "Making the key…");
    try {
      const answer = await api.post("/v1/keys", made);
      say(els.status, "");
      onMade(answer.key);
      if (ticket === run.ticket) {
        els.form.reset();
        showSecret(answer.key, answer.secret);
      } else {
        say(els.status, `Key ${answer.key.id} was made after you left this view, so its secret was not shown: revoke it and make another.`, "warn");
      }
    } catch (err) {
      if (err.status === 422 && Array.isArray(err.problem?.errors)) showErrors(err.problem.errors);
      else if (err.status === 403) onRefused();
      else say(els.status, `Not made: ${err.summary || err.message}`, "bad");
    } finally {
      run.busy = false;
      ready();
    }
  }

  /** Errors at the fields they name (`scopes[0]` at the scopes); others in the status line. */
  function showErrors(errors) {
    const elsewhere = [];
    let first = null;
    for (const { field, message } of errors) {
      const name = String(field ?? "").split(/[.[]/)[0];
      if (!FIELDS.includes(name)) {
        elsewhere.push(`${field}: ${message}`);
        continue;
      }
      say(errorOf(name), String(message ?? "invalid"), "bad");
      const input = els.form.elements.namedItem(name);
      for (const each of input instanceof RadioNodeList ? input : [input]) each.setAttribute("aria-invalid", "true");
      first ??= input instanceof RadioNodeList ? input[0] : input;
    }
    say(els.status, elsewhere.length ? `Not made: ${elsewhere.join("; ")}` : "Not made: see the marked fields.", "bad");
    first?.focus();
  }

  function clearErrors(name = null) {
    for (const field of name ? [name] : FIELDS) {
      say(errorOf(field), "");
      for (const input of els.form.querySelectorAll(`[name="${field}"]`)) input.removeAttribute("aria-invalid");
    }
  }

  const errorOf = (name) => els.form.querySelector(`[data-error-for="${name}"]`);

  function showSecret(key, secret) {
    els.secretTitle.textContent = `Key ${key.id}${key.label ? ` (“${key.label}”)` : ""} made`;
    const input = h("input", {
      id: "key-secret-value", class: "secret", readonly: true, spellcheck: "false", autocomplete: "off",
      "aria-label": "The new key, shown once", onfocus: (ev) => ev.target.select(),
    });
    input.value = secret; // a property, never an attribute: it stays out of the markup
    els.slot.replaceChildren(input);
    say(els.copyStatus, "");
    els.secret.hidden = false;
    ready();
    input.focus();
  }

  /** The secret out of the page: the box's input is removed, not merely hidden. */
  function dismiss() {
    els.slot.replaceChildren();
    els.secretTitle.textContent = "";
    say(els.copyStatus, "");
    els.secret.hidden = true;
    ready();
  }

  const shown = () => els.slot.childElementCount > 0;

  // One key at a time: the next waits until this one's secret was taken and dismissed.
  function ready() {
    els.make.disabled = run.busy || shown();
    els.make.title = shown() ? "Hide the new key's secret first" : "";
  }

  async function copy() {
    const input = els.slot.querySelector("input");
    if (!input) return;
    try {
      await navigator.clipboard.writeText(input.value);
      say(els.copyStatus, "Copied to the clipboard.");
    } catch {
      // No clipboard API (a plain-http address other than localhost) or no permission.
      input.focus();
      input.select();
      const copied = document.execCommand("copy");
      say(els.copyStatus, copied ? "Copied to the clipboard." : "Not copied: the key is selected, press Ctrl+C.",
        copied ? "" : "warn");
    }
  }

  els.form.addEventListener("submit", submit);
  els.form.addEventListener("input", (ev) => {
    if (FIELDS.includes(ev.target.name)) clearErrors(ev.target.name);
  });
  els.copy.addEventListener("click", copy);
  els.dismiss.addEventListener("click", dismiss);
  // Leaving the page: the back-forward cache must not keep the secret either.
  window.addEventListener("pagehide", dismiss);
  return {
    leave() {
      run.ticket += 1;
      dismiss();
    },
  };
}
