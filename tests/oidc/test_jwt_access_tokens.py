"""RFC 9068 JWT access tokens for an API registered with its audience (RFC 8707 `resource`):
issued on every grant, verified with the published JWKS alone, introspected, revoked, refused
at userinfo; the client-credentials grant writes nothing."""

from __future__ import annotations

import base64
import hashlib
import time
from datetime import timedelta
from http import HTTPStatus

import jwt
import pytest
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.models import AuditEvent
from oauth_clients import services
from oauth_clients.keys import key_id
from oauth_clients.models import AccessToken, AppRole, Client, RevokedJwt, RoleGrant
from oauth_clients.oidc.jwt_access import build_access_token
from tests.oidc.conftest import (
    MACHINE_SECRET,
    WEB_SECRET,
    basic_auth,
    make_client,
    post_form,
)

AUDIENCE = "https://orders.example.com/api"
API_SECRET = "orders-api-secret-" + "a" * 30


@pytest.fixture
def api(db) -> Client:
    """An API (resource server) registered with its audience; it may introspect its tokens."""
    return make_client(
        name="Orders API",
        client_id="orders-api",
        kind=Client.Kind.API,
        audience=AUDIENCE,
        secret=API_SECRET,
        authorization_grant_type=Client.GRANT_CLIENT_CREDENTIALS,
        algorithm="",
        allowed_scopes="",
    )


@pytest.fixture
def reader(db) -> Client:
    """A machine client (machines get no user scopes; scopes are the provider's own)."""
    return make_client(
        name="Order Reader",
        client_id="order-reader",
        secret=MACHINE_SECRET,
        authorization_grant_type=Client.GRANT_CLIENT_CREDENTIALS,
        redirect_uris="",
        allowed_scopes="",
    )


def published_jwks(client) -> jwt.PyJWKSet:
    return jwt.PyJWKSet.from_dict(client.get(reverse("oauth2_provider:jwks-info")).json())


def verify(client, token: str, audience: str = AUDIENCE) -> dict:
    """What a resource server does: the key by kid from JWKS, RS256, the audience, the type."""
    header = jwt.get_unverified_header(token)
    assert header["typ"] == "at+jwt"
    key = published_jwks(client)[header["kid"]]
    return jwt.decode(token, key.key, algorithms=["RS256"], audience=audience)


def machine_token(client, oauth_client: Client, *, resource: str = AUDIENCE, **extra: str):
    data = {"grant_type": "client_credentials", "resource": resource, **extra}
    return post_form(
        client,
        reverse("oauth2_provider:token"),
        data,
        HTTP_AUTHORIZATION=basic_auth(oauth_client.client_id, oauth_client.test_secret),
    )


def introspect(client, caller: Client, token: str):
    return post_form(
        client,
        reverse("oauth2_provider:introspect"),
        {"token": token},
        HTTP_AUTHORIZATION=basic_auth(caller.client_id, caller.test_secret),
    )


@pytest.mark.spec("RFC 9068", "2.2")
@pytest.mark.spec("RFC 8707", "2")
def test_a_client_credentials_token_for_an_api_is_a_jwt_the_api_verifies(client, api, reader):
    response = machine_token(client, reader)
    assert response.status_code == HTTPStatus.OK, response.content
    body = response.json()
    assert body["expires_in"] == 300  # the default for an API: five minutes
    claims = verify(client, body["access_token"])
    assert claims["iss"] == settings.IDP_ISSUER
    assert claims["aud"] == AUDIENCE
    assert claims["sub"] == claims["client_id"] == "order-reader"
    assert claims["scope"] == ""
    assert claims["exp"] - claims["iat"] == 300
    assert len(claims["jti"]) == 32
    assert "auth_time" not in claims
    assert "roles" not in claims
    assert not AccessToken.objects.exists()


@pytest.mark.spec("RFC 9068", "2.1")
def test_an_api_registered_for_es256_gets_es256_tokens_verified_from_jwks(
    client, api, reader, admin_user
):
    # The default first: RS256, which RFC 9068 §2.1 makes every resource server support.
    default = machine_token(client, reader).json()["access_token"]
    assert jwt.get_unverified_header(default)["alg"] == "RS256"
    services.update_client(client=api, actor=admin_user, changes={"algorithm": "ES256"})
    response = machine_token(client, reader)
    assert response.status_code == HTTPStatus.OK, response.content
    token = response.json()["access_token"]
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "ES256"
    assert header["kid"] == key_id(settings.IDP_OIDC_EC_PRIVATE_KEYS[0])
    # The resource server's own check: the key by kid from JWKS, the algorithm the key names.
    key = published_jwks(client)[header["kid"]]
    claims = jwt.decode(token, key.key, algorithms=["ES256"], audience=AUDIENCE)
    assert claims["sub"] == claims["client_id"] == reader.client_id
    assert introspect(client, api, token).json()["active"] is True
    assert not AccessToken.objects.exists()


@pytest.mark.parametrize("algorithm", ["HS256", "none"])
def test_an_api_cannot_be_registered_for_another_algorithm(admin_user, algorithm):
    with pytest.raises(ValidationError) as refused:
        services.register_client(
            actor=admin_user,
            name="Payments API",
            kind=Client.Kind.API,
            audience=AUDIENCE,
            algorithm=algorithm,
        )
    assert "algorithm" in refused.value.message_dict


def test_an_api_needs_an_ec_key_for_es256(admin_user, settings):
    settings.IDP_OIDC_EC_PRIVATE_KEYS = []
    api, _secret = services.register_client(
        actor=admin_user, name="Payments API", kind=Client.Kind.API, audience=AUDIENCE
    )
    assert api.algorithm == ""  # RS256, the default
    with pytest.raises(ValidationError) as refused:
        services.update_client(client=api, actor=admin_user, changes={"algorithm": "ES256"})
    assert "EC signing key" in str(refused.value.message_dict["algorithm"])


@pytest.mark.spec("RFC 9068", "2.2")
def test_an_api_sets_its_own_token_lifetime(client, api, reader):
    Client.objects.filter(pk=api.pk).update(access_token_lifetime=60)
    response = machine_token(client, reader)
    claims = verify(client, response.json()["access_token"])
    assert response.json()["expires_in"] == 60
    assert claims["exp"] - claims["iat"] == 60


@pytest.mark.spec("RFC 9068", "2.2")
@pytest.mark.spec("RFC 8707", "2")
def test_without_a_resource_or_for_an_unregistered_one_the_token_stays_opaque(client, api, reader):
    for response in (
        machine_token(client, reader, resource="https://elsewhere.example.com"),
        post_form(
            client,
            reverse("oauth2_provider:token"),
            {"grant_type": "client_credentials"},
            HTTP_AUTHORIZATION=basic_auth(reader.client_id, MACHINE_SECRET),
        ),
    ):
        assert response.status_code == HTTPStatus.OK
        assert "." not in response.json()["access_token"]
    assert AccessToken.objects.count() == 2


@pytest.mark.spec("RFC 9068", "2.2")
def test_the_client_credentials_grant_for_an_api_writes_nothing(client, api, reader):
    assert machine_token(client, reader).status_code == HTTPStatus.OK  # warm: last_used_at
    with CaptureQueriesContext(connection) as queries:
        response = machine_token(client, reader)
    assert response.status_code == HTTPStatus.OK
    writes = [
        q["sql"]
        for q in queries.captured_queries
        if q["sql"].lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE"))
    ]
    assert writes == []
    assert len(queries.captured_queries) <= 3


@pytest.mark.spec("RFC 9068", "2.2")
def test_a_code_flow_for_an_api_gives_a_jwt_with_the_person_and_their_roles(
    client, api, user, web_client, run_code_flow, exchange_code
):
    role = AppRole.objects.create(client=api, name="clerk")
    RoleGrant.objects.create(role=role, user=user)
    flow = run_code_flow(web_client, scope="openid profile", extra={"resource": AUDIENCE})
    response = exchange_code(web_client, flow)
    assert response.status_code == HTTPStatus.OK, response.content
    tokens = response.json()
    claims = verify(client, tokens["access_token"])
    assert claims["sub"] == str(user.pk)
    assert claims["client_id"] == "web-app"
    assert claims["roles"] == ["clerk"]
    assert isinstance(claims["auth_time"], int)
    assert set(claims["scope"].split()) == {"openid", "profile"}
    # OIDC Core §3.1.3.6: the ID token's at_hash is over the JWT the client received.
    digest = hashlib.sha256(tokens["access_token"].encode()).digest()
    at_hash = base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode()
    id_claims = jwt.decode(tokens["id_token"], options={"verify_signature": False})
    assert id_claims["at_hash"] == at_hash
    # The refresh token stays opaque and stored; a refresh gives a new JWT for the API.
    assert "." not in tokens["refresh_token"]
    refreshed = post_form(
        client,
        reverse("oauth2_provider:token"),
        {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        HTTP_AUTHORIZATION=basic_auth(web_client.client_id, WEB_SECRET),
    )
    assert refreshed.status_code == HTTPStatus.OK, refreshed.content
    again = verify(client, refreshed.json()["access_token"])
    assert again["sub"] == str(user.pk)
    assert again["jti"] != claims["jti"]


@pytest.mark.spec("RFC 7662", "2.2")
@pytest.mark.spec("RFC 9068", "4")
def test_introspection_answers_a_jwt_for_its_client_and_its_api_only(client, api, reader):
    token = machine_token(client, reader).json()["access_token"]
    for caller in (reader, api):
        data = introspect(client, caller, token).json()
        assert data["active"] is True
        assert data["aud"] == AUDIENCE
        assert data["client_id"] == "order-reader"
    other = make_client(
        name="Other",
        client_id="other",
        secret="other-secret-" + "o" * 30,
        authorization_grant_type=Client.GRANT_CLIENT_CREDENTIALS,
    )
    assert introspect(client, other, token).json() == {"active": False}


@pytest.mark.spec("RFC 7009", "2.1")
@pytest.mark.spec("RFC 9068", "4")
def test_a_revoked_jwt_is_inactive_at_introspection_until_purged_after_expiry(client, api, reader):
    token = machine_token(client, reader).json()["access_token"]
    assert introspect(client, api, token).json()["active"] is True
    response = post_form(
        client,
        reverse("oauth2_provider:revoke-token"),
        {"token": token},
        HTTP_AUTHORIZATION=basic_auth(reader.client_id, MACHINE_SECRET),
    )
    assert response.status_code == HTTPStatus.OK
    assert introspect(client, api, token).json() == {"active": False}
    denied = RevokedJwt.objects.get()
    assert denied.jti == jwt.decode(token, options={"verify_signature": False})["jti"]
    assert AuditEvent.objects.filter(
        type=AuditEvent.Type.TOKEN_REVOKED, client=reader, extra__jti=denied.jti
    ).exists()
    call_command("purge_tokens", "--pause", "0", stdout=open("/dev/null", "w"))  # noqa: SIM115
    assert RevokedJwt.objects.count() == 1  # not yet expired
    RevokedJwt.objects.update(expires=timezone.now() - timedelta(hours=2))
    call_command("purge_tokens", "--pause", "0", stdout=open("/dev/null", "w"))  # noqa: SIM115
    assert not RevokedJwt.objects.exists()


@pytest.mark.spec("RFC 9068", "4")
def test_a_jwt_of_a_deactivated_or_unassigned_person_or_a_disabled_client_is_inactive(
    client,
    api,
    user,
    admin_user,
    web_client,
    run_code_flow,
    exchange_code,
    reader,
    django_capture_on_commit_callbacks,
):
    flow = run_code_flow(web_client, scope="openid", extra={"resource": AUDIENCE})
    person_token = exchange_code(web_client, flow).json()["access_token"]
    machine = machine_token(client, reader).json()["access_token"]
    assert introspect(client, api, person_token).json()["active"] is True
    # The client closed to assigned people only, and this person not assigned: inactive.
    with django_capture_on_commit_callbacks(execute=True):  # the lost tokens end on commit
        services.set_access_policy(
            client=web_client, policy=Client.AccessPolicy.ASSIGNED, actor=admin_user
        )
    assert introspect(client, api, person_token).json() == {"active": False}
    # Reopened: the person lost their tokens with their access (their row is gone), so this
    # JWT stays inactive; a new sign-in's JWT is active until the person is deactivated.
    with django_capture_on_commit_callbacks(execute=True):
        services.set_access_policy(
            client=web_client, policy=Client.AccessPolicy.OPEN, actor=admin_user
        )
    assert introspect(client, api, person_token).json() == {"active": False}
    flow = run_code_flow(web_client, scope="openid", extra={"resource": AUDIENCE})
    person_token = exchange_code(web_client, flow).json()["access_token"]
    assert introspect(client, api, person_token).json()["active"] is True
    type(user).objects.filter(pk=user.pk).update(is_active=False)
    assert introspect(client, api, person_token).json() == {"active": False}
    assert introspect(client, api, machine).json()["active"] is True
    with django_capture_on_commit_callbacks(execute=True):
        services.disable_client(client=reader, actor=admin_user)
    assert introspect(client, api, machine).json() == {"active": False}


@pytest.mark.spec("RFC 9068", "4")
def test_a_persons_jwt_is_inactive_once_their_session_ends(
    client, api, user, web_client, run_code_flow, exchange_code
):
    from accounts.services import revoke_user_tokens

    flow = run_code_flow(web_client, scope="openid", extra={"resource": AUDIENCE})
    token = exchange_code(web_client, flow).json()["access_token"]
    assert introspect(client, api, token).json()["active"] is True
    revoke_user_tokens(user=user)
    assert introspect(client, api, token).json() == {"active": False}


@pytest.mark.spec("RFC 9068", "4")
def test_an_expired_or_altered_jwt_is_inactive(client, api, reader):
    good = machine_token(client, reader).json()["access_token"]
    assert introspect(client, api, good).json()["active"] is True
    expired = build_access_token(
        api=api, client=reader, subject=None, scopes=[], now=int(time.time()) - 3600
    )
    header, payload, signature = good.split(".")
    altered_payload = base64.urlsafe_b64encode(
        base64.urlsafe_b64decode(payload + "==").replace(b"order-reader", b"order-writer")
    ).rstrip(b"=")
    altered = f"{header}.{altered_payload.decode()}.{signature}"
    for token in (expired, altered, f"{header}.{payload}.", "a.b.c"):
        assert introspect(client, api, token).json() == {"active": False}


@pytest.mark.spec("RFC 9068", "4")
def test_userinfo_refuses_a_jwt_issued_for_an_api(
    client, api, user, web_client, run_code_flow, exchange_code
):
    plain = exchange_code(web_client, run_code_flow(web_client, scope="openid")).json()
    userinfo = reverse("oauth2_provider:user-info")
    ok = client.get(userinfo, HTTP_AUTHORIZATION=f"Bearer {plain['access_token']}")
    assert ok.status_code == HTTPStatus.OK
    flow = run_code_flow(web_client, scope="openid", extra={"resource": AUDIENCE})
    token = exchange_code(web_client, flow).json()["access_token"]
    response = client.get(userinfo, HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == HTTPStatus.UNAUTHORIZED
    assert 'error="invalid_token"' in response["WWW-Authenticate"]


@pytest.mark.spec("RFC 7662", "2.2")
def test_introspecting_a_jwt_costs_a_few_queries(
    client, api, reader, web_client, run_code_flow, exchange_code, django_assert_max_num_queries
):
    machine = machine_token(client, reader).json()["access_token"]
    flow = run_code_flow(web_client, scope="openid", extra={"resource": AUDIENCE})
    person = exchange_code(web_client, flow).json()["access_token"]
    introspect(client, api, machine)  # the caller's `last_used_at`, stamped once a minute
    # The caller, the deny list, the token's client and API; a person's token adds the person
    # and their token's row (an app open to everyone needs no access query).
    with django_assert_max_num_queries(4):
        assert introspect(client, api, machine).json()["active"] is True
    with django_assert_max_num_queries(6):
        assert introspect(client, api, person).json()["active"] is True
