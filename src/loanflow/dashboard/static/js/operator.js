// The operators' views beyond the live one: search (with its CSV export), the business
// review queue, the audit trail and the API keys (admins), switched by the page's address
// (views.js), and the application drawer and decision dialog they share.

import { createApplicationView } from "./application.js";
import { createAudit } from "./audit.js";
import { createDecide } from "./decide.js";
import { byId } from "./dom.js";
import { createExport } from "./export.js";
import { createKeys } from "./keys.js";
import { createNewKey } from "./newkey.js";
import { createReviews } from "./reviews.js";
import { createSearch } from "./search.js";
import { createViews } from "./views.js";

/**
 * Wires the views to index.html's elements. `drawer`: the shell the dead letters share.
 * Returns the views ({apply, go, current}); `apply()` once the session is known loads
 * the view on show (its rows depend on the scopes).
 */
export function createOperatorViews({ api, state, toast, drawer }) {
  const decide = createDecide({
    api, toast,
    onDecided: (id) => {
      reviews.remove(id);
      const showing = drawer.showing();
      if (showing.kind === "application" && showing.id === id) application.open(id);
    },
    els: {
      dialog: byId("decide"), form: byId("decide-form"), title: byId("decide-title"),
      target: byId("decide-target"), reason: byId("decide-reason"), status: byId("decide-status"),
      confirm: byId("decide-confirm"), cancel: byId("decide-cancel"),
    },
  });
  const application = createApplicationView({
    api, drawer, canOperate: () => state.canOperate, onDecide: decide.open,
    els: {
      facts: byId("ap-facts"), review: byId("ap-review"), reviewText: byId("ap-review-text"),
      decide: byId("ap-decide"), approve: byId("ap-approve"), decline: byId("ap-decline"),
      timelineStatus: byId("ap-timeline-status"), timeline: byId("ap-timeline"),
      reasons: byId("ap-reasons"), trace: byId("ap-trace"), application: byId("ap-application"),
    },
  });
  const tableOf = (id) => byId(id).closest("table");
  const reviews = createReviews({
    api, state, onInspect: application.open, onDecide: decide.open,
    els: {
      rows: byId("rq-rows"), table: tableOf("rq-rows"), empty: byId("rq-empty"), status: byId("rq-status"),
      count: byId("rq-count"), more: byId("rq-more"), refresh: byId("rq-refresh"), readonly: byId("rq-readonly"),
    },
  });
  const views = createViews({
    nav: byId("views"),
    sections: {
      live: byId("view-live"), search: byId("view-search"), reviews: byId("view-reviews"), audit: byId("view-audit"),
      keys: byId("view-keys"),
    },
    onShow: (view, params) => {
      if (view !== "keys") newKey.leave(); // a new key's secret stays in its view only
      if (view === "search") search.show(params);
      else if (view === "reviews") reviews.load();
      else if (view === "audit") audit.load();
      else if (view === "keys") keys.load();
    },
  });
  const search = createSearch({
    api, go: views.go, onInspect: application.open,
    els: {
      form: byId("search-form"), clear: byId("search-clear"), rows: byId("search-rows"),
      table: tableOf("search-rows"), empty: byId("search-empty"), status: byId("search-status"),
      count: byId("search-count"), more: byId("search-more"),
      navLink: byId("views").querySelector("[data-view=search]"),
    },
  });
  createExport({
    api, toast, filter: () => search.filter(),
    els: {
      button: byId("export"), cancel: byId("export-cancel"), box: byId("export-progress"),
      bar: byId("export-bar"), text: byId("export-text"), link: byId("export-link"),
    },
  });
  const audit = createAudit({
    api,
    els: {
      rows: byId("au-rows"), table: tableOf("au-rows"), empty: byId("au-empty"), status: byId("au-status"),
      more: byId("au-more"), refresh: byId("au-refresh"),
    },
  });
  const keys = createKeys({
    api, state, toast,
    els: {
      rows: byId("keys-rows"), table: tableOf("keys-rows"), empty: byId("keys-empty"), status: byId("keys-status"),
      count: byId("keys-count"), refresh: byId("keys-refresh"), refused: byId("keys-refused"),
      scopes: byId("keys-scopes"), sections: [byId("keys-list"), byId("keys-new")],
      revoke: {
        dialog: byId("revoke"), form: byId("revoke-form"), target: byId("revoke-target"), self: byId("revoke-self"),
        status: byId("revoke-status"), confirm: byId("revoke-confirm"), cancel: byId("revoke-cancel"),
      },
    },
  });
  const newKey = createNewKey({
    api, onMade: keys.add, onRefused: keys.refuse,
    els: {
      form: byId("key-form"), make: byId("key-make"), status: byId("key-status"), secret: byId("key-secret"),
      secretTitle: byId("key-secret-title"), slot: byId("key-secret-slot"), copy: byId("key-copy"),
      copyStatus: byId("key-copy-status"), dismiss: byId("key-dismiss"),
    },
  });
  return views;
}
