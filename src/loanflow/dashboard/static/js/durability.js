// What a 202 rests on, as /readyz says ("redis aof always", "sqlite synchronous=FULL",
// "UNSAFE (LOANFLOW_UNSAFE_REDIS=1): …"): a pill in the header, and a banner of its own
// while accepted applications may be lost, so no operator mistakes a development
// setup for a safe one.

import { say } from "./dom.js";

/** How often the page asks again: a Redis restarted with other settings shows up. */
export const DURABILITY_REFRESH_MS = 30_000;

/** "bad": accepted applications may be lost or are refused; "warn": the last second may be. */
export function durabilityTone(text) {
  if (/^(UNSAFE|refused)/.test(text)) return "bad";
  if (text.includes("may lose") || text.includes("not checked")) return "warn";
  return "ok";
}

export function createDurability({ pill, banner }) {
  async function refresh() {
    let body;
    try {
      // 503 (not ready) still carries the durability: read the body whatever the status.
      const answer = await fetch("/readyz", { headers: { Accept: "application/json" } });
      body = await answer.json();
    } catch {
      return; // unreachable: the live feed's state already says so
    }
    const text = typeof body?.durability === "string" ? body.durability : "";
    const tone = durabilityTone(text);
    pill.textContent = text ? `Durability: ${text}` : "";
    pill.hidden = !text;
    pill.dataset.tone = tone;
    say(banner, tone === "bad" ? `Accepted applications may be lost: ${text}` : "", "bad");
  }

  return { refresh };
}
