"""Registry actions seen from the protocol side: apps registered, rotated, disabled and revoked
through our services and admin behave that way at the token, introspection, userinfo and
authorization endpoints (helpers B's and C's parts)."""

from __future__ import annotations

import datetime as dt
import json
import secrets
from http import HTTPStatus
from urllib.parse import parse_qs, urlsplit

import pytest
import time_machine
from django.core.cache import cache
from django.test import Client as HttpClient
from django.urls import reverse
from django.utils import timezone
from jwcrypto import jwk, jws, jwt

from accounts.models import AuditEvent
from oauth_clients import services
from oauth_clients.models import Client
from tests.clients.conftest import WEB_REDIRECT
from tests.oidc.conftest import basic_auth, pkce_pair, post_form

TOKEN_URL = "/o/token/"


@pytest.fixture
def machine(db, admin_user):
    """A machine-to-machine service registered through the service, with its plaintext secret."""
    return services.register_client(
        actor=admin_user, kind=Client.Kind.SERVICE, name="Batch", client_id="batch"
    )


@pytest.fixture
def resource_server(db, admin_user):
    client, secret = services.register_client(
        actor=admin_user,
        kind=Client.Kind.SERVICE,
        name="Orders API",
        client_id="orders-api",
        is_resource_server=True,
    )
    return client, secret


@pytest.fixture
def web_app(db, admin_user):
    """A registered server-side web app (not trusted: users see the consent screen)."""
    return services.register_client(
        actor=admin_user,
        kind=Client.Kind.WEB,
        name="Wiki",
        client_id="wiki",
        redirect_uris=[WEB_REDIRECT],
        scopes="openid profile email offline_access",
    )


def client_credentials(http: HttpClient, client_id: str, secret: str):
    return post_form(
        http,
        TOKEN_URL,
        {"grant_type": "client_credentials"},
        HTTP_AUTHORIZATION=basic_auth(client_id, secret),
    )


def assert_invalid_client(response) -> None:
    assert response.status_code == HTTPStatus.UNAUTHORIZED, response.content
    assert response.json()["error"] == "invalid_client"


def authorize_params(client: Client, challenge: str, state: str) -> dict[str, str]:
    return {
        "response_type": "code",
        "client_id": client.client_id,
        "redirect_uri": WEB_REDIRECT,
        "scope": "openid profile offline_access",
        "state": state,
        "nonce": secrets.token_urlsafe(8),
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }


def sign_in_and_get_tokens(http: HttpClient, user, client: Client, secret: str) -> dict:
    """Authorize (allowing consent when asked), exchange the code with the registered secret."""
    http.force_login(user)
    verifier, challenge = pkce_pair()
    state = secrets.token_urlsafe(8)
    params = authorize_params(client, challenge, state)
    response = http.get(reverse("oauth2_provider:authorize"), params)
    if response.status_code == HTTPStatus.OK:
        response = http.post(reverse("oauth2_provider:authorize"), {**params, "allow": "Allow"})
    assert response.status_code == HTTPStatus.FOUND, response.content[:500]
    query = parse_qs(urlsplit(response["Location"]).query)
    assert query["state"] == [state]
    token = post_form(
        http,
        TOKEN_URL,
        {
            "grant_type": "authorization_code",
            "code": query["code"][0],
            "redirect_uri": WEB_REDIRECT,
            "code_verifier": verifier,
        },
        HTTP_AUTHORIZATION=basic_auth(client.client_id, secret),
    )
    assert token.status_code == HTTPStatus.OK, token.content
    return token.json()


def introspect(http: HttpClient, caller: tuple[Client, str], token: str) -> dict:
    response = post_form(
        http,
        reverse("oauth2_provider:introspect"),
        {"token": token},
        HTTP_AUTHORIZATION=basic_auth(caller[0].client_id, caller[1]),
    )
    assert response.status_code == HTTPStatus.OK, response.content
    return response.json()


def userinfo(http: HttpClient, access_token: str):
    return HttpClient().get(
        reverse("oauth2_provider:user-info"), HTTP_AUTHORIZATION=f"Bearer {access_token}"
    )


# --- Secret rotation at the token endpoint


@pytest.mark.spec("RFC 6749", "2.3.1")
def test_rotation_without_grace_refuses_the_old_secret_at_once(client, machine, admin_user):
    app, old = machine
    assert client_credentials(client, "batch", old).status_code == HTTPStatus.OK

    new = services.rotate_client_secret(client=app, actor=admin_user)

    assert_invalid_client(client_credentials(client, "batch", old))
    assert client_credentials(client, "batch", new).status_code == HTTPStatus.OK


@pytest.mark.spec("RFC 6749", "2.3.1")
def test_rotation_with_grace_keeps_the_old_secret_until_the_grace_ends(client, machine, admin_user):
    app, old = machine
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        new = services.rotate_client_secret(client=app, actor=admin_user, grace_seconds=3600)
        assert client_credentials(client, "batch", old).status_code == HTTPStatus.OK
        assert client_credentials(client, "batch", new).status_code == HTTPStatus.OK
    with time_machine.travel(start + dt.timedelta(minutes=59), tick=False):
        assert client_credentials(client, "batch", old).status_code == HTTPStatus.OK
    with time_machine.travel(start + dt.timedelta(hours=1, seconds=1), tick=False):
        assert_invalid_client(client_credentials(client, "batch", old))
        assert client_credentials(client, "batch", new).status_code == HTTPStatus.OK


def test_rotation_through_the_admin_then_the_new_secret_works(client, machine, admin_user):
    app, old = machine
    admin = HttpClient()
    admin.force_login(admin_user)
    admin.post(
        reverse("admin:oauth_clients_client_rotate_secret", args=[app.pk]), {"grace_seconds": "0"}
    )
    page = admin.get(reverse("admin:oauth_clients_client_setup", args=[app.pk])).content.decode()
    new = page.split('<code id="client-secret">', 1)[1].split("</code>", 1)[0]
    assert client_credentials(client, "batch", new).status_code == HTTPStatus.OK
    assert_invalid_client(client_credentials(client, "batch", old))


# --- Disable: every token inactive at once, new sign-ins refused with a clear page


def test_disable_makes_tokens_inactive_and_refuses_new_authorizations(
    client, user, web_app, resource_server, machine, admin_user
):
    app, secret = web_app
    tokens = sign_in_and_get_tokens(HttpClient(), user, app, secret)
    assert introspect(client, resource_server, tokens["access_token"])["active"] is True
    assert introspect(client, resource_server, tokens["refresh_token"])["active"] is True
    assert userinfo(client, tokens["access_token"]).status_code == HTTPStatus.OK

    admin = HttpClient()
    admin.force_login(admin_user)
    confirm = admin.get(reverse("admin:oauth_clients_client_disable", args=[app.pk]))
    assert "stop working at once" in confirm.content.decode()
    admin.post(reverse("admin:oauth_clients_client_disable", args=[app.pk]))
    assert AuditEvent.objects.get(type=AuditEvent.Type.CLIENT_DISABLED).actor == admin_user

    assert introspect(client, resource_server, tokens["access_token"]) == {"active": False}
    assert introspect(client, resource_server, tokens["refresh_token"]) == {"active": False}
    assert userinfo(client, tokens["access_token"]).status_code == HTTPStatus.UNAUTHORIZED
    refreshed = post_form(
        client,
        TOKEN_URL,
        {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        HTTP_AUTHORIZATION=basic_auth(app.client_id, secret),
    )
    assert_invalid_client(refreshed)

    browser = HttpClient()
    browser.force_login(user)
    _verifier, challenge = pkce_pair()
    page = browser.get(reverse("oauth2_provider:authorize"), authorize_params(app, challenge, "s1"))
    assert page.status_code == HTTPStatus.BAD_REQUEST
    assert not page.has_header("Location")
    assert "disabled" in page.content.decode()

    # A disabled machine client gets no token either.
    machine_app, machine_secret = machine
    services.disable_client(client=machine_app, actor=admin_user)
    assert_invalid_client(client_credentials(client, "batch", machine_secret))

    # Enabled again: new sign-ins work, the revoked tokens stay dead.
    admin.post(reverse("admin:oauth_clients_client_enable", args=[app.pk]))
    fresh = sign_in_and_get_tokens(HttpClient(), user, app, secret)
    assert introspect(client, resource_server, fresh["access_token"])["active"] is True
    assert introspect(client, resource_server, tokens["access_token"]) == {"active": False}


def test_revoke_all_signs_everyone_out_and_asks_for_consent_again(
    client, user, web_app, resource_server, admin_user
):
    app, secret = web_app
    tokens = sign_in_and_get_tokens(HttpClient(), user, app, secret)
    browser = HttpClient()
    browser.force_login(user)
    _verifier, challenge = pkce_pair()
    params = authorize_params(app, challenge, "s2")
    # Consent is remembered: a second authorization redirects straight back.
    assert browser.get(reverse("oauth2_provider:authorize"), params).status_code == HTTPStatus.FOUND

    services.revoke_all_client_tokens(client=app, actor=admin_user)

    assert introspect(client, resource_server, tokens["access_token"]) == {"active": False}
    assert introspect(client, resource_server, tokens["refresh_token"]) == {"active": False}
    assert userinfo(client, tokens["access_token"]).status_code == HTTPStatus.UNAUTHORIZED
    again = browser.get(reverse("oauth2_provider:authorize"), params)
    assert again.status_code == HTTPStatus.OK  # the consent screen, not a redirect
    assert "Wiki" in again.content.decode()


# --- ID-token signing algorithm chosen at registration


def id_token_header(token: str) -> dict:
    parsed = jws.JWS()
    parsed.deserialize(token)
    return parsed.jose_header


def verify_with_published_keys(http: HttpClient, token: str, alg: str) -> dict:
    """Verify as a relying party would: the key named by `kid` in the JWKS, only `alg` allowed."""
    published = jwk.JWKSet.from_json(http.get("/.well-known/jwks.json").content)
    key = published.get_key(id_token_header(token)["kid"])
    assert key is not None
    return json.loads(jwt.JWT(jwt=token, key=key, algs=[alg]).claims)


@pytest.mark.spec("OIDC Core", "10.1")
def test_an_app_registered_with_es256_gets_es256_id_tokens_that_verify_against_jwks(
    client, admin_user, user, web_app
):
    # The default first: RS256.
    default = sign_in_and_get_tokens(HttpClient(), user, *web_app)
    assert id_token_header(default["id_token"])["alg"] == "RS256"
    assert verify_with_published_keys(client, default["id_token"], "RS256")["aud"] == "wiki"

    modern, secret = services.register_client(
        actor=admin_user,
        kind=Client.Kind.WEB,
        name="Modern",
        client_id="modern",
        redirect_uris=[WEB_REDIRECT],
        scopes="openid profile offline_access",
        algorithm="ES256",
    )
    tokens = sign_in_and_get_tokens(HttpClient(), user, modern, secret)
    assert id_token_header(tokens["id_token"])["alg"] == "ES256"
    claims = verify_with_published_keys(client, tokens["id_token"], "ES256")
    assert claims["aud"] == "modern"
    assert claims["sub"]
    # An ES256 token does not pass as RS256 (no algorithm confusion at the relying party).
    with pytest.raises(Exception):  # noqa: B017,PT011 (jwcrypto raises its own error types)
        verify_with_published_keys(client, tokens["id_token"], "RS256")


def test_switching_an_app_to_es256_takes_effect_at_the_next_sign_in_with_the_client_cache(
    client, admin_user, user, web_app, settings, django_capture_on_commit_callbacks
):
    settings.IDP_CLIENT_CACHE_SECONDS = 300  # the cached copy must not keep signing RS256
    cache.clear()
    app, secret = web_app
    before = sign_in_and_get_tokens(HttpClient(), user, app, secret)
    assert id_token_header(before["id_token"])["alg"] == "RS256"
    with django_capture_on_commit_callbacks(execute=True):
        services.update_client(client=app, actor=admin_user, changes={"algorithm": "ES256"})
    after = sign_in_and_get_tokens(HttpClient(), user, app, secret)
    assert id_token_header(after["id_token"])["alg"] == "ES256"
    verify_with_published_keys(client, after["id_token"], "ES256")
    cache.clear()
