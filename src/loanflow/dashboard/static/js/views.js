// The page's views (live, search, review queue, audit, API keys) and the address that names one:
// `?view=search&route=manual_review…`. The query string, not the fragment: the fragment
// carries the one-time login code (`#code=`, dropped on arrival), and a view must
// never be mistaken for one or dropped with it. Links work as links; the history's
// back and forward move between views and searches.

export const VIEWS = ["live", "search", "reviews", "audit", "keys"];
/** The address a sign-in started from (login.js keeps it): the view to go back to. */
const RETURN_KEY = "loanflow.returnTo";

/**
 * Back to the view a shared link named, when the sign-in it needed landed on "/". Only
 * a query string naming a view is taken, and only once.
 */
export function returnAfterSignIn() {
  const saved = sessionStorage.getItem(RETURN_KEY);
  sessionStorage.removeItem(RETURN_KEY);
  if (!saved || window.location.search) return;
  const params = new URLSearchParams(saved);
  if (VIEWS.includes(params.get("view"))) {
    history.replaceState(null, "", `${window.location.pathname}?${params}`);
  }
}

/**
 * `nav`: the links (`data-view`); `sections`: each view's element by name;
 * `onShow(view, params)` after a view is shown. Returns {apply, go, current}.
 */
export function createViews({ nav, sections, onShow }) {
  const viewOf = (params) => (VIEWS.includes(params.get("view")) ? params.get("view") : "live");

  /** Show what the address names (and, unless `quiet`, let the view load). */
  function apply({ quiet = false } = {}) {
    const params = new URLSearchParams(window.location.search);
    const view = viewOf(params);
    for (const [name, section] of Object.entries(sections)) section.hidden = name !== view;
    for (const link of nav.querySelectorAll("[data-view]")) {
      if (link.dataset.view === view) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    }
    document.body.dataset.view = view;
    if (!quiet) onShow(view, params);
  }

  /** A new history entry for `params` (the same address is replaced, not repeated). */
  function go(params) {
    const text = params.toString();
    const url = `${window.location.pathname}${text ? `?${text}` : ""}`;
    const same = url === window.location.pathname + window.location.search;
    history[same ? "replaceState" : "pushState"](null, "", url);
    apply();
  }

  nav.addEventListener("click", (ev) => {
    const link = ev.target.closest("a[data-view]");
    // A middle click or Ctrl+click opens a new tab, as links do.
    if (!link || ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.altKey) return;
    ev.preventDefault();
    go(new URL(link.href).searchParams);
  });
  window.addEventListener("popstate", () => apply());
  return { apply, go, current: () => viewOf(new URLSearchParams(window.location.search)) };
}
