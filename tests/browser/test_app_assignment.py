"""Acceptance: an app assigned to a group, in Debian's chromium with a real OIDC client.

An administrator creates a group in the admin (with a member), assigns the app to it on the
app's access page, restricts the app to assigned people and defines a role granted to the
group. The member signs in to the app through Authlib (authorization URL with PKCE and nonce,
code exchange, ID token verified against JWKS) and gets the role; a non-member sees the
no-access page, and the app receives no code.
"""

from __future__ import annotations

import re
import secrets
from urllib.parse import parse_qs, urlsplit

import pytest
from authlib.integrations.requests_client import OAuth2Session
from django.contrib.auth import get_user_model

from oauth_clients.models import Client, Grant
from tests.browser.pages import APP_REDIRECT_PATH, redeem_and_verify, sign_in
from tests.conftest import with_password
from tests.oidc.conftest import WEB_SECRET, make_client

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    # Authlib's OIDC claim rules still live on its deprecated `authlib.jose`.
    pytest.mark.filterwarnings("ignore:authlib.jose module is deprecated"),
]


@pytest.fixture
def site(live_server, settings) -> str:
    """The live server is the issuer (discovery, tokens and `iss` all name it)."""
    settings.IDP_ISSUER = live_server.url
    settings.OAUTH2_PROVIDER = {**settings.OAUTH2_PROVIDER, "OIDC_ISS_ENDPOINT": live_server.url}
    return live_server.url


def submit(page, action: str) -> None:
    """Submit the access page's form for `action` and wait for the page it redirects to."""
    page.locator(f"form:has(input[name=action][value={action}]) [type=submit]").first.click()
    page.wait_for_load_state()


def relying_party(site: str, client: Client) -> tuple[OAuth2Session, str, str]:
    """Authlib's session for the app and a fresh authorization URL (PKCE S256, nonce)."""
    session = OAuth2Session(
        client.client_id,
        WEB_SECRET,
        scope="openid profile",
        redirect_uri=f"{site}{APP_REDIRECT_PATH}",
        code_challenge_method="S256",
    )
    verifier = secrets.token_urlsafe(48)
    nonce = secrets.token_urlsafe(16)
    url, _state = session.create_authorization_url(
        f"{site}/o/authorize/", code_verifier=verifier, nonce=nonce
    )
    return session, url, verifier


def test_an_admin_assigns_an_app_to_a_group_and_only_its_members_get_in(
    site, browser_page, chromium_browser, admin_user, password, password_hash
):
    people = get_user_model().objects
    member = with_password(people.create_user("bob", "bob@example.com", None), password_hash)
    outsider = with_password(people.create_user("eve", "eve@example.com", None), password_hash)
    wiki = make_client(
        name="Wiki",
        client_id="wiki",
        secret=WEB_SECRET,
        redirect_uris=f"{site}{APP_REDIRECT_PATH}",
        grant_types=[Client.GRANT_AUTHORIZATION_CODE, "refresh_token"],
        allowed_scopes="openid profile email",
        is_trusted=True,
        owner_contact="wiki-team@example.com",
    )

    # The administrator: a group with bob in it, the app assigned to it, a role for it.
    admin = browser_page
    sign_in(admin, site, admin_user.username, password, next_url="/admin/")
    admin.goto(f"{site}/admin/auth/group/add/")
    admin.locator("#id_name").fill("wiki-editors")
    admin.locator("#id_add_members").fill("bob")
    admin.locator("input[name=_save]").click()
    admin.wait_for_load_state()
    assert member.groups.filter(name="wiki-editors").exists()

    admin.goto(f"{site}/admin/oauth_clients/client/{wiki.pk}/access/")
    admin.locator("#id_assign-group").select_option(label="wiki-editors")
    submit(admin, "assign")
    admin.locator("input[name='policy-access_policy'][value=assigned]").check()
    submit(admin, "policy")
    admin.locator("#id_role-name").fill("editor")
    submit(admin, "role")
    admin.locator("#id_grant-role").select_option(label="editor")
    admin.locator("#id_grant-group").select_option(label="wiki-editors")
    submit(admin, "grant")
    wiki.refresh_from_db()
    assert wiki.access_policy == Client.AccessPolicy.ASSIGNED

    # The member signs in to the app through the relying party's library and gets the role.
    context = chromium_browser.new_context()
    page = context.new_page()
    page.set_default_timeout(15_000)
    session, url, verifier = relying_party(site, wiki)
    page.goto(url)
    page.locator("#id_login").fill("bob")
    page.locator("#id_password").fill(password)
    page.locator("#id_password").press("Enter")
    page.wait_for_url(re.compile(re.escape(site + APP_REDIRECT_PATH) + r"\?"))
    callback = page.url
    context.close()
    claims = redeem_and_verify(site, session, callback, verifier)
    assert claims["iss"] == site
    assert claims["sub"] == str(member.pk)
    assert claims["roles"] == ["editor"]

    # A non-member is told they have no access, and whom to ask; the app gets no code.
    context = chromium_browser.new_context()
    page = context.new_page()
    page.set_default_timeout(15_000)
    _session, url, _verifier = relying_party(site, wiki)
    page.goto(url)
    page.locator("#id_login").fill("eve")
    page.locator("#id_password").fill(password)
    page.locator("#id_password").press("Enter")
    page.wait_for_load_state()
    heading = page.get_by_role("heading", level=1)
    assert heading.inner_text() == "You don't have access to Wiki"
    assert page.locator("a[href='mailto:wiki-team@example.com']").count() == 1
    assert page.locator("body[data-house-layout]").count() == 1
    assert APP_REDIRECT_PATH not in page.url
    assert not Grant.objects.filter(user=outsider).exists()

    # Going back is the person's choice: only then does the app hear access_denied.
    page.get_by_role("button", name="Back to Wiki").click()
    page.wait_for_url(re.compile(re.escape(site + APP_REDIRECT_PATH) + r"\?"))
    query = parse_qs(urlsplit(page.url).query)
    assert query["error"] == ["access_denied"]
    assert "code" not in query
    context.close()
    assert not Grant.objects.filter(user=outsider).exists()
