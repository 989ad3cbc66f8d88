// The drawer over the right side of the page: one at a time, for a dead letter or an
// application. This is the shell (heading, status line, close, which body shows, and
// which load is current); each kind fills its own body (deadletter.js, application.js).

import { say } from "./dom.js";

/** `els`: {drawer, title, id, close, status} and `bodies`, each kind's element by name. */
export function createDrawer({ els, bodies }) {
  const current = { kind: null, id: null, ticket: 0, onClose: null };

  /**
   * Show the `kind` body for `id` and say "Loading…". Returns `isCurrent()`: false once
   * the drawer was closed or opened on something else, so a late answer is dropped.
   */
  function open(kind, id, { title, onClose = null }) {
    const ticket = ++current.ticket;
    Object.assign(current, { kind, id, onClose });
    for (const [name, body] of Object.entries(bodies)) body.hidden = name !== kind;
    els.title.textContent = title;
    els.id.textContent = id;
    els.drawer.setAttribute("aria-label", `${title} ${id}`);
    els.drawer.hidden = false;
    say(els.status, "Loading…");
    return () => ticket === current.ticket;
  }

  function close() {
    const { onClose } = current;
    current.ticket += 1;
    Object.assign(current, { kind: null, id: null, onClose: null });
    els.drawer.hidden = true;
    onClose?.();
  }

  els.close.addEventListener("click", close);
  document.addEventListener("keydown", (ev) => {
    // Escape in an open dialog closes the dialog, not the drawer beneath it.
    if (ev.key === "Escape" && !els.drawer.hidden && !document.querySelector("dialog[open]")) close();
  });

  return {
    open,
    close,
    /** A line under the heading: "Loading…", an error, or nothing. */
    say: (message, tone = "") => say(els.status, message, tone),
    /** What the drawer shows: {kind, id}, or nulls when it is closed. */
    showing: () => ({ kind: current.kind, id: current.id }),
  };
}
