"""The admin's form for an app's SCIM target: the token is write-only."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from oauth_clients.models import Client
from provisioning.models import USER_ATTRIBUTES, ScimTarget
from provisioning.services import target_errors


class ScimTargetForm(forms.ModelForm):
    # Never rendered back (render_value=False): a saved token is not shown again.
    token = forms.CharField(
        label=_("bearer token"),
        required=False,
        strip=True,
        max_length=4096,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text=_(
            "The token the app issued for the IdP. Stored encrypted and never shown again; "
            "leave empty to keep the current one."
        ),
    )
    base_url = forms.URLField(
        label=_("SCIM base URL"),
        max_length=500,
        assume_scheme="https",
        help_text=_("The app's SCIM 2.0 endpoint, e.g. https://app.example.com/scim/v2"),
    )
    user_attributes = forms.MultipleChoiceField(
        label=_("user attributes sent"),
        required=False,
        choices=list(USER_ATTRIBUTES.items()),
        widget=forms.CheckboxSelectMultiple,
        help_text=_("userName, externalId and active are always sent."),
    )

    class Meta:
        model = ScimTarget
        fields = (
            "client",
            "base_url",
            "token",
            "enabled",
            "user_attributes",
            "enterprise_extension",
            "deprovision",
        )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "client" in self.fields:
            self.fields["client"].queryset = Client.objects.exclude(  # type: ignore[attr-defined]
                kind=Client.Kind.SERVICE
            ).order_by("name")

    def clean(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = super().clean() or {}
        # Editing, the app is fixed (not a field of the form): the instance's.
        client = cleaned.get("client") or (self.instance.client if self.instance.pk else None)
        if self.errors or client is None:
            return cleaned
        probe = ScimTarget(
            client=client,
            base_url=cleaned.get("base_url") or "",
            user_attributes=cleaned.get("user_attributes") or [],
            token_encrypted=self.instance.token_encrypted if self.instance.pk else "",
        )
        for field, messages in target_errors(target=probe, token=cleaned.get("token")).items():
            for message in messages:
                self.add_error(field, message)
        return cleaned
