"""Connected apps: what each app may see and when it was used; "Remove access" revokes both the
consent and the tokens, and the app asks for permission again next time."""

from __future__ import annotations

from http import HTTPStatus

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from accounts.models import AuditEvent
from oauth_clients.models import Consent
from tests.accounts.conftest import (
    introspect_active,
    obtain_tokens,
    refresh_status,
    sign_in,
    userinfo_status,
)
from tests.oidc.authorize_helpers import AUTHORIZE_URL, authorization_params
from tests.oidc.conftest import make_client

pytestmark = pytest.mark.django_db

APPS_URL = "/account/apps/"


@pytest.fixture
def browser(user, password) -> Client:
    client = Client()
    sign_in(client, "alice", password)
    return client


@pytest.fixture
def wiki(db):
    """A trusted company app: no consent screen, so only its tokens connect it."""
    from oauth_clients.models import Client as OAuthClient

    return make_client(
        name="Company Wiki",
        client_id="company-wiki",
        secret="company-wiki-secret-" + "w" * 30,
        redirect_uris="https://wiki.example.com/callback",
        grant_types=[OAuthClient.GRANT_AUTHORIZATION_CODE, "refresh_token"],
        allowed_scopes="openid profile email",
        is_trusted=True,
    )


def test_apps_page_lists_consented_apps_and_apps_holding_tokens(browser, app, wiki):
    obtain_tokens(browser, app, scope="openid profile email")
    obtain_tokens(browser, wiki, scope="openid")

    page = browser.get(APPS_URL)
    assert page.status_code == HTTPStatus.OK
    html = page.content.decode()
    assert "Team Notes" in html
    assert "Company Wiki" in html
    assert "See your email address" in html, "scopes in plain words"
    assert "Company app: no permission asked" in html
    assert "Last used" in html
    apps = {entry.client.client_id: entry for entry in page.context["apps"]}
    assert apps["team-notes"].remembered_consent
    assert {s["name"] for s in apps["team-notes"].scopes} == {"openid", "profile", "email"}
    assert apps["team-notes"].last_used_at is not None
    assert apps["team-notes"].live_tokens == 2  # access + refresh
    assert not apps["company-wiki"].remembered_consent
    # The overview shows them too.
    overview = browser.get("/account/").content.decode()
    assert "Team Notes" in overview
    assert "Company Wiki" in overview


def test_remove_access_revokes_tokens_and_consent_and_asks_again(user, browser, app):
    tokens = obtain_tokens(browser, app)
    assert userinfo_status(tokens["access_token"]) == HTTPStatus.OK  # positive path
    # Remembered consent: a new sign-in to the app goes straight through.
    silent = browser.get(AUTHORIZE_URL, authorization_params(app, scope="openid profile"))
    assert silent.status_code == HTTPStatus.FOUND

    response = browser.post(f"/account/apps/{app.pk}/remove/")

    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"] == APPS_URL
    assert not Consent.objects.filter(user=user, client=app).exists()
    assert userinfo_status(tokens["access_token"]) == HTTPStatus.UNAUTHORIZED
    assert not introspect_active(app, tokens["access_token"])
    assert not introspect_active(app, tokens["refresh_token"])
    assert refresh_status(app, tokens["refresh_token"]) == HTTPStatus.BAD_REQUEST
    again = browser.get(AUTHORIZE_URL, authorization_params(app, scope="openid profile"))
    assert again.status_code == HTTPStatus.OK, "the consent screen again"
    assert "Team Notes" in again.content.decode()
    assert "Team Notes" not in browser.get(APPS_URL).content.decode()

    consent_row = AuditEvent.objects.get(type=AuditEvent.Type.CONSENT_REVOKED)
    assert (consent_row.actor, consent_row.subject, consent_row.client) == (user, user, app)
    tokens_row = AuditEvent.objects.get(type=AuditEvent.Type.TOKEN_REVOKED)
    assert (tokens_row.actor, tokens_row.subject, tokens_row.client) == (user, user, app)
    assert tokens_row.extra["reason"] == "user_removed_access"
    assert tokens_row.extra["refresh_tokens_revoked"] == 1


def test_removing_one_app_leaves_the_others_and_other_users(user, browser, app, wiki, password):
    app_tokens = obtain_tokens(browser, app)
    wiki_tokens = obtain_tokens(browser, wiki)
    get_user_model().objects.create_user("bob", "bob@example.com", password)
    bob = Client()
    sign_in(bob, "bob", password)
    bob_tokens = obtain_tokens(bob, app)

    browser.post(f"/account/apps/{wiki.pk}/remove/")

    assert userinfo_status(wiki_tokens["access_token"]) == HTTPStatus.UNAUTHORIZED
    assert userinfo_status(app_tokens["access_token"]) == HTTPStatus.OK
    assert userinfo_status(bob_tokens["access_token"]) == HTTPStatus.OK
    assert Consent.objects.filter(client=app).count() == 2


def test_remove_access_needs_a_post_and_a_real_app(browser, app):
    obtain_tokens(browser, app)
    assert browser.get(f"/account/apps/{app.pk}/remove/").status_code == 405
    assert browser.post("/account/apps/999999/remove/").status_code == HTTPStatus.NOT_FOUND
    assert browser.post("/account/apps/abc/remove/").status_code == HTTPStatus.NOT_FOUND
    assert Consent.objects.filter(client=app).exists()
    # An app the user never used: nothing to remove, nothing audited.
    other = make_client(name="Unused", client_id="unused", redirect_uris="https://u.example/cb")
    assert browser.post(f"/account/apps/{other.pk}/remove/").status_code == HTTPStatus.FOUND
    assert not AuditEvent.objects.filter(type=AuditEvent.Type.CONSENT_REVOKED).exists()


def test_connected_apps_need_a_session(client, app):
    assert client.get(APPS_URL)["Location"].startswith("/accounts/login/")
    response = client.post(f"/account/apps/{app.pk}/remove/")
    assert response["Location"].startswith("/accounts/login/")
