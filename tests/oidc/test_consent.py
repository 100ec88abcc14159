"""Consent screen: who asks and for what, Allow / Deny, remembered per user, client, scope set."""

from __future__ import annotations

from http import HTTPStatus

import pytest
from django.test import Client as HttpClient

from accounts.models import AuditEvent
from oauth_clients.models import Consent, Grant
from oauth_clients.oidc.consent import consent_covers, grant_consent, revoke_consent
from tests.oidc.authorize_helpers import (
    AUTHORIZE_URL,
    PageParser,
    assert_error_page,
    authorization_params,
    consent_form,
    issuer,
    redirect_query,
)
from tests.oidc.conftest import SPA_REDIRECT_URI


@pytest.fixture
def branded_spa(spa_client):
    spa_client.logo_uri = "https://spa.example.com/logo.png"
    spa_client.policy_uri = "https://spa.example.com/privacy"
    spa_client.save()
    return spa_client


@pytest.mark.spec("OpenID Connect Core 1.0", "3.1.2.4")
def test_consent_screen_names_the_client_and_scopes_in_plain_words(client, user, branded_spa):
    client.force_login(user)
    response = client.get(AUTHORIZE_URL, authorization_params(branded_spa))
    assert response.status_code == HTTPStatus.OK
    page = PageParser(response.content.decode())
    assert "Single Page App" in page.text("h1")[0]
    (logo,) = page.find_all("img", **{"class": "client-logo"})
    assert logo["src"] == "https://spa.example.com/logo.png"
    assert page.text("li") == [
        "Sign you in with your company account",
        "See your name and username",
        "See your email address",
    ]
    assert page.find_all("button", name="allow")
    assert page.find_all("button", name="deny")
    assert page.find_all("a", href="https://spa.example.com/privacy")
    assert not Grant.objects.exists()


@pytest.mark.spec("OpenID Connect Core 1.0", "3.1.2.4")
def test_allow_issues_code_remembers_consent_and_audits(client, user, spa_client):
    client.force_login(user)
    params = authorization_params(spa_client)
    action, fields = consent_form(client.get(AUTHORIZE_URL, params))
    query = redirect_query(client.post(action, {**fields, "allow": "allow"}), SPA_REDIRECT_URI)
    assert query["code"]
    assert query["state"] == params["state"]
    assert query["iss"] == issuer()
    consent = Consent.objects.get(user=user, client=spa_client)
    assert consent.scopes == "email openid profile"
    event = AuditEvent.objects.get(type=AuditEvent.Type.CONSENT_GRANTED)
    assert event.subject == user
    assert event.client == spa_client
    assert event.extra == {"scopes": "email openid profile"}


@pytest.mark.spec("OpenID Connect Core 1.0", "3.1.2.4")
def test_remembered_consent_skips_the_screen_for_same_or_fewer_scopes(client, user, spa_client):
    client.force_login(user)
    action, fields = consent_form(client.get(AUTHORIZE_URL, authorization_params(spa_client)))
    client.post(action, {**fields, "allow": "allow"})
    for scope in ("openid profile email", "openid email", "openid"):
        query = redirect_query(
            client.get(AUTHORIZE_URL, authorization_params(spa_client, scope=scope)),
            SPA_REDIRECT_URI,
        )
        assert query["code"], scope
    assert AuditEvent.objects.filter(type=AuditEvent.Type.CONSENT_GRANTED).count() == 1


@pytest.mark.spec("OpenID Connect Core 1.0", "3.1.2.4")
def test_a_wider_scope_set_asks_again_and_then_covers_both(client, user, spa_client):
    grant_consent(user=user, client=spa_client, scopes=["openid", "profile"])
    client.force_login(user)
    narrow = authorization_params(spa_client, scope="openid profile")
    assert redirect_query(client.get(AUTHORIZE_URL, narrow), SPA_REDIRECT_URI)["code"]
    wide = authorization_params(spa_client, scope="openid profile email offline_access")
    action, fields = consent_form(client.get(AUTHORIZE_URL, wide))
    assert redirect_query(client.post(action, {**fields, "allow": "allow"}), SPA_REDIRECT_URI)
    assert Consent.objects.get().scope_set() == {"openid", "profile", "email", "offline_access"}


@pytest.mark.spec("RFC 6749", "4.1.2.1")
@pytest.mark.spec("RFC 9207", "2")
def test_deny_answers_access_denied_with_state_and_iss(client, user, spa_client):
    client.force_login(user)
    params = authorization_params(spa_client)
    action, fields = consent_form(client.get(AUTHORIZE_URL, params))
    error = redirect_query(client.post(action, {**fields, "deny": "deny"}), SPA_REDIRECT_URI)
    assert error == {"error": "access_denied", "state": params["state"], "iss": issuer()}
    assert not Consent.objects.exists()
    assert not Grant.objects.exists()
    event = AuditEvent.objects.get(type=AuditEvent.Type.CONSENT_DENIED)
    assert event.subject == user
    assert event.client == spa_client
    # Nothing remembered: the next request asks again.
    assert client.get(AUTHORIZE_URL, authorization_params(spa_client)).status_code == 200


def test_trusted_client_skips_the_screen(client, user, web_client):
    client.force_login(user)
    response = client.get(AUTHORIZE_URL, authorization_params(web_client))
    assert response.status_code == HTTPStatus.FOUND
    assert not Consent.objects.exists()


def test_revoked_consent_asks_again_and_is_audited(client, user, spa_client):
    grant_consent(user=user, client=spa_client, scopes=["openid", "profile", "email"])
    assert consent_covers(user=user, client=spa_client, scopes=["openid"])
    assert revoke_consent(user=user, client=spa_client) is True
    client.force_login(user)
    assert client.get(AUTHORIZE_URL, authorization_params(spa_client)).status_code == 200
    assert AuditEvent.objects.filter(
        type=AuditEvent.Type.CONSENT_REVOKED, subject=user, client=spa_client
    ).exists()
    assert revoke_consent(user=user, client=spa_client) is False


def test_consent_of_one_user_does_not_cover_another(client, user, admin_user, spa_client):
    grant_consent(user=admin_user, client=spa_client, scopes=["openid", "profile", "email"])
    client.force_login(user)
    assert client.get(AUTHORIZE_URL, authorization_params(spa_client)).status_code == 200


def test_consent_form_needs_our_csrf_token(user, spa_client):
    browser = HttpClient(enforce_csrf_checks=True)
    browser.force_login(user)
    action, fields = consent_form(browser.get(AUTHORIZE_URL, authorization_params(spa_client)))
    assert "csrfmiddlewaretoken" in fields
    forged = browser.post(action, {"allow": "allow"})
    assert forged.status_code == HTTPStatus.FORBIDDEN
    assert not Grant.objects.exists()
    assert not Consent.objects.exists()
    genuine = browser.post(action, {**fields, "allow": "allow"})
    assert redirect_query(genuine, SPA_REDIRECT_URI)["code"]


def test_allow_with_a_tampered_redirect_uri_is_refused_without_redirect(client, user, spa_client):
    client.force_login(user)
    params = authorization_params(spa_client, redirect_uri="https://evil.example.com/cb")
    assert_error_page(client.post(AUTHORIZE_URL, {**params, "allow": "allow"}))
    assert_error_page(client.post(AUTHORIZE_URL, {**params, "deny": "deny"}))
    assert not Consent.objects.exists()
    assert not AuditEvent.objects.filter(type__startswith="consent.").exists()


def test_allow_posted_without_a_session_goes_to_sign_in_first(client, spa_client):
    params = authorization_params(spa_client)
    response = client.post(AUTHORIZE_URL, {**params, "allow": "allow"})
    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"].startswith("/accounts/login/")
    assert not Consent.objects.exists()


def test_consent_cannot_widen_scope_beyond_the_clients_allowed_scopes(client, user, spa_client):
    client.force_login(user)
    params = authorization_params(spa_client, scope="openid groups")
    error = redirect_query(
        client.post(AUTHORIZE_URL, {**params, "allow": "allow"}), SPA_REDIRECT_URI
    )
    assert error["error"] == "invalid_scope"
    assert not Consent.objects.exists()
