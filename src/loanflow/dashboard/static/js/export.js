// CSV export of the search on show (GET /v1/exports/applications.csv, same filters):
// read as it streams, with the rows and bytes received against the server's
// X-Total-Rows, then saved as a file through a Blob's object URL (the CSP allows it:
// a download is no fetch, and nothing is loaded from elsewhere).

import { query } from "./api.js";
import { say } from "./dom.js";
import * as fmt from "./format.js";

const NEWLINE = 10;

/** `filter()` gives the search's applied filter. Returns {start, cancel}. */
export function createExport({ api, els, filter, toast }) {
  const run = { controller: null, url: null };

  async function start() {
    if (run.controller) return;
    const controller = new AbortController();
    run.controller = controller;
    els.button.disabled = true;
    els.cancel.hidden = false;
    els.link.hidden = true;
    if (run.url) URL.revokeObjectURL(run.url); // the previous file's, no longer offered
    run.url = null;
    const progress = { rows: 0, bytes: 0, total: null };
    show("running", progress, "Starting the export…");
    try {
      const answer = await api.stream(`/v1/exports/applications.csv${query(filter())}`, { signal: controller.signal });
      const total = Number.parseInt(answer.headers.get("X-Total-Rows") ?? "", 10);
      progress.total = Number.isFinite(total) ? total : null;
      const truncated = answer.headers.get("X-Truncated") === "true";
      show("running", progress);
      const chunks = [];
      let newlines = 0;
      const reader = answer.body.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        chunks.push(value);
        progress.bytes += value.byteLength;
        for (const byte of value) newlines += byte === NEWLINE;
        // Lines after the header; a quoted value spanning lines may count twice, which
        // only a progress figure can afford (capped at the total).
        progress.rows = Math.max(0, newlines - 1);
        if (progress.total != null) progress.rows = Math.min(progress.rows, progress.total);
        show("running", progress);
      }
      // What the file holds (a row received during the export may add one to the total).
      progress.rows = Math.max(0, newlines - 1);
      const name = fileName(answer.headers.get("Content-Disposition"));
      save(new Blob(chunks, { type: "text/csv" }), name);
      show("done", progress, `Exported ${fmt.count(progress.rows)} rows (${size(progress.bytes)}) to ${name}${
        truncated ? ". Capped: more matched; narrow the filters for the rest." : "."}`, truncated ? "warn" : "");
    } catch (err) {
      if (err.name === "AbortError") show("cancelled", progress, "Export cancelled.");
      else show("failed", progress, `Export failed: ${err.summary || err.message}`, "bad");
    } finally {
      run.controller = null;
      els.button.disabled = false;
      els.cancel.hidden = true;
    }
  }

  function show(state, { rows, bytes, total }, message = "", tone = "") {
    els.box.hidden = false;
    Object.assign(els.box.dataset, { state, rows: String(rows), bytes: String(bytes), total: String(total ?? "") });
    if (total != null) {
      els.bar.max = Math.max(total, 1);
      els.bar.value = total ? rows : 1;
    } else if (state !== "running") {
      els.bar.max = 1;
      els.bar.value = 1;
    } else {
      els.bar.removeAttribute("value"); // indeterminate until the total is known
    }
    say(els.text, message || `Exporting… ${fmt.count(rows)}${total != null ? ` of ${fmt.count(total)}` : ""} rows · ${size(bytes)}`, tone);
    els.text.hidden = false;
  }

  function save(blob, name) {
    run.url = URL.createObjectURL(blob);
    els.link.href = run.url;
    els.link.download = name;
    els.link.textContent = `Save ${name} again`;
    els.link.hidden = false;
    els.link.click();
    toast(`Saved ${name}`);
  }

  function cancel() {
    run.controller?.abort();
  }

  els.button.addEventListener("click", start);
  els.cancel.addEventListener("click", cancel);
  return { start, cancel };
}

/**
 * The name the server gives (Content-Disposition), when it is a plain one; else
 * "applications-20261207-083012.csv": sortable, no two the same within a second.
 */
function fileName(disposition) {
  const given = /filename="([\w.-]+\.csv)"/.exec(disposition || "");
  if (given) return given[1];
  const stamp = new Date().toISOString().replace(/[-:]/g, "").replace("T", "-").slice(0, 15);
  return `applications-${stamp}.csv`;
}

function size(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / (1024 * 1024)).toFixed(1)} MB`;
}
