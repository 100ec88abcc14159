"""Admin forms for client apps: the "register an app" questions, rotation and the change form.

Every rule comes from `oauth_clients.uri_rules`; the services check again before writing.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.forms.models import construct_instance
from django.utils.html import format_html
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

from oauth_clients import saml_metadata, services, uri_rules
from oauth_clients.models import (
    MAPPABLE_USER_ATTRIBUTES,
    AppRole,
    Client,
    SamlServiceProvider,
    validate_role_name,
)

KIND_HELP: dict[str, Any] = {
    Client.Kind.WEB: _(
        "Runs on a server that can keep a secret (Django, Rails, Spring…). "
        "Gets a client secret; authorization code flow with PKCE."
    ),
    Client.Kind.SPA: _(
        "Runs entirely in the browser (React, Vue…). Cannot keep a secret: "
        "authorization code flow with PKCE, no secret."
    ),
    Client.Kind.NATIVE: _(
        "Desktop or mobile app. Cannot keep a secret: authorization code flow with PKCE; "
        "may use a loopback or reverse-domain redirect (com.example.app:/callback)."
    ),
    Client.Kind.SERVICE: _(
        "A program calling APIs on its own behalf, no user. Gets a client secret; "
        "client credentials only; no redirect URIs."
    ),
    Client.Kind.DEVICE: _(
        "A command-line tool, TV or kiosk that cannot show a sign-in page. The person types a "
        "short code at /device on their phone or computer; the device polls for its tokens "
        "(device authorization grant). No secret, no redirect URIs."
    ),
    Client.Kind.API: _(
        "An API that checks the access tokens clients bring. Declares its audience; tokens "
        "asked for it are JWTs it can verify itself (RFC 9068). No users sign in to it."
    ),
    Client.Kind.SAML: _(
        "An app that offers single sign-on over SAML 2.0 only. Registered from its metadata "
        "(a file or a URL) or its entity ID, ACS URL and certificate; no secret."
    ),
}

NAMEID_CHOICES = SamlServiceProvider.NameIdFormat.choices

URI_LIST_HELP = _(
    "One per line, exact (no wildcards, no #fragment). https only; http only for 127.0.0.1, "
    "[::1] and localhost."
)

# OIDC Core §4: the app's page that starts a sign-in, opened from the employee's My apps page.
INITIATE_LOGIN_HELP = _(
    "Where the My apps page opens the app: its page that starts a sign-in here (OpenID Connect "
    "initiate_login_uri; it receives iss). https only; http only for 127.0.0.1, [::1] and "
    "localhost. Empty: the app is listed but opens from the app itself."
)

ALGORITHM_LABEL = _("ID token signing algorithm")
ALGORITHM_HELP = _(
    "RS256 is what every OpenID Connect library accepts: keep it unless you know the app's "
    "library supports ES256. ES256 is faster and gives smaller tokens, for clients that "
    "support it."
)
SERVICE_IGNORES_ALGORITHM = _("Ignored for a machine-to-machine service (it gets no ID tokens).")
API_ALGORITHM_HELP = _(
    "For an API: what its JWT access tokens are signed with. Its resource servers verify "
    "either against the published keys; ES256 lets the IdP issue them several times faster."
)


def _algorithm_choices() -> list[tuple[str, Any]]:
    return [
        (services.DEFAULT_ID_TOKEN_ALGORITHM, _("RS256 (RSA) — the default, accepted everywhere")),
        (Client.ES256_ALGORITHM, _("ES256 (ECDSA P-256) — faster and smaller")),
    ]


def _algorithm_field(help_text: Any = ALGORITHM_HELP) -> forms.ChoiceField:
    return forms.ChoiceField(
        label=ALGORITHM_LABEL,
        choices=_algorithm_choices,
        initial=services.DEFAULT_ID_TOKEN_ALGORITHM,
        required=False,
        widget=forms.RadioSelect,
        help_text=help_text,
    )


def _kind_choices() -> list[tuple[str, Any]]:
    return [
        (value, format_html("<strong>{}</strong> — {}", label, KIND_HELP[value]))
        for value, label in Client.Kind.choices
    ]


def _scope_choices() -> list[tuple[str, str]]:
    return [(name, f"{name} — {text}") for name, text in uri_rules.known_scopes().items()]


def _lifetime_help(field: str) -> str:
    default = uri_rules.default_lifetimes()[field]
    return str(
        _("Seconds. Leave empty for the provider default (%(default)s s).")
        % {"default": default if default is not None else "none"}
    )


def _uri_textarea() -> forms.Textarea:
    return forms.Textarea(attrs={"rows": 3, "cols": 80, "spellcheck": "false"})


def _lifetime_field(field: str, label: Any) -> forms.IntegerField:
    return forms.IntegerField(
        label=label,
        required=False,
        min_value=uri_rules.MIN_LIFETIME_SECONDS,
        max_value=uri_rules.LIFETIME_BOUNDS[field],
        help_text=_lifetime_help(field),
        widget=forms.NumberInput(
            attrs={"placeholder": str(uri_rules.default_lifetimes()[field] or "")}
        ),
    )


def _url_field(label: Any, help_text: Any = "") -> forms.CharField:
    return forms.CharField(label=label, required=False, max_length=500, help_text=help_text)


# Errors from uri_rules use model field names; the register form names scopes differently.
_FORM_FIELD_FOR = {"allowed_scopes": "scopes"}


def add_rule_errors(form: forms.BaseForm, errors: dict[str, list[str]]) -> None:
    """Attach per-field rule errors to a form (non-field when the form has no such field)."""
    for field, messages in errors.items():
        name = _FORM_FIELD_FOR.get(field, field) if field not in form.fields else field
        for message in messages:
            form.add_error(name if name in form.fields else None, message)


class RegisterClientForm(forms.Form):
    """The few questions that decide everything about a new app."""

    kind = forms.ChoiceField(
        label=_("What kind of app is it?"), choices=_kind_choices, widget=forms.RadioSelect
    )
    name = forms.CharField(
        label=_("Name"),
        max_length=255,
        help_text=_("Shown to users on the sign-in and consent screens."),
    )
    description = forms.CharField(
        label=_("Description"), required=False, widget=forms.Textarea(attrs={"rows": 2})
    )
    redirect_uris = forms.CharField(
        label=_("Redirect URIs"),
        required=False,
        widget=_uri_textarea(),
        help_text=URI_LIST_HELP,
    )
    post_logout_redirect_uris = forms.CharField(
        label=_("Post-logout redirect URIs"),
        required=False,
        widget=_uri_textarea(),
        help_text=_("Where the app may send users after signing out. Same rules."),
    )
    scopes = forms.MultipleChoiceField(
        label=_("Scopes the app may ask for"),
        choices=_scope_choices,
        initial=["openid", "profile", "email"],
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text=_(
            "Ask for the least the app needs; openid is required to sign users in. "
            "A machine-to-machine service acts for no person: leave these unchecked."
        ),
    )
    is_trusted = forms.BooleanField(
        label=_("Trusted first-party app (skips the consent screen)"),
        required=False,
        help_text=_("Only for apps the company itself runs."),
    )
    requires_mfa = forms.BooleanField(
        label=_("Users must have used a second factor"), required=False
    )
    # RFC 9449, RFC 9126 and FAPI 2.0's Security Profile (the high-security profile).
    require_dpop = forms.BooleanField(
        label=_("Require DPoP (sender-bound tokens)"),
        required=False,
        help_text=_("Every token request must carry a DPoP proof of the app's key (RFC 9449)."),
    )
    require_pushed_authorization_requests = forms.BooleanField(
        label=_("Require pushed authorization requests (PAR)"),
        required=False,
        help_text=_("The app must push each sign-in request to the PAR endpoint (RFC 9126)."),
    )
    high_security = forms.BooleanField(
        label=_("High security (FAPI 2.0)"),
        required=False,
        help_text=_(
            "Requires PAR, PKCE, private_key_jwt and DPoP, with the code bound to the DPoP key. "
            "Only for a server-side app or service with its public keys."
        ),
    )
    algorithm = _algorithm_field(
        format_lazy("{} {} {}", ALGORITHM_HELP, SERVICE_IGNORES_ALGORITHM, API_ALGORITHM_HELP)
    )
    logo_uri = forms.CharField(label=_("Logo URL"), required=False, max_length=500)
    client_uri = forms.CharField(label=_("Home page URL"), required=False, max_length=500)
    policy_uri = forms.CharField(label=_("Privacy policy URL"), required=False, max_length=500)
    tos_uri = forms.CharField(label=_("Terms of service URL"), required=False, max_length=500)
    initiate_login_uri = forms.CharField(
        label=_("Sign-in start URL"),
        required=False,
        max_length=500,
        help_text=INITIATE_LOGIN_HELP,
    )
    owner_contact = forms.EmailField(
        label=_("Owner contact"),
        required=False,
        help_text=_("Who to call when something is wrong with this app."),
    )
    access_token_lifetime = _lifetime_field("access_token_lifetime", _("Access token lifetime"))
    id_token_lifetime = _lifetime_field("id_token_lifetime", _("ID token lifetime"))
    refresh_token_idle_lifetime = _lifetime_field(
        "refresh_token_idle_lifetime", _("Refresh token idle lifetime")
    )
    refresh_token_absolute_lifetime = _lifetime_field(
        "refresh_token_absolute_lifetime", _("Refresh token absolute lifetime")
    )
    # OpenID Connect Back-Channel / Front-Channel Logout 1.0 (single sign-out).
    backchannel_logout_uri = _url_field(
        _("Back-channel logout URI"),
        _("The IdP POSTs a logout token here when a user signs out (https, public address)."),
    )
    backchannel_logout_session_required = forms.BooleanField(
        label=_("The app needs the session id (sid) in logout tokens"), required=False
    )
    frontchannel_logout_uri = _url_field(
        _("Front-channel logout URI"),
        _("Loaded in a hidden frame of the user's browser at sign-out."),
    )
    allow_private_network = forms.BooleanField(
        label=_("Allow a back-channel logout URI on a private or loopback address"),
        required=False,
        help_text=_("Only for internal apps: the IdP would otherwise refuse to call them."),
    )

    # RFC 9068: an API's audience. RFC 7523 §2.2: the client's keys (private_key_jwt).
    audience = forms.CharField(
        label=_("API audience (URI)"),
        required=False,
        max_length=500,
        help_text=_("Only for an API: the URI clients name as `resource` to get its tokens."),
    )
    jwks = forms.CharField(
        label=_("Public keys (JWK Set, JSON)"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 4, "cols": 80, "spellcheck": "false"}),
        help_text=_("The app then signs in with private_key_jwt and gets no secret."),
    )
    jwks_uri = _url_field(
        _("or the URL of its public keys (jwks_uri)"),
        _(
            "Fetched by the IdP: https, a public address unless private-network addresses are "
            "allowed below."
        ),
    )

    # A SAML 2.0 app: its metadata, or its entity ID, ACS URL and certificate.
    saml_metadata_file = forms.FileField(
        label=_("SAML metadata file"),
        required=False,
        help_text=_("The app's service-provider metadata (XML, at most 1 MiB)."),
    )
    saml_metadata_url = forms.CharField(
        label=_("or its metadata URL"),
        required=False,
        max_length=1024,
        help_text=_(
            "Fetched now and on every refresh: https, a public address unless private-network "
            "addresses are allowed below."
        ),
    )
    saml_entity_id = forms.CharField(
        label=_("or by hand: entity ID"),
        required=False,
        max_length=1024,
        help_text=_("With a metadata file listing several apps, chooses one of them."),
    )
    saml_acs_url = forms.CharField(
        label=_("Assertion consumer service (ACS) URL"),
        required=False,
        max_length=1024,
        help_text=_("Where the app receives assertions (HTTP-POST). https only."),
    )
    saml_certificate = forms.CharField(
        label=_("The app's signing certificate (PEM)"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 4, "cols": 80, "spellcheck": "false"}),
    )
    saml_nameid_format = forms.ChoiceField(
        label=_("NameID format"),
        required=False,
        choices=[("", _("As the metadata says (else email address)")), *NAMEID_CHOICES],
    )
    saml_sign_response = forms.BooleanField(
        label=_("Sign the whole response too (the assertion is always signed)"), required=False
    )

    def _saml_source(self, data: dict[str, Any]) -> dict[str, Any]:
        """The metadata source the form names, as register_saml_app arguments; field errors."""
        upload = data.get("saml_metadata_file")
        url = (data.get("saml_metadata_url") or "").strip()
        by_hand = bool(data.get("saml_acs_url") or data.get("saml_certificate"))
        chosen = [
            name for name, given in (("file", upload), ("url", url), ("hand", by_hand)) if given
        ]
        if len(chosen) != 1:
            self.add_error(
                "saml_metadata_file",
                _(
                    "Give the app's metadata (a file or a URL), or its entity ID, ACS URL and "
                    "certificate by hand: one of them."
                ),
            )
            return {}
        if upload:
            content = upload.read(saml_metadata.MAX_METADATA_BYTES + 1)
            return {"metadata_xml": content}
        if url:
            return {"metadata_url": url}
        if not data.get("saml_entity_id"):
            self.add_error("saml_entity_id", _("Enter the app's entity ID (from its metadata)."))
        if not data.get("saml_acs_url"):
            self.add_error("saml_acs_url", _("Enter the app's ACS URL."))
        return {
            "acs_urls": [data.get("saml_acs_url") or ""],
            "certificates": data.get("saml_certificate") or None,
        }

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        if "kind" not in data:
            return data
        saml_given = [name for name in SAML_REGISTER_FIELDS if data.get(name)]
        if data["kind"] != Client.Kind.SAML:
            for name in saml_given:
                self.add_error(name, _("Only for a SAML 2.0 app."))
        else:
            data["algorithm"] = ""
            self.saml_source = self._saml_source(data)
        errors = uri_rules.registration_errors(
            kind=data["kind"],
            redirect_uris=data.get("redirect_uris", ""),
            post_logout_redirect_uris=data.get("post_logout_redirect_uris", ""),
            scopes=data.get("scopes", []),
            backchannel_logout_uri=data.get("backchannel_logout_uri") or "",
            frontchannel_logout_uri=data.get("frontchannel_logout_uri") or "",
            allow_private_network=bool(data.get("allow_private_network")),
            info_uris={name: data.get(name, "") for name in uri_rules.INFO_URI_FIELDS},
            lifetimes={name: data.get(name) for name in services.LIFETIME_FIELDS},
        )
        if not services.chooses_algorithm(data["kind"]):
            # Irrelevant for a service or a SAML app (no ID tokens): the radio's value is dropped.
            data["algorithm"] = ""
        elif "algorithm" in data:
            data["algorithm"] = data["algorithm"] or services.default_id_token_algorithm(
                data["kind"]
            )
            errors.update(
                services.id_token_algorithm_errors(kind=data["kind"], algorithm=data["algorithm"])
            )
        errors.update(
            services.high_security_errors(
                kind=data["kind"],
                high_security=bool(data.get("high_security")),
                jwks=(data.get("jwks") or "").strip(),
                jwks_uri=(data.get("jwks_uri") or "").strip(),
            )
        )
        add_rule_errors(self, {k: v for k, v in errors.items() if k not in self.errors})
        return data

    def service_arguments(self) -> dict[str, Any]:
        """Cleaned data as keyword arguments for `services.register_client`."""
        return {
            name: value
            for name, value in self.cleaned_data.items()
            if name not in SAML_REGISTER_FIELDS
        }

    def saml_arguments(self) -> dict[str, Any]:
        """Cleaned data as keyword arguments for `services.register_saml_app`."""
        data = self.cleaned_data
        app_fields = {
            name: data[name]
            for name in services.SAML_APP_FIELDS
            if name in data and name != "allowed_scopes"
        }
        return {
            **app_fields,
            "allowed_scopes": data.get("scopes") or [],
            "entity_id": data.get("saml_entity_id") or None,
            "nameid_format": data.get("saml_nameid_format") or None,
            "sign_response": bool(data.get("saml_sign_response")),
            **getattr(self, "saml_source", {}),
        }

    def add_saml_error(self, error: ValidationError) -> None:
        """A refusal of register_saml_app, on the field of the source it came from."""
        if hasattr(error, "error_dict"):
            fields = {
                "entity_id": "saml_entity_id",
                "acs_urls": "saml_acs_url",
                "certificates": "saml_certificate",
                "nameid_format": "saml_nameid_format",
                "metadata_url": "saml_metadata_url",
                "allowed_scopes": "scopes",
            }
            for field, messages in error.message_dict.items():
                name = fields.get(field, field)
                for message in messages:
                    self.add_error(name if name in self.fields else None, message)
            return
        source = getattr(self, "saml_source", {})
        target: str | None = (
            "saml_metadata_url"
            if "metadata_url" in source
            else "saml_metadata_file"
            if "metadata_xml" in source
            else None
        )
        for message in error.messages:
            self.add_error(target, message)


SAML_REGISTER_FIELDS = (
    "saml_metadata_file",
    "saml_metadata_url",
    "saml_entity_id",
    "saml_acs_url",
    "saml_certificate",
    "saml_nameid_format",
    "saml_sign_response",
)


class RotateSecretForm(forms.Form):
    grace_seconds = forms.IntegerField(
        label=_("Keep the old secret working for (seconds)"),
        min_value=0,
        max_value=services.MAX_GRACE_SECONDS,
        initial=0,
        help_text=_(
            "0: the old secret stops working now. Give the app's operators time to deploy the "
            "new secret, e.g. 3600 for an hour, 86400 for a day."
        ),
    )


class ClientChangeForm(forms.ModelForm):
    """The admin change form: editable settings only, validated by the registration rules."""

    allowed_scopes = forms.MultipleChoiceField(
        label=_("Scopes the app may ask for"),
        choices=_scope_choices,
        widget=forms.CheckboxSelectMultiple,
        required=False,
    )

    class Meta:
        model = Client
        fields = services.EDITABLE_FIELDS
        widgets = {
            "redirect_uris": _uri_textarea(),
            "post_logout_redirect_uris": _uri_textarea(),
            "description": forms.Textarea(attrs={"rows": 2}),
        }
        help_texts = {
            "redirect_uris": URI_LIST_HELP,
            "post_logout_redirect_uris": _("Where the app may send users after signing out."),
        }

    # Only RS256 and ES256 (the model also knows "no algorithm", which is a service's alone);
    # removed from the form of a service in __init__.
    algorithm = _algorithm_field()
    # URLs are plain text fields: our rules decide, with their own messages (not URLField's).
    logo_uri = _url_field(_("Logo URL"))
    client_uri = _url_field(_("Home page URL"))
    policy_uri = _url_field(_("Privacy policy URL"))
    tos_uri = _url_field(_("Terms of service URL"))
    initiate_login_uri = _url_field(_("Sign-in start URL"), INITIATE_LOGIN_HELP)
    backchannel_logout_uri = _url_field(
        _("Back-channel logout URI"),
        _("The IdP POSTs a logout token here when a user signs out (https, public address)."),
    )
    frontchannel_logout_uri = _url_field(
        _("Front-channel logout URI"),
        _("Loaded in a hidden frame of the user's browser at sign-out."),
    )
    jwks_uri = _url_field(_("or the URL of its public keys (jwks_uri)"))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.initial["allowed_scopes"] = self.instance.allowed_scopes.split()
        if not services.chooses_algorithm(self.instance.kind):
            self.fields.pop("algorithm", None)
        elif "algorithm" in self.fields:
            # An API's empty algorithm means RS256 (oauth_clients/oidc/jwt_access.py).
            self.fields["algorithm"].required = bool(
                services.default_id_token_algorithm(self.instance.kind)
            )
            if self.instance.kind == Client.Kind.API:
                self.fields["algorithm"].help_text = API_ALGORITHM_HELP
        for name in services.LIFETIME_FIELDS:
            if name in self.fields:
                field = self.fields[name]
                field.help_text = _lifetime_help(name)
                if isinstance(field, forms.IntegerField):
                    field.min_value = uri_rules.MIN_LIFETIME_SECONDS
                    field.validators.append(MinValueValidator(uri_rules.MIN_LIFETIME_SECONDS))

    def clean_allowed_scopes(self) -> str:
        return " ".join(sorted(self.cleaned_data.get("allowed_scopes") or []))

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        kind = self.instance.kind

        def value(name: str) -> Any:
            return data.get(name, getattr(self.instance, name))

        errors = uri_rules.registration_errors(
            kind=kind,
            redirect_uris=value("redirect_uris"),
            post_logout_redirect_uris=value("post_logout_redirect_uris"),
            scopes=value("allowed_scopes"),
            backchannel_logout_uri=value("backchannel_logout_uri") or "",
            frontchannel_logout_uri=value("frontchannel_logout_uri") or "",
            allow_private_network=bool(value("allow_private_network")),
            info_uris={name: value(name) or "" for name in uri_rules.INFO_URI_FIELDS},
            lifetimes={name: value(name) for name in services.LIFETIME_FIELDS},
        )
        if "algorithm" in self.changed_data and "algorithm" in data:
            errors.update(
                services.id_token_algorithm_errors(kind=kind, algorithm=data["algorithm"])
            )
        if {"jwks", "jwks_uri", "allow_private_network"} & set(self.changed_data):
            # The keys' rules as the service applies them, on an unsaved copy, so a bad key
            # set is a field error here rather than a refusal after the form was accepted.
            candidate = Client(
                kind=kind,
                jwks=value("jwks") or None,
                jwks_uri=(value("jwks_uri") or "").strip(),
                allow_private_network=bool(value("allow_private_network")),
            )
            errors.update(services.key_errors(candidate))
        errors.update(
            services.high_security_errors(
                kind=kind,
                high_security=bool(value("high_security")),
                jwks=value("jwks"),
                jwks_uri=(value("jwks_uri") or "").strip(),
            )
        )
        add_rule_errors(self, {k: v for k, v in errors.items() if k not in self.errors})
        return data

    def _post_clean(self) -> None:
        # Validation is oauth_clients.uri_rules (clean() above, and the service again on save);
        # DOT's model clean() would repeat it with other words, so only build the instance.
        self.instance = construct_instance(self, self.instance, self._meta.fields)

    def changes(self) -> dict[str, Any]:
        """The changed editable fields, for `services.update_client`."""
        return {name: self.cleaned_data[name] for name in self.changed_data}


def validation_error_to_form(form: forms.BaseForm, error: ValidationError) -> None:
    """A service's ValidationError onto the form it came from."""
    if hasattr(error, "error_dict"):
        add_rule_errors(form, error.message_dict)
    else:
        form.add_error(None, error)


# --- Who may use an app, its roles and claims (the access page: admin_views.access_view)


def _user_by_username(username: str) -> Any:
    from django.contrib.auth import get_user_model

    user_model = get_user_model()
    try:
        return user_model.objects.get_by_natural_key(username.strip())
    except user_model.DoesNotExist as exc:
        raise ValidationError(_("No user named %(name)s.") % {"name": username}) from exc


class _GroupOrUserForm(forms.Form):
    """Exactly one of a group (chosen) or a user (by username)."""

    group = forms.ModelChoiceField(
        label=_("Group"), queryset=Group.objects.order_by("name"), required=False
    )
    username = forms.CharField(label=_("or user (username)"), required=False, max_length=150)

    def clean_username(self) -> Any:
        username = self.cleaned_data.get("username", "").strip()
        return _user_by_username(username) if username else None

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not self.errors and (data.get("group") is None) == (data.get("username") is None):
            raise ValidationError(_("Choose a group or enter a username, not both."))
        return data

    def who(self) -> dict[str, Any]:
        return {"group": self.cleaned_data["group"], "user": self.cleaned_data["username"]}


class AccessPolicyForm(forms.Form):
    access_policy = forms.ChoiceField(
        label=_("Who may use the app"),
        choices=Client.AccessPolicy.choices,
        widget=forms.RadioSelect,
        help_text=_(
            "Limiting the app to assigned groups and users ends the access of everyone else: "
            "their tokens for the app stop working."
        ),
    )


class AssignForm(_GroupOrUserForm):
    pass


class DefineRoleForm(forms.Form):
    name = forms.CharField(
        label=_("Role"),
        max_length=64,
        validators=[validate_role_name],
        help_text=_("Lower-case letters, digits and - _ . : (e.g. editor, viewer)."),
    )
    description = forms.CharField(label=_("Description"), max_length=255, required=False)


class GrantRoleForm(_GroupOrUserForm):
    role = forms.ModelChoiceField(label=_("Role"), queryset=AppRole.objects.none())

    field_order = ["role", "group", "username"]

    def __init__(self, *args: Any, client: Client, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        role_field = self.fields["role"]
        assert isinstance(role_field, forms.ModelChoiceField)
        role_field.queryset = AppRole.objects.filter(client=client).order_by("name")


def parse_claim_attributes(text: str) -> dict[str, str]:
    """`claim = attribute`, one per line, into a mapping (blank lines skipped)."""
    mapping: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        claim, sep, attribute = line.partition("=")
        if not sep:
            raise ValidationError(_("Write each mapping as claim = attribute, e.g. mail = email."))
        mapping[claim.strip()] = attribute.strip()
    return mapping


class ClaimMappingForm(forms.Form):
    roles_claim = forms.CharField(
        label=_("Roles claim"),
        max_length=64,
        help_text=_("The claim the app's roles are sent in (roles by default)."),
    )
    groups_filter = forms.ChoiceField(
        label=_("Groups claim"), choices=Client.GroupsFilter.choices, widget=forms.RadioSelect
    )
    groups_prefix = forms.CharField(label=_("Group name prefix"), max_length=150, required=False)
    claim_groups = forms.ModelMultipleChoiceField(
        label=_("Listed groups"),
        queryset=Group.objects.order_by("name"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    claim_attributes = forms.CharField(
        label=_("Mapped claims"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=format_lazy(
            _("One per line: claim = attribute. Attributes: {attributes}."),
            attributes=", ".join(MAPPABLE_USER_ATTRIBUTES),
        ),
    )

    def __init__(self, *args: Any, client: Client, **kwargs: Any) -> None:
        kwargs.setdefault(
            "initial",
            {
                "roles_claim": client.roles_claim,
                "groups_filter": client.groups_filter,
                "groups_prefix": client.groups_prefix,
                "claim_groups": list(client.claim_groups.all()) if client.pk else [],
                "claim_attributes": "\n".join(
                    f"{claim} = {attribute}"
                    for claim, attribute in sorted((client.claim_attributes or {}).items())
                ),
            },
        )
        super().__init__(*args, **kwargs)

    def clean_claim_attributes(self) -> dict[str, str]:
        return parse_claim_attributes(self.cleaned_data.get("claim_attributes") or "")


class ClaimsPreviewForm(forms.Form):
    username = forms.CharField(label=_("User (username)"), max_length=150)

    def clean_username(self) -> Any:
        return _user_by_username(self.cleaned_data["username"])


# --- A SAML app's service provider (the SAML page: admin_views.saml_view)

_BINDING_NAMES = {
    saml_metadata.BINDING_HTTP_POST: "POST",
    saml_metadata.BINDING_HTTP_REDIRECT: "Redirect",
    saml_metadata.BINDING_HTTP_ARTIFACT: "Artifact",
    saml_metadata.BINDING_PAOS: "PAOS",
}
_BINDING_BY_NAME = {name.lower(): urn for urn, name in _BINDING_NAMES.items()}


def format_acs_lines(acs_urls: list[dict[str, Any]]) -> str:
    """The ACS list as the text the SAML page edits: `index binding URL [default]`."""
    return "\n".join(
        " ".join(
            [
                str(acs["index"]),
                _BINDING_NAMES.get(acs["binding"], acs["binding"]),
                acs["url"],
                *(["default"] if acs.get("is_default") else []),
            ]
        )
        for acs in sorted(acs_urls, key=lambda acs: acs["index"])
    )


def parse_acs_lines(text: str) -> list[dict[str, Any]]:
    """`index binding URL [default]` per line (a bare URL: HTTP-POST, the next index)."""
    endpoints: list[dict[str, Any]] = []
    for line in text.splitlines():
        parts = line.split()
        if not parts:
            continue
        if len(parts) == 1:
            index, binding, url, rest = len(endpoints), "POST", parts[0], []
        elif len(parts) >= 3 and parts[0].isdigit():
            index, binding, url, rest = int(parts[0]), parts[1], parts[2], parts[3:]
        else:
            raise ValidationError(
                _("Write each ACS as: index binding URL [default], e.g. 0 POST https://app/acs")
            )
        urn = _BINDING_BY_NAME.get(binding.lower(), binding)
        if rest not in ([], ["default"]):
            raise ValidationError(_("Only the word default may follow an ACS URL."))
        endpoints.append({"url": url, "binding": urn, "index": index, "is_default": bool(rest)})
    return endpoints


def parse_attribute_names(text: str) -> dict[str, str]:
    """`claim = SAML attribute name`, one per line (blank lines skipped)."""
    mapping: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        claim, sep, name = line.partition("=")
        if not sep:
            raise ValidationError(
                _("Write each line as claim = attribute name, e.g. email = mail.")
            )
        mapping[claim.strip()] = name.strip()
    return mapping


class SamlSettingsForm(forms.Form):
    """A SAML app's service-provider settings, for `services.update_saml_sp`."""

    entity_id = forms.CharField(label=_("Entity ID"), max_length=1024)
    acs_urls = forms.CharField(
        label=_("Assertion consumer service (ACS) URLs"),
        widget=_uri_textarea(),
        help_text=_(
            "One per line: index binding URL, and default for the default one "
            "(e.g. 0 POST https://app.example.com/saml/acs default). https only."
        ),
    )
    slo_url = forms.CharField(label=_("Single logout URL"), required=False, max_length=1024)
    slo_binding = forms.ChoiceField(
        label=_("Single logout binding"),
        required=False,
        choices=[("", "—"), *[(urn, urn) for urn in saml_metadata.SLO_BINDINGS]],
    )
    certificates = forms.CharField(
        label=_("The app's signing certificates (PEM)"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 6, "cols": 80, "spellcheck": "false"}),
    )
    want_authn_requests_signed = forms.BooleanField(
        label=_("The app's requests must be signed"), required=False
    )
    sign_response = forms.BooleanField(
        label=_("Sign the whole response too (the assertion is always signed)"), required=False
    )
    nameid_format = forms.ChoiceField(label=_("NameID format"), choices=NAMEID_CHOICES)
    attribute_names = forms.CharField(
        label=_("Attribute names"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_(
            "One per line: claim = SAML attribute name (e.g. email = "
            "urn:oid:0.9.2342.19200300.100.1.3). Empty: the claim names themselves."
        ),
    )
    metadata_url = forms.CharField(
        label=_("Metadata URL"),
        required=False,
        max_length=1024,
        help_text=_("Read again by Refresh metadata."),
    )

    def __init__(self, *args: Any, sp: SamlServiceProvider, **kwargs: Any) -> None:
        kwargs.setdefault(
            "initial",
            {
                "entity_id": sp.entity_id,
                "acs_urls": format_acs_lines(sp.acs_urls or []),
                "slo_url": sp.slo_url,
                "slo_binding": sp.slo_binding,
                "certificates": sp.certificates,
                "want_authn_requests_signed": sp.want_authn_requests_signed,
                "sign_response": sp.sign_response,
                "nameid_format": sp.nameid_format,
                "attribute_names": "\n".join(
                    f"{claim} = {name}" for claim, name in sorted(sp.attribute_names.items())
                ),
                "metadata_url": sp.metadata_url,
            },
        )
        super().__init__(*args, **kwargs)

    def clean_acs_urls(self) -> list[dict[str, Any]]:
        return parse_acs_lines(self.cleaned_data.get("acs_urls") or "")

    def clean_attribute_names(self) -> dict[str, str]:
        return parse_attribute_names(self.cleaned_data.get("attribute_names") or "")

    def changes(self) -> dict[str, Any]:
        """The changed fields, for `services.update_saml_sp`."""
        return {name: self.cleaned_data[name] for name in self.changed_data}


class SamlMetadataUploadForm(forms.Form):
    metadata_file = forms.FileField(
        label=_("Metadata file"),
        required=False,
        help_text=_("Leave empty to read the metadata URL again."),
    )
