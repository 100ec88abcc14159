"""Acceptance: someone who exists only in the company directory (a real slapd)
signs in to an OIDC app in Debian's chromium, and the app receives their directory attributes
and groups; disabled in the directory, the sync ends their IdP session and the app hears a
back-channel logout."""

from __future__ import annotations

import re
import secrets
from io import StringIO

import pytest
from authlib.integrations.requests_client import OAuth2Session
from django.contrib.auth import get_user_model
from django.core.management import call_command

from oauth_clients import services as client_services
from oauth_clients.models import BackchannelDelivery
from tests.browser.pages import APP_REDIRECT_PATH, redeem_and_verify
from tests.directory.conftest import add_person, configure, lock_person
from tests.oidc.backchannel_helpers import (
    IMMEDIATE_TASKS,
    Receiver,
    register_app,
    verify_logout_token,
)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    # Authlib's OIDC claim rules still live on its deprecated `authlib.jose`.
    pytest.mark.filterwarnings("ignore:authlib.jose module is deprecated"),
]


@pytest.fixture
def receiver():
    receiver = Receiver()
    yield receiver
    receiver.close()


def test_a_directory_person_signs_in_to_an_app_and_is_signed_out_when_disabled(
    live_server, settings, slapd, browser_page, admin_user, receiver
):
    site = live_server.url
    settings.IDP_ISSUER = site
    settings.OAUTH2_PROVIDER = {**settings.OAUTH2_PROVIDER, "OIDC_ISS_ENDPOINT": site}
    settings.TASKS = IMMEDIATE_TASKS
    configure(settings, slapd)
    uid = f"ivy{secrets.token_hex(3)}"
    password = "ivy's directory password"
    add_person(slapd, uid, password, "finance-team", employeeNumber="E-2002", title="Auditor")
    app = register_app(
        "Payroll",
        receiver,
        redirect_uris=f"{site}{APP_REDIRECT_PATH}",
        allowed_scopes="openid profile email groups",
    )
    client_services.set_claim_mapping(
        client=app,
        actor=admin_user,
        claim_attributes={"employee_number": "employee_id", "title": "job_title"},
    )

    session = OAuth2Session(
        app.client_id,
        app.test_secret,
        scope="openid profile email groups",
        redirect_uri=f"{site}{APP_REDIRECT_PATH}",
        code_challenge_method="S256",
    )
    verifier = secrets.token_urlsafe(48)
    url, _state = session.create_authorization_url(
        f"{site}/o/authorize/", code_verifier=verifier, nonce=secrets.token_urlsafe(16)
    )
    page = browser_page
    page.goto(url)
    page.locator("#id_login").fill(uid)
    page.locator("#id_password").fill(password)
    page.locator("#id_password").press("Enter")
    page.wait_for_url(re.compile(re.escape(site + APP_REDIRECT_PATH) + r"\?"))
    claims = redeem_and_verify(site, session, page.url, verifier)
    person = get_user_model().objects.get(username=uid)
    assert claims["sub"] == str(person.pk)
    assert (claims["given_name"], claims["family_name"]) == (uid.capitalize(), "Tester")
    assert claims["email"] == f"{uid}@example.com"
    assert (claims["employee_number"], claims["title"]) == ("E-2002", "Auditor")
    # finance-team sits in finance (in everyone) and in auditors.
    assert sorted(claims["groups"]) == ["auditors", "everyone", "finance", "finance-team"]

    lock_person(slapd, uid)
    call_command("ldap_sync", stdout=StringIO())

    (received,) = receiver.wait_for(1)
    _header, logout = verify_logout_token(received.logout_token, app)
    assert logout["sub"] == str(person.pk)
    assert logout["sid"] == claims["sid"]
    assert BackchannelDelivery.objects.get().client_id == app.pk
    # The IdP session in the browser is over.
    page.goto(f"{site}/account/")
    assert "/accounts/login/" in page.url
