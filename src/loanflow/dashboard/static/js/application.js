// One application in the drawer: its facts and business review, the timeline of what
// happened to it (GET /v1/applications/{id}/timeline), why it took its route, the
// decision trace (each figure with its inputs) and the application itself, masked as
// the API gives it.

import { h, say } from "./dom.js";
import * as fmt from "./format.js";

const KIND_LABELS = {
  received: "received", attempt_failed: "attempt failed", stored: "stored", rejected: "rejected",
  dead_lettered: "dead lettered", replayed: "replayed", discarded: "discarded",
  review_decided: "review decided",
};

/**
 * `drawer`: the shell (drawer.js); `els`: this body's elements; `canOperate()` whether
 * the session may decide; `onDecide(item, decision)` opens the decision dialog.
 * Returns {open(id), refresh(id)}.
 */
export function createApplicationView({ api, drawer, els, canOperate, onDecide }) {
  const path = (id, tail = "") => `/v1/applications/${encodeURIComponent(id)}${tail}`;
  let shown = null; // the application on show, for the decision buttons

  async function open(id) {
    const isCurrent = drawer.open("application", id, { title: "Application" });
    for (const node of [els.facts, els.timeline, els.reasons, els.trace, els.application]) {
      node.replaceChildren();
    }
    els.review.hidden = true;
    shown = null;
    say(els.timelineStatus, "Loading the timeline…");
    // Both at once; each part shows as soon as its answer is in.
    const application = api.get(path(id));
    const timeline = api.get(path(id, "/timeline"));
    timeline.catch(() => {}); // awaited below: not an unhandled rejection meanwhile
    let trace = null;
    try {
      const item = await application;
      if (!isCurrent()) return;
      render(item);
      trace = item.enrichment?.trace;
      drawer.say("");
    } catch (err) {
      if (isCurrent()) drawer.say(`Could not load it: ${err.summary || err.message}`, "bad");
    }
    try {
      const body = await timeline;
      if (!isCurrent()) return;
      showTimeline(Array.isArray(body?.events) ? body.events : []);
      // The timeline's trace is the same one; it is there for an application read alone.
      trace = Array.isArray(body?.trace) ? body.trace : trace;
      say(els.timelineStatus, "");
    } catch (err) {
      if (isCurrent()) say(els.timelineStatus, `Timeline unavailable: ${err.summary || err.message}`, "bad");
    }
    if (isCurrent()) showTrace(trace);
  }

  function render(item) {
    const e = item.enrichment || {};
    const facts = [
      ["Status", item.status], ["Route", e.route], ["Channel", item.channel],
      ["Partner", item.partner_id], ["External id", item.external_id],
      ["Received", fmt.stamp(item.received_at)], ["Processed", fmt.stamp(item.processed_at)],
      ["End to end", fmt.ms(item.latency_ms)],
      ["Score · tier", e.score == null ? null : `${e.score} · ${fmt.text(e.risk_tier)}`],
      ["Flags", Array.isArray(e.flags) && e.flags.length ? e.flags.join(", ") : null],
      ["Versions", item.rules_version ? `rules ${item.rules_version} · product ${fmt.text(item.product_version)}` : null],
    ];
    els.facts.replaceChildren(...facts.flatMap(([k, v]) => [h("dt", { text: k }), h("dd", { text: fmt.text(v) })]));
    showReview(item);
    const reasons = [
      ...(Array.isArray(e.route_reasons) ? e.route_reasons : []),
      ...(Array.isArray(item.rejection_reasons) ? item.rejection_reasons : []),
    ];
    els.reasons.replaceChildren(...(reasons.length ? reasons.map((r) => h("li", {},
      h("code", { text: fmt.text(r.code) }), " ", fmt.text(r.message))) : [h("li", { class: "muted", text: "—" })]));
    els.application.textContent = item.application == null ? "—" : JSON.stringify(item.application, null, 2);
  }

  function showReview(item) {
    const review = item.review;
    shown = item;
    els.review.hidden = !review;
    if (!review) return;
    const open = review.status === "open";
    els.review.dataset.status = review.status;
    els.reviewText.textContent = open
      ? "Open: waiting for an operator's decision."
      : `${review.decision === "approve" ? "Approved" : "Declined"} by ${fmt.text(review.reviewed_by)} at ${
        fmt.stamp(review.reviewed_at)}: ${fmt.text(review.reason)}`;
    els.decide.hidden = !(open && canOperate());
  }

  function showTimeline(events) {
    els.timeline.replaceChildren(...events.map((ev) => h("li", { dataset: { kind: String(ev.kind ?? "") } },
      h("time", { datetime: ev.at, title: ev.at, text: fmt.stamp(ev.at) }),
      h("span", { class: `kind kind-${ev.kind}`, text: KIND_LABELS[ev.kind] || fmt.text(ev.kind) }),
      h("span", { class: "summary", text: fmt.text(ev.summary) }),
      details(ev.detail))));
    if (!events.length) els.timeline.append(h("li", { class: "muted", text: "No events recorded." }));
  }

  function showTrace(trace) {
    const entries = Array.isArray(trace) ? trace : [];
    els.trace.replaceChildren(...entries.map((t) => h("tr", {},
      h("td", { class: "code", text: fmt.text(t.name) }),
      h("td", { class: "num", text: fmt.text(t.value) }),
      h("td", { class: "inputs", text: pairs(t.inputs) }))));
    if (!entries.length) els.trace.append(h("tr", {}, h("td", { class: "muted", colspan: 3, text: "No trace: not assessed." })));
  }

  els.approve.addEventListener("click", () => shown && onDecide(shown, "approve"));
  els.decline.addEventListener("click", () => shown && onDecide(shown, "decline"));
  return { open };
}

/** An event's detail as one muted line of `name: value`; nothing when it has none. */
function details(detail) {
  const text = pairs(detail, ": ");
  return text ? h("span", { class: "detail", text }) : null;
}

/**
 * `{a: 1, b: [x, y], c: [{code, message}]}` as "a = 1, b = x y, c = code": one short line
 * (a list of reasons by their codes: the drawer lists their messages under the timeline).
 */
function pairs(object, sep = " = ") {
  if (!object || typeof object !== "object") return "";
  return Object.entries(object).map(([k, v]) => `${k}${sep}${short(v)}`).join(", ");
}

function short(value) {
  if (Array.isArray(value)) return value.length ? value.map(short).join(" ") : "none";
  if (value !== null && typeof value === "object") return value.code ?? JSON.stringify(value);
  return fmt.text(value);
}
