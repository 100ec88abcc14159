"""The admin's own user forms, reused so the API checks what the admin checks (unique sign-in
names in any letter case, the password validators, the email needed for a reset link)."""

from __future__ import annotations

from typing import Any

from django.forms.models import model_to_dict

from accounts.forms import AdminUserChangeForm, AdminUserCreationForm, PasswordChoice
from accounts.models import User

# What the API may change on an account; the security flags go through their services
# (accounts.services.save_admin_changes routes each to its own).
EDITABLE_USER_FIELDS = (
    "email",
    "first_name",
    "last_name",
    "employee_id",
    "department",
    "job_title",
    "is_active",
    "is_staff",
    "is_superuser",
    "password_reset_required",
)
# The admin form's field names the API calls otherwise.
API_FIELD_FOR_FORM_FIELD = {"password1": "password", "password2": "password"}


class ApiUserChangeForm(AdminUserChangeForm):
    class Meta:
        model = User
        fields = EDITABLE_USER_FIELDS


def creation_form(values: dict[str, Any]) -> AdminUserCreationForm:
    password = values.get("password")
    return AdminUserCreationForm(
        data={
            "username": values.get("username", ""),
            "email": values.get("email", ""),
            "first_name": values.get("first_name", ""),
            "last_name": values.get("last_name", ""),
            "password_choice": PasswordChoice.SET_NOW if password else PasswordChoice.EMAIL_LINK,
            "password1": password or "",
            "password2": password or "",
        }
    )


def change_form(user: User, changes: dict[str, Any]) -> ApiUserChangeForm:
    """The stored values with `changes` on top (PATCH: what is not sent stays)."""
    data = model_to_dict(user, fields=EDITABLE_USER_FIELDS)
    data.update(changes)
    # A form's unchecked checkbox is an absent key, never False.
    data = {key: value for key, value in data.items() if value is not False and value is not None}
    return ApiUserChangeForm(data=data, instance=user)


def form_errors(form: Any) -> dict[str, list[str]]:
    """The form's errors keyed by the API's field names."""
    errors: dict[str, list[str]] = {}
    for field, messages in form.errors.items():
        name = API_FIELD_FOR_FORM_FIELD.get(field, "" if field == "__all__" else field)
        errors.setdefault(name, [])
        errors[name].extend(str(message) for message in messages)
    return errors
