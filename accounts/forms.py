"""Forms: allauth's sign-in form with a length cap, and the administrators' user forms."""

from __future__ import annotations

from typing import Any

from allauth.account.forms import ChangePasswordForm as AllauthChangePasswordForm
from allauth.account.forms import LoginForm as AllauthLoginForm
from allauth.account.forms import ResetPasswordForm as AllauthResetPasswordForm
from allauth.account.forms import ResetPasswordKeyForm as AllauthResetPasswordKeyForm
from allauth.account.forms import SetPasswordForm as AllauthSetPasswordForm
from allauth.account.models import EmailAddress
from allauth.core import context
from allauth.mfa.base.forms import AuthenticateForm as AllauthAuthenticateForm
from allauth.mfa.base.forms import ReauthenticateForm as AllauthReauthenticateForm
from django import forms
from django.contrib.auth import password_validation
from django.contrib.auth.forms import UserChangeForm
from django.core.validators import MaxLengthValidator
from django.db import models
from django.http import HttpRequest
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from accounts import services
from accounts.audit import record_event
from accounts.models import AuditEvent, User
from accounts.sessions import remember_sign_out_choice
from accounts.signin_request import authorize_parameter

# The longest sign-in name we store: an email address (allauth's ACCOUNT_EMAIL_MAX_LENGTH).
LOGIN_MAX_LENGTH = 254
# The sign-in page's form-wide message (templates/account/login.html).
NON_FIELD_ERRORS_ID = "login-errors"


# --- Sign-in ----------------------------------------------------------------------------------


class LoginForm(AllauthLoginForm):
    """allauth's login form; the login is capped so oversized input is a form error.

    (Uncapped, a 100 kB login reaches the database as a case-insensitive LIKE pattern, which
    SQLite refuses with an error.)
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        login = self.fields["login"]
        login.max_length = LOGIN_MAX_LENGTH  # type: ignore[attr-defined]
        login.validators.append(MaxLengthValidator(LOGIN_MAX_LENGTH))
        login.widget.attrs["maxlength"] = str(LOGIN_MAX_LENGTH)
        password = self.fields["password"]
        if isinstance(password.help_text, Promise):
            # allauth's help text is lazy and looks up a template each time it is read (twice
            # per page, and once more by a truth test): read it once.
            password.help_text = str(password.help_text)
        if not self.is_bound and self.request is not None:
            # OIDC Core §3.1.2.1: an app's `login_hint` pre-fills the sign-in name.
            # A longer hint is no sign-in name of ours (LOGIN_MAX_LENGTH): nothing pre-filled.
            hint = authorize_parameter(
                self.request.GET.get("next"), "login_hint", max_length=LOGIN_MAX_LENGTH
            )
            self.initial.setdefault("login", hint)

    def full_clean(self) -> None:
        super().full_clean()
        if self.non_field_errors() and not (self.has_error("login") or self.has_error("password")):
            # A wrong sign-in name or password is one form-wide message (which of the two is
            # never said); both fields point at it and are marked invalid (WCAG 2.2 SC 3.3.1),
            # as a field's own error would mark it. Django adds the help text's id only when
            # the widget names none, so it is named here.
            for name, described_by in (
                ("login", NON_FIELD_ERRORS_ID),
                ("password", f"id_password_helptext {NON_FIELD_ERRORS_ID}"),
            ):
                attrs = self.fields[name].widget.attrs
                attrs["aria-invalid"] = "true"
                attrs["aria-describedby"] = described_by


# --- Second factor: a locked account gets no more guesses ------------------------------------

LOCKED_MESSAGE = _(
    "Too many failed attempts. This account is locked for a while; try again later or ask "
    "your administrator to unlock it."
)


class _LockAwareCodeMixin:
    """allauth's code check (and its rate limit), refused while the account is locked.

    Wrong codes count towards the lock (receiver of allauth's `authentication_failed`), so
    once the lock falls no code is even tried until it ends.
    """

    user: Any

    def clean_code(self) -> str:
        user = User.objects.get(pk=self.user.pk)
        if user.is_locked():
            services.record_failed_login(request=context.request, users=[user], reason="locked")
            raise forms.ValidationError(LOCKED_MESSAGE, code="locked")
        return super().clean_code()  # type: ignore[misc, no-any-return]


class AuthenticateForm(_LockAwareCodeMixin, AllauthAuthenticateForm):
    """The sign-in's second step (MFA_FORMS["authenticate"])."""


class ReauthenticateForm(_LockAwareCodeMixin, AllauthReauthenticateForm):
    """Confirming a sensitive action with a code (MFA_FORMS["reauthenticate"])."""


# --- Passwords: "sign out everywhere else" ------------------------------------------------------


class _SignOutChoiceMixin:
    """Adds the "sign out everywhere else" question to one of allauth's password forms.

    The answer reaches `accounts.services` through allauth's password signal (same request).
    It starts ticked, as Okta and Entra ID do: a new password is often the answer to a stolen
    one, and the sessions (and apps' refresh tokens) the thief holds must end unless the user
    chooses to keep them (OWASP ASVS 5.0 V7.4.3).
    """

    sign_out_initial = True
    sign_out_label = _("Sign out everywhere else")
    sign_out_help = _("Ends your other sessions and signs you out of the apps they signed in to.")
    fields: dict[str, Any]
    cleaned_data: dict[str, Any]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[call-arg]
        self.fields["sign_out_others"] = forms.BooleanField(
            label=self.sign_out_label,
            help_text=self.sign_out_help,
            required=False,
            initial=self.sign_out_initial,
        )

    def save(self) -> None:
        remember_sign_out_choice(
            context.request, sign_out=bool(self.cleaned_data.get("sign_out_others"))
        )
        super().save()  # type: ignore[misc]


class ChangePasswordForm(_SignOutChoiceMixin, AllauthChangePasswordForm):
    """allauth's change form (ACCOUNT_FORMS["change_password"]); this browser stays signed in."""


class SetPasswordForm(_SignOutChoiceMixin, AllauthSetPasswordForm):
    """allauth's form for an account without a usable password (ACCOUNT_FORMS["set_password"])."""


class ResetPasswordKeyForm(_SignOutChoiceMixin, AllauthResetPasswordKeyForm):
    """allauth's reset-link form (ACCOUNT_FORMS["reset_password_from_key"])."""

    sign_out_label = _("Sign out everywhere")
    sign_out_help = _(
        "Ends every session of your account and signs you out of every app. Recommended if "
        "someone else may know your old password."
    )


class ResetPasswordForm(AllauthResetPasswordForm):
    """allauth's "forgot password" form (ACCOUNT_FORMS["reset_password"]): the same work for an
    address without an account as for a registered one."""

    def save(self, request: HttpRequest, **kwargs: Any) -> str:
        if not self.users:
            # OWASP ASVS 5.0 V6.3.8: a registered address costs an audit row (the adapter's
            # send_password_reset_mail) and an email, an unknown one only allauth's
            # unknown-account email, so it answered measurably sooner. The same audit row (no
            # subject) evens the work, and the administrators see the attempt.
            record_event(type=AuditEvent.Type.PASSWORD_RESET_REQUESTED, request=request)
        return str(super().save(request, **kwargs))


# --- Profile ------------------------------------------------------------------------------------


class ProfileForm(forms.ModelForm):
    """The name the user goes by (OIDC `name`, `given_name`, `family_name`)."""

    class Meta:
        model = User
        fields = ("first_name", "last_name")


def _check_unique_login(*, username: str, email: str, instance: User | None) -> dict[str, Any]:
    """Usernames and addresses are sign-in names, compared case-insensitively (allauth)."""
    errors: dict[str, Any] = {}
    others = User.objects.all()
    if instance is not None and instance.pk:
        others = others.exclude(pk=instance.pk)
    # Exact duplicates are the model's own unique check; this catches "Bill" next to "bill".
    if username and others.filter(username__iexact=username).exclude(username=username).exists():
        errors["username"] = _("A user with that username already exists.")
    if email:
        taken = others.filter(email__iexact=email).exists() or (
            EmailAddress.objects.filter(email=email.lower(), verified=True)
            .exclude(user_id=getattr(instance, "pk", None))
            .exists()
        )
        if taken:
            errors["email"] = _("Another account already uses this email address.")
    return errors


class PasswordChoice(models.TextChoices):
    EMAIL_LINK = "email", _("Email the user a link to choose their own password")
    SET_NOW = "set", _("Set a password now")


class AdminUserCreationForm(forms.ModelForm):
    """Create an account: either set its first password, or email the user a reset link."""

    password_choice = forms.ChoiceField(
        label=_("Password"),
        choices=PasswordChoice.choices,
        initial=PasswordChoice.EMAIL_LINK,
        widget=forms.RadioSelect,
    )
    password1 = forms.CharField(
        label=_("Password"),
        required=False,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text=password_validation.password_validators_help_text_html(),
    )
    password2 = forms.CharField(
        label=_("Password confirmation"),
        required=False,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    class Meta:
        model = User
        fields = ("username", "email", "first_name", "last_name")

    def clean_email(self) -> str:
        return (self.cleaned_data.get("email") or "").strip()

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data
        username = cleaned.get("username") or ""
        email = cleaned.get("email") or ""
        for field, message in _check_unique_login(
            username=username, email=email, instance=None
        ).items():
            self.add_error(field, message)
        if cleaned.get("password_choice") == PasswordChoice.EMAIL_LINK:
            if not email:
                self.add_error("email", _("An email address is needed to send the link."))
            return cleaned
        password1 = cleaned.get("password1") or ""
        password2 = cleaned.get("password2") or ""
        if not password1:
            self.add_error("password1", _("Enter a password, or choose to email a link."))
            return cleaned
        if password1 != password2:
            self.add_error("password2", _("The two password fields didn’t match."))
            return cleaned
        candidate = User(
            username=username,
            email=email,
            first_name=cleaned.get("first_name") or "",
            last_name=cleaned.get("last_name") or "",
        )
        try:
            password_validation.validate_password(password1, candidate)
        except forms.ValidationError as error:
            self.add_error("password1", error)
        return cleaned

    def chosen_password(self) -> str | None:
        """The password to set, or None to email a reset link instead."""
        if self.cleaned_data.get("password_choice") == PasswordChoice.SET_NOW:
            return self.cleaned_data["password1"]
        return None


class AdminUserChangeForm(UserChangeForm):
    class Meta(UserChangeForm.Meta):  # type: ignore[name-defined]
        model = User
        fields = "__all__"

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data
        email = (cleaned.get("email") or "").strip()
        if "email" in cleaned:
            cleaned["email"] = email
        errors = _check_unique_login(
            username=cleaned.get("username") or "", email=email, instance=self.instance
        )
        for field, message in errors.items():
            if field in self.fields:
                self.add_error(field, message)
        return cleaned
