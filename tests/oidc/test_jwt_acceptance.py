"""Acceptance, against a live server and with independent libraries only: an API and a client
registered with `manage.py clients create` (`--kind api --audience`, `--jwks FILE`); the client
authenticates with Authlib's `PrivateKeyJWT` and gets an RFC 9068 token, which a resource server
built on PyJWT's `PyJWKClient` (docs/snippets/jwt_resource_server.py) verifies from JWKS alone —
before, during and after `manage.py rotate_signing_key --stage/--activate`, with no failure:
with a key directory (each step read at a restart) and with the database key store, rotated
while the server runs and never restarted."""

from __future__ import annotations

import json
import time
from io import StringIO

import jwt
import pytest
import requests
import time_machine
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc7523 import PrivateKeyJWT
from cryptography.fernet import Fernet
from django.core.cache import cache
from django.core.management import call_command
from oauth2_provider.settings import oauth2_settings

from oauth_clients import key_store
from oauth_clients.keys import write_new_key
from oauth_clients.oidc import published
from tests.docs.conftest import load_snippet
from tests.oidc.pkjwt_helpers import ClientKey, jwks_of
from tests.oidc.test_key_rollover import ENV_NAMES, restart, rotate

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.filterwarnings("ignore:authlib.jose module is deprecated"),
]

AUDIENCE = "https://orders.example.com/api"


@pytest.fixture(params=["files", "database"])
def provider(request, live_server, settings, tmp_path, monkeypatch):
    """The live server is the issuer, signing with a key directory `rotate_signing_key` uses
    (read at a process start: `restart`), or with database keys it rotates while the server
    runs (oauth_clients/key_store.py: no restart)."""
    settings.IDP_ISSUER = live_server.url
    settings.OAUTH2_PROVIDER = {**settings.OAUTH2_PROVIDER, "OIDC_ISS_ENDPOINT": live_server.url}
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    settings.IDP_SIGNING_KEY_DIR = tmp_path / "keys"
    settings.IDP_SIGNING_KEY_STORE = request.param
    if request.param == "database":
        settings.IDP_KEY_ENCRYPTION_KEY = [Fernet.generate_key().decode()]
        settings.IDP_SIGNING_KEYS_FROM_ENVIRONMENT = []
        rotate("--auto")
    else:
        write_new_key(settings.IDP_SIGNING_KEY_DIR)
        restart(settings)
    yield request.param
    cache.clear()
    published.forget()
    key_store.forget()


def restart_if_files(settings, store: str) -> None:
    """A key directory is read at start; the database keys need no restart."""
    if store == "files":
        restart(settings)


def cli(*args: str) -> dict:
    out = StringIO()
    call_command("clients", "create", *args, "--json", stdout=out, stderr=StringIO())
    return json.loads(out.getvalue())


@pytest.mark.spec("RFC 9068", "4")
@pytest.mark.spec("RFC 7523", "2.2")
@pytest.mark.spec("OIDC Core", "10.1.1")
def test_an_api_verifies_tokens_of_a_private_key_jwt_client_across_a_key_rotation(
    provider, live_server, settings, tmp_path
):
    store, provider = provider, live_server.url
    api = cli("--kind=api", "--name=Orders API", f"--audience={AUDIENCE}")
    assert api["audience"] == AUDIENCE
    key = ClientKey.rsa(kid="batch-2026")
    keys_file = tmp_path / "batch-jwks.json"
    keys_file.write_text(json.dumps(jwks_of(key)))
    batch = cli("--kind=service", "--name=Batch", f"--jwks={keys_file}")
    assert batch["client_secret"] == ""
    assert batch["jwks"] == jwks_of(key)

    metadata = requests.get(f"{provider}/.well-known/openid-configuration", timeout=10).json()
    token_endpoint = metadata["token_endpoint"]
    assert "private_key_jwt" in metadata["token_endpoint_auth_methods_supported"]
    session = OAuth2Session(
        client_id=batch["client_id"],
        client_secret=key.private_pem(),
        token_endpoint_auth_method=PrivateKeyJWT(token_endpoint, headers={"kid": key.kid}),
    )

    def new_token() -> str:
        token = session.fetch_token(
            token_endpoint, grant_type="client_credentials", resource=AUDIENCE
        )
        assert token["expires_in"] == 300
        return str(token["access_token"])

    resource_server = load_snippet("jwt_resource_server").JwtValidator(provider, AUDIENCE)
    before = new_token()
    claims = resource_server.validate(f"Bearer {before}")
    assert claims["client_id"] == claims["sub"] == batch["client_id"]
    assert claims["iss"] == provider
    # A second assertion from Authlib carries a fresh jti: accepted (only a replay is refused).
    assert resource_server.validate(f"Bearer {new_token()}")["jti"] != claims["jti"]

    # Stage the next key: published, not signing. The API's key cache (PyJWKClient, `lifespan`
    # no longer than the IdP's JWKS max-age) expires meanwhile and fetches the set again.
    rotate("--stage")
    restart_if_files(settings, store)
    staged_tokens = [new_token() for _ in range(3)]
    for token in [before, *staged_tokens]:
        resource_server.validate(f"Bearer {token}")
    resource_server.keys.get_jwk_set(refresh=True)

    # Activate once the JWKS caches have expired: the new key signs, the old stays published.
    with time_machine.travel(time.time() + int(oauth2_settings.OIDC_JWKS_MAX_AGE_SECONDS) + 1):
        rotate("--activate")
    restart_if_files(settings, store)
    after = new_token()
    assert jwt.get_unverified_header(after)["kid"] != jwt.get_unverified_header(before)["kid"]

    # Every token verifies with the keys the API already holds: PyJWKClient refetches at most
    # once per cooldown, so a key it had not seen before would have failed here.
    def no_fetch() -> None:
        raise AssertionError("the API had to fetch JWKS again")

    resource_server.keys.fetch_data = no_fetch
    for token in [before, *staged_tokens, after]:
        assert resource_server.validate(f"Bearer {token}")["aud"] == AUDIENCE
    with pytest.raises(Exception, match=r"(?i)audience"):
        load_snippet("jwt_resource_server").JwtValidator(
            provider, "https://other.example"
        ).validate(f"Bearer {after}")
