"""SAML 2.0 single sign-on in Debian's chromium, against a real SAML SP (pysaml2's client).

The SP (tests/browser/saml_sp.py) runs on its own loopback port with its own key, reads the
IdP's metadata from the live server's `/saml/metadata/` and validates every Response against
it; the IdP registers it from its metadata through `register_saml_app`, with an attribute
mapping and an access policy ("assigned", to a group alice is in). In the browser:

- SP-initiated: the SP's protected page → a signed AuthnRequest (HTTP-Redirect) → the real
  sign-in page → the Response posted to the SP's ACS → the SP shows the NameID and the mapped
  attributes;
- IdP-initiated: the employee's launcher (`/account/my-apps/`) → the app → signed in at the SP;
- a person the app is not assigned to gets the no-access page, and the SP receives nothing;
- single logout started at the SP (a signed LogoutRequest over HTTP-Redirect) ends the IdP
  session, an OIDC app of the same session receives its back-channel logout, and the SP gets
  a LogoutResponse with Success.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from django.contrib.auth import get_user_model
from saml2 import samlp

from accounts import services as account_services
from accounts.models import AuditEvent
from oauth_clients import services
from oauth_clients.models import Client
from tests.browser.saml_sp import ServiceProvider
from tests.browser.test_oidc_browser import pkce
from tests.conftest import with_password
from tests.oidc.backchannel_helpers import (
    IMMEDIATE_TASKS,
    Receiver,
    assert_logout_token_for_session,
    register_app,
)
from tests.oidc.conftest import basic_auth

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

APP_NAME = "Team wiki (SAML)"
ATTRIBUTE_NAMES = {"email": "mail", "given_name": "givenName", "family_name": "sn"}
GROUPS_ATTRIBUTE = "memberOf"


@pytest.fixture
def provider(live_server, settings) -> str:
    """The live server is the issuer: the SAML entity ID and endpoints follow it."""
    settings.IDP_ISSUER = live_server.url
    settings.OAUTH2_PROVIDER = {**settings.OAUTH2_PROVIDER, "OIDC_ISS_ENDPOINT": live_server.url}
    return live_server.url


@pytest.fixture
def people(db, password_hash, admin_user):
    """alice is in `engineering`, the group the app is assigned to; bob is in no group."""
    users = get_user_model().objects
    alice = users.create_user("alice", "alice@example.com", first_name="Alice", last_name="Liddell")
    bob = users.create_user("bob", "bob@example.com", first_name="Bob", last_name="Builder")
    alice, bob = with_password(alice, password_hash), with_password(bob, password_hash)
    engineering = account_services.create_group(name="engineering", actor=admin_user)
    account_services.add_members(group=engineering, users=[alice], actor=admin_user)
    return {"alice": alice, "bob": bob, "group": engineering, "admin": admin_user}


@pytest.fixture
def service_provider(provider, tmp_path) -> Iterator[ServiceProvider]:
    sp = ServiceProvider(idp_metadata_url=f"{provider}/saml/metadata/", key_directory=tmp_path)
    yield sp
    sp.stop()


@pytest.fixture
def saml_app(service_provider, people) -> Client:
    """The SP registered from its own metadata, as an administrator would."""
    admin = people["admin"]
    client = services.register_saml_app(
        name=APP_NAME,
        metadata_xml=service_provider.metadata_xml(),
        actor=admin,
        attribute_names={**ATTRIBUTE_NAMES, "groups": GROUPS_ATTRIBUTE},
        allowed_scopes=("openid", "profile", "email", "groups"),
    )
    services.assign(client=client, group=people["group"], actor=admin)
    services.set_access_policy(client=client, policy="assigned", actor=admin)
    return client


def sign_in_on_the_login_page(page, login: str, password: str) -> None:
    page.wait_for_url("**/accounts/login/**")
    page.get_by_label("Email or username").fill(login)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in", exact=True).click()


def attributes_shown(page) -> dict[str, str]:
    shown = {}
    for item in page.locator("#attributes li").all():
        name = item.get_attribute("data-attribute") or ""
        shown[name] = item.inner_text().split(": ", 1)[1]
    return shown


@pytest.mark.spec("SAML 2.0 Profiles", "4.1")
@pytest.mark.spec("SAML 2.0 Bindings", "3.4")
@pytest.mark.spec("SAML 2.0 Bindings", "3.5")
def test_sp_initiated_sign_in_reaches_the_sp_with_the_mapped_attributes(
    browser_page, service_provider, saml_app, people, password
):
    page = browser_page
    sp = service_provider

    visited: list[str] = []
    page.on("request", lambda request: visited.append(request.url))

    page.goto(sp.protected_url)
    sign_in_on_the_login_page(page, "alice", password)

    page.wait_for_url(sp.protected_url)
    assert page.locator("h1").inner_text() == "Signed in at the SP"
    assert page.locator("#name-id").inner_text() == "alice"
    assert attributes_shown(page) == {
        "mail": "alice@example.com",
        "givenName": "Alice",
        "sn": "Liddell",
        "name": "Alice Liddell",
        "preferred_username": "alice",
        GROUPS_ATTRIBUTE: "engineering",
    }
    # The SP signed its AuthnRequest (its metadata says so, and the registry kept it).
    assert saml_app.saml_sp.want_authn_requests_signed
    (sso,) = [url for url in visited if "/saml/sso/redirect/" in url]
    assert "SAMLRequest=" in sso
    assert "&Signature=" in sso
    (received,) = sp.received
    assert received.error == ""
    assert received.fields["RelayState"] == "/protected"
    assert not sp.outstanding, "the Response answered the SP's own request"
    event = AuditEvent.objects.get(type=AuditEvent.Type.SAML_ASSERTION_ISSUED)
    assert event.client_id == saml_app.pk
    assert event.extra["in_response_to"]


@pytest.mark.spec("SAML 2.0 Profiles", "4.1.5")
def test_idp_initiated_sign_in_from_the_launcher_arrives_signed_in_at_the_sp(
    browser_page, provider, service_provider, saml_app, people, password
):
    page = browser_page
    sp = service_provider
    page.goto(f"{provider}/account/my-apps/")
    sign_in_on_the_login_page(page, "alice", password)
    page.wait_for_url(f"{provider}/account/my-apps/")

    page.get_by_role("link", name=APP_NAME).click()

    page.wait_for_url(sp.protected_url)
    assert page.locator("#name-id").inner_text() == "alice"
    assert attributes_shown(page)["mail"] == "alice@example.com"
    assert attributes_shown(page)[GROUPS_ATTRIBUTE] == "engineering"
    (received,) = sp.received
    assert received.error == ""
    assert "RelayState" not in received.fields
    event = AuditEvent.objects.get(type=AuditEvent.Type.SAML_ASSERTION_ISSUED)
    assert event.extra["in_response_to"] == ""


def test_a_person_the_app_is_not_assigned_to_sees_no_access_and_the_sp_receives_nothing(
    browser_page, service_provider, saml_app, people, password
):
    page = browser_page
    sp = service_provider

    page.goto(sp.protected_url)
    sign_in_on_the_login_page(page, "bob", password)

    page.get_by_role("heading", name=f"You don't have access to {APP_NAME}").wait_for()
    assert "/saml/sso/continue/" in page.url
    page.wait_for_timeout(500)  # an auto-posting page would have left by now
    assert sp.received == []
    assert not AuditEvent.objects.filter(type=AuditEvent.Type.SAML_ASSERTION_ISSUED).exists()
    assert AuditEvent.objects.filter(client=saml_app, subject=people["bob"]).exists()


@pytest.fixture
def mail_app(settings, service_provider) -> Iterator[tuple[Client, Receiver]]:
    """An OIDC app with a back-channel logout endpoint on loopback; deliveries run at once. Its
    redirect URI is a page of the SP's server (a loopback address the browser can reach)."""
    settings.TASKS = IMMEDIATE_TASKS
    receiver = Receiver()
    app = register_app("Mail", receiver, redirect_uris=f"{service_provider.url}/mail/callback")
    yield app, receiver
    receiver.close()


def sign_in_to_oidc_app(page, provider: str, app: Client) -> dict:
    """The code flow in the browser's IdP session (a trusted app: no consent), then the app's
    code exchange."""
    redirect_uri = app.redirect_uris.split()[0]
    verifier, challenge = pkce()
    query = {
        "response_type": "code",
        "client_id": app.client_id,
        "redirect_uri": redirect_uri,
        "scope": "openid profile offline_access",
        "state": secrets.token_urlsafe(8),
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    page.goto(f"{provider}/o/authorize/?{urlencode(query)}")
    page.wait_for_url(f"{redirect_uri}?**")
    (code,) = parse_qs(urlsplit(page.url).query)["code"]
    response = requests.post(
        f"{provider}/o/token/",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": verifier,
        },
        headers={"Authorization": basic_auth(app.client_id, app.test_secret)},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


@pytest.mark.spec("SAML 2.0 Profiles", "4.4")
def test_single_logout_from_the_sp_ends_the_idp_session_and_tells_the_oidc_app(
    browser_page, provider, service_provider, saml_app, people, password, mail_app
):
    page = browser_page
    sp = service_provider
    mail, receiver = mail_app
    page.goto(sp.protected_url)
    sign_in_on_the_login_page(page, "alice", password)
    page.wait_for_url(sp.protected_url)
    tokens = sign_in_to_oidc_app(page, provider, mail)

    page.goto(f"{sp.url}/logout")

    page.wait_for_url(f"{sp.url}/slo?**")
    assert page.locator("h1").inner_text() == "Signed out at the SP"
    assert sp.logout_statuses == [samlp.STATUS_SUCCESS]
    (received,) = receiver.wait_for(1, timeout=10)
    assert_logout_token_for_session(received, mail, id_token=tokens["id_token"])
    page.goto(f"{provider}/account/")
    assert "/accounts/login/" in page.url, "the IdP session ended"
