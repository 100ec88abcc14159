/* The My apps page (/account/my-apps/) filters its list as one types in the search box: the
   apps whose name contains the text, in either case, as the server's `?q=` does
   (oauth_clients/views.py `matches`). Without this script the form asks the server. The
   count below the box (role="status") says how many apps are shown. */
(function () {
  "use strict";
  var input = document.getElementById("app-search");
  var list = document.getElementById("app-list");
  var count = document.getElementById("app-count");
  var none = document.getElementById("app-none");
  if (!input || !list) { return; }
  var items = Array.prototype.slice.call(list.querySelectorAll("li[data-name]"));
  var total = list.dataset.total || String(items.length);
  function filter() {
    var query = input.value.trim().toLowerCase();
    var shown = 0;
    items.forEach(function (item) {
      var match = item.dataset.name.toLowerCase().indexOf(query) !== -1;
      item.hidden = !match;
      if (match) { shown += 1; }
    });
    if (none) { none.hidden = shown > 0; }
    if (count && count.dataset.template) {
      count.textContent = count.dataset.template
        .replace("{shown}", String(shown))
        .replace("{total}", total);
    }
  }
  input.addEventListener("input", filter);
})();
