/* The page's own form takes the focus when the page opens, as the autofocus attribute would
   (the inputs are Django's widgets, rendered by the forms): on the first field marked invalid
   (the first of those still to fill, when several are), else the first one still to fill (after a wrong password the typed name stays: the password),
   else the first. An invalid field's text is selected, so typing replaces it (a wrong code).
   Only a form that asks for it (an entrance page's form, or data-focus-first), and never once
   the person has moved the focus themselves. */
(function () {
  "use strict";
  var form = document.querySelector("main form.form-entrance, form[data-focus-first]");
  if (!form) { return; }
  var fields = Array.prototype.filter.call(
    form.querySelectorAll("input, select, textarea"),
    function (field) {
      return field.type !== "hidden" && !field.disabled && field.getClientRects().length > 0;
    }
  );
  function toFill(field) {
    if (field.type === "checkbox") { return false; }
    if (field.type === "radio") {
      return !form.querySelector('input[type=radio][name="' + field.name + '"]:checked');
    }
    return !field.value;
  }
  var invalid = fields.filter(function (field) {
    return field.getAttribute("aria-invalid") === "true";
  });
  // Of several invalid fields, the one to fill again first (a wrong sign-in marks both the
  // name, kept, and the password, emptied: the password).
  var target = invalid.filter(toFill)[0] || invalid[0] || fields.filter(toFill)[0] || fields[0];
  if (target && (!document.activeElement || document.activeElement === document.body)) {
    target.focus();
    if (invalid.indexOf(target) >= 0 && typeof target.select === "function") { target.select(); }
  }
})();
