// The `WS /v1/live` feed: one socket, reopened by itself with capped exponential
// backoff and jitter after a server restart (jitter: 20 dashboards must not all
// reconnect in the same millisecond), and flagged "stale" when a socket stays
// open but nothing arrives (a stuck hub, a half-dead proxy).

const FIRST_RETRY_MS = 500;
const MAX_RETRY_MS = 15000;
/** Snapshots come at 2 Hz or more: 5 s of silence means something is wrong. */
const STALE_AFTER_MS = 5000;

export function liveUrl(location) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}/v1/live`;
}

/**
 * Calls `onMessage(parsed)` for each JSON message and `onState(state, detail)` on every
 * change: "connecting", "live", "stale", "reconnecting" (detail: {retryAt, failures,
 * closeCode}).
 */
export class LiveFeed {
  constructor(url, { onMessage, onState }) {
    this.url = url;
    this.onMessage = onMessage;
    this.onState = onState;
    this.socket = null;
    this.failures = 0;
    this.retryTimer = 0;
    this.staleTimer = 0;
    this.stopped = false;
    this.state = "";
  }

  setState(state, detail = {}) {
    this.state = state;
    this.onState(state, detail);
  }

  start() {
    this.stopped = false;
    this.open();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    clearTimeout(this.staleTimer);
    if (this.socket) this.socket.close(1000);
  }

  open() {
    this.setState("connecting", { failures: this.failures });
    const socket = new WebSocket(this.url);
    this.socket = socket;
    socket.addEventListener("open", () => {
      this.setState("live");
      this.watchForSilence();
    });
    socket.addEventListener("message", (event) => this.receive(event.data));
    // "error" is always followed by "close"; retrying once, from "close", is enough.
    socket.addEventListener("close", (event) => {
      if (this.socket === socket) this.retry(event.code);
    });
  }

  receive(data) {
    // Only a message proves the feed works (a socket can open and then be closed
    // by an auth check), so the backoff starts again from the beginning here.
    this.failures = 0;
    if (this.state !== "live") this.setState("live");
    this.watchForSilence();
    let message;
    try {
      message = JSON.parse(data);
    } catch {
      console.warn("live: ignored a message that is not JSON");
      return;
    }
    if (message && typeof message === "object") this.onMessage(message);
  }

  watchForSilence() {
    clearTimeout(this.staleTimer);
    this.staleTimer = setTimeout(() => this.setState("stale"), STALE_AFTER_MS);
  }

  retry(closeCode) {
    clearTimeout(this.staleTimer);
    this.socket = null;
    if (this.stopped) return;
    const ceiling = Math.min(MAX_RETRY_MS, FIRST_RETRY_MS * 2 ** this.failures);
    const delay = ceiling / 2 + Math.random() * (ceiling / 2);
    this.failures += 1;
    this.setState("reconnecting", { retryAt: Date.now() + delay, failures: this.failures, closeCode });
    this.retryTimer = setTimeout(() => this.open(), delay);
  }

  /** Try now (the operator pressed "reconnect"), forgetting the backoff. */
  reconnectNow() {
    clearTimeout(this.retryTimer);
    this.failures = 0;
    if (!this.socket) this.open();
  }
}
