"""The high-security profile (FAPI 2.0 Security Profile) and DPoP code binding (RFC 9449 §10).

The positive path first: a high-security client pushes its request (PAR) with a private_key_jwt
assertion and a DPoP proof, the person signs in, the client redeems the code with PKCE, its
assertion and a proof of the same key (after the server's nonce), and uses the bound token at
userinfo and introspection. Then each missing part, refused in the protocol's format; a code
bound with `dpop_jkt` redeemed with another key; unbound tokens of a high-security app.
"""

from __future__ import annotations

from datetime import timedelta
from http import HTTPStatus
from typing import Any

import pytest
from django.conf import settings
from django.test import Client as HttpClient
from django.urls import reverse

from accounts.models import AuditEvent
from oauth_clients import services
from oauth_clients.models import AccessToken, Client, Grant
from oauth_clients.oidc import dpop
from tests.oidc.authorize_helpers import AUTHORIZE_URL, authorization_params, redirect_query
from tests.oidc.conftest import basic_auth, pkce_pair, post_form
from tests.oidc.pkjwt_helpers import ASSERTION_TYPE, ClientKey, jwks_of
from tests.oidc.test_dpop import Key, dpop_header
from tests.oidc.test_par import authorize_url, signed_in

PAR_PATH = "/o/par/"
TOKEN_PATH = "/o/token/"
INTROSPECT_PATH = "/o/introspect/"
REDIRECT_URI = "https://bank.example.com/callback"


class HighSecurityApp:
    """A high-security client and what it holds: its signing key (private_key_jwt) and its
    DPoP key, with the requests a FAPI 2.0 client library makes."""

    def __init__(self, client: Client, signing_key: ClientKey) -> None:
        self.client = client
        self.signing_key = signing_key
        self.dpop_key = Key()

    def credentials(self, *, audience: str | None = None) -> dict[str, str]:
        assertion = self.signing_key.assertion(
            self.client.client_id, audience or settings.IDP_ISSUER
        )
        return {"client_assertion_type": ASSERTION_TYPE, "client_assertion": assertion}

    def push(self, params: dict[str, str], *, proof: bool = True, **headers: str) -> Any:
        if proof:
            headers.setdefault("HTTP_DPOP", self.dpop_key.proof(path=PAR_PATH))
        return post_form(HttpClient(), PAR_PATH, {**params, **self.credentials()}, **headers)

    def token(self, data: dict[str, str], *, key: Key | None = None, nonce: str = "") -> Any:
        headers = {}
        if key is not None:
            claims = {"nonce": nonce} if nonce else {}
            headers = dpop_header(key.proof(claims=claims))
        return post_form(HttpClient(), TOKEN_PATH, {**data, **self.credentials()}, **headers)


@pytest.fixture
def bank(admin_user) -> HighSecurityApp:
    signing_key = ClientKey.ec()
    client, secret = services.register_client(
        actor=admin_user,
        kind=Client.Kind.WEB,
        name="Bank",
        client_id="bank",
        redirect_uris=[REDIRECT_URI],
        is_trusted=True,
        jwks=jwks_of(signing_key),
        high_security=True,
    )
    assert secret == ""
    return HighSecurityApp(client, signing_key)


def code_for(bank: HighSecurityApp, user: Any, **overrides: Any) -> tuple[str, str]:
    """Push, sign in, get the code: (code, PKCE verifier)."""
    verifier, challenge = pkce_pair()
    params = authorization_params(bank.client, code_challenge=challenge, **overrides)
    pushed = bank.push(params)
    assert pushed.status_code == HTTPStatus.CREATED, pushed.content
    query = redirect_query(
        signed_in(user).get(authorize_url("bank", pushed.json()["request_uri"])), REDIRECT_URI
    )
    assert query["iss"] == settings.IDP_ISSUER  # RFC 9207
    return query["code"], verifier


def code_data(code: str, verifier: str) -> dict[str, str]:
    return {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT_URI,
        "code_verifier": verifier,
    }


def exchanged(bank: HighSecurityApp, code: str, verifier: str) -> dict[str, Any]:
    """The exchange as a DPoP client library makes it: a proof, the server's nonce, again."""
    first = bank.token(code_data(code, verifier), key=bank.dpop_key)
    assert first.status_code == HTTPStatus.BAD_REQUEST, first.content
    assert first.json()["error"] == "use_dpop_nonce"
    response = bank.token(code_data(code, verifier), key=bank.dpop_key, nonce=first["DPoP-Nonce"])
    assert response.status_code == HTTPStatus.OK, response.content
    return response.json()


# --------------------------------------------------------------------------- the positive path


@pytest.mark.spec("FAPI 2.0 Security Profile", "5.3.2.1")
@pytest.mark.spec("FAPI 2.0 Security Profile", "5.3.2.2")
@pytest.mark.spec("RFC 9449", "10.1")
def test_a_high_security_client_completes_par_pkce_private_key_jwt_and_dpop(bank, user, client):
    code, verifier = code_for(bank, user)
    grant = Grant.objects.get(application=bank.client)
    # RFC 9449 §10.1: the push's proof bound the code to the DPoP key; it lives ≤ 60 s.
    assert grant.dpop_jkt == bank.dpop_key.jkt
    assert grant.expires - grant.created <= timedelta(seconds=60)
    assert grant.code_challenge_method == "S256"

    tokens = exchanged(bank, code, verifier)
    assert tokens["token_type"] == "DPoP"
    assert AccessToken.objects.get(application=bank.client).dpop_jkt == bank.dpop_key.jkt

    access_token = tokens["access_token"]
    info = client.get(
        reverse("oauth2_provider:user-info"),
        HTTP_AUTHORIZATION=f"DPoP {access_token}",
        HTTP_DPOP=bank.dpop_key.proof(method="GET", path="/o/userinfo/", access_token=access_token),
    )
    assert info.status_code == HTTPStatus.OK, info.content
    assert info.json()["sub"] == str(user.pk)

    introspection = post_form(
        client, INTROSPECT_PATH, {"token": access_token, **bank.credentials()}
    ).json()
    assert introspection["active"] is True
    assert introspection["cnf"] == {"jkt": bank.dpop_key.jkt}


@pytest.mark.spec("RFC 9449", "10")
def test_dpop_jkt_in_the_pushed_request_binds_the_code_without_a_proof_at_par(bank, user):
    code, verifier = code_for_jkt(bank, user, bank.dpop_key.jkt)
    assert exchanged(bank, code, verifier)["token_type"] == "DPoP"


def code_for_jkt(bank: HighSecurityApp, user: Any, jkt: str) -> tuple[str, str]:
    verifier, challenge = pkce_pair()
    params = authorization_params(bank.client, code_challenge=challenge, dpop_jkt=jkt)
    pushed = bank.push(params, proof=False)
    assert pushed.status_code == HTTPStatus.CREATED, pushed.content
    query = redirect_query(
        signed_in(user).get(authorize_url("bank", pushed.json()["request_uri"])), REDIRECT_URI
    )
    return query["code"], verifier


@pytest.mark.spec("RFC 9449", "10")
def test_dpop_jkt_at_the_authorization_endpoint_binds_any_clients_code(web_client, run_code_flow):
    key = Key()
    flow = run_code_flow(web_client, extra={"dpop_jkt": key.jkt})
    assert Grant.objects.get(application=web_client).dpop_jkt == key.jkt
    data = flow.token_data()
    auth = basic_auth(web_client.client_id, web_client.test_secret)
    response = post_form(
        HttpClient(), TOKEN_PATH, data, HTTP_AUTHORIZATION=auth, **dpop_header(key.proof())
    )
    assert response.status_code == HTTPStatus.OK, response.content
    assert response.json()["token_type"] == "DPoP"


# --------------------------------------------------------------------------- each part missing


@pytest.mark.spec("RFC 9449", "10")
def test_a_bound_code_redeemed_with_another_key_or_none_is_invalid_grant(web_client, run_code_flow):
    key, other = Key(), Key()
    flow = run_code_flow(web_client, extra={"dpop_jkt": key.jkt})
    auth = basic_auth(web_client.client_id, web_client.test_secret)
    data = flow.token_data()
    for headers in (dpop_header(other.proof()), {}):
        response = post_form(HttpClient(), TOKEN_PATH, data, HTTP_AUTHORIZATION=auth, **headers)
        assert response.status_code == HTTPStatus.BAD_REQUEST, response.content
        assert response.json()["error"] == "invalid_grant"
    assert AccessToken.objects.count() == 0
    assert AuditEvent.objects.filter(
        type=AuditEvent.Type.TOKEN_REPLAY,
        extra__reason="DPoP-bound authorization code without its key's proof",
    ).exists()
    # The code was not spent by the refusals: its holder redeems it with the bound key.
    response = post_form(
        HttpClient(), TOKEN_PATH, data, HTTP_AUTHORIZATION=auth, **dpop_header(key.proof())
    )
    assert response.status_code == HTTPStatus.OK, response.content


@pytest.mark.spec("RFC 9449", "10")
def test_a_malformed_dpop_jkt_is_invalid_request(web_client, user):
    params = authorization_params(web_client, dpop_jkt="not-a-thumbprint")
    query = redirect_query(signed_in(user).get(AUTHORIZE_URL, params), params["redirect_uri"])
    assert query["error"] == "invalid_request"
    assert "dpop_jkt" in query["error_description"]


@pytest.mark.spec("RFC 9449", "10.1")
def test_a_pushed_dpop_jkt_naming_another_key_than_the_proof_is_refused(bank):
    params = authorization_params(bank.client, dpop_jkt=Key().jkt)
    response = bank.push(params)
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json()["error"] == "invalid_dpop_proof"


@pytest.mark.spec("RFC 9449", "10.1")
def test_an_invalid_proof_at_par_is_invalid_dpop_proof(bank):
    proof = bank.dpop_key.proof(path=TOKEN_PATH)  # made for another endpoint
    response = bank.push(authorization_params(bank.client), HTTP_DPOP=proof)
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json()["error"] == "invalid_dpop_proof"


@pytest.mark.spec("FAPI 2.0 Security Profile", "5.3.2.2")
def test_a_high_security_client_is_refused_a_plain_authorization_request(bank, user):
    params = authorization_params(bank.client)
    query = redirect_query(signed_in(user).get(AUTHORIZE_URL, params), REDIRECT_URI)
    assert query["error"] == "invalid_request"
    assert "pushed" in query["error_description"]
    assert "code" not in query


@pytest.mark.spec("FAPI 2.0 Security Profile", "5.3.2.2")
@pytest.mark.parametrize(
    ("overrides", "proof", "words"),
    [
        ({"code_challenge": None, "code_challenge_method": None}, True, "code challenge"),
        ({"code_challenge_method": "plain"}, True, "S256"),
        # §5.3.2.2: the pushed request names its redirect URI (every client's must, here).
        ({"redirect_uri": None, "scope": "profile"}, True, "redirect uri"),
        ({}, False, "DPoP key"),
    ],
    ids=["no-pkce", "plain-pkce", "no-redirect-uri", "no-dpop-binding"],
)
def test_a_high_security_push_missing_a_part_is_invalid_request(bank, overrides, proof, words):
    response = bank.push(authorization_params(bank.client, **overrides), proof=proof)
    assert response.status_code == HTTPStatus.BAD_REQUEST, response.content
    assert response.json()["error"] == "invalid_request"
    assert words.lower() in response.json()["error_description"].lower()


@pytest.mark.spec("FAPI 2.0 Security Profile", "5.3.2.1")
def test_a_high_security_client_authenticates_only_with_a_strict_assertion(bank):
    params = authorization_params(bank.client)
    assert bank.push(params).status_code == HTTPStatus.CREATED

    rsa_key = ClientKey.rsa()  # RS256: not a FAPI 2.0 algorithm (§5.4.1)
    services.update_client(
        client=bank.client, actor=None, changes={"jwks": jwks_of(bank.signing_key, rsa_key)}
    )
    refusals = [
        # the token endpoint's URL as aud: only the issuer identifier is accepted
        bank.credentials(audience=f"{settings.IDP_ISSUER}/o/par/"),
        {
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": rsa_key.assertion("bank", settings.IDP_ISSUER),
        },
        # a shared secret: the app has none, and would not be accepted
        {"client_id": "bank", "client_secret": "anything"},
    ]
    for credentials in refusals:
        response = post_form(
            HttpClient(),
            PAR_PATH,
            {**params, **credentials},
            HTTP_DPOP=bank.dpop_key.proof(path=PAR_PATH),
        )
        assert response.status_code == HTTPStatus.UNAUTHORIZED, credentials
        assert response.json()["error"] == "invalid_client"


@pytest.mark.spec("FAPI 2.0 Security Profile", "5.3.2.1")
@pytest.mark.spec("RFC 9449", "5")
def test_a_high_security_token_request_without_a_proof_is_refused(bank, user):
    code, verifier = code_for(bank, user)
    response = bank.token(code_data(code, verifier))
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json()["error"] == "invalid_dpop_proof"
    rs256 = Key("RS256")  # FAPI 2.0 §5.4.1: not PS256, ES256 or EdDSA
    refused = bank.token(code_data(code, verifier), key=rs256, nonce=dpop.current_nonce())
    assert refused.json()["error"] == "invalid_dpop_proof"
    assert "alg" in refused.json()["error_description"]
    # Another key than the one the code is bound to: invalid_grant (RFC 9449 §10).
    other = bank.token(code_data(code, verifier), key=Key(), nonce=dpop.current_nonce())
    assert other.json()["error"] == "invalid_grant"
    assert exchanged(bank, code, verifier)["token_type"] == "DPoP"


@pytest.mark.spec("FAPI 2.0 Security Profile", "5.3.2.1")
def test_unbound_tokens_of_an_app_switched_to_high_security_are_refused(admin_user, user, client):
    signing_key = ClientKey.ec()
    app, _secret = services.register_client(
        actor=admin_user,
        kind=Client.Kind.WEB,
        name="Ledger",
        client_id="ledger",
        redirect_uris=[REDIRECT_URI],
        is_trusted=True,
        jwks=jwks_of(signing_key),
    )
    ledger = HighSecurityApp(app, signing_key)
    verifier, challenge = pkce_pair()
    params = authorization_params(app, code_challenge=challenge)
    query = redirect_query(signed_in(user).get(AUTHORIZE_URL, params), REDIRECT_URI)
    tokens = ledger.token(code_data(query["code"], verifier))
    assert tokens.status_code == HTTPStatus.OK, tokens.content
    access_token = tokens.json()["access_token"]
    assert tokens.json()["token_type"] == "Bearer"
    userinfo = reverse("oauth2_provider:user-info")
    assert client.get(userinfo, HTTP_AUTHORIZATION=f"Bearer {access_token}").status_code == 200

    services.update_client(client=app, actor=admin_user, changes={"high_security": True})

    refused = client.get(userinfo, HTTP_AUTHORIZATION=f"Bearer {access_token}")
    assert refused.status_code == HTTPStatus.UNAUTHORIZED
    assert 'error="invalid_token"' in refused["WWW-Authenticate"]
    introspection = post_form(
        client, INTROSPECT_PATH, {"token": access_token, **ledger.credentials()}
    )
    assert introspection.json() == {"active": False}


@pytest.mark.spec("FAPI 2.0 Security Profile", "5.3.2.1")
def test_an_unbound_jwt_of_an_app_switched_to_high_security_is_inactive_at_introspection(
    admin_user, client, django_capture_on_commit_callbacks
):
    api, api_secret = services.register_client(
        actor=admin_user,
        kind=Client.Kind.API,
        name="Payments API",
        audience="https://payments.example.com/api",
    )
    signing_key = ClientKey.ec()
    service, _secret = services.register_client(
        actor=admin_user, kind=Client.Kind.SERVICE, name="Payer", jwks=jwks_of(signing_key)
    )
    payer = HighSecurityApp(service, signing_key)
    response = payer.token({"grant_type": "client_credentials", "resource": api.audience})
    assert response.status_code == HTTPStatus.OK, response.content
    token = response.json()["access_token"]
    assert response.json()["token_type"] == "Bearer"

    def introspect() -> dict[str, Any]:
        auth = basic_auth(api.client_id, api_secret)
        return post_form(client, INTROSPECT_PATH, {"token": token}, HTTP_AUTHORIZATION=auth).json()

    assert introspect()["active"] is True
    with django_capture_on_commit_callbacks(execute=True):
        services.update_client(client=service, actor=admin_user, changes={"high_security": True})
    assert introspect() == {"active": False}
    # From now on the service gets bound tokens only: a request without a proof is refused.
    refused = payer.token({"grant_type": "client_credentials", "resource": api.audience})
    assert refused.json()["error"] == "invalid_dpop_proof"
