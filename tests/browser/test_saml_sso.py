"""SAML 2.0 single sign-on in Debian's chromium, against a real SAML SP (pysaml2's client).

The SP (tests/browser/saml_sp.py) runs on its own loopback port with its own key, reads the
IdP's metadata from the live server's `/saml/metadata/` and validates every Response against
it; the IdP registers it from its metadata through `register_saml_app`, with an attribute
mapping and an access policy ("assigned", to a group alice is in). In the browser:

- SP-initiated: the SP's protected page → a signed AuthnRequest (HTTP-Redirect) → the real
  sign-in page → the Response posted to the SP's ACS → the SP shows the NameID and the mapped
  attributes;
- IdP-initiated: the employee's launcher (`/account/my-apps/`) → the app → signed in at the SP;
- a person the app is not assigned to gets the no-access page, and the SP receives nothing.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.contrib.auth import get_user_model

from accounts import services as account_services
from accounts.models import AuditEvent
from oauth_clients import services
from oauth_clients.models import Client
from tests.browser.saml_sp import ServiceProvider
from tests.conftest import with_password

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
