"""Acceptance, against a live server: a service registered with `manage.py clients create
--require-dpop` gets DPoP-bound tokens through the guide's client (docs/snippets/dpop_client.py:
requests and PyJWT only), answering the server's nonce challenge (RFC 9449 §8); an API reads the
binding at introspection; the bound token is refused without its proof."""

from __future__ import annotations

from http import HTTPStatus

import jwt
import pytest
import requests
from django.core.cache import cache

from oauth_clients.oidc import published
from oauth_clients.oidc.dpop import jwk_thumbprint
from tests.docs.conftest import load_snippet
from tests.oidc.test_jwt_acceptance import cli  # `clients create --json`, as an operator runs it

pytestmark = [pytest.mark.django_db(transaction=True)]

AUDIENCE = "https://orders.example.com/api"


@pytest.fixture
def provider(live_server, settings):
    """The live server is the issuer (a proof's `htu` names its URLs)."""
    settings.IDP_ISSUER = live_server.url
    settings.OAUTH2_PROVIDER = {**settings.OAUTH2_PROVIDER, "OIDC_ISS_ENDPOINT": live_server.url}
    published.forget()
    yield live_server.url
    cache.clear()
    published.forget()


@pytest.mark.spec("RFC 9449", "5")
@pytest.mark.spec("RFC 9449", "8")
def test_a_service_that_requires_dpop_gets_bound_tokens_through_the_guides_client(provider):
    api = cli("--kind=api", "--name=Orders API", f"--audience={AUDIENCE}")
    service = cli("--kind=service", "--name=Batch", "--require-dpop")
    assert service["require_dpop"] is True
    client = load_snippet("dpop_client").DPoPClient(
        provider, service["client_id"], service["client_secret"]
    )
    assert "ES256" in client.metadata["dpop_signing_alg_values_supported"]
    thumbprint = jwk_thumbprint(client.key.public_jwk)

    # A JWT for the API carries the key's thumbprint (RFC 9449 §6.1); the first request was
    # answered use_dpop_nonce and retried with the nonce.
    token = client.token(grant_type="client_credentials", resource=AUDIENCE)
    assert client.nonce
    assert jwt.decode(token["access_token"], options={"verify_signature": False})["cnf"] == {
        "jkt": thumbprint
    }
    introspection = requests.post(
        client.metadata["introspection_endpoint"],
        data={"token": token["access_token"]},
        auth=(api["client_id"], api["client_secret"]),
        timeout=10,
    ).json()
    assert introspection["active"] is True
    assert introspection["token_type"] == "DPoP"
    assert introspection["cnf"] == {"jkt": thumbprint}

    # An opaque token (no resource) is bound too: with its proof it passes the token check at
    # userinfo (403: a machine's token is for no person), as a bearer token it does not.
    opaque = client.token(grant_type="client_credentials")["access_token"]
    userinfo = client.metadata["userinfo_endpoint"]
    assert client.call("GET", userinfo, opaque).status_code == HTTPStatus.FORBIDDEN
    stolen = requests.get(userinfo, headers={"Authorization": f"Bearer {opaque}"}, timeout=10)
    assert stolen.status_code == HTTPStatus.UNAUTHORIZED
    assert stolen.headers["WWW-Authenticate"].startswith('DPoP error="invalid_token"')

    # Without a proof the service gets no token at all.
    refused = requests.post(
        client.token_endpoint,
        data={"grant_type": "client_credentials"},
        auth=client.auth,
        timeout=10,
    )
    assert refused.status_code == HTTPStatus.BAD_REQUEST
    assert refused.json()["error"] == "invalid_dpop_proof"
