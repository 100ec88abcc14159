"""ES256 ID tokens for the clients that take them (Client.algorithm); RS256 stays the default.

DOT signs with RS256 (one RSA key) or HS256 only; we add an EC P-256 key in the key directory
(`ec/`), published in JWKS with its own kid (RFC 7518 §3.4, RFC 7517 §4.5).
"""

from __future__ import annotations

import json
from http import HTTPStatus

import pytest
from django.core.cache import cache
from django.core.exceptions import ValidationError
from jwcrypto import jwk, jws, jwt

from oauth_clients.keys import (
    ES256,
    generate_ec_private_key_pem,
    key_id,
    read_signing_keys,
    write_new_key,
)
from oauth_clients.models import Client
from oauth_clients.oidc.authorization_policy import decode_id_token
from tests.oidc.conftest import WEB_REDIRECT_URI, make_client

JWKS = "/.well-known/jwks.json"
DISCOVERY = "/.well-known/openid-configuration"


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def es256_client(db) -> Client:
    return make_client(
        name="Modern App",
        client_id="modern-app",
        secret="modern-secret-" + "m" * 30,
        redirect_uris=WEB_REDIRECT_URI,
        grant_types=[Client.GRANT_AUTHORIZATION_CODE, "refresh_token"],
        allowed_scopes="openid profile email offline_access",
        is_trusted=True,
        algorithm=Client.ES256_ALGORITHM,
    )


def header_of(token: str) -> dict:
    parsed = jws.JWS()
    parsed.deserialize(token)
    return parsed.jose_header


def verify_with_jwks(client, token: str, alg: str) -> dict:
    published = jwk.JWKSet.from_json(client.get(JWKS).content)
    key = published.get_key(header_of(token)["kid"])
    return json.loads(jwt.JWT(jwt=token, key=key, algs=[alg]).claims)


@pytest.mark.spec("OIDC Core", "10.1")
def test_an_es256_client_gets_es256_id_tokens_verifiable_with_jwks(
    client, es256_client, issue_tokens, settings
):
    tokens = issue_tokens(es256_client)
    header = header_of(tokens["id_token"])
    assert header["alg"] == "ES256"
    assert header["kid"] == key_id(settings.IDP_OIDC_EC_PRIVATE_KEYS[0])
    claims = verify_with_jwks(client, tokens["id_token"], "ES256")
    assert claims["aud"] == es256_client.client_id


@pytest.mark.spec("OIDC Core", "12.2")
def test_refreshed_id_tokens_keep_the_clients_algorithm(
    client, es256_client, issue_tokens, token_endpoint
):
    from tests.oidc.conftest import basic_auth, post_form

    first = issue_tokens(es256_client)
    response = post_form(
        client,
        token_endpoint,
        {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
        HTTP_AUTHORIZATION=basic_auth(es256_client.client_id, es256_client.test_secret),
    )
    assert response.status_code == HTTPStatus.OK, response.content
    assert header_of(response.json()["id_token"])["alg"] == "ES256"
    verify_with_jwks(client, response.json()["id_token"], "ES256")


def test_rs256_stays_the_default(client, web_client, issue_tokens):
    assert web_client.algorithm == Client.RS256_ALGORITHM
    tokens = issue_tokens(web_client)
    assert header_of(tokens["id_token"])["alg"] == "RS256"
    verify_with_jwks(client, tokens["id_token"], "RS256")


def test_an_es256_id_token_is_a_valid_id_token_hint(es256_client, issue_tokens):
    tokens = issue_tokens(es256_client)
    claims = decode_id_token(tokens["id_token"], issuer=None, accept_expired=True)
    assert claims is not None
    assert claims["aud"] == es256_client.client_id


def test_an_id_token_signed_with_an_unpublished_ec_key_is_refused(es256_client, issue_tokens):
    foreign = jwk.JWK.from_pem(generate_ec_private_key_pem().encode())
    forged = jwt.JWT(
        header={"alg": "ES256", "kid": foreign.thumbprint()},
        claims={"sub": "1", "aud": es256_client.client_id},
    )
    forged.make_signed_token(foreign)
    assert decode_id_token(forged.serialize(), issuer=None, accept_expired=True) is None


def test_discovery_lists_es256_only_with_an_ec_key(client, settings):
    assert client.get(DISCOVERY).json()["id_token_signing_alg_values_supported"] == [
        "RS256",
        "ES256",
    ]
    settings.IDP_OIDC_EC_PRIVATE_KEYS = []
    cache.clear()
    assert client.get(DISCOVERY).json()["id_token_signing_alg_values_supported"] == ["RS256"]


def test_es256_is_refused_for_a_client_without_an_ec_key(es256_client, settings):
    es256_client.full_clean(exclude=["client_secret"])
    settings.IDP_OIDC_EC_PRIVATE_KEYS = []
    with pytest.raises(ValidationError) as error:
        es256_client.full_clean(exclude=["client_secret"])
    assert "algorithm" in error.value.message_dict


def test_hs256_is_not_offered(web_client):
    web_client.algorithm = "HS256"
    with pytest.raises(ValidationError) as error:
        web_client.full_clean(exclude=["client_secret"])
    assert "algorithm" in error.value.message_dict


def test_ec_keys_live_in_their_own_directory_newest_first(tmp_path):
    key_dir = tmp_path / "keys"
    assert read_signing_keys(key_dir=key_dir, algorithm=ES256, generate=True)
    newer = write_new_key(key_dir, algorithm=ES256)
    assert newer.parent == key_dir / "ec"
    pems = read_signing_keys(key_dir=key_dir, algorithm=ES256)
    assert len(pems) == 2
    assert pems[0] == newer.read_text()
    assert read_signing_keys(key_dir=key_dir) == []  # the RSA keys are elsewhere
    assert jwk.JWK.from_pem(pems[0].encode())["crv"] == "P-256"


def test_rotate_signing_key_writes_an_ec_key_for_es256(db, settings, tmp_path, monkeypatch):
    from io import StringIO

    from django.core.management import call_command

    from accounts.models import AuditEvent
    from oauth_clients.keys import key_files

    monkeypatch.delenv("IDP_OIDC_EC_PRIVATE_KEY", raising=False)
    monkeypatch.delenv("IDP_OIDC_EC_PRIVATE_KEY_FILE", raising=False)
    settings.IDP_SIGNING_KEY_DIR = tmp_path / "keys"
    out = StringIO()
    call_command("rotate_signing_key", "--algorithm", "ES256", stdout=out)
    (path,) = key_files(tmp_path / "keys" / "ec")
    assert key_files(tmp_path / "keys") == []  # the RSA keys are untouched
    assert jwk.JWK.from_pem(path.read_bytes())["crv"] == "P-256"
    assert key_id(path.read_text()) in out.getvalue()
    event = AuditEvent.objects.get(type=AuditEvent.Type.SIGNING_KEY_ROTATED)
    assert event.extra["algorithm"] == "ES256"


def test_the_database_check_flags_es256_clients_once_the_ec_key_is_gone(
    es256_client, web_client, settings
):
    from django.core.checks import run_checks

    assert not [e for e in run_checks(databases=["default"]) if e.id == "oauth_clients.E007"]
    settings.IDP_OIDC_EC_PRIVATE_KEYS = []
    (error,) = [e for e in run_checks(databases=["default"]) if e.id == "oauth_clients.E007"]
    assert es256_client.client_id in error.msg
    assert web_client.client_id not in error.msg  # RS256 clients are fine
    # Not among the settings-only checks (no database is read without --database).
    assert not [e for e in run_checks() if e.id == "oauth_clients.E007"]


def test_the_database_check_is_quiet_without_es256_clients(web_client, settings):
    from django.core.checks import run_checks

    settings.IDP_OIDC_EC_PRIVATE_KEYS = []
    assert not [e for e in run_checks(databases=["default"]) if e.id == "oauth_clients.E007"]
