"""Staff and superusers need a second factor for the admin: enrolled, and used in this session."""

from __future__ import annotations

import os
import subprocess
import sys
from http import HTTPStatus
from pathlib import Path

import pytest
import time_machine
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from tests.accounts.conftest import (
    MFA_AUTHENTICATE_URL,
    MFA_REAUTHENTICATE_URL,
    OVERVIEW_URL,
    TOTP_ACTIVATE_URL,
    enable_totp,
    sign_in,
    sign_in_with_totp,
    totp_code,
)

pytestmark = [pytest.mark.django_db, pytest.mark.staff_mfa]

ADMIN_URL = "/admin/"
ENROL_URL = "/account/two-step-required/"


@pytest.fixture
def staff(db, password):
    return get_user_model().objects.create_user(
        "helpdesk", "helpdesk@example.com", password, is_staff=True
    )


def test_the_policy_is_on_unless_the_environment_turns_it_off():
    env = {k: v for k, v in os.environ.items() if k != "IDP_STAFF_MFA_REQUIRED"}
    code = "import idp.settings as s; print(s.IDP_STAFF_MFA_REQUIRED)"
    base = Path(django_settings.BASE_DIR)
    default = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=base, capture_output=True, text=True, check=True
    )
    assert default.stdout.strip() == "True"
    off = subprocess.run(
        [sys.executable, "-c", code],
        env={**env, "IDP_STAFF_MFA_REQUIRED": "0"},
        cwd=base,
        capture_output=True,
        text=True,
        check=True,
    )
    assert off.stdout.strip() == "False"


def test_staff_without_a_second_factor_are_guided_to_enrol_right_after_signing_in(staff, password):
    client = Client()
    response = sign_in(client, "helpdesk", password, next=ADMIN_URL)
    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"] == f"{ENROL_URL}?next=%2Fadmin%2F"
    page = client.get(response["Location"])
    assert page.status_code == HTTPStatus.OK
    html = page.content.decode()
    assert "Set up two-step verification" in html
    # Each way to enrol carries next on, so enrolment ends back at the admin.
    assert f'href="{TOTP_ACTIVATE_URL}?next=%2Fadmin%2F"' in html
    assert 'href="/accounts/2fa/webauthn/add/?next=%2Fadmin%2F"' in html
    assert "Continue without it" not in html, "the admin would only send them back"
    # The admin stays closed until they have one, whatever page they ask for.
    for path in [ADMIN_URL, "/admin/accounts/user/", "/admin/login/?next=/admin/"]:
        blocked = client.get(path)
        assert blocked.status_code == HTTPStatus.FOUND, path
        assert blocked["Location"].startswith(ENROL_URL), path


def test_other_users_are_not_asked_to_enrol(user, password):
    response = sign_in(Client(), "alice", password)
    assert response["Location"] == OVERVIEW_URL


def test_enrolling_then_using_the_code_opens_the_admin(staff, password):
    client = Client()
    with time_machine.travel(timezone.now(), tick=False) as clock:
        sign_in(client, "helpdesk", password, next=ADMIN_URL)
        secret = client.get(TOTP_ACTIVATE_URL).context["form"].secret
        assert client.post(TOTP_ACTIVATE_URL, {"code": totp_code(secret)}).status_code == 302

        # Enrolled, but this session signed in with the password alone: step up with a code.
        step_up = client.get(ADMIN_URL)
        assert step_up.status_code == HTTPStatus.FOUND
        assert step_up["Location"] == f"{MFA_REAUTHENTICATE_URL}?next=%2Fadmin%2F"
        deeper = client.get(ADMIN_URL + "accounts/user/")
        assert deeper["Location"].startswith(MFA_REAUTHENTICATE_URL)
        clock.shift(30)  # the next code (the activation's is spent)
        with_code = client.post(step_up["Location"], {"code": totp_code(secret)})
        assert with_code.status_code == HTTPStatus.FOUND
        assert with_code["Location"] == ADMIN_URL
        assert client.get(ADMIN_URL).status_code == HTTPStatus.OK


def test_staff_signing_in_with_password_and_code_reach_the_admin(staff, password):
    secret = enable_totp(staff)
    client = Client()
    response = sign_in_with_totp(client, "helpdesk", password, secret, next=ADMIN_URL)
    assert response["Location"] == ADMIN_URL
    assert client.get(ADMIN_URL).status_code == HTTPStatus.OK


def test_a_wrong_step_up_code_keeps_the_admin_closed(staff, password):
    enable_totp(staff)
    client = Client()
    sign_in(client, "helpdesk", password)  # stops at the sign-in's second step
    assert not client.session.get("_auth_user_id")
    client.force_login(staff)  # a password-only session (as Django's own login would make)
    location = client.get(ADMIN_URL)["Location"]
    assert location.startswith(MFA_REAUTHENTICATE_URL)
    assert client.post(location, {"code": "000000"}).status_code == HTTPStatus.OK
    assert client.get(ADMIN_URL)["Location"].startswith(MFA_REAUTHENTICATE_URL)


def test_superusers_too(admin_user, password):
    client = Client()
    client.force_login(admin_user)
    assert client.get(ADMIN_URL)["Location"].startswith(ENROL_URL)
    secret = enable_totp(admin_user)
    client = Client()
    sign_in(client, "root", password)
    client.post(MFA_AUTHENTICATE_URL, {"code": totp_code(secret)})
    assert client.get(ADMIN_URL).status_code == HTTPStatus.OK


def test_admin_logout_is_never_blocked(staff):
    client = Client()
    client.force_login(staff)
    response = client.post("/admin/logout/")
    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"] == "/"  # LOGOUT_REDIRECT_URL, not the enrol page
    assert not client.session.get("_auth_user_id")


def test_the_enrol_page_lets_others_continue_and_only_to_this_site(staff, password):
    client = Client()
    client.force_login(staff)
    page = client.get(ENROL_URL, {"next": "/account/apps/"}).content.decode()
    assert 'href="/account/apps/"' in page
    offsite = client.get(ENROL_URL, {"next": "https://evil.example/"}).content.decode()
    assert "evil.example" not in offsite
    # Once enrolled, the page sends them on.
    enable_totp(staff)
    assert client.get(ENROL_URL, {"next": "/account/apps/"})["Location"] == "/account/apps/"
