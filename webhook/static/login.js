// A link of the form /login#token=... (what `lora-emotion demo` prints) logs in with one click.
// The token travels in the fragment, which the browser never sends to the server; it is
// removed from the address bar before the form is posted.
"use strict";
(function () {
  const match = location.hash.match(/^#token=(.+)$/);
  if (!match) return;
  history.replaceState(null, "", location.pathname + location.search);
  document.getElementById("token").value = decodeURIComponent(match[1]);
  document.querySelector("form").submit();
})();
