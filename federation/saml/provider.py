"""`UpstreamSAMLProvider`: allauth's SAML provider (python3-saml) with our rules.

- the python3-saml settings are built by `federation.saml.auth.build_auth` (every published
  signing certificate, strict mode, signed responses or assertions required);
- what the assertion said is kept whole in the linked identity's `extra_data` (attributes,
  NameID, the authentication contexts), read back by `federation.services`;
- an address counts as verified only when the administrator marked the provider as asserting
  verified addresses, and no `email_verified` attribute says otherwise (SAML has no standard
  flag: see docs/guides/upstream-providers.md).
"""

from __future__ import annotations

from typing import Any

from allauth.account.models import EmailAddress
from allauth.socialaccount.providers.saml.provider import SAMLProvider
from django.http import HttpRequest, HttpResponseRedirect

FALSE_WORDS = frozenset({"false", "0", "f", "n", "no"})


class UpstreamSAMLProvider(SAMLProvider):
    id = "saml"
    name = "SAML"
    package = "federation.saml"

    def extract_extra_data(self, data: Any) -> dict[str, Any]:
        return {
            "saml_attributes": data.get_attributes(),
            "saml_name_id": data.get_nameid(),
            "saml_name_id_format": data.get_nameid_format(),
            "saml_authn_contexts": list(data.get_last_authn_contexts() or []),
            "email": self._extract(data).get("email", ""),
        }

    def _verified(self, attributes: dict[str, Any]) -> bool:
        if not self.app.settings.get("asserts_verified_email"):
            return False
        # allauth's _extract turned a mapped `email_verified` attribute into a bool.
        return attributes.get("email_verified") is not False

    def extract_common_fields(self, data: Any) -> dict[str, Any]:
        fields = super().extract_common_fields(data)
        fields["email_verified"] = self._verified(fields)
        return fields

    def extract_email_addresses(self, data: Any) -> list[EmailAddress]:
        attributes = self._extract(data)
        email = attributes.get("email")
        if not isinstance(email, str) or not email:
            return []
        return [EmailAddress(email=email, verified=self._verified(attributes), primary=True)]

    def redirect(
        self,
        request: HttpRequest,
        process: Any,
        next_url: str | None = None,
        data: Any = None,
        **kwargs: Any,
    ) -> HttpResponseRedirect:
        from federation.saml.auth import build_auth

        auth = build_auth(request, self)
        location = auth.login(return_to="")
        # The AuthnRequest's ID is the state's key: the response's InResponseTo must find it
        # in this browser's session (federation.saml.views.finish_acs), once.
        self.stash_redirect_state(
            request, process, next_url, data, state_id=auth.get_last_request_id(), **kwargs
        )
        return HttpResponseRedirect(location)
