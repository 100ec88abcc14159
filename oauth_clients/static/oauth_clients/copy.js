// Copy buttons on the client setup page: copy the text of the element named by data-copy-target.
// A static file because the Content-Security-Policy allows no inline script.
"use strict";
document.addEventListener("click", function (event) {
  const button = event.target.closest("[data-copy-target]");
  if (!button) {
    return;
  }
  const target = document.getElementById(button.dataset.copyTarget);
  if (!target || !navigator.clipboard) {
    return;
  }
  navigator.clipboard.writeText(target.textContent.trim()).then(function () {
    const label = button.textContent;
    button.textContent = "Copied";
    setTimeout(function () { button.textContent = label; }, 2000);
  });
});
