// Copy buttons without inline script (CSP script-src 'self'):
// <button data-copy-target="ID" data-copy-status="ID" data-copied-text=".." data-failed-text="..">
// copies the target's list items, one a line (or its text), and says so in the status element.
// The button stays hidden where the browser cannot copy (no Clipboard API: not a secure context).
(function () {
  "use strict";
  function textOf(target) {
    var items = target.querySelectorAll("li");
    if (!items.length) {
      return target.textContent.trim();
    }
    return Array.prototype.map.call(items, function (item) {
      return item.textContent.trim();
    }).join("\n");
  }
  document.querySelectorAll("button[data-copy-target]").forEach(function (button) {
    var target = document.getElementById(button.dataset.copyTarget);
    var status = document.getElementById(button.dataset.copyStatus);
    if (!target || !navigator.clipboard) {
      return;
    }
    button.hidden = false;
    button.addEventListener("click", function () {
      navigator.clipboard.writeText(textOf(target) + "\n").then(
        function () { if (status) { status.textContent = button.dataset.copiedText; } },
        function () { if (status) { status.textContent = button.dataset.failedText; } }
      );
    });
  });
})();
