// The conditions the shipped Prometheus rules alert on (GET /v1/alerts: queue lag, 5xx
// share, dead letters growing, processing stalled, a backend down), as a banner, so the
// operator watching the page sees what would page them.

import { say } from "./dom.js";

/** How often the page asks: the rules look at minutes, not seconds. */
export const ALERTS_REFRESH_MS = 15_000;

/** The banner's text: each firing alert's summary, critical ones first. */
export function alertsText(alerts) {
  return alerts.map((a) => a.summary).join(" · ");
}

export function createAlerts({ api, banner }) {
  async function refresh() {
    let body;
    try {
      body = await api.get("/v1/alerts");
    } catch {
      return; // unreachable or signed out: the live feed's state and the login say so
    }
    const alerts = Array.isArray(body?.alerts) ? body.alerts : [];
    const tone = alerts.some((a) => a.severity === "critical") ? "bad" : "";
    say(banner, alerts.length ? `Alert: ${alertsText(alerts)}` : "", tone);
  }

  return { refresh };
}
