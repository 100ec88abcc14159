"""Turning on a first second factor keeps `next`: the recovery codes page that follows
continues there (accounts/views.py ActivateTOTPWithNextView, AddWebAuthnWithNextView)."""

from __future__ import annotations

import re
from http import HTTPStatus
from urllib.parse import urlencode

import pytest
from django.contrib.auth import get_user_model
from django.test import Client, RequestFactory

from accounts.views import AddWebAuthnWithNextView
from tests.accounts.conftest import TOTP_ACTIVATE_URL, sign_in, totp_code

pytestmark = pytest.mark.django_db

ADMIN_URL = "/admin/"
ENROL_URL = "/account/two-step-required/"
RECOVERY_CODES_URL = "/accounts/2fa/recovery-codes/"
MFA_INDEX_URL = "/accounts/2fa/"
UNSAFE_NEXTS = ["https://evil.example/", "//evil.example/", "/\\evil.example/", "javascript:x"]


def _continue_href(html: str) -> str:
    return re.search(r'id="recovery_codes_continue" href="([^"]*)"', html).group(1)


def _turn_on_totp(client: Client, action: str):
    secret = client.get(action).context["form"].secret
    return client.post(action, {"code": totp_code(secret)})


@pytest.mark.staff_mfa
def test_staff_enrolling_from_the_admin_get_codes_that_continue_to_the_admin(password):
    get_user_model().objects.create_user(
        "helpdesk", "helpdesk@example.com", password, is_staff=True
    )
    client = Client()
    enrol = sign_in(client, "helpdesk", password, next=ADMIN_URL)["Location"]
    assert enrol == f"{ENROL_URL}?next=%2Fadmin%2F"
    html = client.get(enrol).content.decode()
    (action,) = re.findall(rf'href="({re.escape(TOTP_ACTIVATE_URL)}[^"]*)"', html)

    turned_on = _turn_on_totp(client, action)

    assert turned_on.status_code == HTTPStatus.FOUND
    assert turned_on["Location"] == f"{RECOVERY_CODES_URL}?next=%2Fadmin%2F"
    codes = client.get(turned_on["Location"])
    assert codes.status_code == HTTPStatus.OK
    assert _continue_href(codes.content.decode()) == ADMIN_URL


def test_a_path_on_this_site_is_kept_as_next(client, user, password):
    sign_in(client, "alice", password)
    turned_on = _turn_on_totp(client, f"{TOTP_ACTIVATE_URL}?next=%2Faccount%2Fapps%2F")
    assert turned_on["Location"] == f"{RECOVERY_CODES_URL}?next=%2Faccount%2Fapps%2F"
    html = client.get(turned_on["Location"]).content.decode()
    assert _continue_href(html) == "/account/apps/"


def test_without_next_the_codes_page_continues_to_the_two_step_page(client, user, password):
    sign_in(client, "alice", password)
    turned_on = _turn_on_totp(client, TOTP_ACTIVATE_URL)
    assert turned_on["Location"] == RECOVERY_CODES_URL
    assert _continue_href(client.get(RECOVERY_CODES_URL).content.decode()) == MFA_INDEX_URL


@pytest.mark.parametrize("unsafe", UNSAFE_NEXTS)
def test_an_unsafe_next_is_dropped(client, user, password, unsafe):
    sign_in(client, "alice", password)
    action = client.get(TOTP_ACTIVATE_URL, {"next": unsafe}).wsgi_request.get_full_path()

    turned_on = _turn_on_totp(client, action)

    assert turned_on.status_code == HTTPStatus.FOUND
    assert turned_on["Location"] == RECOVERY_CODES_URL
    html = client.get(turned_on["Location"]).content.decode()
    assert _continue_href(html) == MFA_INDEX_URL
    assert "evil.example" not in html


# --- The security key set-up: allauth's own success URL, with next when it is the codes page ----


def _webauthn_success_url(query: dict[str, str], *, generated_codes: bool) -> str:
    view = AddWebAuthnWithNextView()
    request = RequestFactory().post("/accounts/2fa/webauthn/add/", QUERY_STRING=urlencode(query))
    view.setup(request)
    view.did_generate_recovery_codes = generated_codes
    return view.get_success_url()


def test_a_first_security_key_goes_to_the_codes_page_with_next():
    url = _webauthn_success_url({"next": ADMIN_URL}, generated_codes=True)
    assert url == f"{RECOVERY_CODES_URL}?next=%2Fadmin%2F"


def test_another_security_key_goes_to_the_two_step_page_as_allauth_decides():
    # Not the codes page (the user had codes already): allauth's URL, next not added.
    assert _webauthn_success_url({"next": ADMIN_URL}, generated_codes=False) == MFA_INDEX_URL


@pytest.mark.parametrize("unsafe", UNSAFE_NEXTS)
def test_a_security_key_with_an_unsafe_next_goes_to_the_plain_codes_page(unsafe):
    assert _webauthn_success_url({"next": unsafe}, generated_codes=True) == RECOVERY_CODES_URL
