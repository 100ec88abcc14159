/* The signed-out page (templates/oauth2_provider/logged_out.html) frames each app's front-channel
   logout URI (OpenID Connect Front-Channel Logout 1.0 §3). Once the page and every frame have
   loaded (the window's load event waits for them), the person goes on to where they were going;
   a frame that never loads leaves them the Continue link. No timer: nothing moves on while an
   app is still being told. */
(function () {
  "use strict";
  var link = document.querySelector("a[data-continue-when-signed-out]");
  if (!link) { return; }
  function goOn() { window.location.assign(link.href); }
  if (document.readyState === "complete") { goOn(); } else { window.addEventListener("load", goOn); }
})();
