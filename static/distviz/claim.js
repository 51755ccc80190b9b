// Co-presenter claim: the key is in the URL fragment (never sent to a server or logged).
// Move it into the form, drop it from the address bar, and post it once.
(function () {
  "use strict";
  const key = window.location.hash.slice(1);
  const input = document.getElementById("claim-key");
  const status = document.getElementById("claim-status");
  if (!input) return;
  if (!key) {
    if (status) status.textContent = "This link has no key. Ask the presenter for a new co-presenter link.";
    return;
  }
  input.value = key;
  history.replaceState(null, "", window.location.pathname);
  if (status) status.textContent = "Link found.";
  if (!document.querySelector(".flash-error")) {
    window.addEventListener("load", function () { document.getElementById("claim-form").submit(); });
  }
})();
