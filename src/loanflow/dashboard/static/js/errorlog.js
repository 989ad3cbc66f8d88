// The live error log: rejections, failures, dead letters and operator actions, newest
// first, the last MAX_EVENTS kept in the page. Filter and search run here, over what
// the page holds: instant, and no load on the server.

import { debounce, h } from "./dom.js";
import * as fmt from "./format.js";

const MAX_EVENTS = 500;
const KIND_LABELS = {
  rejection: "rejection", failure: "failure", dead_letter: "dead letter", operator_action: "operator",
};

/** `els`: {rows, empty, kind, search, pause, count} from index.html. */
export function createErrorLog(els) {
  const log = {
    events: [], // newest first
    seen: new Set(), // a reconnect replays the recent events: show each once
    rows: new WeakMap(),
    paused: false,
    unseen: 0,
    shown: 0,
  };

  const matches = () => {
    const kind = els.kind.value;
    const words = els.search.value.trim().toLowerCase().split(/\s+/).filter(Boolean);
    return (e) => (!kind || e.kind === kind) && words.every((w) => e.haystack.includes(w));
  };

  function render() {
    const shown = log.events.filter(matches());
    els.rows.replaceChildren(...shown.map(rowFor));
    els.empty.hidden = shown.length > 0;
    els.empty.textContent = log.events.length ? "No event matches the filter." : "No errors yet.";
    log.shown = shown.length;
    showCount();
  }

  function showCount() {
    const paused = log.paused ? ` · paused, ${log.unseen} new` : "";
    els.count.textContent = `${log.shown} of ${log.events.length} (last ${MAX_EVENTS})${paused}`;
  }

  function rowFor(e) {
    let row = log.rows.get(e);
    if (!row) {
      row = h("tr", { dataset: { kind: e.kind } },
        h("td", { class: "nowrap", text: fmt.clock(e.at), title: e.at }),
        h("td", {}, h("span", { class: `kind kind-${e.kind}`, text: KIND_LABELS[e.kind] || e.kind })),
        h("td", { class: "code", text: fmt.text(e.code) }),
        // An applicant's name is whatever the client sent: text, never markup.
        h("td", { class: "name", text: fmt.text(e.applicant_name) }),
        h("td", { text: fmt.text(e.channel) }),
        h("td", { class: "message", text: fmt.text(e.message) }),
        h("td", { class: "id", text: fmt.text(e.id), title: e.id }));
      log.rows.set(e, row);
    }
    return row;
  }

  /** Add one `event` message's event; the render waits for the next animation frame. */
  function add(raw) {
    if (!raw || typeof raw !== "object") return;
    const e = {
      kind: String(raw.kind ?? ""), at: String(raw.at ?? ""), id: raw.id ?? "", code: raw.code ?? "",
      message: raw.message ?? "", channel: raw.channel ?? null, applicant_name: raw.applicant_name ?? null,
    };
    const key = `${e.kind}|${e.id}|${e.at}|${e.code}`;
    if (log.seen.has(key)) return;
    log.seen.add(key);
    e.key = key;
    e.haystack = [e.kind, e.code, e.message, e.channel, e.applicant_name, e.id]
      .filter((v) => v != null).join(" ").toLowerCase();
    // Newest first by time; events usually arrive in order, so this stops at once.
    let i = 0;
    while (i < log.events.length && log.events[i].at > e.at) i += 1;
    log.events.splice(i, 0, e);
    for (const old of log.events.splice(MAX_EVENTS)) log.seen.delete(old.key);
    if (log.paused) log.unseen += 1;
    schedule();
  }

  // While paused the rows stay still (someone is reading them); only the count moves.
  let frame = 0;
  function schedule() {
    if (frame) return;
    frame = requestAnimationFrame(() => {
      frame = 0;
      if (log.paused) showCount();
      else render();
    });
  }

  els.kind.addEventListener("change", render);
  els.search.addEventListener("input", debounce(render, 120));
  els.pause.addEventListener("click", () => {
    log.paused = !log.paused;
    log.unseen = 0;
    els.pause.textContent = log.paused ? "Resume" : "Pause";
    els.pause.setAttribute("aria-pressed", String(log.paused));
    render();
  });
  render();
  return { add };
}
