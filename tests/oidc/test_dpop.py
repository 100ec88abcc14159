"""DPoP (RFC 9449): proofs at the token endpoint bind access tokens (and a public client's refresh
tokens) to the client's key; userinfo accepts a bound token only with a proof of that key;
introspection reports the binding; a client may be made to use DPoP always."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from http import HTTPStatus
from typing import Any
from unittest import mock

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from django.core.management import call_command
from django.test import Client as HttpClient
from django.urls import reverse

from accounts.models import AuditEvent
from oauth_clients import services
from oauth_clients.models import AccessToken, Client, RefreshToken
from oauth_clients.oidc import dpop
from oauth_clients.oidc.device import DEVICE_CODE_GRANT
from oauth_clients.oidc.tokens import token_checksum
from tests.oidc.conftest import (
    assert_dropping_is_a_weakening,
    basic_auth,
    make_client,
    post_form,
)
from tests.oidc.device_helpers import approve, register_device_app, start

TOKEN_PATH = "/o/token/"
USERINFO_PATH = "/o/userinfo/"


class Key:
    """A client's DPoP key pair and the proofs it signs (what a DPoP client library does)."""

    def __init__(self, kind: str = "ES256") -> None:
        self.algorithm = kind
        if kind == "ES256":
            self.private = ec.generate_private_key(ec.SECP256R1())
            self.jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(self.private.public_key()))
        elif kind == "EdDSA":
            self.private = ed25519.Ed25519PrivateKey.generate()
            self.jwk = json.loads(jwt.algorithms.OKPAlgorithm.to_jwk(self.private.public_key()))
        else:
            self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            self.jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.private.public_key()))

    @property
    def jkt(self) -> str:
        return dpop.jwk_thumbprint(self.jwk)

    def proof(
        self,
        *,
        method: str = "POST",
        path: str = TOKEN_PATH,
        access_token: str | None = None,
        iat: float | None = None,
        jti: str | None = None,
        header: dict[str, Any] | None = None,
        claims: dict[str, Any] | None = None,
    ) -> str:
        body: dict[str, Any] = {
            "jti": jti or uuid.uuid4().hex,
            "htm": method,
            "htu": dpop.endpoint_uri(path),
            "iat": int(time.time() if iat is None else iat),
        }
        if access_token is not None:
            body["ath"] = dpop.access_token_hash(access_token)
        body.update(claims or {})
        headers = {"typ": "dpop+jwt", "jwk": self.jwk, **(header or {})}
        return jwt.encode(body, self.private, algorithm=self.algorithm, headers=headers)


def hs256(claims: dict[str, Any], headers: dict[str, Any], *, secret: bytes) -> str:
    def part(value: dict[str, Any]) -> str:
        raw = json.dumps(value, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    signing_input = f"{part({**headers, 'alg': 'HS256'})}.{part(claims)}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"


def dpop_header(proof: str) -> dict[str, str]:
    return {"HTTP_DPOP": proof}


@pytest.fixture
def key() -> Key:
    return Key()


@pytest.fixture
def exchange(client, run_code_flow):
    """The code flow, then the code exchanged with `headers` (a DPoP proof or none)."""

    def do(oauth_client: Client, **headers: str) -> Any:
        flow = run_code_flow(oauth_client)
        data = flow.token_data()
        if oauth_client.client_type == Client.CLIENT_CONFIDENTIAL:
            headers["HTTP_AUTHORIZATION"] = basic_auth(
                oauth_client.client_id, oauth_client.test_secret
            )
        else:
            data["client_id"] = oauth_client.client_id
        return post_form(client, reverse("oauth2_provider:token"), data, **headers)

    return do


@pytest.fixture
def refresh(client):
    def do(oauth_client: Client, refresh_token: str, **headers: str) -> Any:
        data = {"grant_type": "refresh_token", "refresh_token": refresh_token}
        if oauth_client.client_type == Client.CLIENT_CONFIDENTIAL:
            headers["HTTP_AUTHORIZATION"] = basic_auth(
                oauth_client.client_id, oauth_client.test_secret
            )
        else:
            data["client_id"] = oauth_client.client_id
        return post_form(client, reverse("oauth2_provider:token"), data, **headers)

    return do


def userinfo(client, token: str, proof: str | None, scheme: str = "DPoP") -> Any:
    headers = {"HTTP_AUTHORIZATION": f"{scheme} {token}"}
    if proof is not None:
        headers["HTTP_DPOP"] = proof
    return client.get(reverse("oauth2_provider:user-info"), **headers)


def assert_dpop_refusal(response: Any, error: str) -> None:
    assert response.status_code == HTTPStatus.UNAUTHORIZED, response.content
    assert response["WWW-Authenticate"].startswith(f'DPoP error="{error}"')
    assert response.json()["error"] == error


def assert_invalid_proof(response: Any) -> None:
    assert response.status_code == HTTPStatus.BAD_REQUEST, response.content
    assert response.json()["error"] == "invalid_dpop_proof"


def bound_tokens(exchange, oauth_client: Client, key: Key) -> dict[str, Any]:
    response = exchange(oauth_client, **dpop_header(key.proof()))
    assert response.status_code == HTTPStatus.OK, response.content
    return response.json()


# --------------------------------------------------------------------------- the positive path


@pytest.mark.spec("RFC 9449", "5")
@pytest.mark.spec("RFC 9449", "7.1")
def test_a_proof_at_the_token_endpoint_binds_the_token_which_userinfo_accepts_with_a_proof(
    client, user, spa_client, exchange, key
):
    tokens = bound_tokens(exchange, spa_client, key)
    assert tokens["token_type"] == "DPoP"
    row = AccessToken.objects.get(token_checksum=token_checksum(tokens["access_token"]))
    assert row.dpop_jkt == key.jkt
    # RFC 9449 §5: a public client's refresh token is bound to the same key.
    assert RefreshToken.objects.get(access_token=row).dpop_jkt == key.jkt

    access_token = tokens["access_token"]
    proof = key.proof(method="GET", path=USERINFO_PATH, access_token=access_token)
    response = userinfo(client, access_token, proof)
    assert response.status_code == HTTPStatus.OK, response.content
    assert response.json()["sub"] == str(user.pk)


@pytest.mark.spec("RFC 9449", "5")
def test_a_public_client_refreshes_with_a_proof_of_the_same_key(spa_client, exchange, refresh, key):
    tokens = bound_tokens(exchange, spa_client, key)
    response = refresh(spa_client, tokens["refresh_token"], **dpop_header(key.proof()))
    assert response.status_code == HTTPStatus.OK, response.content
    refreshed = response.json()
    assert refreshed["token_type"] == "DPoP"
    new_row = AccessToken.objects.get(token_checksum=token_checksum(refreshed["access_token"]))
    assert new_row.dpop_jkt == key.jkt
    assert RefreshToken.objects.get(access_token=new_row).dpop_jkt == key.jkt


@pytest.mark.spec("RFC 9449", "4.3")
@pytest.mark.parametrize("algorithm", ["ES256", "RS256", "PS256", "EdDSA"])
def test_every_advertised_algorithm_makes_a_valid_proof(client, web_client, exchange, algorithm):
    key = Key("RS256" if algorithm == "PS256" else algorithm)
    key.algorithm = algorithm
    tokens = bound_tokens(exchange, web_client, key)
    assert tokens["token_type"] == "DPoP"
    metadata = client.get("/.well-known/openid-configuration").json()
    assert algorithm in metadata["dpop_signing_alg_values_supported"]


@pytest.mark.spec("RFC 9449", "5")
@pytest.mark.spec("RFC 8628", "3.5")
def test_a_device_binds_its_tokens_when_it_polls_with_a_proof(client, user, key):
    device_app = register_device_app()
    codes = start(client, device_app).json()
    browser = HttpClient()
    browser.force_login(user)
    approve(browser, codes["user_code"])
    response = post_form(
        client,
        reverse("oauth2_provider:token"),
        {
            "grant_type": DEVICE_CODE_GRANT,
            "device_code": codes["device_code"],
            "client_id": device_app.client_id,
        },
        **dpop_header(key.proof()),
    )
    assert response.status_code == HTTPStatus.OK, response.content
    tokens = response.json()
    assert tokens["token_type"] == "DPoP"
    row = AccessToken.objects.get(token_checksum=token_checksum(tokens["access_token"]))
    assert row.dpop_jkt == key.jkt
    # A device app is a public client: its refresh token is bound to the key too.
    assert RefreshToken.objects.get(access_token=row).dpop_jkt == key.jkt


@pytest.mark.spec("RFC 9449", "5")
def test_a_request_without_a_proof_still_gets_a_bearer_token(client, web_client, exchange):
    response = exchange(web_client)
    assert response.status_code == HTTPStatus.OK, response.content
    assert response.json()["token_type"] == "Bearer"
    assert AccessToken.objects.get().dpop_jkt == ""


@pytest.mark.spec("RFC 9449", "5")
def test_a_confidential_clients_refresh_token_is_bound_by_its_authentication_not_the_key(
    web_client, exchange, refresh, key
):
    tokens = bound_tokens(exchange, web_client, key)
    assert RefreshToken.objects.get().dpop_jkt == ""
    # A new key (RFC 9449 §5: the confidential client's refresh token is not key-bound); the
    # new access token is bound to the key that refreshed it.
    other = Key()
    response = refresh(web_client, tokens["refresh_token"], **dpop_header(other.proof()))
    assert response.status_code == HTTPStatus.OK, response.content
    refreshed = response.json()
    row = AccessToken.objects.get(token_checksum=token_checksum(refreshed["access_token"]))
    assert row.dpop_jkt == other.jkt


@pytest.mark.spec("RFC 9449", "6.2")
def test_introspection_reports_the_binding(client, web_client, exchange, key):
    tokens = bound_tokens(exchange, web_client, key)
    response = post_form(
        client,
        reverse("oauth2_provider:introspect"),
        {"token": tokens["access_token"]},
        HTTP_AUTHORIZATION=basic_auth(web_client.client_id, web_client.test_secret),
    )
    assert response.status_code == HTTPStatus.OK, response.content
    data = response.json()
    assert data["active"] is True
    assert data["token_type"] == "DPoP"
    assert data["cnf"] == {"jkt": key.jkt}


@pytest.mark.spec("RFC 9449", "6.1")
def test_a_jwt_access_token_carries_the_thumbprint_in_cnf(db, client, key):
    api = make_client(
        name="Orders API",
        client_id="orders-api",
        kind=Client.Kind.API,
        audience="https://orders.example.com/api",
        secret="orders-api-secret-" + "a" * 30,
        authorization_grant_type=Client.GRANT_CLIENT_CREDENTIALS,
        algorithm="",
        allowed_scopes="",
    )
    reader = make_client(
        name="Order Reader",
        client_id="order-reader",
        secret="order-reader-secret-" + "b" * 30,
        authorization_grant_type=Client.GRANT_CLIENT_CREDENTIALS,
        redirect_uris="",
        allowed_scopes="",
    )
    response = post_form(
        client,
        reverse("oauth2_provider:token"),
        {"grant_type": "client_credentials", "resource": api.audience},
        HTTP_AUTHORIZATION=basic_auth(reader.client_id, reader.test_secret),
        **dpop_header(key.proof()),
    )
    assert response.status_code == HTTPStatus.OK, response.content
    token = response.json()
    assert token["token_type"] == "DPoP"
    claims = jwt.decode(token["access_token"], options={"verify_signature": False})
    assert claims["cnf"] == {"jkt": key.jkt}
    introspected = post_form(
        client,
        reverse("oauth2_provider:introspect"),
        {"token": token["access_token"]},
        HTTP_AUTHORIZATION=basic_auth(api.client_id, api.test_secret),
    ).json()
    assert introspected["active"] is True
    assert introspected["token_type"] == "DPoP"
    assert introspected["cnf"] == {"jkt": key.jkt}


@pytest.mark.spec("RFC 7638", "3.1")
def test_the_thumbprint_is_rfc_7638s():
    # RFC 7638 §3.1's example key and thumbprint.
    jwk = {
        "kty": "RSA",
        "n": (
            "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tS"
            "oc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65"
            "YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyr"
            "dkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzK"
            "nqDKgw"
        ),
        "e": "AQAB",
        "alg": "RS256",
        "kid": "2011-04-29",
    }
    assert dpop.jwk_thumbprint(jwk) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


# --------------------------------------------------------------------------- bad proofs at /token


@pytest.mark.spec("RFC 9449", "4.3")
@pytest.mark.parametrize(
    ("proof_for", "what"),
    [
        ({"path": USERINFO_PATH}, "another URI"),
        ({"method": "GET"}, "another method"),
        ({"iat": -600}, "a stale iat"),
        ({"iat": +600}, "an iat in the future"),
    ],
)
def test_a_proof_for_another_request_or_time_is_refused(web_client, exchange, key, proof_for, what):
    assert exchange(web_client, **dpop_header(key.proof())).status_code == HTTPStatus.OK
    if "iat" in proof_for:  # seconds from now, when the test runs (not when it was collected)
        proof_for = {"iat": time.time() + proof_for["iat"]}
    response = exchange(web_client, **dpop_header(key.proof(**proof_for)))
    assert_invalid_proof(response)
    assert AccessToken.objects.count() == 1, what


@pytest.mark.spec("RFC 9449", "4.3")
def test_a_proof_with_a_query_in_htu_still_names_the_endpoint(web_client, exchange, key):
    proof = key.proof(claims={"htu": dpop.endpoint_uri(TOKEN_PATH) + "?x=1#frag"})
    assert exchange(web_client, **dpop_header(proof)).status_code == HTTPStatus.OK


@pytest.mark.spec("RFC 9449", "11.1")
def test_a_reused_proof_is_refused_and_audited(web_client, exchange, key):
    proof = key.proof()
    assert exchange(web_client, **dpop_header(proof)).status_code == HTTPStatus.OK
    response = exchange(web_client, **dpop_header(proof))
    assert_invalid_proof(response)
    assert "used before" in response.json()["error_description"]
    event = AuditEvent.objects.get(type=AuditEvent.Type.TOKEN_REPLAY)
    assert event.client == web_client


@pytest.mark.spec("RFC 9449", "4.3")
@pytest.mark.parametrize("algorithm", ["none", "HS256"])
def test_a_proof_with_no_or_a_symmetric_signature_is_refused(web_client, exchange, key, algorithm):
    assert exchange(web_client, **dpop_header(key.proof())).status_code == HTTPStatus.OK
    claims = {
        "jti": uuid.uuid4().hex,
        "htm": "POST",
        "htu": dpop.endpoint_uri(TOKEN_PATH),
        "iat": int(time.time()),
    }
    headers = {"typ": "dpop+jwt", "jwk": key.jwk}
    if algorithm == "none":
        proof = jwt.encode(claims, None, algorithm="none", headers=headers)
    else:
        # HMAC keyed with the public key's JSON: the classic algorithm confusion (signed by
        # hand: PyJWT refuses to make one).
        proof = hs256(claims, headers, secret=json.dumps(key.jwk).encode())
    assert_invalid_proof(exchange(web_client, **dpop_header(proof)))


@pytest.mark.spec("RFC 9449", "4.3")
def test_a_proof_whose_jwk_has_private_parts_is_refused(web_client, exchange, key):
    assert exchange(web_client, **dpop_header(key.proof())).status_code == HTTPStatus.OK
    private_jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.private))
    assert "d" in private_jwk
    response = exchange(web_client, **dpop_header(key.proof(header={"jwk": private_jwk})))
    assert_invalid_proof(response)
    assert "public key" in response.json()["error_description"]


@pytest.mark.spec("RFC 9449", "4.3")
@pytest.mark.parametrize(
    "tamper",
    ["typ", "signature", "other_key_in_header", "two_headers", "garbage", "missing_jti"],
)
def test_a_malformed_proof_is_refused(web_client, exchange, key, tamper):
    assert exchange(web_client, **dpop_header(key.proof())).status_code == HTTPStatus.OK
    if tamper == "typ":
        proof = key.proof(header={"typ": "JWT"})
    elif tamper == "signature":
        head, body, _sig = key.proof().split(".")
        proof = f"{head}.{body}.{_sig[::-1]}"
    elif tamper == "other_key_in_header":
        proof = key.proof(header={"jwk": Key().jwk})
    elif tamper == "two_headers":
        proof = f"{key.proof()}, {key.proof()}"
    elif tamper == "garbage":
        proof = "not a jwt"
    else:
        proof = key.proof(claims={"jti": ""})
    assert_invalid_proof(exchange(web_client, **dpop_header(proof)))


@pytest.mark.spec("RFC 9449", "5")
def test_a_bound_refresh_token_is_refused_without_its_keys_proof(
    spa_client, exchange, refresh, key
):
    tokens = bound_tokens(exchange, spa_client, key)
    without = refresh(spa_client, tokens["refresh_token"])
    assert without.status_code == HTTPStatus.BAD_REQUEST, without.content
    assert without.json()["error"] == "invalid_grant"
    other = refresh(spa_client, tokens["refresh_token"], **dpop_header(Key().proof()))
    assert other.status_code == HTTPStatus.BAD_REQUEST
    assert other.json()["error"] == "invalid_grant"
    assert AuditEvent.objects.filter(type=AuditEvent.Type.TOKEN_REPLAY).count() == 2
    # Still usable by its key: the refusals rotated nothing.
    good = refresh(spa_client, tokens["refresh_token"], **dpop_header(key.proof()))
    assert good.status_code == HTTPStatus.OK, good.content


# --------------------------------------------------------------------------- bound tokens spent


@pytest.mark.spec("RFC 9449", "7.2")
def test_a_bound_token_presented_as_bearer_is_refused(client, web_client, exchange, key):
    tokens = bound_tokens(exchange, web_client, key)
    access_token = tokens["access_token"]
    proof = key.proof(method="GET", path=USERINFO_PATH, access_token=access_token)
    assert userinfo(client, access_token, proof).status_code == HTTPStatus.OK
    response = userinfo(client, access_token, None, scheme="Bearer")
    assert_dpop_refusal(response, "invalid_token")
    event = AuditEvent.objects.get(type=AuditEvent.Type.TOKEN_REPLAY)
    assert event.client == web_client
    assert event.ip == "127.0.0.1"


@pytest.mark.spec("RFC 9449", "7.1")
def test_a_bound_token_without_its_proof_is_refused(client, web_client, exchange, key):
    tokens = bound_tokens(exchange, web_client, key)
    access_token = tokens["access_token"]
    proof = key.proof(method="GET", path=USERINFO_PATH, access_token=access_token)
    assert userinfo(client, access_token, proof).status_code == HTTPStatus.OK
    assert_dpop_refusal(userinfo(client, access_token, None), "invalid_dpop_proof")


@pytest.mark.spec("RFC 9449", "7.1")
def test_a_proof_from_another_key_is_refused(client, web_client, exchange, key):
    tokens = bound_tokens(exchange, web_client, key)
    access_token = tokens["access_token"]
    proof = key.proof(method="GET", path=USERINFO_PATH, access_token=access_token)
    assert userinfo(client, access_token, proof).status_code == HTTPStatus.OK
    stranger = Key().proof(method="GET", path=USERINFO_PATH, access_token=access_token)
    assert_dpop_refusal(userinfo(client, access_token, stranger), "invalid_token")
    assert AuditEvent.objects.filter(type=AuditEvent.Type.TOKEN_REPLAY).exists()


@pytest.mark.spec("RFC 9449", "4.3")
@pytest.mark.parametrize(
    ("proof_for", "what"),
    [
        ({"access_token": "another-token"}, "another access token (ath)"),
        ({"access_token": None}, "no ath"),
        ({"path": TOKEN_PATH}, "another URI"),
        ({"method": "POST"}, "another method"),
        ({"iat": time.time() - 600}, "a stale iat"),
    ],
)
def test_a_proof_for_another_resource_request_is_refused(
    client, web_client, exchange, key, proof_for, what
):
    tokens = bound_tokens(exchange, web_client, key)
    access_token = tokens["access_token"]
    good = key.proof(method="GET", path=USERINFO_PATH, access_token=access_token)
    assert userinfo(client, access_token, good).status_code == HTTPStatus.OK
    arguments = {"method": "GET", "path": USERINFO_PATH, "access_token": access_token}
    arguments.update(proof_for)
    response = userinfo(client, access_token, key.proof(**arguments))
    assert_dpop_refusal(response, "invalid_dpop_proof")


@pytest.mark.spec("RFC 9449", "11.1")
def test_a_reused_proof_at_userinfo_is_refused(client, web_client, exchange, key):
    tokens = bound_tokens(exchange, web_client, key)
    access_token = tokens["access_token"]
    proof = key.proof(method="GET", path=USERINFO_PATH, access_token=access_token)
    assert userinfo(client, access_token, proof).status_code == HTTPStatus.OK
    assert_dpop_refusal(userinfo(client, access_token, proof), "invalid_dpop_proof")


@pytest.mark.spec("RFC 9449", "7.1")
def test_a_bearer_token_presented_with_the_dpop_scheme_is_refused(
    client, web_client, exchange, key
):
    token = exchange(web_client).json()["access_token"]
    response = client.get(
        reverse("oauth2_provider:user-info"), HTTP_AUTHORIZATION=f"Bearer {token}"
    )
    assert response.status_code == HTTPStatus.OK
    proof = key.proof(method="GET", path=USERINFO_PATH, access_token=token)
    assert_dpop_refusal(userinfo(client, token, proof), "invalid_token")


# --------------------------------------------------------------------------- clients requiring it


@pytest.mark.spec("RFC 9449", "8")
def test_every_answer_to_a_proof_carries_a_server_nonce(web_client, exchange, key):
    response = exchange(web_client, **dpop_header(key.proof()))
    assert response.status_code == HTTPStatus.OK, response.content
    assert response["DPoP-Nonce"] == dpop.current_nonce()
    assert not exchange(web_client).has_header("DPoP-Nonce")


@pytest.mark.spec("RFC 9449", "5")
@pytest.mark.spec("RFC 9449", "8")
def test_a_client_that_requires_dpop_must_send_a_proof_with_the_servers_nonce(
    web_client, exchange, key
):
    web_client.require_dpop = True
    web_client.save()
    # RFC 9449 §8: the first proof has no nonce; the answer gives one, the retry uses it.
    first = exchange(web_client, **dpop_header(key.proof()))
    assert first.status_code == HTTPStatus.BAD_REQUEST, first.content
    assert first.json()["error"] == "use_dpop_nonce"
    nonce = first["DPoP-Nonce"]
    response = exchange(web_client, **dpop_header(key.proof(claims={"nonce": nonce})))
    assert response.status_code == HTTPStatus.OK, response.content
    assert response.json()["token_type"] == "DPoP"

    assert_invalid_proof(exchange(web_client))  # no proof at all
    stale = key.proof(claims={"nonce": "a-nonce-this-server-never-made"})
    assert exchange(web_client, **dpop_header(stale)).json()["error"] == "use_dpop_nonce"
    assert AccessToken.objects.count() == 1


def test_a_nonce_lasts_its_window_and_the_next():
    with mock.patch("oauth_clients.oidc.dpop.time.time", return_value=1_000_000.0):
        nonce = dpop.current_nonce()
        assert dpop.nonce_valid(nonce)
    with mock.patch("oauth_clients.oidc.dpop.time.time", return_value=1_000_000.0 + 300):
        assert dpop.nonce_valid(nonce)
    with mock.patch("oauth_clients.oidc.dpop.time.time", return_value=1_000_000.0 + 600):
        assert not dpop.nonce_valid(nonce)


def test_the_clients_command_registers_a_client_that_requires_dpop(db, capsys):
    call_command(
        "clients",
        "create",
        "--kind",
        "spa",
        "--name",
        "Bound SPA",
        "--redirect-uri",
        "https://bound.example.com/callback",
        "--require-dpop",
    )
    client = Client.objects.get(name="Bound SPA")
    assert client.require_dpop is True
    assert "DPoP" in capsys.readouterr().out
    plain = call_command  # a client registered without the flag does not require it
    plain(
        "clients",
        "create",
        "--kind",
        "spa",
        "--name",
        "Plain SPA",
        "--redirect-uri",
        "https://plain.example.com/callback",
    )
    assert Client.objects.get(name="Plain SPA").require_dpop is False


def test_the_thumbprint_hash_helpers_match_the_rfc_encoding():
    token = "Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"
    digest = base64.urlsafe_b64encode(hashlib.sha256(token.encode()).digest()).rstrip(b"=")
    assert dpop.access_token_hash(token) == digest.decode()
    # RFC 9449 §7.1's example: this token's ath.
    assert dpop.access_token_hash(token) == "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo"


def test_require_dpop_travels_in_the_registry_and_dropping_it_is_a_weakening(db, web_client):
    services.update_client(client=web_client, actor=None, changes={"require_dpop": True})
    web_client.refresh_from_db()
    assert web_client.require_dpop is True
    # An import that turns it off is refused unless forced (it weakens the client).
    assert_dropping_is_a_weakening(web_client, "require_dpop", "stops requiring DPoP-bound tokens")
