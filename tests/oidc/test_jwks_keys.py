"""Signing keys: JWKS publishes every key with its kid, the ID token names its kid, rotation
keeps old keys published, pruning waits for the tokens to expire, deploy checks."""

from __future__ import annotations

import json
import time
from http import HTTPStatus
from io import StringIO
from unittest import mock

import pytest
import time_machine
from django.core.cache import cache
from django.core.management import call_command
from django.core.management.base import CommandError, SystemCheckError
from jwcrypto import jwk, jws, jwt

from accounts.models import AuditEvent
from oauth_clients import checks
from oauth_clients.keys import (
    generate_rsa_private_key_pem,
    key_files,
    key_id,
    read_signing_keys,
    write_new_key,
)
from oauth_clients.oidc import published
from oauth_clients.oidc.views import jwks as jwks_view

JWKS = "/.well-known/jwks.json"


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()
    published.forget()
    yield
    cache.clear()
    published.forget()


@pytest.fixture
def two_keys(settings) -> tuple[str, str]:
    """A rotation has happened: a new active key and the previous one still published."""
    new, old = generate_rsa_private_key_pem(), generate_rsa_private_key_pem()
    settings.OAUTH2_PROVIDER = {
        **settings.OAUTH2_PROVIDER,
        "OIDC_RSA_PRIVATE_KEY": new,
        "OIDC_RSA_PRIVATE_KEYS_INACTIVE": [old],
    }
    return new, old


@pytest.mark.spec("RFC 7517", "5")
def test_jwks_publishes_the_signing_key_with_its_kid(client, settings):
    response = client.get(JWKS)
    assert response.status_code == HTTPStatus.OK
    key, ec_key = response.json()["keys"]
    # The EC P-256 key of ES256 clients is published too, with its own kid.
    assert ec_key["kty"] == "EC"
    assert ec_key["crv"] == "P-256"
    assert ec_key["alg"] == "ES256"
    assert (
        ec_key["kid"]
        == key_id(settings.IDP_OIDC_EC_PRIVATE_KEYS[0])
        != key_id(settings.OAUTH2_PROVIDER["OIDC_RSA_PRIVATE_KEY"])
    )
    assert "d" not in ec_key
    assert key["kty"] == "RSA"
    assert key["alg"] == "RS256"
    assert key["use"] == "sig"
    assert key["kid"] == key_id(settings.OAUTH2_PROVIDER["OIDC_RSA_PRIVATE_KEY"])
    assert "d" not in key  # never the private part
    assert "p" not in key
    assert response["Access-Control-Allow-Origin"] == "*"
    assert "max-age=" in response["Cache-Control"]


@pytest.mark.spec("OIDC Core", "10.1.1")
def test_jwks_keeps_every_rotated_key_published(client, two_keys, settings):
    keys = client.get(JWKS).json()["keys"]
    ec = key_id(settings.IDP_OIDC_EC_PRIVATE_KEYS[0])
    assert [k["kid"] for k in keys] == [key_id(two_keys[0]), key_id(two_keys[1]), ec]
    assert all("d" not in k for k in keys)


@pytest.mark.spec("OIDC Core", "10.1")
def test_id_token_header_names_the_kid_it_verifies_with(
    client, web_client, run_code_flow, exchange_code, two_keys
):
    flow = run_code_flow(web_client)
    id_token = exchange_code(web_client, flow).json()["id_token"]
    token = jws.JWS()
    token.deserialize(id_token)
    header = token.jose_header
    assert header["alg"] == "RS256"
    assert header["kid"] == key_id(two_keys[0])  # the newest key signs

    published = jwk.JWKSet.from_json(client.get(JWKS).content)
    verified = jwt.JWT(jwt=id_token, key=published.get_key(header["kid"]), algs=["RS256"])
    assert json.loads(verified.claims)["aud"] == web_client.client_id


def test_jwks_is_cached_and_follows_key_changes(client, settings):
    with mock.patch(
        "oauth_clients.oidc.views.jwks.jwks_document", wraps=jwks_view.jwks_document
    ) as build:
        first = client.get(JWKS)
        assert client.get(JWKS).content == first.content
        assert build.call_count == 1
        settings.OAUTH2_PROVIDER = {
            **settings.OAUTH2_PROVIDER,
            "OIDC_RSA_PRIVATE_KEYS_INACTIVE": [generate_rsa_private_key_pem()],
        }
        assert len(client.get(JWKS).json()["keys"]) == 3  # two RSA keys and the EC key
        assert build.call_count == 2


def test_jwks_answers_if_none_match(client):
    etag = client.get(JWKS)["ETag"]
    assert client.get(JWKS, HTTP_IF_NONE_MATCH=etag).status_code == HTTPStatus.NOT_MODIFIED


# --- rotate_signing_key


@pytest.fixture
def key_dir(settings, tmp_path, monkeypatch):
    monkeypatch.delenv("IDP_OIDC_PRIVATE_KEY", raising=False)
    monkeypatch.delenv("IDP_OIDC_PRIVATE_KEY_FILE", raising=False)
    settings.IDP_SIGNING_KEY_DIR = tmp_path / "keys"
    return settings.IDP_SIGNING_KEY_DIR


def run(*args: str) -> str:
    out = StringIO()
    call_command("rotate_signing_key", *args, stdout=out)
    return out.getvalue()


def test_rotate_writes_a_new_key_that_signs_from_next_start(db, key_dir):
    first = write_new_key(key_dir)
    output = run()
    files = key_files(key_dir)
    assert len(files) == 2
    assert files[1] == first
    assert (files[0].stat().st_mode & 0o777) == 0o600
    # What the next process start reads: the new key first, the old one still published.
    pems = read_signing_keys(key_dir=key_dir)
    assert pems[0] == files[0].read_text()
    assert pems[1] == first.read_text()
    assert key_id(pems[0]) in output
    event = AuditEvent.objects.get(type=AuditEvent.Type.SIGNING_KEY_ROTATED)
    assert event.extra["new_kid"] == key_id(pems[0])
    assert event.extra["published"] == 2


def test_prune_removes_only_keys_retired_longer_than_the_token_lifetime(db, key_dir, settings):
    lifetime = settings.OAUTH2_PROVIDER["ID_TOKEN_EXPIRE_SECONDS"]
    start = time.time()
    with time_machine.travel(start, tick=False):
        oldest = write_new_key(key_dir)
    with time_machine.travel(start + 10, tick=False):
        middle = write_new_key(key_dir)
    with time_machine.travel(start + lifetime + 5, tick=False):
        run("--prune-older-than", str(lifetime))
    # `oldest` was retired when `middle` was written (start+10): not long enough ago yet.
    assert oldest.exists()
    assert middle.exists()
    with time_machine.travel(start + lifetime + 11, tick=False):
        run("--prune-only", "--prune-older-than", str(lifetime))
    assert not oldest.exists()
    assert middle.exists()
    assert len(key_files(key_dir)) == 2  # the key the rotation wrote, and middle
    assert AuditEvent.objects.filter(type=AuditEvent.Type.SIGNING_KEY_ROTATED).count() == 2


def test_prune_refuses_a_window_shorter_than_the_longest_id_token_lifetime(db, key_dir, web_client):
    web_client.id_token_lifetime = 7200
    web_client.save(update_fields=["id_token_lifetime"])
    write_new_key(key_dir)
    with pytest.raises(CommandError, match="at least 7200"):
        run("--prune-older-than", "3600")
    assert len(key_files(key_dir)) == 1
    assert not AuditEvent.objects.exists()


def test_rotate_refuses_when_the_key_comes_from_the_environment(db, key_dir, monkeypatch):
    monkeypatch.setenv("IDP_OIDC_PRIVATE_KEY_FILE", "/run/secrets/oidc.pem")
    with pytest.raises(CommandError, match="IDP_OIDC_PRIVATE_KEY"):
        run()
    assert key_files(key_dir) == []


# --- deploy checks


def check_ids(settings, **overrides) -> set[str]:
    settings.OAUTH2_PROVIDER = {**settings.OAUTH2_PROVIDER, **overrides}
    return {error.id for error in checks.check_provider_security()}


def test_secure_configuration_passes_the_checks(settings):
    assert check_ids(settings) == set()


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"OIDC_RSA_PRIVATE_KEY": ""}, "oauth_clients.E001"),
        ({"PKCE_REQUIRED": False}, "oauth_clients.E002"),
        ({"COMPLIANT_BCP_RFC9700_IMPLICIT_GRANT": False}, "oauth_clients.E003"),
        ({"COMPLIANT_BCP_RFC9700_PASSWORD_GRANT": False}, "oauth_clients.E003"),
        ({"COMPLIANT_BCP_RFC9700_PKCE_METHOD": False}, "oauth_clients.E004"),
        ({"COMPLIANT_BCP_RFC9700_TOKEN_STORAGE": False}, "oauth_clients.E005"),
        ({"REFRESH_TOKEN_REUSE_PROTECTION": False}, "oauth_clients.E006"),
    ],
)
def test_insecure_configuration_fails_the_checks(settings, overrides, expected):
    assert expected in check_ids(settings, **overrides)


def test_check_deploy_fails_without_a_signing_key(settings):
    settings.OAUTH2_PROVIDER = {**settings.OAUTH2_PROVIDER, "OIDC_RSA_PRIVATE_KEY": ""}
    with pytest.raises(SystemCheckError, match=r"oauth_clients\.E001"):
        call_command("check", "--deploy", "--tag", "security", stdout=StringIO())
