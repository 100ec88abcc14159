"""prompt, max_age and id_token_hint (OIDC Core §3.1.2.1, §3.1.2.3, §3.1.2.6)."""

from __future__ import annotations

import time
from http import HTTPStatus
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth import get_user_model

from oauth_clients.keys import generate_rsa_private_key_pem
from oauth_clients.models import Grant
from oauth_clients.oidc.consent import grant_consent
from tests.oidc.authorize_helpers import (
    AUTHORIZE_URL,
    authorization_params,
    issuer,
    redirect_query,
)
from tests.oidc.conftest import SPA_REDIRECT_URI, WEB_REDIRECT_URI


def age_session(client, seconds: int) -> int:
    """Pretend this session signed in `seconds` ago; returns that unix time."""
    session = client.session
    session["idp_auth_time"] = int(time.time()) - seconds
    session.save()
    return session["idp_auth_time"]


def next_url(response) -> str:
    assert response.status_code == HTTPStatus.FOUND, response.status_code
    return parse_qs(urlsplit(response["Location"]).query)["next"][0]


@pytest.fixture
def bob(db):
    return get_user_model().objects.create_user("bob", "bob@example.com", "bob password 12345")


# --------------------------------------------------------------------------- prompt=none


@pytest.mark.spec("OpenID Connect Core 1.0", "3.1.2.6")
def test_prompt_none_with_session_and_consent_issues_code_silently(client, user, spa_client):
    grant_consent(user=user, client=spa_client, scopes=["openid", "profile", "email"])
    client.force_login(user)
    params = authorization_params(spa_client, prompt="none")
    query = redirect_query(client.get(AUTHORIZE_URL, params), SPA_REDIRECT_URI)
    assert query["code"]
    assert query["state"] == params["state"]
    assert query["iss"] == issuer()


@pytest.mark.spec("OpenID Connect Core 1.0", "3.1.2.6")
def test_prompt_none_for_trusted_client_issues_code(client, user, web_client):
    client.force_login(user)
    query = redirect_query(
        client.get(AUTHORIZE_URL, authorization_params(web_client, prompt="none")),
        WEB_REDIRECT_URI,
    )
    assert query["code"]


@pytest.mark.spec("OpenID Connect Core 1.0", "3.1.2.6")
@pytest.mark.parametrize("method", ["get", "post"])
def test_prompt_none_anonymous_answers_login_required(client, web_client, method):
    params = authorization_params(web_client, prompt="none")
    error = redirect_query(getattr(client, method)(AUTHORIZE_URL, params), WEB_REDIRECT_URI)
    assert error["error"] == "login_required"
    assert error["state"] == params["state"]
    assert error["iss"] == issuer()
    assert "code" not in error


@pytest.mark.spec("OpenID Connect Core 1.0", "3.1.2.6")
def test_prompt_none_without_consent_answers_consent_required(client, user, spa_client):
    client.force_login(user)
    params = authorization_params(spa_client, prompt="none")
    error = redirect_query(client.get(AUTHORIZE_URL, params), SPA_REDIRECT_URI)
    assert error["error"] == "consent_required"
    assert error["state"] == params["state"]
    assert error["iss"] == issuer()
    assert not Grant.objects.exists()


@pytest.mark.spec("OpenID Connect Core 1.0", "3.1.2.6")
def test_prompt_none_with_narrower_consent_answers_consent_required(client, user, spa_client):
    grant_consent(user=user, client=spa_client, scopes=["openid"])
    client.force_login(user)
    params = authorization_params(spa_client, prompt="none", scope="openid")
    assert redirect_query(client.get(AUTHORIZE_URL, params), SPA_REDIRECT_URI)["code"]
    params = authorization_params(spa_client, prompt="none", scope="openid email")
    error = redirect_query(client.get(AUTHORIZE_URL, params), SPA_REDIRECT_URI)
    assert error["error"] == "consent_required"


@pytest.mark.spec("OpenID Connect Core 1.0", "3.1.2.1")
def test_prompt_none_with_exceeded_max_age_answers_login_required(client, user, web_client):
    client.force_login(user)
    age_session(client, 600)
    ok = authorization_params(web_client, prompt="none", max_age="3600")
    assert redirect_query(client.get(AUTHORIZE_URL, ok), WEB_REDIRECT_URI)["code"]
    params = authorization_params(web_client, prompt="none", max_age="60")
    error = redirect_query(client.get(AUTHORIZE_URL, params), WEB_REDIRECT_URI)
    assert error["error"] == "login_required"


@pytest.mark.spec("OpenID Connect Core 1.0", "3.1.2.1")
def test_prompt_none_combined_with_another_value_is_invalid_request(client, user, web_client):
    client.force_login(user)
    params = authorization_params(web_client, prompt="none login")
    error = redirect_query(client.get(AUTHORIZE_URL, params), WEB_REDIRECT_URI)
    assert error["error"] == "invalid_request"


@pytest.mark.spec("OpenID Connect Core 1.0", "3.1.2.6")
def test_prompt_none_with_unregistered_redirect_uri_is_not_redirected(client, web_client):
    params = authorization_params(
        web_client, prompt="none", redirect_uri="https://evil.example.com/cb"
    )
    response = client.get(AUTHORIZE_URL, params)
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert not response.has_header("Location")


# --------------------------------------------------------------------------- prompt=login, max_age


def reauthenticate(client, response, password: str):
    """Follow our redirect to allauth's re-authentication and enter the password."""
    assert response.status_code == HTTPStatus.FOUND
    location = response["Location"]
    assert urlsplit(location).path == "/accounts/reauthenticate/", location
    page = client.get(location)
    assert page.status_code == HTTPStatus.OK
    done = client.post(location, {"password": password})
    assert done.status_code == HTTPStatus.FOUND, done.content[:300]
    return done["Location"]


@pytest.mark.spec("OpenID Connect Core 1.0", "3.1.2.1")
def test_prompt_login_makes_the_user_reenter_the_password_then_continues(
    client, user, password, web_client
):
    client.force_login(user)
    signed_in_at = age_session(client, 1800)
    params = authorization_params(web_client, prompt="login")
    response = client.get(AUTHORIZE_URL, params)
    continue_to = reauthenticate(client, response, password)
    assert "prompt" not in parse_qs(urlsplit(continue_to).query)  # no loop back to the password
    query = redirect_query(client.get(continue_to), WEB_REDIRECT_URI)
    assert query["code"]
    assert query["state"] == params["state"]
    grant = Grant.objects.get()
    # OIDC Core §2: auth_time is the re-authentication, not the original sign-in.
    assert int(grant.auth_time.timestamp()) >= int(time.time()) - 5 > signed_in_at


@pytest.mark.spec("OpenID Connect Core 1.0", "3.1.2.1")
def test_prompt_login_with_wrong_password_issues_nothing(client, user, web_client):
    client.force_login(user)
    response = client.get(AUTHORIZE_URL, authorization_params(web_client, prompt="login"))
    location = response["Location"]
    failed = client.post(location, {"password": "not the password"})
    assert failed.status_code == HTTPStatus.OK  # the form again, with an error
    assert not Grant.objects.exists()


@pytest.mark.spec("OpenID Connect Core 1.0", "3.1.2.1")
def test_prompt_login_for_anonymous_user_goes_to_sign_in_once(client, web_client):
    response = client.get(AUTHORIZE_URL, authorization_params(web_client, prompt="login"))
    assert urlsplit(response["Location"]).path == "/accounts/login/"
    assert "prompt=login" not in next_url(response)


@pytest.mark.spec("OpenID Connect Core 1.0", "3.1.2.1")
def test_fresh_session_within_max_age_issues_code(client, user, web_client):
    client.force_login(user)
    age_session(client, 30)
    params = authorization_params(web_client, max_age="300")
    assert redirect_query(client.get(AUTHORIZE_URL, params), WEB_REDIRECT_URI)["code"]


@pytest.mark.spec("OpenID Connect Core 1.0", "3.1.2.1")
def test_exceeded_max_age_makes_the_user_reenter_the_password(client, user, password, web_client):
    client.force_login(user)
    age_session(client, 3600)
    params = authorization_params(web_client, max_age="300")
    continue_to = reauthenticate(client, client.get(AUTHORIZE_URL, params), password)
    query = redirect_query(client.get(continue_to), WEB_REDIRECT_URI)
    assert query["code"]
    grant = Grant.objects.get()
    assert time.time() - grant.auth_time.timestamp() < 300


# --------------------------------------------------------------------------- prompt=consent


@pytest.mark.spec("OpenID Connect Core 1.0", "3.1.2.1")
def test_prompt_consent_shows_the_screen_despite_remembered_consent(client, user, spa_client):
    grant_consent(user=user, client=spa_client, scopes=["openid", "profile", "email"])
    client.force_login(user)
    assert redirect_query(
        client.get(AUTHORIZE_URL, authorization_params(spa_client)), SPA_REDIRECT_URI
    )["code"]
    response = client.get(AUTHORIZE_URL, authorization_params(spa_client, prompt="consent"))
    assert response.status_code == HTTPStatus.OK
    assert b'name="allow"' in response.content


# --------------------------------------------------------------------------- id_token_hint


@pytest.mark.spec("OpenID Connect Core 1.0", "3.1.2.1")
def test_id_token_hint_of_the_signed_in_user_is_accepted(client, user, web_client, issue_tokens):
    hint = issue_tokens(web_client)["id_token"]
    client.force_login(user)
    params = authorization_params(web_client, id_token_hint=hint, prompt="none")
    assert redirect_query(client.get(AUTHORIZE_URL, params), WEB_REDIRECT_URI)["code"]


@pytest.mark.spec("OpenID Connect Core 1.0", "3.1.2.1")
@pytest.mark.parametrize("prompt", ["none", None])
def test_id_token_hint_of_another_user_answers_login_required(
    client, user, bob, web_client, issue_tokens, prompt
):
    hint = issue_tokens(web_client, as_user=bob)["id_token"]
    client.force_login(user)
    params = authorization_params(web_client, id_token_hint=hint, prompt=prompt)
    error = redirect_query(client.get(AUTHORIZE_URL, params), WEB_REDIRECT_URI)
    assert error["error"] == "login_required"
    assert error["state"] == params["state"]
    assert error["iss"] == issuer()


@pytest.mark.spec("OpenID Connect Core 1.0", "3.1.2.1")
@pytest.mark.parametrize(
    "hint",
    ["garbage", "a.b.c", "eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0.", "x" * 5000],
    ids=["garbage", "three-parts", "alg-none", "long"],
)
def test_unverifiable_id_token_hint_answers_login_required(client, user, web_client, hint):
    client.force_login(user)
    params = authorization_params(web_client, id_token_hint=hint)
    assert redirect_query(client.get(AUTHORIZE_URL, params), WEB_REDIRECT_URI)["error"] == (
        "login_required"
    )


@pytest.mark.spec("OpenID Connect Core 1.0", "3.1.2.1")
def test_id_token_hint_signed_with_a_rotated_key_is_still_accepted(
    client, user, web_client, issue_tokens, settings
):
    hint = issue_tokens(web_client)["id_token"]
    old_key = settings.OAUTH2_PROVIDER["OIDC_RSA_PRIVATE_KEY"]
    settings.OAUTH2_PROVIDER = {
        **settings.OAUTH2_PROVIDER,
        "OIDC_RSA_PRIVATE_KEY": generate_rsa_private_key_pem(),
        "OIDC_RSA_PRIVATE_KEYS_INACTIVE": [old_key],
    }
    client.force_login(user)
    params = authorization_params(web_client, id_token_hint=hint, prompt="none")
    assert redirect_query(client.get(AUTHORIZE_URL, params), WEB_REDIRECT_URI)["code"]
    # Once the old key is no longer published, the hint cannot be verified.
    settings.OAUTH2_PROVIDER = {**settings.OAUTH2_PROVIDER, "OIDC_RSA_PRIVATE_KEYS_INACTIVE": []}
    params = authorization_params(web_client, id_token_hint=hint, prompt="none")
    assert redirect_query(client.get(AUTHORIZE_URL, params), WEB_REDIRECT_URI)["error"] == (
        "login_required"
    )
