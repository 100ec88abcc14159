"""The company's user store and the one audit log every security-relevant service writes to."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth.models import AbstractUser, Group
from django.contrib.auth.models import UserManager as DjangoUserManager
from django.core.validators import EmailValidator, RegexValidator, URLValidator
from django.db import models
from django.db.models.functions import Upper
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.emails import record_trusted_email


class UserManager(DjangoUserManager):
    """Django's manager. Users it creates (seed API, createsuperuser, the admin) sign in at once:
    the address an administrator typed is recorded as verified (`record_trusted_email`), while
    a self-signed-up address stays unverified until its link is followed (allauth's flow).
    """

    def create_user(self, username, email=None, password=None, **extra_fields):  # type: ignore[no-untyped-def]
        user = super().create_user(username, email, password, **extra_fields)
        record_trusted_email(user=user)
        return user

    def create_superuser(self, username, email=None, password=None, **extra_fields):  # type: ignore[no-untyped-def]
        user = super().create_superuser(username, email, password, **extra_fields)
        record_trusted_email(user=user)
        return user

    async def acreate_user(self, username, email=None, password=None, **extra_fields):  # type: ignore[no-untyped-def]
        user = await super().acreate_user(username, email, password, **extra_fields)
        await sync_to_async(record_trusted_email)(user=user)
        return user

    async def acreate_superuser(self, username, email=None, password=None, **extra_fields):  # type: ignore[no-untyped-def]
        user = await super().acreate_superuser(username, email, password, **extra_fields)
        await sync_to_async(record_trusted_email)(user=user)
        return user


class User(AbstractUser):
    """One account per employee. Django's AbstractUser plus lockout and profile timestamps."""

    # Per-account brute-force lock (on top of allauth's per-IP rate limits).
    failed_login_count = models.PositiveIntegerField(_("failed sign-ins in a row"), default=0)
    last_failed_login_at = models.DateTimeField(_("last failed sign-in"), null=True, blank=True)
    locked_until = models.DateTimeField(_("locked until"), null=True, blank=True)
    # An administrator can force a password reset: sign-in is refused until the user resets.
    password_reset_required = models.BooleanField(_("password reset required"), default=False)
    # OIDC Core §5.1 `updated_at`: when profile claims last changed.
    updated_at = models.DateTimeField(_("profile updated"), auto_now=True)
    # Directory attributes an administrator (or, later, a directory or SCIM) keeps: apps may
    # receive them as claims through their claim mapping (oauth_clients.models
    # MAPPABLE_USER_ATTRIBUTES), never by default.
    employee_id = models.CharField(_("employee ID"), max_length=64, blank=True)
    department = models.CharField(_("department"), max_length=128, blank=True)
    job_title = models.CharField(_("job title"), max_length=128, blank=True)

    objects: ClassVar[UserManager] = UserManager()  # type: ignore[assignment]

    # django-stubs declares no AbstractUser.Meta; Django has one (swappable, abstract).
    class Meta(AbstractUser.Meta):  # type: ignore[name-defined]
        swappable = "AUTH_USER_MODEL"
        indexes = [
            # Sign-in by username is allauth's `username__iexact` (UPPER(username) = UPPER(%s));
            # the unique index on `username` cannot serve it, so every sign-in scanned the whole
            # table, upper() on each row (16.5-22 ms of PostgreSQL per sign-in with 50,000 users).
            models.Index(Upper("username"), name="user_username_upper"),
            # Sign-in by address and password reset also look users up by `email` (allauth's
            # `filter_users_by_email`, an exact match on the address it lower-cased).
            models.Index(fields=["email"], name="user_email"),
        ]

    def is_locked(self, *, now: datetime | None = None) -> bool:
        return self.locked_until is not None and self.locked_until > (now or timezone.now())


class AuditEvent(models.Model):
    """An append-only record of one security event: who did what to whom, from where."""

    class Type(models.TextChoices):
        LOGIN_SUCCEEDED = "login.succeeded", _("Sign-in succeeded")
        LOGIN_FAILED = "login.failed", _("Sign-in failed")
        LOGOUT = "logout", _("Signed out")
        ACCOUNT_LOCKED = "account.locked", _("Account locked")
        ACCOUNT_UNLOCKED = "account.unlocked", _("Account unlocked")
        PASSWORD_CHANGED = "password.changed", _("Password changed")
        PASSWORD_RESET_REQUESTED = "password.reset_requested", _("Password reset requested")
        PASSWORD_RESET = "password.reset", _("Password reset")
        PASSWORD_RESET_FORCED = "password.reset_forced", _("Password reset forced by admin")
        MFA_CHANGED = "mfa.changed", _("Two-factor method changed")
        USER_CREATED = "user.created", _("User created")
        USER_CHANGED = "user.changed", _("User changed")
        USER_DEACTIVATED = "user.deactivated", _("User deactivated")
        USER_ACTIVATED = "user.activated", _("User activated")
        USER_DELETED = "user.deleted", _("User deleted")
        STAFF_GRANTED = "user.staff_granted", _("Staff status granted")
        STAFF_REVOKED = "user.staff_revoked", _("Staff status revoked")
        SUPERUSER_GRANTED = "user.superuser_granted", _("Superuser status granted")
        SUPERUSER_REVOKED = "user.superuser_revoked", _("Superuser status revoked")
        SESSIONS_ENDED = "sessions.ended", _("Sessions ended")
        CLIENT_CREATED = "client.created", _("Client created")
        CLIENT_CHANGED = "client.changed", _("Client changed")
        CLIENT_SECRET_ROTATED = "client.secret_rotated", _("Client secret rotated")
        CLIENT_DISABLED = "client.disabled", _("Client disabled")
        CLIENT_ENABLED = "client.enabled", _("Client enabled")
        CLIENT_DELETED = "client.deleted", _("Client deleted")
        CONSENT_GRANTED = "consent.granted", _("Consent granted")
        CONSENT_DENIED = "consent.denied", _("Consent denied")
        CONSENT_REVOKED = "consent.revoked", _("Consent revoked")
        TOKENS_ISSUED = "tokens.issued", _("Tokens issued")
        TOKEN_REVOKED = "token.revoked", _("Token revoked")
        TOKEN_REPLAY = "token.replay_detected", _("Token replay detected")
        SIGNING_KEY_ROTATED = "signing_key.rotated", _("Signing key rotated")
        SIGNING_KEY_ROTATION_FAILED = (
            "signing_key.rotation_failed",
            _("Signing key rotation failed"),
        )
        BRANDING_CHANGED = "branding.changed", _("Branding changed")
        ADMIN_REFUSED = "admin.refused", _("Administrator action refused")
        GROUP_CREATED = "group.created", _("Group created")
        GROUP_CHANGED = "group.changed", _("Group changed")
        GROUP_PARENT_CHANGED = "group.parent_changed", _("Group moved")
        GROUP_DELETED = "group.deleted", _("Group deleted")
        GROUP_MEMBER_ADDED = "group.member_added", _("Added to a group")
        GROUP_MEMBER_REMOVED = "group.member_removed", _("Removed from a group")
        ACCESS_DENIED = "access.denied", _("App access refused")
        SAML_ASSERTION_ISSUED = "saml.assertion_issued", _("SAML assertion issued")
        DEVICE_CODE_ISSUED = "device.code_issued", _("Device code issued")
        DEVICE_APPROVED = "device.approved", _("Device sign-in approved")
        DEVICE_DENIED = "device.denied", _("Device sign-in denied")
        DEVICE_CODE_REFUSED = "device.code_refused", _("Device code refused")
        UPSTREAM_SIGNED_IN = "upstream.signed_in", _("Signed in through an upstream provider")
        UPSTREAM_REFUSED = "upstream.refused", _("Upstream sign-in refused")
        IDENTITY_LINKED = "identity.linked", _("Upstream identity linked")
        IDENTITY_UNLINKED = "identity.unlinked", _("Upstream identity removed")
        UPSTREAM_PROVIDER_CHANGED = "upstream.provider_changed", _("Upstream provider changed")
        USERS_IMPORTED = "users.imported", _("Users imported")
        WEBHOOK_CREATED = "webhook.created", _("Webhook subscriber created")
        WEBHOOK_CHANGED = "webhook.changed", _("Webhook subscriber changed")
        WEBHOOK_REPLAYED = "webhook.replayed", _("Webhook delivery replayed")
        PROVISIONING_CONFIGURED = "provisioning.configured", _("App provisioning configured")
        PROVISIONING_SENT = "provisioning.sent", _("Provisioned to an app")
        PROVISIONING_FAILED = "provisioning.failed", _("Provisioning to an app failed")

    created_at = models.DateTimeField(_("when"), default=timezone.now, db_index=True)
    type = models.CharField(_("event"), max_length=64, choices=Type.choices, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("actor"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="audit_events_as_actor",
    )
    subject = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("subject user"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="audit_events_as_subject",
    )
    # Kept as text too, so rows stay meaningful after the user or client is deleted.
    actor_repr = models.CharField(_("actor (as recorded)"), max_length=255, blank=True)
    subject_repr = models.CharField(_("subject (as recorded)"), max_length=255, blank=True)
    client = models.ForeignKey(
        settings.OAUTH2_PROVIDER_APPLICATION_MODEL,
        verbose_name=_("client"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="audit_events",
    )
    client_repr = models.CharField(_("client (as recorded)"), max_length=255, blank=True)
    ip = models.GenericIPAddressField(_("IP address"), null=True, blank=True)
    user_agent = models.CharField(_("user agent"), max_length=512, blank=True)
    extra = models.JSONField(_("details"), default=dict, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["subject", "-created_at"], name="audit_subject_recent"),
            models.Index(fields=["client", "-created_at"], name="audit_client_recent"),
        ]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.type}"


PRIMARY_COLOR_VALIDATOR = RegexValidator(
    r"^#[0-9a-fA-F]{6}\Z", _("Enter a colour as #rrggbb, for example #1d4ed8.")
)


def validate_logo_url(value: str) -> None:
    """https:// or a path on this site: the only image sources the CSP (img-src) lets through."""
    if value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return
    URLValidator(schemes=["https"], message=_("Enter an https:// address or a /path."))(value)


def validate_support_url(value: str) -> None:
    """https:// or mailto:address (never javascript: or data: in a link every page shows)."""
    if value.lower().startswith("mailto:"):
        EmailValidator(message=_("Enter mailto: followed by an email address."))(value[7:])
        return
    URLValidator(schemes=["https"], message=_("Enter an https:// address or mailto:address."))(
        value
    )


class Branding(models.Model):
    """The company's look on every IdP page, set by an administrator (one row at most).

    Empty fields fall back to the IDP_COMPANY_NAME / IDP_LOGO_URL / IDP_SUPPORT_URL settings.
    Read through `accounts.branding.get_branding` (cached); written through
    `accounts.branding.update_branding` (audited, invalidates the cache).
    """

    SINGLETON_ID = 1

    id = models.PositiveSmallIntegerField(primary_key=True, default=SINGLETON_ID, editable=False)
    company_name = models.CharField(
        _("company name"),
        max_length=80,
        blank=True,
        help_text=_("Shown on every page and on the sign-in button. Empty: the server setting."),
    )
    logo_url = models.CharField(
        _("logo URL"),
        max_length=500,
        blank=True,
        validators=[validate_logo_url],
        help_text=_(
            "An https:// address or a path on this site (/static/...). Shown about 32 px high."
        ),
    )
    primary_color = models.CharField(
        _("primary colour"),
        max_length=7,
        blank=True,
        validators=[PRIMARY_COLOR_VALIDATOR],
        help_text=_("#rrggbb. Buttons use it; links use a darker shade that stays readable."),
    )
    support_url = models.CharField(
        _("support link"),
        max_length=500,
        blank=True,
        validators=[validate_support_url],
        help_text=_("An https:// address or mailto:help@example.com, shown as “Help”."),
    )
    updated_at = models.DateTimeField(_("last changed"), auto_now=True)

    class Meta:
        verbose_name = _("branding")
        verbose_name_plural = _("branding")
        constraints = [
            models.CheckConstraint(condition=models.Q(id=1), name="branding_single_row"),
        ]

    def __str__(self) -> str:
        return str(_("Branding"))


class GroupProfile(models.Model):
    """What a group is beyond Django's `auth.Group` (a name and permissions): the group it sits
    in and a description for administrators.

    Nesting: a member of a group is also a member of its parent and every ancestor
    (`accounts.groups.effective_group_ids`). A group without a row here, or with no parent, is
    top-level. Written only through the group services in `accounts.services` (a parent that
    would make a group its own ancestor is refused there). A group with subgroups cannot be
    deleted until they are moved or deleted (RESTRICT: deleting a group together with all its
    subgroups, as the admin's bulk delete does, is allowed).
    """

    group = models.OneToOneField(
        Group,
        verbose_name=_("group"),
        primary_key=True,
        on_delete=models.CASCADE,
        related_name="profile",
    )
    parent = models.ForeignKey(
        Group,
        verbose_name=_("parent group"),
        null=True,
        blank=True,
        on_delete=models.RESTRICT,
        related_name="child_profiles",
        help_text=_("Members of this group are also members of the parent group."),
    )
    description = models.CharField(_("description"), max_length=500, blank=True)

    class Meta:
        verbose_name = _("group details")
        verbose_name_plural = _("group details")

    def __str__(self) -> str:
        return str(self.group)


class GroupClosure(models.Model):
    """The nesting of `GroupProfile.parent` flattened: one row per (ancestor-or-self,
    descendant) pair, `depth` links apart (0: the group itself).

    Why: "is this person in a group assigned to the app" becomes one join, memberships ⋈
    closure, whatever the depth of the nesting, so it fits inside the query that already reads
    a token (oauth_clients/access.py). Derived data: written only by the group services in
    `accounts.services` (create_group, set_group_parent; a deleted group's rows cascade), which
    rebuild a moved subtree's rows in the same transaction. A group made another way (a seed,
    a test, a group created before the table) counts as itself anyway: the readers treat a
    membership's own group as one of its ancestors, so only its place under a parent needs
    `accounts.services.rebuild_group_closure`.
    """

    ancestor = models.ForeignKey(
        Group,
        verbose_name=_("ancestor"),
        on_delete=models.CASCADE,
        related_name="closure_descendants",
        db_index=False,  # the unique (ancestor, descendant) constraint's index serves it
    )
    descendant = models.ForeignKey(
        Group,
        verbose_name=_("descendant"),
        on_delete=models.CASCADE,
        related_name="closure_ancestors",
        db_index=False,  # the (descendant, ancestor) index below serves lookups by descendant
    )
    depth = models.PositiveSmallIntegerField(_("depth"))

    class Meta:
        verbose_name = _("group nesting")
        verbose_name_plural = _("group nesting")
        constraints = [
            # Also the index for lookups by ancestor (a group's subgroups).
            models.UniqueConstraint(
                fields=["ancestor", "descendant"], name="groupclosure_one_per_pair"
            ),
        ]
        indexes = [
            # A person's groups and everything above them: memberships ⋈ this, index only.
            models.Index(fields=["descendant", "ancestor"], name="groupclosure_by_descendant"),
        ]

    def __str__(self) -> str:
        return f"{self.ancestor_id} ⊇ {self.descendant_id} ({self.depth})"
