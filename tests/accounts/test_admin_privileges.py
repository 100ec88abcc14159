"""Who may administer whom (accounts/permissions.py), from every entry point: the admin's password
form, change form and delete, each admin action, and `manage.py users`.

The takeover these tests pin: a help-desk staff member (change_user, not a superuser) set a
superuser's password, reset their two-step methods, edited their email, then signed in as them.
"""

from __future__ import annotations

from http import HTTPStatus

import pytest
from allauth.mfa.models import Authenticator
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.exceptions import PermissionDenied
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

from accounts import services
from accounts.admin import UserAdmin
from accounts.models import AuditEvent
from accounts.permissions import may_administer, may_set_privileges
from tests.accounts.conftest import MFA_AUTHENTICATE_URL, enable_totp, sign_in, sign_in_with_totp

pytestmark = pytest.mark.django_db

User = get_user_model()
USERS_URL = "/admin/accounts/user/"
STRONG = "an unguessable passphrase 9"
HELPDESK_PERMISSIONS = ["view_user", "change_user", "add_user", "delete_user", "view_auditevent"]


@pytest.fixture
def helpdesk(db, password):
    """A staff member allowed to manage users (every user permission), not a superuser."""
    staff = User.objects.create_user("helpdesk", "helpdesk@example.com", password, is_staff=True)
    staff.user_permissions.set(
        Permission.objects.filter(
            content_type__app_label="accounts", codename__in=HELPDESK_PERMISSIONS
        )
    )
    return staff


@pytest.fixture
def helpdesk_client(helpdesk, password) -> Client:
    client = Client()
    assert sign_in(client, "helpdesk", password)["Location"]
    return client


@pytest.fixture
def admin_client(admin_user, password) -> Client:
    client = Client()
    assert sign_in(client, "root", password, next="/admin/")["Location"] == "/admin/"
    return client


@pytest.fixture
def colleague(db, password_hash):
    """Another staff member, with the same permissions as the help desk."""
    from tests.conftest import with_password

    other = User.objects.create_user("colleague", "colleague@example.com", None, is_staff=True)
    return with_password(other, password_hash)


def _action(client: Client, action: str, *users):
    return client.post(
        USERS_URL,
        {"action": action, "_selected_action": [u.pk for u in users], "index": 0},
        follow=True,
    )


def _password_form(client: Client, target):
    return client.post(
        f"{USERS_URL}{target.pk}/password/",
        {"password1": STRONG, "password2": STRONG, "usable_password": "true"},
    )


def _change_form(client: Client, target, **changes):
    page = client.get(f"{USERS_URL}{target.pk}/change/")
    assert page.status_code == HTTPStatus.OK
    form = page.context["adminform"].form
    data: dict = {"_save": "Save"}
    for name, field in form.fields.items():
        if field.disabled or name == "password":
            continue
        value = form.initial.get(name)
        if value is None:
            continue
        if isinstance(value, bool):
            if value:
                data[name] = "on"
        elif isinstance(value, list | tuple):
            data[name] = [getattr(v, "pk", v) for v in value]
        else:
            data[name] = value
    for name, value in changes.items():
        if value is False:
            data.pop(name, None)
        else:
            data[name] = "on" if value is True else value
    return client.post(f"{USERS_URL}{target.pk}/change/", data)


# --- The rule itself -------------------------------------------------------------------------


def test_the_rule_superuser_acts_on_anyone_staff_only_below_their_level(
    admin_user, helpdesk, colleague, user
):
    assert may_administer(actor=admin_user, subject=user)
    assert may_administer(actor=admin_user, subject=helpdesk)
    assert may_administer(actor=admin_user, subject=admin_user)
    assert may_administer(actor=helpdesk, subject=user)
    assert not may_administer(actor=helpdesk, subject=admin_user)
    assert not may_administer(actor=helpdesk, subject=colleague)
    assert not may_administer(actor=helpdesk, subject=helpdesk)
    assert not may_administer(actor=user, subject=user)  # not staff: administers nobody
    assert may_set_privileges(actor=admin_user)
    assert not may_set_privileges(actor=helpdesk)
    admin_user.is_active = False
    assert not may_administer(actor=admin_user, subject=user)


def test_every_service_refuses_a_staff_member_acting_on_a_superuser(helpdesk, admin_user, user):
    services.unlock_user(user=user, actor=helpdesk)  # positive: a regular user
    for call in (
        lambda: services.unlock_user(user=admin_user, actor=helpdesk),
        lambda: services.deactivate_user(user=admin_user, actor=helpdesk),
        lambda: services.activate_user(user=admin_user, actor=helpdesk),
        lambda: services.reset_user_factors(user=admin_user, actor=helpdesk),
        lambda: services.sign_out_everywhere(user=admin_user, actor=helpdesk),
        lambda: services.revoke_all_user_tokens(user=admin_user, actor=helpdesk),
        lambda: services.delete_user(user=admin_user, actor=helpdesk),
        lambda: services.set_staff(user=user, is_staff=True, actor=helpdesk),
        lambda: services.set_superuser(user=user, is_superuser=True, actor=helpdesk),
    ):
        with pytest.raises(PermissionDenied):
            call()
    admin_user.refresh_from_db()
    user.refresh_from_db()
    assert admin_user.is_active
    assert admin_user.is_superuser
    assert not user.is_staff


# --- The admin's password form -----------------------------------------------------------------


def test_helpdesk_sets_a_regular_users_password(helpdesk_client, user):
    assert _password_form(helpdesk_client, user).status_code == HTTPStatus.FOUND
    user.refresh_from_db()
    assert user.check_password(STRONG)


@pytest.mark.parametrize("target_name", ["admin_user", "colleague", "helpdesk"])
def test_helpdesk_cannot_set_a_superusers_or_staff_password(
    helpdesk_client, target_name, request, password
):
    target = request.getfixturevalue(target_name)
    assert helpdesk_client.get(f"{USERS_URL}{target.pk}/password/").status_code == (
        HTTPStatus.FORBIDDEN
    )
    assert _password_form(helpdesk_client, target).status_code == HTTPStatus.FORBIDDEN
    target.refresh_from_db()
    assert not target.check_password(STRONG)
    assert not AuditEvent.objects.filter(type=AuditEvent.Type.PASSWORD_CHANGED).exists()


def test_superuser_sets_another_superusers_password(admin_client, db, password_hash):
    other = User.objects.create_superuser("root2", "root2@example.com", None)
    assert _password_form(admin_client, other).status_code == HTTPStatus.FOUND
    other.refresh_from_db()
    assert other.check_password(STRONG)


# --- The change form and delete ----------------------------------------------------------------


def test_helpdesk_edits_a_regular_user_but_cannot_make_them_staff(helpdesk_client, user):
    response = _change_form(helpdesk_client, user, email="alice@new.example.com", is_staff=True)
    assert response.status_code == HTTPStatus.FOUND
    user.refresh_from_db()
    assert user.email == "alice@new.example.com"
    assert not user.is_staff  # read-only for anyone but a superuser
    page = helpdesk_client.get(f"{USERS_URL}{user.pk}/change/")
    assert "is_staff" not in page.context["adminform"].form.fields


def test_helpdesk_sees_a_superuser_read_only_and_cannot_edit_email_or_staff(
    helpdesk_client, admin_client, admin_user
):
    page = admin_client.get(f"{USERS_URL}{admin_user.pk}/change/")
    assert "email" in page.context["adminform"].form.fields  # positive: a superuser edits
    page = helpdesk_client.get(f"{USERS_URL}{admin_user.pk}/change/")
    assert page.status_code == HTTPStatus.OK
    assert not page.context["has_change_permission"]
    response = helpdesk_client.post(
        f"{USERS_URL}{admin_user.pk}/change/",
        {"username": "root", "email": "attacker@example.com", "is_active": "on", "_save": "Save"},
    )
    assert response.status_code == HTTPStatus.FORBIDDEN
    admin_user.refresh_from_db()
    assert admin_user.email == "root@example.com"
    assert admin_user.is_staff
    assert admin_user.is_superuser


def test_helpdesk_cannot_delete_a_superuser(helpdesk_client, admin_user, user):
    response = helpdesk_client.get(f"{USERS_URL}{user.pk}/delete/")
    assert response.status_code == HTTPStatus.OK  # positive: a regular user can be deleted
    response = helpdesk_client.post(f"{USERS_URL}{admin_user.pk}/delete/", {"post": "yes"})
    assert response.status_code == HTTPStatus.FORBIDDEN
    assert User.objects.filter(pk=admin_user.pk).exists()
    _action_post = helpdesk_client.post(
        USERS_URL,
        {"action": "delete_selected", "_selected_action": [admin_user.pk], "post": "yes"},
    )
    assert _action_post.status_code in {HTTPStatus.OK, HTTPStatus.FORBIDDEN, HTTPStatus.FOUND}
    assert User.objects.filter(pk=admin_user.pk).exists()


# --- Every admin action --------------------------------------------------------------------------

# Every action the user admin offers (a new one is covered the day it is added).
ACTIONS = list(UserAdmin.actions)


def _snapshot(target) -> tuple:
    target.refresh_from_db()
    return (
        target.is_active,
        target.is_staff,
        target.is_superuser,
        target.password_reset_required,
        target.password,
        Authenticator.objects.filter(user=target).count(),
    )


def test_helpdesk_actions_work_on_a_regular_user(helpdesk_client, user):
    enable_totp(user)
    _action(helpdesk_client, "reset_factors", user)
    assert not Authenticator.objects.filter(user=user).exists()
    _action(helpdesk_client, "deactivate_users", user)
    user.refresh_from_db()
    assert not user.is_active


@pytest.mark.parametrize("action", ACTIONS)
@pytest.mark.parametrize("target_name", ["admin_user", "colleague"])
def test_no_admin_action_of_helpdesk_touches_a_superuser_or_another_staff_member(
    helpdesk_client, action, target_name, request
):
    target = request.getfixturevalue(target_name)
    enable_totp(target)
    before = _snapshot(target)
    events_before = AuditEvent.objects.exclude(type=AuditEvent.Type.ADMIN_REFUSED).count()

    response = _action(helpdesk_client, action, target)

    assert response.status_code == HTTPStatus.OK
    assert _snapshot(target) == before
    # Nothing but refusals (and the help desk's own page views) was recorded.
    assert AuditEvent.objects.exclude(type=AuditEvent.Type.ADMIN_REFUSED).count() == events_before
    available = dict(helpdesk_client.get(USERS_URL).context["action_form"].fields["action"].choices)
    if action in available:
        refusal = AuditEvent.objects.get(type=AuditEvent.Type.ADMIN_REFUSED)
        assert (refusal.actor.username, refusal.subject, refusal.extra["action"]) == (
            "helpdesk",
            target,
            action,
        )
        assert b"Only a superuser may act on" in response.content
    else:
        assert action in {"grant_staff", "revoke_staff", "grant_superuser", "revoke_superuser"}


def test_a_mixed_selection_changes_only_who_the_helpdesk_may_act_on(
    helpdesk_client, admin_user, user
):
    _action(helpdesk_client, "deactivate_users", user, admin_user)
    user.refresh_from_db()
    admin_user.refresh_from_db()
    assert not user.is_active
    assert admin_user.is_active


def test_superuser_actions_on_staff_still_work(admin_client, colleague):
    enable_totp(colleague)
    _action(admin_client, "reset_factors", colleague)
    _action(admin_client, "revoke_staff", colleague)
    colleague.refresh_from_db()
    assert not Authenticator.objects.filter(user=colleague).exists()
    assert not colleague.is_staff


def test_the_takeover_fails_end_to_end(helpdesk_client, admin_user, password):
    """The probe's path: password form, reset factors, then sign in as the superuser."""
    secret = enable_totp(admin_user)
    assert _password_form(helpdesk_client, admin_user).status_code == HTTPStatus.FORBIDDEN
    _action(helpdesk_client, "reset_factors", admin_user)
    assert Authenticator.objects.filter(user=admin_user).exists()
    attacker = Client()
    response = sign_in(attacker, "root", STRONG)
    assert response.status_code == HTTPStatus.OK  # the form again: wrong password
    # The superuser's password and factor are as they were: their own code still completes it.
    finished = sign_in_with_totp(Client(), "root", password, secret)
    assert finished.status_code == HTTPStatus.FOUND
    assert finished["Location"] != MFA_AUTHENTICATE_URL


# --- The command line ----------------------------------------------------------------------------


def test_cli_as_superuser_acts_on_staff(admin_user, colleague, capsys):
    enable_totp(colleague)
    call_command("users", "--actor", "root", "reset-factors", "colleague")
    assert not Authenticator.objects.filter(user=colleague).exists()
    call_command("users", "--actor", "root", "grant-superuser", "colleague")
    colleague.refresh_from_db()
    assert colleague.is_superuser
    assert "is a superuser now" in capsys.readouterr().out
    event = AuditEvent.objects.get(type=AuditEvent.Type.SUPERUSER_GRANTED)
    assert (event.actor, event.subject) == (admin_user, colleague)


def test_cli_as_helpdesk_acts_on_a_regular_user(helpdesk, user):
    call_command("users", "--actor", "helpdesk", "deactivate", "alice")
    user.refresh_from_db()
    assert not user.is_active


@pytest.mark.parametrize(
    ("action", "target"),
    [
        ("reset-factors", "root"),
        ("deactivate", "root"),
        ("sign-out", "root"),
        ("revoke-tokens", "root"),
        ("unlock", "colleague"),
        ("revoke-superuser", "root"),
        ("revoke-staff", "colleague"),
        ("grant-staff", "alice"),
        ("grant-superuser", "alice"),
        ("grant-superuser", "helpdesk"),
    ],
)
def test_cli_refuses_helpdesk_above_their_level(
    helpdesk, admin_user, colleague, user, action, target
):
    subject = User.objects.get(username=target)
    enable_totp(subject)
    before = _snapshot(subject)
    with pytest.raises(CommandError, match="Refused"):
        call_command("users", "--actor", "helpdesk", action, target)
    assert _snapshot(subject) == before
    refusal = AuditEvent.objects.get(type=AuditEvent.Type.ADMIN_REFUSED)
    assert (refusal.actor, refusal.subject, refusal.extra["action"]) == (helpdesk, subject, action)


def test_cli_needs_an_active_administrator(user, admin_user):
    with pytest.raises(CommandError, match="not an active administrator"):
        call_command("users", "--actor", "alice", "deactivate", "root")
    with pytest.raises(CommandError, match="No user named"):
        call_command("users", "--actor", "nobody", "list")
    admin_user.refresh_from_db()
    assert admin_user.is_active
