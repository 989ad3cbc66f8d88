// The sign-in page. The link `loanflow serve` prints carries a one-time login code in
// the URL fragment (never sent to a server); this posts it, since only a POST signs in.
// After a refused sign-in (the server redirects to /?failed=…) it says why.
"use strict";

const form = document.getElementById("login");
const code = new URLSearchParams(window.location.hash.slice(1)).get("code");
if (code) {
  // Out of the address bar and this history entry before anything else: it works once.
  history.replaceState(null, "", window.location.pathname + window.location.search);
  document.getElementById("token").value = code;
  document.getElementById("signing-in").hidden = false;
  form.submit();
} else {
  const reason = new URLSearchParams(window.location.search).get("failed");
  if (reason !== null) {
    const known = document.querySelector(`.error[data-reason="${CSS.escape(reason)}"]`);
    (known || document.getElementById("failed")).hidden = false;
  }
}
