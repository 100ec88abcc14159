"""Forms: allauth's sign-in form with a length cap, and the administrators' user forms."""

from __future__ import annotations

from typing import Any

from allauth.account.forms import LoginForm as AllauthLoginForm
from allauth.account.models import EmailAddress
from django import forms
from django.contrib.auth import password_validation
from django.contrib.auth.forms import UserChangeForm
from django.core.validators import MaxLengthValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from accounts.models import User
from oauth_clients.backend import login_hint

# The longest sign-in name we store: an email address (allauth's ACCOUNT_EMAIL_MAX_LENGTH).
LOGIN_MAX_LENGTH = 254


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
        if not self.is_bound and self.request is not None:
            # OIDC Core §3.1.2.1: an app's `login_hint` pre-fills the sign-in name.
            self.initial.setdefault("login", login_hint(self.request))


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
