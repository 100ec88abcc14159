"""User management in the Django admin: each security change goes through a service, audited."""

from __future__ import annotations

import os
import subprocess
import sys
from http import HTTPStatus
from pathlib import Path

import pytest
from allauth.account.models import EmailAddress
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.core import mail
from django.core.management import call_command
from django.test import Client

from accounts.models import AuditEvent
from tests.accounts.conftest import OVERVIEW_URL, is_signed_in, last_link, sign_in
from tests.deploy.servers import migrated_sqlite

pytestmark = pytest.mark.django_db

User = get_user_model()
USERS_URL = "/admin/accounts/user/"
ADD_URL = "/admin/accounts/user/add/"
AUDIT_URL = "/admin/accounts/auditevent/"
STRONG = "an unguessable passphrase 9"


@pytest.fixture
def admin_client(admin_user, password) -> Client:
    client = Client()
    assert sign_in(client, "root", password, next="/admin/")["Location"] == "/admin/"
    return client


@pytest.fixture
def staff_client(db, password) -> Client:
    """A staff member allowed to manage users, but not a superuser."""
    from django.contrib.auth.models import Permission

    staff = User.objects.create_user("helpdesk", "helpdesk@example.com", password, is_staff=True)
    staff.user_permissions.set(
        Permission.objects.filter(
            content_type__app_label="accounts",
            codename__in=["view_user", "change_user", "add_user", "view_auditevent"],
        )
    )
    client = Client()
    sign_in(client, "helpdesk", password)
    return client


def _change_data(client: Client, user, **changes) -> dict:
    """The change form's current values (as a browser would post them) with `changes` applied."""
    page = client.get(f"{USERS_URL}{user.pk}/change/")
    assert page.status_code == HTTPStatus.OK
    form = page.context["adminform"].form
    data: dict = {"_save": "Save"}
    for name, field in form.fields.items():
        if name == "password" or field.disabled:
            continue
        value = form.initial.get(name, field.initial)
        if isinstance(value, bool):
            if value:
                data[name] = "on"
        elif value is None:
            data[name] = ""
        elif isinstance(value, list | tuple) or hasattr(value, "all"):
            data[name] = [getattr(v, "pk", v) for v in value]
        else:
            data[name] = value
    for name, value in changes.items():
        if value is False:
            data.pop(name, None)
        elif value is True:
            data[name] = "on"
        else:
            data[name] = value
    return data


def _action(client: Client, action: str, *users):
    return client.post(
        USERS_URL,
        {"action": action, "_selected_action": [u.pk for u in users], "index": 0},
        follow=True,
    )


# --- Listing --------------------------------------------------------------------------------


def test_user_list_search_and_filters(admin_client, user, settings):
    User.objects.create_user("bob", "bob@example.com", "pw", is_active=False)

    page = admin_client.get(USERS_URL)
    assert page.status_code == HTTPStatus.OK
    assert {"alice", "bob", "root"} <= {u.username for u in page.context["cl"].result_list}

    found = admin_client.get(USERS_URL, {"q": "Liddell"}).context["cl"].result_list
    assert [u.username for u in found] == ["alice"]

    inactive = admin_client.get(USERS_URL, {"is_active__exact": "0"}).context["cl"].result_list
    assert [u.username for u in inactive] == ["bob"]

    settings.IDP_LOCKOUT_THRESHOLD = 1
    sign_in(Client(), "alice", "wrong")
    locked = admin_client.get(USERS_URL, {"locked": "yes"}).context["cl"].result_list
    assert [u.username for u in locked] == ["alice"]


# --- Creating users -------------------------------------------------------------------------


def test_admin_creates_a_user_with_a_password_who_signs_in_at_once(admin_client, admin_user):
    response = admin_client.post(
        ADD_URL,
        {
            "username": "carol",
            "email": "Carol@Example.com",
            "first_name": "Carol",
            "last_name": "Danvers",
            "password_choice": "set",
            "password1": STRONG,
            "password2": STRONG,
            "_save": "Save",
        },
    )

    assert response.status_code == HTTPStatus.FOUND, (
        response.context and response.context["adminform"].form.errors
    )
    carol = User.objects.get(username="carol")
    assert carol.check_password(STRONG)
    assert carol.password.startswith("argon2$argon2id$")
    assert EmailAddress.objects.get(user=carol).verified
    client = Client()
    assert sign_in(client, "carol@example.com", STRONG)["Location"] == OVERVIEW_URL
    event = AuditEvent.objects.get(type=AuditEvent.Type.USER_CREATED)
    assert (event.actor, event.subject) == (admin_user, carol)
    assert event.extra["password_set"] is True
    assert STRONG not in str(event.extra)


def test_admin_creates_a_user_who_gets_a_link_to_choose_a_password(
    admin_client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            ADD_URL,
            {
                "username": "dave",
                "email": "dave@example.com",
                "password_choice": "email",
                "_save": "Save",
            },
        )

    assert response.status_code == HTTPStatus.FOUND
    dave = User.objects.get(username="dave")
    assert not dave.has_usable_password()
    assert mail.outbox[-1].to == ["dave@example.com"]
    link = last_link().replace("http://testserver", "")

    browser = Client()
    form_page = browser.get(link, follow=True)
    browser.post(form_page.redirect_chain[-1][0], {"password1": STRONG, "password2": STRONG})

    assert sign_in(Client(), "dave", STRONG)["Location"] == OVERVIEW_URL
    assert AuditEvent.objects.get(type=AuditEvent.Type.USER_CREATED).extra["reset_link_sent"]


@pytest.mark.parametrize(
    ("fields", "error_field", "message"),
    [
        (
            {"password_choice": "set", "password1": "short", "password2": "short"},
            "password1",
            "too short",
        ),
        (
            {"password_choice": "set", "password1": "q1w2e3r4t5y6", "password2": "q1w2e3r4t5y6"},
            "password1",
            "too common",
        ),
        (
            {"password_choice": "set", "password1": STRONG, "password2": STRONG + "x"},
            "password2",
            "match",
        ),
        ({"password_choice": "set"}, "password1", "Enter a password"),
        ({"password_choice": "email", "email": ""}, "email", "needed to send the link"),
        ({"password_choice": "email", "email": "ALICE@example.com"}, "email", "already uses"),
        ({"password_choice": "email", "username": "Alice"}, "username", "already exists"),
        ({"password_choice": "email", "username": "a\x00b"}, "username", "Null characters"),
        ({"password_choice": "email", "username": "x" * 5000}, "username", "at most 150"),
    ],
)
def test_admin_user_creation_refuses_bad_input_with_a_form_error(
    admin_client, user, fields, error_field, message
):
    data = {"username": "erin", "email": "erin@example.com", "_save": "Save", **fields}
    response = admin_client.post(ADD_URL, data)
    assert response.status_code == HTTPStatus.OK
    errors = response.context["adminform"].form.errors
    assert message in " ".join(errors.get(error_field, [])), errors
    assert not User.objects.filter(username__in=["erin", "Alice"]).exists()


# --- Changing users -------------------------------------------------------------------------


def test_unticking_active_in_the_change_form_deactivates_through_the_service(
    admin_client, admin_user, user, password
):
    browser = Client()
    sign_in(browser, "alice", password)
    assert browser.get(OVERVIEW_URL).status_code == HTTPStatus.OK

    response = admin_client.post(
        f"{USERS_URL}{user.pk}/change/", _change_data(admin_client, user, is_active=False)
    )

    assert response.status_code == HTTPStatus.FOUND
    user.refresh_from_db()
    assert not user.is_active
    assert browser.get(OVERVIEW_URL).status_code == HTTPStatus.FOUND
    assert AuditEvent.objects.filter(
        type=AuditEvent.Type.USER_DEACTIVATED, actor=admin_user, subject=user
    ).exists()


def test_change_form_audits_staff_superuser_and_profile_changes(admin_client, admin_user, user):
    response = admin_client.post(
        f"{USERS_URL}{user.pk}/change/",
        _change_data(
            admin_client,
            user,
            is_staff=True,
            is_superuser=True,
            first_name="Alicia",
            email="alicia@example.com",
        ),
    )

    assert response.status_code == HTTPStatus.FOUND
    user.refresh_from_db()
    assert user.is_staff
    assert user.is_superuser
    assert user.first_name == "Alicia"
    types = set(
        AuditEvent.objects.filter(actor=admin_user, subject=user).values_list("type", flat=True)
    )
    assert {
        AuditEvent.Type.STAFF_GRANTED,
        AuditEvent.Type.SUPERUSER_GRANTED,
        AuditEvent.Type.USER_CHANGED,
    } <= types
    changed = AuditEvent.objects.get(type=AuditEvent.Type.USER_CHANGED)
    assert changed.extra["fields"] == ["email", "first_name"]
    # The new address is the one to sign in and reset with; the old one no longer is.
    assert list(EmailAddress.objects.filter(user=user).values_list("email", flat=True)) == [
        "alicia@example.com"
    ]


def test_setting_a_password_in_the_admin_is_audited_and_ends_the_users_sessions(
    admin_client, admin_user, user, password
):
    browser = Client()
    sign_in(browser, "alice", password)
    assert browser.get(OVERVIEW_URL).status_code == HTTPStatus.OK

    response = admin_client.post(
        f"{USERS_URL}{user.pk}/password/",
        {"password1": STRONG, "password2": STRONG, "usable_password": "true"},
    )

    assert response.status_code == HTTPStatus.FOUND
    assert browser.get(OVERVIEW_URL).status_code == HTTPStatus.FOUND
    event = AuditEvent.objects.get(type=AuditEvent.Type.PASSWORD_CHANGED, subject=user)
    assert event.actor == admin_user
    assert event.extra["by_admin"] is True
    assert is_signed_in(admin_client)


# --- Actions --------------------------------------------------------------------------------


def test_deactivate_and_activate_actions(admin_client, admin_user, user, password):
    browser = Client()
    sign_in(browser, "alice", password)

    _action(admin_client, "deactivate_users", user)
    user.refresh_from_db()
    assert not user.is_active
    assert browser.get(OVERVIEW_URL).status_code == HTTPStatus.FOUND

    _action(admin_client, "activate_users", user)
    user.refresh_from_db()
    assert user.is_active
    assert list(
        AuditEvent.objects.filter(actor=admin_user, subject=user)
        .order_by("id")
        .values_list("type", flat=True)
    ) == [AuditEvent.Type.USER_DEACTIVATED, AuditEvent.Type.USER_ACTIVATED]


def test_an_admin_cannot_deactivate_or_demote_themselves(admin_client, admin_user):
    page = _action(admin_client, "deactivate_users", admin_user)
    assert "your own account" in page.content.decode()
    _action(admin_client, "revoke_superuser", admin_user)
    admin_user.refresh_from_db()
    assert admin_user.is_active
    assert admin_user.is_superuser
    assert is_signed_in(admin_client)


def test_staff_and_superuser_actions_are_audited(admin_client, admin_user, user):
    for action in ["grant_staff", "grant_superuser", "revoke_superuser", "revoke_staff"]:
        _action(admin_client, action, user)
    user.refresh_from_db()
    assert not user.is_staff
    assert not user.is_superuser
    assert list(
        AuditEvent.objects.filter(actor=admin_user, subject=user)
        .order_by("id")
        .values_list("type", flat=True)
    ) == [
        AuditEvent.Type.STAFF_GRANTED,
        AuditEvent.Type.SUPERUSER_GRANTED,
        AuditEvent.Type.SUPERUSER_REVOKED,
        AuditEvent.Type.STAFF_REVOKED,
    ]


def test_force_password_reset_action(
    admin_client, admin_user, user, password, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        _action(admin_client, "force_password_reset", user)

    user.refresh_from_db()
    assert user.password_reset_required
    assert mail.outbox[-1].to == ["alice@example.com"]
    assert sign_in(Client(), "alice", password)["Location"] == "/account/password-reset-required/"


def test_unlock_action(admin_client, admin_user, user, password, settings):
    settings.IDP_LOCKOUT_THRESHOLD = 1
    sign_in(Client(), "alice", "wrong")
    user.refresh_from_db()
    assert user.is_locked()

    _action(admin_client, "unlock_users", user)

    user.refresh_from_db()
    assert not user.is_locked()


def test_only_superusers_hand_out_superuser_status(staff_client, user):
    page = staff_client.get(USERS_URL)
    assert page.status_code == HTTPStatus.OK
    actions = dict(page.context["action_form"].fields["action"].choices)
    assert "deactivate_users" in actions
    assert "grant_superuser" not in actions

    _action(staff_client, "grant_superuser", user)
    change = staff_client.get(f"{USERS_URL}{user.pk}/change/")
    assert "is_superuser" not in change.context["adminform"].form.fields
    user.refresh_from_db()
    assert not user.is_superuser


# --- The audit log in the admin -----------------------------------------------------------------


def test_audit_log_is_visible_and_read_only(admin_client, user):
    sign_in(Client(), "alice", "wrong")
    event = AuditEvent.objects.get(type=AuditEvent.Type.LOGIN_FAILED)

    listing = admin_client.get(AUDIT_URL)
    assert listing.status_code == HTTPStatus.OK
    assert (
        "login.failed" in listing.content.decode() or "Sign-in failed" in listing.content.decode()
    )
    detail = admin_client.get(f"{AUDIT_URL}{event.pk}/change/")
    assert detail.status_code == HTTPStatus.OK
    assert 'name="_save"' not in detail.content.decode()

    assert admin_client.get(f"{AUDIT_URL}add/").status_code == HTTPStatus.FORBIDDEN
    assert (
        admin_client.post(f"{AUDIT_URL}{event.pk}/change/", {"type": "logout"}).status_code
        == HTTPStatus.FORBIDDEN
    )
    assert (
        admin_client.post(f"{AUDIT_URL}{event.pk}/delete/", {"post": "yes"}).status_code
        == HTTPStatus.FORBIDDEN
    )
    assert AuditEvent.objects.filter(pk=event.pk, type=AuditEvent.Type.LOGIN_FAILED).exists()


# --- createsuperuser --------------------------------------------------------------------------


def test_createsuperuser_noinput_with_environment(monkeypatch):
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", STRONG)
    call_command(
        "createsuperuser", "--noinput", "--username", "boss", "--email", "boss@example.com"
    )

    boss = User.objects.get(username="boss")
    assert boss.is_superuser
    assert boss.is_staff
    client = Client()
    assert sign_in(client, "boss@example.com", STRONG, next="/admin/")["Location"] == "/admin/"
    assert client.get("/admin/").status_code == HTTPStatus.OK


@pytest.mark.once  # a fresh process on a SQLite file of its own
def test_createsuperuser_noinput_from_the_shell_as_in_the_readme(tmp_path: Path):
    """The README's exact command, in a fresh process on a fresh SQLite file."""
    root = Path(django_settings.BASE_DIR)
    env = {
        **os.environ,
        "IDP_DATA_DIR": str(tmp_path),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "DJANGO_SUPERUSER_USERNAME": "admin",
        "DJANGO_SUPERUSER_EMAIL": "admin@example.com",
        "DJANGO_SUPERUSER_PASSWORD": STRONG,
    }
    manage = [sys.executable, str(root / "manage.py")]
    migrated_sqlite(tmp_path / "db.sqlite3")  # as `migrate` leaves it (tests/deploy/servers.py)
    result = subprocess.run(
        [*manage, "createsuperuser", "--noinput"], env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    check = subprocess.run(
        [
            *manage,
            "shell",
            "-c",
            "from accounts.models import User; u = User.objects.get(username='admin'); "
            f"print(u.is_superuser, u.check_password({STRONG!r}))",
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    assert check.stdout.strip().endswith("True True"), check.stderr
