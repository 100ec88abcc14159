"""Registered client apps and the OAuth/OIDC records DOT keeps for them (swapped DOT models).

Every DOT model is swapped here from the first migration so that we can carry what DOT lacks:
several grant types per client, an active flag, per-client lifetimes, the browser session (`sid`)
a token was issued in, and consumed authorization codes (so a replay can revoke what it issued).
"""

from __future__ import annotations

import re
from datetime import datetime

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from oauth2_provider.generators import generate_client_secret as dot_generate_client_secret
from oauth2_provider.models import (
    AbstractAccessToken,
    AbstractApplication,
    AbstractGrant,
    AbstractIDToken,
    AbstractRefreshToken,
    ApplicationManager,
    TokenChecksumField,
)

from oauth_clients.secrets import hash_client_secret, is_hashed

SID_MAX_LENGTH = 64
# DOT's Application.clean message for an RS256 client without OIDC_RSA_PRIVATE_KEY (compared in
# its translation, so a variable: our catalogues do not carry DOT's strings).
DOT_NEEDS_RSA_KEY = "You must set OIDC_RSA_PRIVATE_KEY to use RSA algorithm"
PEM_CERTIFICATE_RE = re.compile(
    r"-----BEGIN CERTIFICATE-----\s[A-Za-z0-9+/=\s]+?-----END CERTIFICATE-----"
)

# Claim names an app's roles and mapped claims may never take: the standard claims (OIDC Core
# §5.1), the registered JWT and ID token claims (RFC 7519 §4.1, OIDC Core §2, §3.1.3.6, §3.3.2.11,
# RFC 8176) and the two we release ourselves (`roles`, `groups`).
STANDARD_CLAIMS = frozenset(
    {
        "sub",
        "name",
        "given_name",
        "family_name",
        "middle_name",
        "nickname",
        "preferred_username",
        "profile",
        "picture",
        "website",
        "email",
        "email_verified",
        "gender",
        "birthdate",
        "zoneinfo",
        "locale",
        "phone_number",
        "phone_number_verified",
        "address",
        "updated_at",
    }
)
REGISTERED_CLAIMS = frozenset(
    {
        "iss",
        "sub",
        "aud",
        "exp",
        "iat",
        "nbf",
        "jti",
        "auth_time",
        "nonce",
        "acr",
        "amr",
        "azp",
        "sid",
        "at_hash",
        "c_hash",
    }
)
DEFAULT_ROLES_CLAIM = "roles"
GROUPS_CLAIM = "groups"
RESERVED_CLAIM_NAMES = STANDARD_CLAIMS | REGISTERED_CLAIMS | {DEFAULT_ROLES_CLAIM, GROUPS_CLAIM}

# A role is a value in the app's roles claim: lower-case letters, digits and - _ . : (so
# "wiki:editor" works), starting with a letter.
ROLE_NAME_RE = re.compile(r"[a-z][a-z0-9_.:-]{0,63}")
# A claim name an app may choose (JSON member names; kept to what every JWT library handles).
CLAIM_NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9_.:-]{0,63}")
# User attributes an app may receive under a claim name of its choosing: fields of our User.
MAPPABLE_USER_ATTRIBUTES = (
    "email",
    "username",
    "first_name",
    "last_name",
    "employee_id",
    "department",
    "job_title",
)


def validate_role_name(value: str) -> None:
    """A role name: slug-like, lower case, and not a reserved claim name."""
    if not isinstance(value, str) or not ROLE_NAME_RE.fullmatch(value):
        raise ValidationError(
            _(
                "A role name is 1 to 64 lower-case letters, digits and - _ . : "
                "starting with a letter."
            ),
            code="invalid",
        )
    if value in RESERVED_CLAIM_NAMES:
        raise ValidationError(
            _("%(name)s is a reserved claim name; choose another role name."),
            code="reserved",
            params={"name": value},
        )


def validate_claim_name(value: str, *, allow: frozenset[str] = frozenset()) -> None:
    """A claim name an app chooses: well-formed and not a standard or registered claim."""
    if not isinstance(value, str) or not CLAIM_NAME_RE.fullmatch(value):
        raise ValidationError(
            _("A claim name is 1 to 64 letters, digits and - _ . : starting with a letter."),
            code="invalid",
        )
    if value in RESERVED_CLAIM_NAMES - allow:
        raise ValidationError(
            _("%(name)s is a reserved claim name; choose another."),
            code="reserved",
            params={"name": value},
        )


def validate_roles_claim(value: str) -> None:
    # `roles` is the default name of this very claim; every other reserved name is refused.
    validate_claim_name(value, allow=frozenset({DEFAULT_ROLES_CLAIM}))


def validate_claim_attributes(value: object) -> None:
    """{claim name: user attribute}: known attributes, names that collide with nothing."""
    if not isinstance(value, dict):
        raise ValidationError(_("Map claim names to user attributes."), code="invalid")
    for claim, attribute in value.items():
        validate_claim_name(claim)
        if attribute not in MAPPABLE_USER_ATTRIBUTES:
            raise ValidationError(
                _("%(attribute)s is not a user attribute an app may receive (one of: %(known)s).")
                % {"attribute": attribute, "known": ", ".join(MAPPABLE_USER_ATTRIBUTES)},
                code="unknown_attribute",
            )


class HashedClientSecretField(models.CharField):
    """Stores a client secret as a keyed hash (see `oauth_clients.secrets`), never in clear.

    Replaces DOT's ClientSecretField, which hashes with the password hasher. Hashing happens at
    field level (like DOT's) so DOT's `createapplication --client-secret` keeps working.
    """

    def pre_save(self, model_instance: models.Model, add: bool) -> str:
        value = getattr(model_instance, self.attname) or ""
        if value and not is_hashed(value):
            value = hash_client_secret(value)
            setattr(model_instance, self.attname, value)
        return value


class Client(AbstractApplication):
    """A registered app that may send users here to sign in ("Sign in with Company")."""

    class Kind(models.TextChoices):
        # The one question that decides client type, grant types and which redirect URIs are
        # acceptable (oauth_clients.services.register_client, oauth_clients.uri_rules).
        WEB = "web", _("Server-side web app")
        SPA = "spa", _("Single-page app (runs in the browser)")
        NATIVE = "native", _("Native app (desktop or mobile)")
        SERVICE = "service", _("Machine-to-machine service")
        # RFC 8628: a command-line tool, TV or kiosk that signs a person in through another
        # device's browser (the device authorization grant); public, no redirect URIs.
        DEVICE = "device", _("Device or command-line app")
        # A SAML 2.0 service provider (its protocol side: SamlServiceProvider); never an OAuth
        # client, so `is_usable` refuses it everywhere DOT asks.
        SAML = "saml", _("SAML 2.0 app")
        # A resource server (RFC 9068): clients asking for its `audience` (RFC 8707 `resource`)
        # get JWT access tokens it verifies itself; it authenticates only to introspect.
        API = "api", _("API (resource server)")

    kind = models.CharField(
        _("kind of app"),
        max_length=16,
        choices=Kind.choices,
        default=Kind.WEB,
        help_text=_("Decides the client type and the grant types; set at registration."),
    )
    client_secret = HashedClientSecretField(
        _("client secret (hashed)"),
        max_length=255,
        blank=True,
        default=dot_generate_client_secret,
        help_text=_("Stored as a keyed hash; the secret itself is shown only once."),
    )
    description = models.TextField(_("description"), blank=True)
    # Several grant types per client; empty means "only authorization_grant_type" (DOT's field,
    # kept so DOT's own createapplication command keeps working).
    grant_types = models.JSONField(
        _("allowed grant types"),
        default=list,
        blank=True,
        help_text=_("Grant types this client may use. Empty: only the main grant type above."),
    )
    is_active = models.BooleanField(
        _("active"),
        default=True,
        help_text=_("A disabled client cannot sign users in and all its tokens are inactive."),
    )
    is_trusted = models.BooleanField(
        _("trusted first-party app"),
        default=False,
        help_text=_("Trusted company apps skip the consent screen."),
    )
    require_pkce = models.BooleanField(
        _("require PKCE"),
        default=True,
        help_text=_(
            "RFC 9700 §2.1.1: PKCE (S256) is required. Turn off only for a legacy confidential app "
            "that cannot send it."
        ),
    )
    # RFC 9449 §5: every token request must carry a DPoP proof (oauth_clients/oidc/dpop.py), so
    # all of the app's tokens are bound to its key.
    require_dpop = models.BooleanField(
        _("require DPoP"),
        default=False,
        help_text=_("Token requests must carry a DPoP proof (RFC 9449): sender-bound tokens."),
    )
    # RFC 9126 §6: the client's authorization requests must arrive by PAR (`request_uri`).
    require_pushed_authorization_requests = models.BooleanField(
        _("require pushed authorization requests"),
        default=False,
        help_text=_(
            "RFC 9126: the app must push each sign-in request to the PAR endpoint first; a "
            "plain authorization request is refused."
        ),
    )
    # FAPI 2.0 Security Profile: PAR, PKCE (S256), private_key_jwt and DPoP all required, the
    # code bound to the DPoP key (RFC 9449 §10); enforced by oauth_clients/oidc/backend.py,
    # token_policy.py, client_assertion.py and tokens.py (docs/guides/api-jwt-tokens.md).
    high_security = models.BooleanField(
        _("high security (FAPI 2.0)"),
        default=False,
        help_text=_(
            "Requires pushed authorization requests, PKCE, private_key_jwt and DPoP-bound tokens, "
            "as FAPI 2.0's Security Profile does. Needs the app's public keys (a confidential app)."
        ),
    )
    is_resource_server = models.BooleanField(
        _("resource server"),
        default=False,
        help_text=_("May introspect tokens issued to other clients (RFC 7662)."),
    )
    requires_mfa = models.BooleanField(
        _("requires MFA"),
        default=False,
        help_text=_("Users signing in to this app must have used a second factor."),
    )
    allowed_scopes = models.CharField(
        _("allowed scopes"),
        max_length=255,
        default="openid profile email",
        blank=True,
        help_text=_("Space-separated scopes this client may request."),
    )
    logo_uri = models.URLField(_("logo URL"), blank=True, max_length=500)
    client_uri = models.URLField(_("home page URL"), blank=True, max_length=500)
    # OIDC Core §4 (third-party-initiated login), OIDC Registration §2: where the employee's app
    # launcher (/account/my-apps/) sends a person, with `iss`, so the app starts its sign-in.
    initiate_login_uri = models.URLField(_("sign-in start URL"), blank=True, max_length=500)
    policy_uri = models.URLField(_("privacy policy URL"), blank=True, max_length=500)
    tos_uri = models.URLField(_("terms of service URL"), blank=True, max_length=500)
    owner_contact = models.EmailField(_("owner contact"), blank=True)
    # Per-client lifetimes in seconds; empty means the provider-wide default.
    access_token_lifetime = models.PositiveIntegerField(
        _("access token lifetime (s)"), null=True, blank=True
    )
    id_token_lifetime = models.PositiveIntegerField(
        _("ID token lifetime (s)"), null=True, blank=True
    )
    refresh_token_idle_lifetime = models.PositiveIntegerField(
        _("refresh token idle lifetime (s)"), null=True, blank=True
    )
    refresh_token_absolute_lifetime = models.PositiveIntegerField(
        _("refresh token absolute lifetime (s)"), null=True, blank=True
    )
    # Secret rotation with a grace period: the previous secret's hash stays valid until then.
    previous_client_secret = models.CharField(
        _("previous client secret (hashed)"), max_length=255, blank=True, editable=False
    )
    previous_secret_expires_at = models.DateTimeField(
        _("previous secret valid until"), null=True, blank=True, editable=False
    )
    # OpenID Connect Back-Channel / Front-Channel Logout 1.0 registration.
    backchannel_logout_uri = models.URLField(
        _("back-channel logout URI"), blank=True, max_length=500
    )
    backchannel_logout_session_required = models.BooleanField(
        _("back-channel logout requires sid"), default=False
    )
    frontchannel_logout_uri = models.URLField(
        _("front-channel logout URI"), blank=True, max_length=500
    )
    allow_private_network = models.BooleanField(
        _("allow private-network logout URIs"),
        default=False,
        help_text=_("Allow back-channel calls to private or loopback addresses (internal apps)."),
    )
    last_used_at = models.DateTimeField(_("last used"), null=True, blank=True, editable=False)
    # RFC 9068 §3, RFC 8707 §2: an API's audience, the `resource` value clients ask for and the
    # `aud` of the JWT access tokens issued for it. Unique among APIs; NULL for other kinds.
    audience = models.CharField(
        _("API audience (URI)"), max_length=500, null=True, blank=True, unique=True
    )
    # RFC 7523 §2.2, OIDC Core §9 `private_key_jwt`: the client's public keys, inline (a JWK
    # Set) or at `jwks_uri` (fetched through oauth_clients/outbound.py). A client with either
    # authenticates with a signed assertion only and has no shared secret.
    jwks = models.JSONField(_("public keys (JWK Set)"), null=True, blank=True)
    jwks_uri = models.URLField(_("public keys URL (jwks_uri)"), blank=True, max_length=500)

    # Who may use the app (oauth_clients.access.may_use): everyone, or the assigned groups and
    # users only. On the row itself so an open app's check costs no query.
    class AccessPolicy(models.TextChoices):
        OPEN = "open", _("Open to every active account")
        ASSIGNED = "assigned", _("Only assigned groups and users")

    access_policy = models.CharField(
        _("who may use the app"),
        max_length=16,
        choices=AccessPolicy.choices,
        default=AccessPolicy.OPEN,
    )

    # Claim mapping (oauth_clients.access): the claim the app's roles travel in, which of the
    # user's groups its `groups` claim carries, and user attributes under names it chooses.
    class GroupsFilter(models.TextChoices):
        NONE = "none", _("No filter: all of the user's groups")
        PREFIX = "prefix", _("Groups whose name starts with a prefix")
        LIST = "list", _("Only the listed groups")

    roles_claim = models.CharField(
        _("roles claim"),
        max_length=64,
        default=DEFAULT_ROLES_CLAIM,
        validators=[validate_roles_claim],
        help_text=_("The claim the app's roles are sent in."),
    )
    groups_filter = models.CharField(
        _("groups claim filter"),
        max_length=16,
        choices=GroupsFilter.choices,
        default=GroupsFilter.NONE,
    )
    groups_prefix = models.CharField(_("groups claim prefix"), max_length=150, blank=True)
    claim_groups = models.ManyToManyField(
        "auth.Group",
        verbose_name=_("groups sent in the groups claim"),
        blank=True,
        related_name="claim_filtered_clients",
    )
    claim_attributes = models.JSONField(
        _("mapped claims"),
        default=dict,
        blank=True,
        validators=[validate_claim_attributes],
        help_text=_("Claim name → user attribute."),
    )

    # ID-token signing: DOT's field with ES256 added (oauth_clients.keys) and HS256 removed (a
    # hashed secret cannot be an HMAC key). RS256 stays the default for compatibility.
    ES256_ALGORITHM = "ES256"
    algorithm = models.CharField(
        _("ID token signing algorithm"),
        max_length=5,
        choices=[
            (AbstractApplication.NO_ALGORITHM, _("No OIDC support")),
            (AbstractApplication.RS256_ALGORITHM, _("RSA with SHA-2 256 (RS256)")),
            (ES256_ALGORITHM, _("ECDSA P-256 with SHA-256 (ES256)")),
        ],
        default=AbstractApplication.NO_ALGORITHM,
        blank=True,
    )

    objects = ApplicationManager()

    class Meta(AbstractApplication.Meta):
        swappable = "OAUTH2_PROVIDER_APPLICATION_MODEL"
        verbose_name = _("client app")
        verbose_name_plural = _("client apps")

    def natural_key(self) -> tuple[str]:
        return (self.client_id,)

    @property
    def must_push_requests(self) -> bool:
        """RFC 9126 §6: plain authorization requests refused (by itself or the FAPI profile)."""
        return self.require_pushed_authorization_requests or self.high_security

    @property
    def must_use_dpop(self) -> bool:
        """RFC 9449 §5: every token request carries a proof (by itself or the FAPI profile)."""
        return self.require_dpop or self.high_security

    @property
    def uses_private_key_jwt(self) -> bool:
        """RFC 7523 §2.2: the client authenticates with a JWT signed by one of its keys."""
        return bool(self.jwks or self.jwks_uri)

    def __str__(self) -> str:
        return self.name or self.client_id

    def allowed_grant_types(self) -> set[str]:
        return set(self.grant_types or []) | {self.authorization_grant_type}

    def allows_grant_type(self, *grant_types: str) -> bool:
        # DOT allows one grant type per application; we allow the registered set.
        return bool(self.allowed_grant_types() & set(grant_types))

    def get_allowed_schemes(self) -> list[str]:
        # RFC 8252 §7.1: a native app's registered private-use scheme (checked at registration
        # by oauth_clients.uri_rules) must be a redirect target DOT accepts for this client only.
        schemes = list(super().get_allowed_schemes())
        if self.kind == self.Kind.NATIVE:
            for uri in self.redirect_uris.split() + self.post_logout_redirect_uris.split():
                scheme = uri.partition(":")[0].lower()
                if scheme and scheme not in schemes:
                    schemes.append(scheme)
        return schemes

    def clean(self) -> None:
        keys_in_database = getattr(settings, "IDP_SIGNING_KEY_STORE", "") == "database"
        try:
            super().clean()
        except ValidationError as exc:
            # DOT asks its setting for an RSA key; with the database key store the keys are
            # rows (oauth_clients/key_store.py), so the services ask the key store instead
            # (services.id_token_algorithm_errors) and DOT's question is left out.
            if not keys_in_database or not hasattr(exc, "error_dict"):
                raise
            needs_rsa_key = gettext(DOT_NEEDS_RSA_KEY)
            kept = {
                name: [error for error in errors if str(error.message) != needs_rsa_key]
                for name, errors in exc.error_dict.items()
            }
            kept = {name: errors for name, errors in kept.items() if errors}
            if kept:
                raise ValidationError(kept) from None
        if (
            self.algorithm == self.ES256_ALGORITHM
            and not keys_in_database
            and not getattr(settings, "IDP_OIDC_EC_PRIVATE_KEYS", [])
        ):
            raise ValidationError(
                {"algorithm": _("ES256 needs an EC signing key (IDP_OIDC_EC_PRIVATE_KEY_FILE).")}
            )

    def is_usable(self, request: object) -> bool:
        # A disabled client is refused everywhere DOT asks (token, authorize, introspect); a SAML
        # app is registered here for its assignments and MFA rule only and never speaks OAuth.
        return self.is_active and self.kind != self.Kind.SAML and super().is_usable(request)


class SamlServiceProvider(models.Model):
    """The SAML 2.0 side of a registered app of kind `saml`: what its SP metadata declares.

    The app itself (name, active flag, assignments, MFA rule, claim mapping) is its `Client`;
    this row carries the SP's entity ID, Assertion Consumer Service endpoints, logout endpoint,
    signing certificates and how we answer it (SAML 2.0 Metadata §2.4.4).
    """

    class NameIdFormat(models.TextChoices):
        # SAML 2.0 Core §8.3
        UNSPECIFIED = "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified", _("Unspecified")
        EMAIL = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress", _("Email address")
        PERSISTENT = (
            "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent",
            _("Persistent (pairwise, stable per app)"),
        )
        TRANSIENT = (
            "urn:oasis:names:tc:SAML:2.0:nameid-format:transient",
            _("Transient (new each sign-in)"),
        )

    client = models.OneToOneField(
        Client, on_delete=models.CASCADE, related_name="saml_sp", verbose_name=_("app")
    )
    entity_id = models.CharField(_("entity ID"), max_length=1024, unique=True)
    # [{"url": str, "binding": SAML binding URN, "index": int, "is_default": bool}, …]
    acs_urls = models.JSONField(_("assertion consumer service URLs"), default=list)
    slo_url = models.URLField(_("single logout URL"), blank=True, max_length=1024)
    slo_binding = models.CharField(_("single logout binding"), max_length=255, blank=True)
    certificates = models.TextField(
        _("signing certificates"),
        blank=True,
        help_text=_("The app's signing certificates, PEM, one or more."),
    )
    want_authn_requests_signed = models.BooleanField(
        _("requests must be signed"),
        default=False,
        help_text=_("The app signs its authentication requests; unsigned ones are refused."),
    )
    sign_response = models.BooleanField(
        _("sign the response"),
        default=False,
        help_text=_("Sign the whole response too (the assertion is always signed)."),
    )
    nameid_format = models.CharField(
        _("NameID format"),
        max_length=128,
        choices=NameIdFormat.choices,
        default=NameIdFormat.EMAIL,
    )
    attribute_names = models.JSONField(
        _("attribute names"),
        default=dict,
        blank=True,
        help_text=_("Claim name → SAML attribute name. Empty: the claim names themselves."),
    )
    metadata_xml = models.TextField(_("metadata (as last imported)"), blank=True)
    metadata_url = models.URLField(_("metadata URL"), blank=True, max_length=1024)
    metadata_fetched_at = models.DateTimeField(_("metadata fetched"), null=True, blank=True)

    class Meta:
        verbose_name = _("SAML service provider")
        verbose_name_plural = _("SAML service providers")

    def __str__(self) -> str:
        return self.entity_id

    def default_acs(self) -> dict | None:
        """The endpoint to answer when a request names none (SAML 2.0 Metadata §2.2.3).

        The one marked default, else the one with the lowest index.
        """
        endpoints = sorted(self.acs_urls or [], key=lambda acs: acs.get("index", 0))
        for acs in endpoints:
            if acs.get("is_default"):
                return acs
        return endpoints[0] if endpoints else None

    def acs_for(
        self, url: str | None = None, index: int | None = None, binding: str | None = None
    ) -> dict | None:
        """The registered endpoint matching every given criterion exactly, else None.

        SAML 2.0 Profiles §4.1.4.1: the ACS named in a request must be one the SP registered;
        URLs are compared as strings, never by prefix.
        """
        for acs in self.acs_urls or []:
            if url is not None and acs.get("url") != url:
                continue
            if index is not None and acs.get("index") != index:
                continue
            if binding is not None and acs.get("binding") != binding:
                continue
            return acs
        return None

    def certificate_list(self) -> list[str]:
        """Each PEM certificate in `certificates`, with its BEGIN/END lines and final newline."""
        return [block + "\n" for block in PEM_CERTIFICATE_RE.findall(self.certificates or "")]


class Grant(AbstractGrant):
    """An authorization code. Kept (marked consumed) after exchange so a replay can be traced."""

    code = models.CharField(_("code (hashed)"), max_length=255, unique=True)
    sid = models.CharField(_("session id"), max_length=SID_MAX_LENGTH, blank=True, db_index=True)
    auth_time = models.DateTimeField(_("authenticated at"), null=True, blank=True)
    amr = models.JSONField(_("authentication methods"), default=list, blank=True)
    acr = models.CharField(_("authentication context"), max_length=64, blank=True)
    consumed_at = models.DateTimeField(_("exchanged at"), null=True, blank=True)
    # RFC 9449 §10: the thumbprint of the DPoP key the code is bound to (`dpop_jkt`, or the PAR
    # request's proof, §10.1); the code exchange's proof must be made with that key.
    dpop_jkt = models.CharField(_("DPoP key thumbprint"), max_length=43, blank=True)

    class Meta(AbstractGrant.Meta):
        swappable = "OAUTH2_PROVIDER_GRANT_MODEL"
        indexes = [models.Index(fields=["expires"], name="grant_expires")]


class DeviceAuthorization(models.Model):
    """One device authorization request (RFC 8628 §3.1) and what the person decided.

    Both codes are kept as SHA-256 only (`oauth_clients.oidc.device`): the device code the
    device polls with and the user code the person types. Once approved it carries the
    approving sign-in's `auth_time`, `amr` and `acr` to the tokens; it is not bound to that
    browser session (`sid` stays empty: the device is not the phone that approved it). Kept,
    marked consumed, after its one token exchange so a replay can be traced to what it issued.
    """

    class Status(models.TextChoices):
        PENDING = "pending", _("Waiting for the person")
        APPROVED = "approved", _("Approved")
        DENIED = "denied", _("Denied")

    application = models.ForeignKey(
        Client,
        on_delete=models.CASCADE,
        related_name="device_authorizations",
        verbose_name=_("app"),
    )
    device_code = models.CharField(_("device code (hashed)"), max_length=64, unique=True)
    user_code = models.CharField(_("user code (hashed)"), max_length=64, unique=True)
    scope = models.TextField(_("scope"), blank=True)
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.PENDING
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="device_authorizations",
        verbose_name=_("user"),
    )
    created_at = models.DateTimeField(_("requested"), default=timezone.now)
    expires = models.DateTimeField(_("expires"))
    # RFC 8628 §3.2: the minimum seconds between two polls, as told to the device.
    interval = models.PositiveSmallIntegerField(_("polling interval (s)"), default=5)
    # How often the user code was entered correctly (RFC 8628 §5.1): past a few, it dies.
    entries = models.PositiveSmallIntegerField(_("times entered"), default=0)
    decided_at = models.DateTimeField(_("decided"), null=True, blank=True)
    sid = models.CharField(_("session id"), max_length=SID_MAX_LENGTH, blank=True)
    auth_time = models.DateTimeField(_("authenticated at"), null=True, blank=True)
    amr = models.JSONField(_("authentication methods"), default=list, blank=True)
    acr = models.CharField(_("authentication context"), max_length=64, blank=True)
    consumed_at = models.DateTimeField(_("exchanged at"), null=True, blank=True)

    class Meta:
        verbose_name = _("device authorization")
        verbose_name_plural = _("device authorizations")
        # purge_tokens finds expired rows through it.
        indexes = [models.Index(fields=["expires"], name="deviceauth_expires")]

    def __str__(self) -> str:
        # Never render a code.
        return f"Device authorization #{self.pk}"

    def is_expired(self, now: datetime | None = None) -> bool:
        return (now or timezone.now()) >= self.expires


class AccessToken(AbstractAccessToken):
    # DOT's field minus the field-level unique/db_index, whose PostgreSQL `_like` twin index
    # (for LIKE queries we never make) doubled the random B-tree writes of every token: the
    # uniqueness is the constraint below.
    token_checksum = TokenChecksumField(
        _("token checksum"), max_length=64, blank=False, unique=False, db_index=False
    )
    # DOT's field without its own index: the (user, application) index below serves every
    # lookup by user, and each index is one more B-tree write per token.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        blank=True,
        null=True,
        related_name="%(app_label)s_%(class)s",
        verbose_name=_("user"),
        db_index=False,
    )
    sid = models.CharField(_("session id"), max_length=SID_MAX_LENGTH, blank=True)
    # SHA-256 of the authorization code this token was issued from (RFC 6749 §4.1.2 replay).
    code_checksum = models.CharField(_("code checksum"), max_length=64, blank=True)
    # RFC 9449 §6: the RFC 7638 thumbprint of the DPoP key the token is bound to ("": a bearer
    # token); every use must come with a proof signed by that key (oauth_clients/oidc/dpop.py).
    dpop_jkt = models.CharField(_("DPoP key thumbprint"), max_length=43, blank=True)

    class Meta(AbstractAccessToken.Meta):
        swappable = "OAUTH2_PROVIDER_ACCESS_TOKEN_MODEL"
        constraints = [
            models.UniqueConstraint(fields=["token_checksum"], name="accesstoken_checksum_unique")
        ]
        indexes = [
            models.Index(fields=["sid"], name="accesstoken_sid"),
            models.Index(fields=["code_checksum"], name="accesstoken_code"),
            models.Index(fields=["expires"], name="accesstoken_expires"),
            models.Index(fields=["user", "application"], name="accesstoken_user_app"),
        ]

    def __str__(self) -> str:
        # Never render the token itself.
        return f"AccessToken #{self.pk}"


class RefreshToken(AbstractRefreshToken):
    # DOT's field without its own index, as on AccessToken: (user, application) serves it.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="%(app_label)s_%(class)s",
        verbose_name=_("user"),
        db_index=False,
    )
    sid = models.CharField(_("session id"), max_length=SID_MAX_LENGTH, blank=True)
    # Idle expiry (moves on each rotation) and absolute expiry (fixed for the whole family).
    expires = models.DateTimeField(_("idle expiry"), null=True, blank=True)
    family_expires = models.DateTimeField(_("absolute expiry"), null=True, blank=True)
    # Carried through rotation so a refreshed ID token keeps the original `auth_time`/`amr`
    # (OIDC Core §12.2).
    auth_time = models.DateTimeField(_("authenticated at"), null=True, blank=True)
    amr = models.JSONField(_("authentication methods"), default=list, blank=True)
    # RFC 9449 §5: a public client's refresh token is bound to its DPoP key (its thumbprint;
    # "" unbound), kept through rotation; a refresh must come with that key's proof.
    dpop_jkt = models.CharField(_("DPoP key thumbprint"), max_length=43, blank=True)

    class Meta(AbstractRefreshToken.Meta):
        swappable = "OAUTH2_PROVIDER_REFRESH_TOKEN_MODEL"
        indexes = [
            *AbstractRefreshToken.Meta.indexes,
            models.Index(fields=["sid"], name="refreshtoken_sid"),
            # No index of its own on token_checksum: DOT's unique (token_checksum, revoked)
            # serves the lookup.
            models.Index(fields=["user", "application"], name="refreshtoken_user_app"),
            # purge_tokens finds expired rows through these.
            models.Index(fields=["expires"], name="refreshtoken_expires"),
            models.Index(fields=["family_expires"], name="refreshtoken_family_expires"),
        ]


class IDToken(AbstractIDToken):
    sid = models.CharField(_("session id"), max_length=SID_MAX_LENGTH, blank=True)

    class Meta(AbstractIDToken.Meta):
        swappable = "OAUTH2_PROVIDER_ID_TOKEN_MODEL"
        indexes = [models.Index(fields=["expires"], name="idtoken_expires")]


class Consent(models.Model):
    """A user's remembered "Allow" for one client and scope set, until revoked."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="oauth_consents"
    )
    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="consents")
    scopes = models.TextField(_("scopes"), help_text=_("Space-separated, sorted."))
    created_at = models.DateTimeField(_("granted"), default=timezone.now)
    last_used_at = models.DateTimeField(_("last used"), null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "client"], name="consent_one_per_user_client")
        ]

    def __str__(self) -> str:
        return f"Consent #{self.pk}"

    def scope_set(self) -> set[str]:
        return set(self.scopes.split())


class BackchannelDelivery(models.Model):
    """One logout token for one client (OIDC Back-Channel Logout 1.0 §2.5), or one SAML
    LogoutRequest for a SAML app (`channel`): the delivery log.

    Written when a session ends (`oauth_clients.oidc.backchannel`), updated by the background worker
    after each attempt; admins read it on the client's page. Never holds the token itself.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", _("queued")
        SENT = "sent", _("sent")
        RETRYING = "retrying", _("retrying")
        FAILED = "failed", _("failed")

    class Channel(models.TextChoices):
        # How the app is told: OIDC Back-Channel Logout, or a SAML LogoutRequest (SAML 2.0
        # Profiles §4.4) through the browser, over SOAP, or not at all (no browser and no
        # SOAP endpoint: recorded as failed, so the log says the app could not be told).
        BACKCHANNEL = "backchannel", _("OIDC back-channel")
        SAML_BROWSER = "saml_browser", _("SAML through the browser")
        SAML_SOAP = "saml_soap", _("SAML over SOAP")
        SAML_NONE = "saml_none", _("SAML: could not be told")

    client = models.ForeignKey(
        Client, on_delete=models.CASCADE, related_name="backchannel_deliveries"
    )
    channel = models.CharField(
        _("channel"), max_length=16, choices=Channel.choices, default=Channel.BACKCHANNEL
    )
    sub = models.CharField(_("subject (sub)"), max_length=255, blank=True)
    sid = models.CharField(_("session id (sid)"), max_length=SID_MAX_LENGTH, blank=True)
    reason = models.CharField(_("why the session ended"), max_length=64, blank=True)
    jti = models.CharField(_("last token id (jti)"), max_length=64, blank=True)
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.QUEUED
    )
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    last_status_code = models.PositiveSmallIntegerField(
        _("last HTTP status"), null=True, blank=True
    )
    last_error = models.CharField(_("last error"), max_length=500, blank=True)
    created_at = models.DateTimeField(_("queued at"), default=timezone.now)
    last_attempt_at = models.DateTimeField(_("last attempt"), null=True, blank=True)
    next_attempt_at = models.DateTimeField(_("next attempt"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)

    class Meta:
        verbose_name = _("back-channel logout delivery")
        verbose_name_plural = _("back-channel logout deliveries")
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["client", "-created_at"], name="bcl_client_created")]
        constraints = [
            # A client hears about the end of one session once (several paths may end it).
            models.UniqueConstraint(
                fields=["client", "sid"],
                condition=~models.Q(sid=""),
                name="bcl_one_per_client_session",
            )
        ]

    def __str__(self) -> str:
        return f"Back-channel logout #{self.pk} ({self.status})"


def _exactly_one_of_group_or_user(name: str) -> models.CheckConstraint:
    return models.CheckConstraint(
        condition=(models.Q(group__isnull=False) & models.Q(user__isnull=True))
        | (models.Q(group__isnull=True) & models.Q(user__isnull=False)),
        name=name,
    )


class Assignment(models.Model):
    """A group or a user that may use an app whose access policy is `assigned`.

    Deleting the group, the user or the app deletes the row (no dangling assignment).
    """

    client = models.ForeignKey(
        Client, on_delete=models.CASCADE, related_name="assignments", verbose_name=_("app")
    )
    group = models.ForeignKey(
        "auth.Group",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="client_assignments",
        verbose_name=_("group"),
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="client_assignments",
        verbose_name=_("user"),
    )
    created_at = models.DateTimeField(_("assigned"), default=timezone.now)

    class Meta:
        verbose_name = _("assignment")
        verbose_name_plural = _("assignments")
        constraints = [
            _exactly_one_of_group_or_user("assignment_group_xor_user"),
            # These two also serve the sign-in check (oauth_clients.access.may_use).
            models.UniqueConstraint(
                fields=["client", "group"],
                condition=models.Q(group__isnull=False),
                name="assignment_one_per_client_group",
            ),
            models.UniqueConstraint(
                fields=["client", "user"],
                condition=models.Q(user__isnull=False),
                name="assignment_one_per_client_user",
            ),
        ]

    def __str__(self) -> str:
        return f"Assignment #{self.pk}"


class AppRole(models.Model):
    """A role an app defines (`editor`, `viewer`…), sent in its roles claim to those granted it."""

    client = models.ForeignKey(
        Client, on_delete=models.CASCADE, related_name="roles", verbose_name=_("app")
    )
    name = models.CharField(_("role"), max_length=64, validators=[validate_role_name])
    description = models.CharField(_("description"), max_length=255, blank=True)

    class Meta:
        verbose_name = _("app role")
        verbose_name_plural = _("app roles")
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["client", "name"], name="approle_one_name_per_client")
        ]

    def __str__(self) -> str:
        return self.name


class RoleGrant(models.Model):
    """An app role granted to a group (and so its members, nested ones too) or to a user."""

    role = models.ForeignKey(
        AppRole, on_delete=models.CASCADE, related_name="grants", verbose_name=_("role")
    )
    group = models.ForeignKey(
        "auth.Group",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="app_role_grants",
        verbose_name=_("group"),
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="app_role_grants",
        verbose_name=_("user"),
    )
    created_at = models.DateTimeField(_("granted"), default=timezone.now)

    class Meta:
        verbose_name = _("role grant")
        verbose_name_plural = _("role grants")
        constraints = [
            _exactly_one_of_group_or_user("rolegrant_group_xor_user"),
            models.UniqueConstraint(
                fields=["role", "group"],
                condition=models.Q(group__isnull=False),
                name="rolegrant_one_per_role_group",
            ),
            models.UniqueConstraint(
                fields=["role", "user"],
                condition=models.Q(user__isnull=False),
                name="rolegrant_one_per_role_user",
            ),
        ]

    def __str__(self) -> str:
        return f"Role grant #{self.pk}"


class RevokedJwt(models.Model):
    """A JWT access token (RFC 9068) revoked before its expiry: no row holds the token itself,
    so revocation (RFC 7009) keeps its `jti` until the token would have expired anyway;
    introspection refuses it. `manage.py purge_tokens` removes rows past `expires`."""

    jti = models.CharField(_("token id (jti)"), max_length=64, unique=True)
    expires = models.DateTimeField(_("expires"), db_index=True)

    class Meta:
        verbose_name = _("revoked JWT access token")
        verbose_name_plural = _("revoked JWT access tokens")

    def __str__(self) -> str:
        return self.jti


class SigningKey(models.Model):
    """A signing key kept in the database (`IDP_SIGNING_KEY_STORE=database`), its private part
    encrypted under the key-encryption key (`oauth_clients/key_store.py`).

    Its life (`oauth_clients/key_rotation.py`): `next` (published in JWKS and SAML metadata, not
    signing) → `active` (signs; one per algorithm) → `retired` (still published until the
    longest token it signed has expired) → `removed` (unpublished, the private part wiped; the
    row stays as the record of the key's life). Changed only through `key_rotation`, which
    writes the audit rows and tells every process (the generation in `key_store`)."""

    class State(models.TextChoices):
        NEXT = "next", _("next")
        ACTIVE = "active", _("active")
        RETIRED = "retired", _("retired")
        REMOVED = "removed", _("removed")

    kid = models.CharField(max_length=64, unique=True)  # RFC 7638 thumbprint, as in JWKS
    algorithm = models.CharField(max_length=8)  # RS256 or ES256 (oauth_clients.keys)
    state = models.CharField(max_length=8, choices=State.choices)
    # Fernet token (AES-128-CBC + HMAC-SHA256) of the PKCS#8 PEM; "" once removed.
    encrypted_private_key = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)  # published from then on as `next`
    activated_at = models.DateTimeField(null=True, blank=True)
    retired_at = models.DateTimeField(null=True, blank=True)
    removed_at = models.DateTimeField(null=True, blank=True)
    # Set on every change of state (the record; key_store's generation digests kids and states).
    changed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("signing key")
        verbose_name_plural = _("signing keys")
        constraints = [
            models.UniqueConstraint(
                fields=["algorithm"],
                condition=models.Q(state="active"),
                name="one_active_signing_key_per_algorithm",
            ),
            models.UniqueConstraint(
                fields=["algorithm"],
                condition=models.Q(state="next"),
                name="one_next_signing_key_per_algorithm",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.algorithm} {self.kid} ({self.state})"
