// The dashboard page: wires the views (live, search, review queue, audit, keys; views.js) to
// the session, the history, the live feed and the operators' actions. All mutable page state lives in `state` (and in each view's own
// closure); `start()`, called once at the end, is the only thing that runs on load.

import { ALERTS_REFRESH_MS, createAlerts } from "./alerts.js";
import { createApi } from "./api.js";
import { createBulk } from "./bulk.js";
import { createCharts } from "./charts.js";
import { createDeadLetterView } from "./deadletter.js";
import { createDeadLetters } from "./deadletters.js";
import { byId, say } from "./dom.js";
import { createDurability, DURABILITY_REFRESH_MS } from "./durability.js";
import { createDrawer } from "./drawer.js";
import { createErrorLog } from "./errorlog.js";
import * as fmt from "./format.js";
import { LiveFeed, liveUrl } from "./live.js";
import { createOperatorViews } from "./operator.js";
import { normalizeSeries, pointFromSnapshot, RollingSeries, WINDOW_S } from "./series.js";
import { createCounts, createTiles } from "./tiles.js";
import { returnAfterSignIn } from "./views.js";

/** After this many failed reconnects, ask whether the session itself has ended. */
const CHECK_SESSION_AFTER_FAILURES = 3;
/** The close code the server uses when the socket's session is refused. */
const CLOSE_POLICY_VIOLATION = 1008;
const SESSION_RETRY_MS = 5000;
const TOAST_MS = 5000;

/**
 * A login link opened while signed in: its code stays unused (it lapses by itself), but
 * leaves the address bar and this history entry.
 */
function dropLoginCode() {
  if (new URLSearchParams(window.location.hash.slice(1)).has("code")) {
    history.replaceState(null, "", window.location.pathname + window.location.search);
  }
}

function start() {
  dropLoginCode();
  returnAfterSignIn();
  window.addEventListener("hashchange", dropLoginCode);
  const state = {
    session: null,
    canOperate: false,
    canAdmin: false,
    series: new RollingSeries(),
    connection: { state: "connecting", retryAt: 0, failures: 0, everLive: false },
    lastSnapshotAt: null,
  };
  const api = createApi(state, { onSignedOut: () => window.location.assign("/") });
  const toast = makeToast(byId("toast"));

  const tiles = createTiles(document.querySelector(".tiles"));
  const counts = createCounts({
    byStatus: byId("by-status"), byChannel: byId("by-channel"), engagement: byId("engagement"),
  });
  const charts = createCharts(document.querySelector(".charts"), state.series);
  const historyStatus = byId("history-status");
  if (!charts) say(historyStatus, "Charts unavailable: the chart library did not load.", "bad");
  for (const button of document.querySelectorAll("[data-window]")) {
    button.addEventListener("click", () => {
      for (const other of document.querySelectorAll("[data-window]")) {
        other.setAttribute("aria-pressed", String(other === button));
      }
      charts?.setWindow(Number(button.dataset.window));
    });
  }

  const log = createErrorLog({
    rows: byId("log-rows"), empty: byId("log-empty"), kind: byId("log-kind"),
    search: byId("log-search"), pause: byId("log-pause"), count: byId("log-count"),
  });

  const drawer = createDrawer({
    els: { drawer: byId("drawer"), title: byId("dr-title"), id: byId("dr-id"), close: byId("dr-close"), status: byId("dr-status") },
    bodies: { dead_letter: byId("dr-dead-letter"), application: byId("dr-app") },
  });
  const deadLetter = createDeadLetterView({
    api, drawer, toast, onChanged: () => deadLetters.reload(),
    els: {
      facts: byId("dr-facts"), lastError: byId("dr-last-error"), attempts: byId("dr-attempts"),
      application: byId("dr-application"), edit: byId("dr-edit"), editor: byId("dr-editor"),
      json: byId("dr-json"), jsonError: byId("dr-json-error"), jsonWarning: byId("dr-json-warning"),
      replay: byId("dr-replay"),
      reason: byId("dr-reason"), discard: byId("dr-discard"),
    },
  });
  const deadLetters = createDeadLetters({
    api, state,
    onInspect: (id, options) => deadLetter.open(id, options),
    onReplay: (item, button) => replayOne(item, button),
    els: {
      form: byId("dl-filter"), refresh: byId("dl-refresh"), rows: byId("dl-rows"),
      table: byId("dl-rows").closest("table"), empty: byId("dl-empty"), status: byId("dl-status"),
      newPill: byId("dl-new"), prev: byId("dl-prev"), next: byId("dl-next"), pageLabel: byId("dl-page"),
    },
  });
  const bulk = createBulk({
    api, toast, filter: () => deadLetters.filter(), onChanged: () => deadLetters.reload(),
    els: {
      dialog: byId("bulk"), form: byId("bulk-form"), title: byId("bulk-title"),
      filter: byId("bulk-filter"), reason: byId("bulk-reason"), count: byId("bulk-count"),
      confirm: byId("bulk-confirm"), cancel: byId("bulk-cancel"),
    },
  });
  byId("bulk-replay").addEventListener("click", () => bulk.open("replay"));
  byId("bulk-discard").addEventListener("click", () => bulk.open("discard"));

  const views = createOperatorViews({ api, state, toast, drawer });
  views.apply({ quiet: true }); // the right view at once; its data once the session is known

  async function replayOne(item, button) {
    button.disabled = true;
    try {
      await api.post(`/v1/dead-letters/${encodeURIComponent(item.id)}/replay`);
      toast(`Replayed ${item.id}: queued again`);
      deadLetters.reload();
    } catch (err) {
      toast(`Replay of ${item.id} failed: ${err.summary || err.message}`, "bad");
      button.disabled = false;
    }
  }

  async function loadSession() {
    try {
      state.session = await api.get("/v1/session");
    } catch (err) {
      if (err.status === 401) return; // on the way to the login page
      say(byId("banner"), `Cannot read the session: ${err.summary || err.message}. Retrying…`, "bad");
      setTimeout(loadSession, SESSION_RETRY_MS);
      return;
    }
    const scopes = Array.isArray(state.session.scopes) ? state.session.scopes : [];
    state.canOperate = scopes.includes("operate");
    state.canAdmin = scopes.includes("admin");
    byId("who").textContent = `${state.session.label || state.session.key_id || "signed in"} · ${scopes.join(", ")}`;
    // Controls and links that need a scope (`data-needs`, e.g. the Keys link: admin).
    for (const node of document.querySelectorAll("[data-needs]")) node.hidden = !scopes.includes(node.dataset.needs);
    byId("dl-readonly").hidden = state.canOperate;
    showConnection(); // replaces the "cannot read the session" banner
    deadLetters.reload(); // its rows depend on the scopes
    views.apply(); // so do the review queue's and the keys'
    document.body.dataset.ready = "true";
  }

  async function loadHistory() {
    try {
      const body = await api.get(`/v1/metrics/series?seconds=${WINDOW_S}`);
      state.series.load(normalizeSeries(body));
      if (charts) say(historyStatus, "");
    } catch (err) {
      if (charts) {
        say(historyStatus, `History unavailable (${err.summary || err.message}): showing live points only.`, "warn");
      }
    }
    charts?.redraw();
  }

  function onMessage(message) {
    if (message.type === "snapshot") {
      state.lastSnapshotAt = message.at;
      tiles.update(message);
      counts.update(message);
      const point = pointFromSnapshot(message);
      if (state.series.append(point)) charts?.redraw();
      byId("updated").textContent = `updated ${fmt.clock(message.at)}`;
    } else if (message.type === "event" && message.event) {
      log.add(message.event);
      if (message.event.kind === "dead_letter") deadLetters.notifyNew();
    }
  }

  function onState(name, detail) {
    const was = state.connection.state;
    Object.assign(state.connection, { state: name, retryAt: detail.retryAt || 0, failures: detail.failures || 0 });
    tiles.stale(name !== "live");
    if (name === "live") {
      // Back after a gap: the server's history fills what the page missed.
      if (state.connection.everLive && was !== "live" && was !== "stale") loadHistory();
      state.connection.everLive = true;
    }
    const refused = detail.closeCode === CLOSE_POLICY_VIOLATION;
    if (name === "reconnecting" && (refused || detail.failures % CHECK_SESSION_AFTER_FAILURES === 0)) {
      api.get("/v1/session").catch(() => {}); // a 401 sends the page to the login form
    }
    showConnection();
  }

  function showConnection() {
    const { state: name, retryAt } = state.connection;
    const pill = byId("conn");
    pill.dataset.state = name;
    const wait = Math.max(0, Math.ceil((retryAt - Date.now()) / 1000));
    const text = {
      connecting: "Connecting…",
      live: "Live",
      stale: "Stale: no update for 5 s",
      reconnecting: wait > 0 ? `Reconnecting in ${wait} s…` : "Reconnecting…",
    }[name];
    byId("conn-text").textContent = text;
    const down = name === "reconnecting" || name === "stale";
    say(byId("banner"), down
      ? `Live feed unavailable: the numbers below are from ${state.lastSnapshotAt ? fmt.clock(state.lastSnapshotAt) : "before it went down"}. Reconnecting by itself…`
      : "", "warn");
  }

  const feed = new LiveFeed(liveUrl(window.location), { onMessage, onState });
  byId("conn").addEventListener("click", () => feed.reconnectNow());
  byId("signout").addEventListener("click", async () => {
    feed.stop();
    try {
      await api.post("/logout");
    } catch {
      // Signed out or not, the login page is where the operator wanted to go.
    }
    window.location.assign("/");
  });
  // The countdown in "Reconnecting in N s" moves by itself.
  setInterval(() => {
    if (state.connection.state === "reconnecting") showConnection();
  }, 1000);

  const durability = createDurability({ pill: byId("durability"), banner: byId("durability-banner") });
  setInterval(durability.refresh, DURABILITY_REFRESH_MS);
  const alerts = createAlerts({ api, banner: byId("alerts-banner") });
  setInterval(alerts.refresh, ALERTS_REFRESH_MS);

  loadSession();
  loadHistory();
  durability.refresh();
  alerts.refresh();
  feed.start();
}

/** A short message at the bottom that goes away by itself: "Replayed …". */
function makeToast(node) {
  let timer = 0;
  return (message, tone = "") => {
    say(node, message, tone);
    clearTimeout(timer);
    timer = setTimeout(() => say(node, ""), TOAST_MS);
  };
}

start();
