"""UserInfo endpoint (OIDC Core §5.3) with RFC 6750 bearer-token semantics: GET and POST,
401 invalid_token / 403 insufficient_scope, never a 500."""

from __future__ import annotations

import datetime as dt
from http import HTTPStatus
from urllib.parse import urlencode

import pytest
import time_machine
from django.urls import reverse

from oauth_clients.models import AccessToken, Client
from tests.oidc.conftest import FORM, basic_auth, post_form


@pytest.fixture
def userinfo_url() -> str:
    return reverse("oauth2_provider:user-info")


def bearer(token: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def assert_invalid_token(response) -> None:
    assert response.status_code == HTTPStatus.UNAUTHORIZED, response.content
    assert response["WWW-Authenticate"].startswith('Bearer error="invalid_token"')
    assert response.json()["error"] == "invalid_token"


@pytest.mark.spec("OIDC Core", "5.3.1")
def test_userinfo_by_get_with_header(client, user, web_client, issue_tokens, userinfo_url):
    tokens = issue_tokens(web_client, scope="openid profile email")
    response = client.get(userinfo_url, **bearer(tokens["access_token"]))
    assert response.status_code == HTTPStatus.OK, response.content
    assert response["Content-Type"] == "application/json"
    claims = response.json()
    assert claims["sub"] == str(user.pk)
    assert claims["preferred_username"] == "alice"
    assert claims["given_name"] == "Alice"
    assert claims["family_name"] == "Liddell"
    assert claims["email"] == "alice@example.com"
    assert "no-store" in response["Cache-Control"]


@pytest.mark.spec("OIDC Core", "5.3.2")
def test_userinfo_releases_only_the_granted_scopes(client, user, web_client, issue_tokens):
    tokens = issue_tokens(web_client, scope="openid")
    claims = client.get(reverse("oauth2_provider:user-info"), **bearer(tokens["access_token"]))
    assert claims.json() == {"sub": str(user.pk)}


@pytest.mark.spec("OIDC Core", "5.3.1")
def test_userinfo_by_post_with_header(client, user, web_client, issue_tokens, userinfo_url):
    tokens = issue_tokens(web_client)
    response = client.post(userinfo_url, **bearer(tokens["access_token"]))
    assert response.status_code == HTTPStatus.OK, response.content
    assert response.json()["sub"] == str(user.pk)


@pytest.mark.spec("RFC 6750", "2.2")
def test_userinfo_by_post_with_form_body(client, user, web_client, issue_tokens, userinfo_url):
    tokens = issue_tokens(web_client)
    response = post_form(client, userinfo_url, {"access_token": tokens["access_token"]})
    assert response.status_code == HTTPStatus.OK, response.content
    assert response.json()["sub"] == str(user.pk)


@pytest.mark.spec("RFC 9700", "4.3.2")
def test_token_in_query_string_is_refused(client, web_client, issue_tokens, userinfo_url):
    tokens = issue_tokens(web_client)
    response = client.get(userinfo_url + "?" + urlencode({"access_token": tokens["access_token"]}))
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json()["error"] == "invalid_request"


@pytest.mark.spec("RFC 6750", "2")
def test_token_in_two_places_is_refused(client, web_client, issue_tokens, userinfo_url):
    token = issue_tokens(web_client)["access_token"]
    response = client.post(
        userinfo_url, urlencode({"access_token": token}), content_type=FORM, **bearer(token)
    )
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json()["error"] == "invalid_request"


@pytest.mark.spec("RFC 6750", "3.1")
def test_missing_token_is_401_invalid_token(client, db, userinfo_url):
    assert_invalid_token(client.get(userinfo_url))
    assert_invalid_token(client.post(userinfo_url))


@pytest.mark.spec("RFC 6750", "3.1")
@pytest.mark.parametrize(
    "header",
    ["Bearer not-a-token", "Bearer", "Basic abc", "Bearer a b", "Bearer " + "x" * 5000],
)
def test_bad_token_is_401_invalid_token(client, db, userinfo_url, header):
    assert_invalid_token(client.get(userinfo_url, HTTP_AUTHORIZATION=header))


@pytest.mark.spec("RFC 6750", "3.1")
def test_expired_token_is_401_invalid_token(client, web_client, issue_tokens, userinfo_url):
    token = issue_tokens(web_client)["access_token"]
    assert client.get(userinfo_url, **bearer(token)).status_code == HTTPStatus.OK
    with time_machine.travel(dt.datetime.now(tz=dt.UTC) + dt.timedelta(seconds=601)):
        assert_invalid_token(client.get(userinfo_url, **bearer(token)))


@pytest.mark.spec("RFC 6750", "3.1")
def test_revoked_token_is_401_invalid_token(client, web_client, issue_tokens, userinfo_url, revoke):
    token = issue_tokens(web_client)["access_token"]
    assert client.get(userinfo_url, **bearer(token)).status_code == HTTPStatus.OK
    assert revoke(web_client, token).status_code == HTTPStatus.OK
    assert_invalid_token(client.get(userinfo_url, **bearer(token)))


@pytest.mark.spec("RFC 6750", "3.1")
def test_token_without_openid_is_403_insufficient_scope(
    client, web_client, issue_tokens, userinfo_url
):
    token = issue_tokens(web_client)["access_token"]
    AccessToken.objects.update(scope="profile email")
    response = client.get(userinfo_url, **bearer(token))
    assert response.status_code == HTTPStatus.FORBIDDEN
    assert response["WWW-Authenticate"].startswith('Bearer error="insufficient_scope"')
    assert response.json()["error"] == "insufficient_scope"


def test_deactivated_user_token_is_dead_at_once(client, user, web_client, issue_tokens):
    token = issue_tokens(web_client)["access_token"]
    url = reverse("oauth2_provider:user-info")
    assert client.get(url, **bearer(token)).status_code == HTTPStatus.OK
    user.is_active = False
    user.save(update_fields=["is_active"])
    assert_invalid_token(client.get(url, **bearer(token)))


def test_deactivated_client_token_is_dead_at_once(client, web_client, issue_tokens):
    token = issue_tokens(web_client)["access_token"]
    url = reverse("oauth2_provider:user-info")
    assert client.get(url, **bearer(token)).status_code == HTTPStatus.OK
    Client.objects.filter(pk=web_client.pk).update(is_active=False)
    assert_invalid_token(client.get(url, **bearer(token)))


@pytest.mark.parametrize("method", ["put", "delete", "patch"])
def test_other_methods_get_an_oauth_error(client, db, userinfo_url, method):
    response = getattr(client, method)(userinfo_url)
    assert response.status_code == HTTPStatus.METHOD_NOT_ALLOWED
    assert response.json()["error"] == "invalid_request"


@pytest.mark.parametrize("scope", ["openid profile", "openid profile email"])
def test_userinfo_query_count(
    client, web_client, issue_tokens, userinfo_url, django_assert_num_queries, scope
):
    token = issue_tokens(web_client, scope=scope)["access_token"]
    # One query: the token joined with its user and client, and for the email scope whether
    # the address is verified (an EXISTS in that same query, not a second round trip).
    with django_assert_num_queries(1):
        response = client.get(userinfo_url, **bearer(token))
    assert response.status_code == HTTPStatus.OK
    if "email" in scope:
        assert response.json()["email_verified"] is True


def test_email_verified_follows_the_address_the_user_has_now(
    client, web_client, issue_tokens, userinfo_url, user
):
    """OIDC Core §5.1: `email_verified` speaks of the `email` released, which is the user's
    current address; a changed, not yet confirmed address is released as unverified."""
    token = issue_tokens(web_client, scope="openid email")["access_token"]
    assert client.get(userinfo_url, **bearer(token)).json()["email_verified"] is True
    user.email = "new-address@example.com"
    user.save(update_fields=["email"])
    claims = client.get(userinfo_url, **bearer(token)).json()
    assert claims["email"] == "new-address@example.com"
    assert claims["email_verified"] is False


def test_a_token_without_a_client_is_no_token(client, web_client, issue_tokens, userinfo_url):
    token = issue_tokens(web_client)["access_token"]
    assert client.get(userinfo_url, **bearer(token)).status_code == HTTPStatus.OK
    AccessToken.objects.filter(application=web_client).update(application=None)
    response = client.get(userinfo_url, **bearer(token))
    assert response.status_code == HTTPStatus.UNAUTHORIZED
    assert 'error="invalid_token"' in response["WWW-Authenticate"]


@pytest.mark.spec("RFC 8707", "2")
def test_a_resource_restricted_token_is_checked_against_the_userinfo_uri(
    client, web_client, issue_tokens, userinfo_url
):
    """The audience check reads the request's absolute URI (kept on the slim oauthlib request
    the view builds)."""
    token = issue_tokens(web_client)["access_token"]
    AccessToken.objects.update(resource=["https://orders.example.com/api"])
    assert_invalid_token(client.get(userinfo_url, **bearer(token)))
    AccessToken.objects.update(resource=[f"http://testserver{userinfo_url}"])
    assert client.get(userinfo_url, **bearer(token)).status_code == HTTPStatus.OK


@pytest.mark.parametrize(
    "url_name",
    [
        "oauth2_provider:user-info",
        "oauth2_provider:introspect",
        "oauth2_provider:token",
        "oauth2_provider:revoke-token",
    ],
)
def test_back_channel_views_are_csrf_exempt_public_and_never_cached(
    client, web_client, issue_tokens, url_name
):
    """`back_channel_view` decorates once what `method_decorator` decorated per request."""
    from django.urls import resolve

    view = resolve(reverse(url_name)).func
    assert view.csrf_exempt is True
    assert view.login_required is False
    tokens = issue_tokens(web_client)
    token = tokens["access_token"]
    auth = basic_auth(web_client.client_id, web_client.test_secret)
    if url_name.endswith("user-info"):
        answers = [client.get(reverse(url_name), **bearer(token)), client.get(reverse(url_name))]
    elif url_name.endswith(":token"):
        grant = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
        answers = [
            post_form(client, reverse(url_name), grant, HTTP_AUTHORIZATION=auth),
            post_form(client, reverse(url_name), grant),
        ]
    else:
        answers = [
            post_form(client, reverse(url_name), {"token": token}, HTTP_AUTHORIZATION=auth),
            post_form(client, reverse(url_name), {"token": token}),
        ]
    assert [r.status_code for r in answers] == [HTTPStatus.OK, HTTPStatus.UNAUTHORIZED]
    for response in answers:
        directives = {d.strip() for d in response["Cache-Control"].split(",")}
        assert {"max-age=0", "no-cache", "no-store", "must-revalidate", "private"} <= directives
        assert response["Expires"]


@pytest.mark.parametrize(
    "existing",
    [
        {},
        {"Cache-Control": "no-store"},
        {"Cache-Control": "max-age=60, public"},
        {"Cache-Control": "no-store", "Pragma": "no-cache"},
        {"Expires": "0"},
    ],
)
def test_never_cache_headers_are_djangos(existing):
    """The shortcut writes what Django's `add_never_cache_headers` writes on a fresh response,
    and leaves a response with caching headers already to Django's merge."""
    from django.http import JsonResponse
    from django.utils.cache import add_never_cache_headers as djangos

    from oauth_clients.oidc.views.token import add_never_cache_headers

    with time_machine.travel(dt.datetime(2026, 11, 28, 12, 0, 0, 500000, tzinfo=dt.UTC)):
        ours, expected = JsonResponse({}, headers=existing), JsonResponse({}, headers=existing)
        add_never_cache_headers(ours)
        djangos(expected)
    assert dict(ours.headers) == dict(expected.headers)
