// Show why a sign-in failed (the server redirects to /?failed=…).
"use strict";
if (new URLSearchParams(window.location.search).has("failed")) {
  document.getElementById("failed").hidden = false;
}
