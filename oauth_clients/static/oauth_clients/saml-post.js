/* The SAML HTTP-POST binding's page (templates/saml/post.html): send the form to the app's
   assertion consumer service as soon as the page is read, as the binding's auto-submitting form
   does (SAML 2.0 Bindings §3.5.3); the page's button does the same without JavaScript. */
(function () {
  "use strict";
  var form = document.querySelector("form[data-saml-post]");
  if (form) { HTMLFormElement.prototype.submit.call(form); }
})();
