// The sign-in page. The link `loanflow serve` prints carries a one-time login code in
// the URL fragment (never sent to a server); this posts it, since only a POST signs in.
// After a refused sign-in (the server redirects to /?failed=…) it says why. A shared
// view's address (/?view=search&…) is kept across the sign-in, which lands on "/": the
// dashboard (js/views.js) goes back to it.
"use strict";

/** Where the view to return to waits during the sign-in: this tab only. */
const RETURN_KEY = "loanflow.returnTo";
const form = document.getElementById("login");
function keepView() {
  if (new URLSearchParams(window.location.search).has("view")) {
    sessionStorage.setItem(RETURN_KEY, window.location.search);
  }
}
form.addEventListener("submit", keepView);
const code = new URLSearchParams(window.location.hash.slice(1)).get("code");
if (code) {
  // Out of the address bar and this history entry before anything else: it works once.
  history.replaceState(null, "", window.location.pathname + window.location.search);
  document.getElementById("token").value = code;
  document.getElementById("signing-in").hidden = false;
  keepView(); // submit() runs no submit listener
  form.submit();
} else {
  const reason = new URLSearchParams(window.location.search).get("failed");
  if (reason !== null) {
    const known = document.querySelector(`.error[data-reason="${CSS.escape(reason)}"]`);
    (known || document.getElementById("failed")).hidden = false;
  }
}
