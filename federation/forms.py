"""The administrator's form for an upstream provider: its secret written, never shown."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from django import forms
from django.contrib.auth.models import Group
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from federation.models import UpstreamProvider
from federation.saml import metadata as saml_metadata
from oauth_clients import uri_rules

TENANT_ID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
DOMAIN = re.compile(r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


class UpstreamProviderForm(forms.ModelForm):
    client_secret = forms.CharField(
        label=gettext_lazy("client secret"),
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text=gettext_lazy(
            "Write-only: stored encrypted and never shown again. Leave empty to keep the "
            "stored one."
        ),
    )

    issuer = forms.URLField(
        label=gettext_lazy("issuer URL"),
        required=False,
        assume_scheme="https",
        help_text=UpstreamProvider._meta.get_field("issuer").help_text,
    )

    saml_metadata_url = forms.URLField(
        label=gettext_lazy("SAML metadata URL"),
        required=False,
        assume_scheme="https",
        max_length=1024,
        help_text=gettext_lazy(
            "SAML: the identity provider's metadata, fetched through the safe sender each time "
            "the provider is saved."
        ),
    )
    saml_metadata_file = forms.FileField(
        label=gettext_lazy("SAML metadata file"),
        required=False,
        help_text=gettext_lazy("SAML: or upload the identity provider's metadata document."),
    )
    saml_sso_url = forms.URLField(
        label=gettext_lazy("SAML single sign-on URL"),
        required=False,
        assume_scheme="https",
        max_length=1024,
        help_text=gettext_lazy(
            "SAML by hand: the HTTP-Redirect sign-on URL, with the entity ID and certificate."
        ),
    )

    class Meta:
        model = UpstreamProvider
        fields = [
            "name",
            "slug",
            "kind",
            "enabled",
            "show_on_sign_in",
            "issuer",
            "tenant",
            "client_id",
            "scopes",
            "allow_private_network",
            "email_domains",
            "create_accounts",
            "trust_mfa",
            "username_claim",
            "first_name_claim",
            "last_name_claim",
            "groups_claim",
            "group_mapping",
            "saml_metadata_url",
            "saml_entity_id",
            "saml_sso_url",
            "saml_certificate",
            "email_attribute",
            "asserts_verified_email",
            "mfa_authn_contexts",
            "allow_unsolicited",
        ]

    def clean_email_domains(self) -> str:
        value = str(self.cleaned_data.get("email_domains", ""))
        domains = [
            line.strip().lower().lstrip("@")
            for line in value.replace(",", "\n").splitlines()
            if line.strip()
        ]
        for domain in domains:
            if not DOMAIN.match(domain):
                raise forms.ValidationError(
                    _("%(domain)s is not a domain name.") % {"domain": domain}
                )
        return "\n".join(domains)

    def clean_group_mapping(self) -> dict[str, str]:
        mapping = self.cleaned_data.get("group_mapping") or {}
        if not isinstance(mapping, dict) or not all(
            isinstance(key, str) and isinstance(value, str) for key, value in mapping.items()
        ):
            raise forms.ValidationError(
                _('Give a JSON object of names, e.g. {"engineering": "Engineers"}.')
            )
        names = set(mapping.values())
        groups = {group.name: group for group in Group.objects.filter(name__in=names)}
        missing = sorted(names - groups.keys())
        if missing:
            raise forms.ValidationError(
                _("No group here is named %(names)s.") % {"names": ", ".join(missing)}
            )
        privileged = sorted(name for name, group in groups.items() if group.permissions.exists())
        if privileged:
            raise forms.ValidationError(
                _(
                    "%(names)s carries administration permissions: an upstream provider may "
                    "not hand it out."
                )
                % {"names": ", ".join(privileged)}
            )
        return mapping

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        kind = data.get("kind")
        allow_private = bool(data.get("allow_private_network"))
        if kind in (UpstreamProvider.Kind.OIDC, UpstreamProvider.Kind.OKTA):
            issuer = str(data.get("issuer") or "")
            if not issuer:
                self.add_error("issuer", _("This kind of provider needs its issuer URL."))
            else:
                self._check_issuer(issuer, allow_private=allow_private)
        if kind == UpstreamProvider.Kind.ENTRA and not TENANT_ID.match(
            str(data.get("tenant") or "")
        ):
            self.add_error(
                "tenant",
                _("Give the directory (tenant) ID, e.g. 72f988bf-86f1-41af-91ab-2d7cd011db47."),
            )
        if kind == UpstreamProvider.Kind.GOOGLE and not DOMAIN.match(
            str(data.get("tenant") or "").lower()
        ):
            self.add_error("tenant", _("Give the company's Google Workspace domain."))
        if kind == UpstreamProvider.Kind.SAML:
            self._clean_saml(data, allow_private=allow_private)
            return data
        if not data.get("client_id"):
            self.add_error("client_id", _("The client ID registered at the provider is needed."))
        if not self.instance.client_secret_encrypted and not data.get("client_secret"):
            self.add_error("client_secret", _("The provider's client secret is needed."))
        return data

    def _clean_saml(self, data: dict[str, Any], *, allow_private: bool) -> None:
        """The identity provider's entity ID, sign-on URL and certificates: from the uploaded
        metadata, else from the metadata URL (fetched through the safe sender), else by hand."""
        upload = data.get("saml_metadata_file")
        url = str(data.get("saml_metadata_url") or "")
        values: saml_metadata.IdPValues | None
        try:
            if upload:
                if upload.size > saml_metadata.MAX_METADATA_BYTES:
                    raise forms.ValidationError(_("The metadata is larger than 1 MiB."))
                document = upload.read()
                values = saml_metadata.read_idp_metadata(document)
                self.instance.saml_metadata_xml = document.decode("utf-8", "replace")
            elif url:
                document = saml_metadata.fetch_idp_metadata(
                    url, allow_private_network=allow_private
                )
                values = saml_metadata.read_idp_metadata(document)
                self.instance.saml_metadata_xml = document.decode("utf-8", "replace")
            else:
                values = self._saml_by_hand(data, allow_private=allow_private)
                self.instance.saml_metadata_xml = ""
        except forms.ValidationError as error:
            field = (
                "saml_metadata_file"
                if upload
                else "saml_metadata_url"
                if url
                else "saml_certificate"
            )
            self.add_error(field, error)
            return
        if values is None:
            return
        data["saml_entity_id"] = values.entity_id
        data["saml_sso_url"] = values.sso_url
        data["saml_certificate"] = values.certificate

    def _saml_by_hand(
        self, data: dict[str, Any], *, allow_private: bool
    ) -> saml_metadata.IdPValues | None:
        entity_id = str(data.get("saml_entity_id") or "").strip()
        sso_url = str(data.get("saml_sso_url") or "")
        if not entity_id or not sso_url or not data.get("saml_certificate"):
            self.add_error(
                "saml_entity_id",
                _(
                    "Give the identity provider's metadata (a URL or a file), or its entity ID, "
                    "single sign-on URL and signing certificate."
                ),
            )
            return None
        parts = urlsplit(sso_url)
        if parts.scheme != "https" and not (allow_private and parts.scheme == "http"):
            self.add_error(
                "saml_sso_url",
                _("The sign-on URL must use https (http only on a private network)."),
            )
            return None
        certificate = saml_metadata.normalize_certificates(str(data["saml_certificate"]))
        return saml_metadata.IdPValues(
            entity_id=entity_id, sso_url=sso_url, certificate=certificate
        )

    def _check_issuer(self, issuer: str, *, allow_private: bool) -> None:
        parts = urlsplit(issuer)
        if parts.query or parts.fragment or not parts.hostname:
            self.add_error("issuer", _("The issuer is an https URL without query or fragment."))
            return
        if parts.scheme != "https" and not (allow_private and parts.scheme == "http"):
            self.add_error(
                "issuer",
                _("The issuer must use https (http only for a provider on a private network)."),
            )
            return
        if not allow_private:
            internal, _why = uri_rules.host_is_internal(parts.hostname)
            if internal:
                self.add_error(
                    "issuer",
                    _(
                        "The issuer is on a private or loopback address: allow a private "
                        "network address for this provider if that is intended."
                    ),
                )
