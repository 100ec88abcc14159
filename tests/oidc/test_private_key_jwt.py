"""`private_key_jwt` client authentication (RFC 7523 §2.2 and §3, OIDC Core §9) at the token,
introspection and revocation endpoints: keys inline or by `jwks_uri`, and every bad assertion
answered `invalid_client`."""

from __future__ import annotations

import base64
import hmac
import json
import time
from http import HTTPStatus

import jwt
import pytest
from django.conf import settings
from django.core.cache import cache
from django.urls import reverse

from accounts.models import AuditEvent
from oauth_clients import services
from oauth_clients.models import Client
from tests.oidc.conftest import post_form
from tests.oidc.pkjwt_helpers import ASSERTION_TYPE, ClientKey, jwks_of, run_jwks_server

KEY = ClientKey.rsa(kid="key-1")


@pytest.fixture(scope="module")
def jwks_server():
    yield from run_jwks_server()


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()  # cached JWKS documents and used jtis of earlier tests
    yield
    cache.clear()


@pytest.fixture
def signer(admin_user) -> Client:
    """A service that authenticates with its inline JWK Set (no secret)."""
    client, secret = services.register_client(
        actor=admin_user,
        kind=Client.Kind.SERVICE,
        name="Signer",
        client_id="signer",
        jwks=jwks_of(KEY, ClientKey.ec(kid="key-ec")),
    )
    assert secret == ""
    return client


def token_request(http, assertion: str | None, **extra: str):
    data = {"grant_type": "client_credentials", **extra}
    if assertion is not None:
        data |= {"client_assertion_type": ASSERTION_TYPE, "client_assertion": assertion}
    return post_form(http, reverse("oauth2_provider:token"), data)


def assert_invalid_client(response) -> None:
    assert response.status_code == HTTPStatus.UNAUTHORIZED, response.content
    assert response.json()["error"] == "invalid_client"


def token_endpoint_url() -> str:
    return f"{settings.IDP_ISSUER}/o/token/"


@pytest.mark.spec("RFC 7523", "2.2")
@pytest.mark.spec("OIDC Core", "9")
def test_a_client_authenticates_with_an_assertion_for_the_issuer_or_the_token_endpoint(
    client, signer
):
    for audience in (settings.IDP_ISSUER, token_endpoint_url()):
        response = token_request(client, KEY.assertion("signer", audience))
        assert response.status_code == HTTPStatus.OK, response.content
    # A client_id parameter naming the same client is allowed (RFC 7523 §3.1).
    response = token_request(
        client, KEY.assertion("signer", settings.IDP_ISSUER), client_id="signer"
    )
    assert response.status_code == HTTPStatus.OK


@pytest.mark.spec("RFC 7523", "3")
def test_an_es256_and_a_ps256_assertion_are_accepted(client, admin_user):
    ec_key, ps_key = ClientKey.ec(), ClientKey.rsa(alg="PS256")
    services.register_client(
        actor=admin_user,
        kind=Client.Kind.SERVICE,
        name="Two keys",
        client_id="two-keys",
        jwks=jwks_of(ec_key, ps_key),
    )
    for key in (ec_key, ps_key):
        response = token_request(client, key.assertion("two-keys", settings.IDP_ISSUER))
        assert response.status_code == HTTPStatus.OK, response.content


@pytest.mark.spec("RFC 7523", "3")
def test_a_replayed_assertion_is_refused_and_audited(client, signer):
    assertion = KEY.assertion("signer", settings.IDP_ISSUER)
    assert token_request(client, assertion).status_code == HTTPStatus.OK
    assert_invalid_client(token_request(client, assertion))
    event = AuditEvent.objects.get(type=AuditEvent.Type.TOKEN_REPLAY, client=signer)
    assert event.extra["reason"] == "client assertion replayed"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hs256_with_public_key(key: ClientKey, claims: dict) -> str:
    """The algorithm-confusion attack: HMAC keyed with the client's public key."""
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": key.kid}).encode())
    payload = _b64(json.dumps(claims).encode())
    mac = hmac.new(key.public_pem(), f"{header}.{payload}".encode(), "sha256").digest()
    return f"{header}.{payload}.{_b64(mac)}"


@pytest.mark.spec("RFC 7523", "3")
def test_bad_assertions_are_invalid_client(client, signer):
    assert token_request(client, KEY.assertion("signer", settings.IDP_ISSUER)).status_code == (
        HTTPStatus.OK
    )
    now = int(time.time())
    claims = {"iss": "signer", "sub": "signer", "aud": settings.IDP_ISSUER, "exp": now + 60}
    unsigned = jwt.encode({**claims, "jti": "n1"}, None, algorithm="none", headers={"kid": "key-1"})
    foreign = ClientKey.rsa(kid="key-1")  # a key the client never registered, same kid
    stranger = ClientKey.rsa(kid="key-9")
    bad = {
        "alg none": unsigned,
        "HS256 with the public key": hs256_with_public_key(KEY, {**claims, "jti": "h1"}),
        "foreign key, known kid": foreign.assertion("signer", settings.IDP_ISSUER),
        "foreign kid": stranger.assertion("signer", settings.IDP_ISSUER),
        "wrong aud": KEY.assertion("signer", "https://other-idp.example.com"),
        "expired": KEY.assertion("signer", settings.IDP_ISSUER, lifetime=-120),
        "no exp": KEY.assertion("signer", settings.IDP_ISSUER, exp=None),
        "exp too far ahead": KEY.assertion("signer", settings.IDP_ISSUER, lifetime=86400),
        "no jti": KEY.assertion("signer", settings.IDP_ISSUER, jti=None),
        "iss is not sub": KEY.assertion("signer", settings.IDP_ISSUER, iss="someone"),
        "not a JWT": "not-a-jwt",
    }
    for assertion in bad.values():
        assert_invalid_client(token_request(client, assertion))
    # The wrong assertion type, or a client_id naming another client.
    good = KEY.assertion("signer", settings.IDP_ISSUER)
    assert_invalid_client(
        post_form(
            client,
            reverse("oauth2_provider:token"),
            {
                "grant_type": "client_credentials",
                "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:saml2-bearer",
                "client_assertion": good,
            },
        )
    )
    assert_invalid_client(token_request(client, good, client_id="web-app"))


@pytest.mark.spec("RFC 7523", "2.2")
def test_a_key_client_has_no_shared_secret(client, signer):
    # Registered without a secret: neither an empty secret nor its id alone authenticates it.
    for data in ({"client_id": "signer", "client_secret": ""}, {"client_id": "signer"}):
        response = post_form(
            client, reverse("oauth2_provider:token"), {"grant_type": "client_credentials", **data}
        )
        assert_invalid_client(response)


@pytest.mark.spec("RFC 7523", "2.2")
@pytest.mark.spec("RFC 7662", "2.1")
@pytest.mark.spec("RFC 7009", "2.1")
def test_introspection_and_revocation_accept_private_key_jwt(client, signer):
    token = token_request(client, KEY.assertion("signer", settings.IDP_ISSUER)).json()
    auth = {"client_assertion_type": ASSERTION_TYPE}
    introspected = post_form(
        client,
        reverse("oauth2_provider:introspect"),
        {
            "token": token["access_token"],
            **auth,
            "client_assertion": KEY.assertion("signer", f"{settings.IDP_ISSUER}/o/introspect/"),
        },
    )
    assert introspected.status_code == HTTPStatus.OK, introspected.content
    assert introspected.json()["active"] is True
    refused = post_form(
        client,
        reverse("oauth2_provider:introspect"),
        {"token": token["access_token"], **auth, "client_assertion": "a.b.c"},
    )
    assert refused.status_code == HTTPStatus.UNAUTHORIZED
    revoked = post_form(
        client,
        reverse("oauth2_provider:revoke-token"),
        {
            "token": token["access_token"],
            **auth,
            "client_assertion": KEY.assertion("signer", settings.IDP_ISSUER),
        },
    )
    assert revoked.status_code == HTTPStatus.OK, revoked.content
    again = post_form(
        client,
        reverse("oauth2_provider:introspect"),
        {
            "token": token["access_token"],
            **auth,
            "client_assertion": KEY.assertion("signer", settings.IDP_ISSUER),
        },
    )
    assert again.json() == {"active": False}


def register_by_uri(admin_user, uri: str, **extra) -> Client:
    client, secret = services.register_client(
        actor=admin_user,
        kind=Client.Kind.SERVICE,
        name="Remote keys",
        client_id="remote",
        jwks_uri=uri,
        allow_private_network=True,
        **extra,
    )
    assert secret == ""
    return client


@pytest.mark.spec("RFC 7523", "2.2")
def test_keys_at_a_jwks_uri_are_fetched_cached_and_refetched_once_for_a_new_kid(
    client, admin_user, jwks_server
):
    first, second = ClientKey.rsa(kid="r1"), ClientKey.rsa(kid="r2")
    uri = jwks_server.serve("/remote.json", jwks_of(first))
    register_by_uri(admin_user, uri)
    hits = jwks_server.hits.get("/remote.json", 0)
    for _ in range(2):
        response = token_request(client, first.assertion("remote", settings.IDP_ISSUER))
        assert response.status_code == HTTPStatus.OK, response.content
    assert jwks_server.hits["/remote.json"] == hits + 1  # cached after the first fetch
    # The app adds a key: an assertion with its kid makes us refetch once.
    jwks_server.serve("/remote.json", jwks_of(first, second))
    response = token_request(client, second.assertion("remote", settings.IDP_ISSUER))
    assert response.status_code == HTTPStatus.OK, response.content
    assert jwks_server.hits["/remote.json"] == hits + 2
    # An unknown kid again, moments later: refused without hammering the app.
    stranger = ClientKey.rsa(kid="r9")
    assert_invalid_client(token_request(client, stranger.assertion("remote", settings.IDP_ISSUER)))
    assert jwks_server.hits["/remote.json"] == hits + 2


@pytest.mark.spec("RFC 7523", "2.2")
def test_a_jwks_uri_that_redirects_or_is_private_is_refused(client, admin_user, jwks_server):
    key = ClientKey.rsa(kid="m1")
    target = jwks_server.serve("/moved-here.json", jwks_of(key))
    uri = jwks_server.redirect("/moved.json", target)
    remote = register_by_uri(admin_user, uri)
    assert_invalid_client(token_request(client, key.assertion("remote", settings.IDP_ISSUER)))
    # The same app at the final address works; without leave to call private addresses the
    # loopback address is refused at registration and, for a row changed behind our back,
    # at fetch time.
    Client.objects.filter(pk=remote.pk).update(jwks_uri=target)
    cache.clear()
    response = token_request(client, key.assertion("remote", settings.IDP_ISSUER))
    assert response.status_code == HTTPStatus.OK, response.content
    cache.clear()
    Client.objects.filter(pk=remote.pk).update(allow_private_network=False)
    assert_invalid_client(token_request(client, key.assertion("remote", settings.IDP_ISSUER)))
    with pytest.raises(services.ValidationError) as refused:
        services.register_client(
            actor=admin_user,
            kind=Client.Kind.SERVICE,
            name="Private keys",
            jwks_uri=target,
        )
    assert "jwks_uri" in refused.value.message_dict


def test_registration_refuses_private_keys_both_sources_and_public_clients(admin_user):
    private_jwk = json.loads(
        jwt.algorithms.RSAAlgorithm.to_jwk(KEY.private)  # the private half: refused
    )
    cases = [
        {"kind": Client.Kind.SERVICE, "jwks": {"keys": [private_jwk]}},
        {"kind": Client.Kind.SERVICE, "jwks": {"keys": []}},
        {"kind": Client.Kind.SERVICE, "jwks": "{not json"},
        {
            "kind": Client.Kind.SERVICE,
            "jwks": jwks_of(KEY),
            "jwks_uri": "https://keys.example.com/jwks.json",
        },
        {
            "kind": Client.Kind.SPA,
            "jwks": jwks_of(KEY),
            "redirect_uris": ["https://spa.example.com/cb"],
        },
    ]
    for case in cases:
        with pytest.raises(services.ValidationError) as refused:
            services.register_client(actor=admin_user, name="Keys", **case)
        assert "jwks" in refused.value.message_dict, case
    assert not Client.objects.exists()


@pytest.mark.spec("RFC 8414", "2")
def test_discovery_offers_private_key_jwt_and_its_algorithms(client):
    metadata = client.get("/.well-known/openid-configuration").json()
    assert "private_key_jwt" in metadata["token_endpoint_auth_methods_supported"]
    assert "client_secret_jwt" not in metadata["token_endpoint_auth_methods_supported"]
    assert metadata["token_endpoint_auth_signing_alg_values_supported"] == [
        "RS256",
        "PS256",
        "ES256",
    ]
    assert "private_key_jwt" in metadata["introspection_endpoint_auth_methods_supported"]


@pytest.mark.spec("OIDC Core", "9")
def test_a_web_app_with_keys_exchanges_its_code_and_refreshes_with_assertions(
    client, admin_user, run_code_flow
):
    web, _ = services.register_client(
        actor=admin_user,
        kind=Client.Kind.WEB,
        name="Keyed web",
        client_id="keyed-web",
        redirect_uris=["https://keyed.example.com/cb"],
        scopes=["openid", "offline_access"],
        is_trusted=True,
        jwks=jwks_of(KEY),
    )
    flow = run_code_flow(web, scope="openid offline_access")
    auth = {"client_assertion_type": ASSERTION_TYPE}
    token = reverse("oauth2_provider:token")
    without = post_form(client, token, {**flow.token_data(), "client_id": "keyed-web"})
    assert_invalid_client(without)  # a confidential client, no assertion: refused
    flow = run_code_flow(web, scope="openid offline_access")
    exchanged = post_form(
        client,
        token,
        {
            **flow.token_data(),
            **auth,
            "client_assertion": KEY.assertion("keyed-web", token_endpoint_url()),
        },
    )
    assert exchanged.status_code == HTTPStatus.OK, exchanged.content
    refreshed = post_form(
        client,
        token,
        {
            "grant_type": "refresh_token",
            "refresh_token": exchanged.json()["refresh_token"],
            **auth,
            "client_assertion": KEY.assertion("keyed-web", settings.IDP_ISSUER),
        },
    )
    assert refreshed.status_code == HTTPStatus.OK, refreshed.content
