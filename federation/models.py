"""An upstream identity provider this IdP signs people in through (identity brokering).

One row per provider; allauth never sees a `SocialApp` row of the database: the adapter builds
allauth's app from the enabled rows here (`federation.providers.social_app`), so disabling a row
stops its sign-ins at once, mid-flow included, and the client secret stays encrypted at rest.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class UpstreamProvider(models.Model):
    class Kind(models.TextChoices):
        OIDC = "oidc", _("OpenID Connect (any provider, by issuer)")
        ENTRA = "entra", _("Microsoft Entra ID")
        GOOGLE = "google", _("Google Workspace")
        OKTA = "okta", _("Okta")
        GITHUB = "github", _("GitHub")
        SAML = "saml", _("SAML 2.0 identity provider")

    name = models.CharField(_("name"), max_length=100, help_text=_("Shown on the sign-in button."))
    slug = models.SlugField(
        _("identifier"),
        max_length=40,
        unique=True,
        help_text=_(
            "Part of the callback URL registered at the provider; cannot change afterwards."
        ),
    )
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    issuer = models.URLField(
        _("issuer URL"),
        blank=True,
        help_text=_(
            "OpenID Connect and Okta: the issuer (its /.well-known/openid-configuration is read)."
        ),
    )
    tenant = models.CharField(
        _("tenant or domain"),
        max_length=255,
        blank=True,
        help_text=_(
            "Entra ID: the directory (tenant) ID. Google Workspace: the company's domain, "
            "required in the ID token's hd claim."
        ),
    )
    client_id = models.CharField(_("client ID"), max_length=255, blank=True)
    client_secret_encrypted = models.TextField(_("client secret (encrypted)"), blank=True)
    enabled = models.BooleanField(_("enabled"), default=True)
    show_on_sign_in = models.BooleanField(_("button on the sign-in page"), default=True)
    email_domains = models.TextField(
        _("email domains"),
        blank=True,
        help_text=_(
            "One a line. The sign-in page sends addresses of these domains to this provider "
            "instead of asking a password; accounts created just in time must be in them."
        ),
    )
    create_accounts = models.BooleanField(
        _("create accounts just in time"),
        default=False,
        help_text=_("A person without an account gets one at their first sign-in."),
    )
    trust_mfa = models.BooleanField(
        _("trust the provider's two-step verification"),
        default=False,
        help_text=_(
            "When the provider's ID token says a second factor was used (amr), apps that "
            "require two-step verification do not ask for ours."
        ),
    )
    allow_private_network = models.BooleanField(
        _("allow a private network address"),
        default=False,
        help_text=_("Only for a provider inside the company network (or a test)."),
    )
    scopes = models.CharField(
        _("scopes"),
        max_length=255,
        default="openid profile email",
        help_text=_(
            "OpenID Connect scopes asked for, space-separated (add the provider's groups scope, "
            "e.g. groups, for group mapping)."
        ),
    )
    username_claim = models.CharField(
        _("username claim"), max_length=64, default="preferred_username", blank=True
    )
    first_name_claim = models.CharField(
        _("first name claim"), max_length=64, default="given_name", blank=True
    )
    last_name_claim = models.CharField(
        _("last name claim"), max_length=64, default="family_name", blank=True
    )
    groups_claim = models.CharField(_("groups claim"), max_length=64, default="groups", blank=True)
    group_mapping = models.JSONField(
        _("group mapping"),
        default=dict,
        blank=True,
        help_text=_(
            'Upstream group → group here, e.g. {"engineering": "Engineers"}. At each sign-in '
            "the person is put in the mapped groups the provider names and taken out of the "
            "others of this mapping."
        ),
    )
    # SAML 2.0 (federation/saml/): the identity provider as read from its metadata (a URL fetched
    # through the safe sender, or an uploaded document) or given by hand. The three values a
    # sign-in uses are always stored: a sign-in never fetches anything.
    saml_metadata_url = models.URLField(
        _("SAML metadata URL"),
        blank=True,
        max_length=1024,
        help_text=_("SAML: the identity provider's metadata, read when saved."),
    )
    saml_metadata_xml = models.TextField(_("SAML metadata"), blank=True)
    saml_entity_id = models.CharField(_("SAML entity ID"), max_length=1024, blank=True)
    saml_sso_url = models.URLField(_("SAML single sign-on URL"), max_length=1024, blank=True)
    saml_certificate = models.TextField(
        _("SAML signing certificate"),
        blank=True,
        help_text=_("PEM; the identity provider's responses or assertions must be signed by it."),
    )
    email_attribute = models.CharField(
        _("email attribute"),
        max_length=255,
        default="email",
        blank=True,
        help_text=_("SAML: the attribute that carries the address (else an email NameID)."),
    )
    asserts_verified_email = models.BooleanField(
        _("the provider asserts verified addresses"),
        default=False,
        help_text=_(
            "SAML has no standard way to say an address was verified. Tick only when this "
            "provider releases only addresses it verified (its own directory's): only then can "
            "its address link an existing account or create one."
        ),
    )
    mfa_authn_contexts = models.TextField(
        _("authentication contexts that mean two-step verification"),
        blank=True,
        default="https://refeds.org/profile/mfa",
        help_text=_(
            "SAML: one AuthnContextClassRef a line; with trust two-step verification on, an "
            "assertion stating one of them satisfies apps that require two-step verification."
        ),
    )
    allow_unsolicited = models.BooleanField(
        _("accept sign-ins started at the provider"),
        default=False,
        help_text=_(
            "SAML: accept responses this IdP did not ask for (IdP-initiated sign-in). Off: "
            "every response must answer a request of the same browser."
        ),
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("changed"), auto_now=True)

    class Meta:
        verbose_name = _("upstream identity provider")
        verbose_name_plural = _("upstream identity providers")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def domains(self) -> list[str]:
        return [
            line.strip().lower().lstrip("@")
            for line in self.email_domains.replace(",", "\n").splitlines()
            if line.strip()
        ]

    @property
    def scope_list(self) -> list[str]:
        scopes = self.scopes.split()
        return scopes if "openid" in scopes else ["openid", *scopes]

    @property
    def mfa_context_list(self) -> set[str]:
        return {line.strip() for line in self.mfa_authn_contexts.splitlines() if line.strip()}

    def serves_address(self, email: str) -> bool:
        _local, at, domain = email.strip().lower().rpartition("@")
        return bool(at) and domain in self.domains
