"""Key rollover with a published next key: `rotate_signing_key --stage` publishes the next key
without signing with it, `--activate` makes it sign while the old one stays published, `--retire`
removes the old one once its tokens have expired; the environment's equivalent."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from io import StringIO
from pathlib import Path

import pytest
import time_machine
from django.core.cache import cache
from django.core.management import call_command
from django.core.management.base import CommandError
from jwcrypto import jwk, jws, jwt
from oauth2_provider.settings import oauth2_settings

from accounts.models import AuditEvent
from oauth_clients.key_store import published_pems, signing_pem
from oauth_clients.keys import (
    ES256,
    generate_ec_private_key_pem,
    generate_rsa_private_key_pem,
    key_files,
    key_id,
    read_key_set,
    staged_key_files,
    write_new_key,
)
from oauth_clients.oidc import published

JWKS = "/.well-known/jwks.json"
ENV_NAMES = [
    f"IDP_OIDC_{kind}{role}PRIVATE_KEY{suffix}"
    for kind in ("", "EC_")
    for role in ("", "NEXT_", "PREVIOUS_")
    for suffix in ("", "_FILE")
]


def restart(settings, environ: Mapping[str, str] | None = None) -> None:
    """What a process start reads (idp/settings.py): the key sets of the key directory."""
    key_dir = settings.IDP_SIGNING_KEY_DIR
    rsa = read_key_set(key_dir=key_dir, environ=environ or {})
    ec = read_key_set(key_dir=key_dir, environ=environ or {}, algorithm=ES256)
    settings.OAUTH2_PROVIDER = {
        **settings.OAUTH2_PROVIDER,
        "OIDC_RSA_PRIVATE_KEY": rsa.current,
        "OIDC_RSA_PRIVATE_KEYS_INACTIVE": list(rsa.previous),
    }
    settings.IDP_OIDC_NEXT_PRIVATE_KEYS = list(rsa.next)
    settings.IDP_OIDC_EC_PRIVATE_KEYS = ec.signing_and_previous
    settings.IDP_OIDC_EC_NEXT_PRIVATE_KEYS = list(ec.next)
    cache.clear()
    published.forget()


def rotate(*args: str) -> str:
    out = StringIO()
    call_command("rotate_signing_key", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def key_dir(settings, tmp_path, monkeypatch) -> Path:
    """A key directory with one RSA key signing (no key from the environment)."""
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    settings.IDP_SIGNING_KEY_DIR = tmp_path / "keys"
    write_new_key(settings.IDP_SIGNING_KEY_DIR)
    restart(settings)
    yield settings.IDP_SIGNING_KEY_DIR
    cache.clear()
    published.forget()


def staged_kid(key_dir: Path) -> str:
    (path,) = staged_key_files(key_dir)
    return key_id(path.read_text())


def id_token_kid(id_token: str) -> str:
    token = jws.JWS()
    token.deserialize(id_token)
    return str(token.jose_header["kid"])


def jwks_kids(client) -> list[str]:
    return [key["kid"] for key in client.get(JWKS).json()["keys"]]


def steps() -> list[str]:
    return list(
        AuditEvent.objects.filter(type=AuditEvent.Type.SIGNING_KEY_ROTATED)
        .order_by("pk")
        .values_list("extra__step", flat=True)
    )


@pytest.mark.spec("OIDC Core", "10.1.1")
def test_a_staged_key_is_published_but_the_current_key_still_signs(
    db, client, key_dir, settings, web_client, issue_tokens
):
    current = key_id(settings.OAUTH2_PROVIDER["OIDC_RSA_PRIVATE_KEY"])
    output = rotate("--stage")
    nxt = staged_kid(key_dir)
    assert nxt in output
    assert key_files(key_dir)[0].read_text() == settings.OAUTH2_PROVIDER["OIDC_RSA_PRIVATE_KEY"]
    restart(settings)

    assert jwks_kids(client)[:2] == [current, nxt]
    id_token = issue_tokens(web_client)["id_token"]
    assert id_token_kid(id_token) == current
    event = AuditEvent.objects.get(type=AuditEvent.Type.SIGNING_KEY_ROTATED)
    assert event.extra["step"] == "stage"
    assert event.extra["staged_kid"] == nxt


@pytest.mark.spec("OIDC Core", "10.1.1")
def test_an_id_token_signed_after_activation_verifies_against_the_jwks_fetched_while_staged(
    db, client, key_dir, settings, web_client, issue_tokens
):
    old = key_id(settings.OAUTH2_PROVIDER["OIDC_RSA_PRIVATE_KEY"])
    rotate("--stage")
    nxt = staged_kid(key_dir)
    restart(settings)
    cached_by_the_app = jwk.JWKSet.from_json(client.get(JWKS).content)

    lifetime = int(oauth2_settings.OIDC_JWKS_MAX_AGE_SECONDS)
    with time_machine.travel(time.time() + lifetime + 1):
        output = rotate("--activate")
    assert staged_key_files(key_dir) == []
    assert nxt in output
    restart(settings)

    id_token = issue_tokens(web_client)["id_token"]
    assert id_token_kid(id_token) == nxt
    verified = jwt.JWT(jwt=id_token, key=cached_by_the_app, algs=["RS256"])
    assert json.loads(verified.claims)["aud"] == web_client.client_id
    assert jwks_kids(client)[:2] == [nxt, old], "the old key stays published as previous"
    activated = AuditEvent.objects.filter(type=AuditEvent.Type.SIGNING_KEY_ROTATED).latest("pk")
    assert activated.extra["step"] == "activate"
    assert activated.extra["new_kid"] == nxt
    assert activated.extra["previous_kid"] == old


def test_activation_waits_for_the_jwks_caches_unless_forced(db, key_dir, settings):
    rotate("--stage")
    with pytest.raises(CommandError, match="Wait, or pass --force"):
        rotate("--activate")
    assert len(staged_key_files(key_dir)) == 1
    rotate("--activate", "--force")
    assert staged_key_files(key_dir) == []
    assert len(key_files(key_dir)) == 2


def test_retire_removes_the_previous_key_once_its_tokens_have_expired(db, key_dir, settings):
    longest = int(settings.OAUTH2_PROVIDER["ID_TOKEN_EXPIRE_SECONDS"])
    old = key_files(key_dir)[0]
    rotate("--stage")
    rotate("--activate", "--force")
    activated_at = time.time()

    with time_machine.travel(activated_at + longest - 60):
        assert "Nothing retired" in rotate("--retire")
    assert old.exists()
    with time_machine.travel(activated_at + longest + 60):
        assert old.name in rotate("--retire")
    assert not old.exists()
    assert len(key_files(key_dir)) == 1
    assert steps() == ["stage", "activate", "retire", "retire"]


def test_one_step_rotation_and_a_second_stage_are_refused_while_a_key_is_staged(db, key_dir):
    rotate("--stage")
    for args in ((), ("--stage",)):
        with pytest.raises(CommandError, match="--activate it or --discard it"):
            rotate(*args)
    assert len(key_files(key_dir)) == 1
    assert len(staged_key_files(key_dir)) == 1


def test_a_discarded_staged_key_is_no_longer_published(db, client, key_dir, settings):
    rotate("--stage")
    nxt = staged_kid(key_dir)
    assert nxt in rotate("--discard")
    restart(settings)
    assert nxt not in jwks_kids(client)
    event = AuditEvent.objects.filter(type=AuditEvent.Type.SIGNING_KEY_ROTATED).latest("pk")
    assert event.extra == {**event.extra, "step": "discard", "discarded_kid": nxt}


def test_activate_and_discard_need_a_staged_key(db, key_dir):
    for step in ("--activate", "--discard"):
        with pytest.raises(CommandError, match="No key is staged"):
            rotate(step)
    assert not AuditEvent.objects.exists()


def test_one_step_rotation_still_signs_with_the_new_key_at_the_next_start(
    db, client, key_dir, settings
):
    old = key_id(settings.OAUTH2_PROVIDER["OIDC_RSA_PRIVATE_KEY"])
    rotate()
    restart(settings)
    new = key_id(settings.OAUTH2_PROVIDER["OIDC_RSA_PRIVATE_KEY"])
    assert new != old
    assert jwks_kids(client)[:2] == [new, old]
    assert steps() == ["rotate"]


def test_an_es256_key_is_staged_in_its_own_directory(db, client, key_dir, settings):
    write_new_key(key_dir, algorithm=ES256)
    restart(settings)
    current = key_id(signing_pem(ES256))
    rotate("--stage", "--algorithm", ES256)
    nxt = staged_kid(key_dir / "ec")
    assert staged_key_files(key_dir) == []
    restart(settings)

    assert key_id(signing_pem(ES256)) == current
    kids = jwks_kids(client)
    assert kids.index(nxt) == kids.index(current) + 1


# --- keys from the environment


def test_the_environment_stages_and_keeps_previous_keys(settings, tmp_path):
    current, nxt, previous = (generate_rsa_private_key_pem() for _ in range(3))
    next_file = tmp_path / "next.pem"
    next_file.write_text(nxt)
    environ = {
        "IDP_OIDC_PRIVATE_KEY": current.replace("\n", "\\n"),  # one-line form
        "IDP_OIDC_NEXT_PRIVATE_KEY_FILE": str(next_file),
        "IDP_OIDC_PREVIOUS_PRIVATE_KEY": previous,
        "IDP_OIDC_EC_NEXT_PRIVATE_KEY": generate_ec_private_key_pem(),
    }
    settings.IDP_SIGNING_KEY_DIR = tmp_path / "empty"
    keys = read_key_set(key_dir=settings.IDP_SIGNING_KEY_DIR, environ=environ)
    assert (keys.current, keys.next, keys.previous) == (current, (nxt,), (previous,))

    restart(settings, environ)
    assert [key_id(pem) for pem in published_pems()][:3] == [
        key_id(current),
        key_id(nxt),
        key_id(previous),
    ]
    assert key_id(signing_pem("RS256")) == key_id(current)
    assert key_id(published_pems()[3]) == key_id(environ["IDP_OIDC_EC_NEXT_PRIVATE_KEY"])


def test_a_next_or_previous_key_equal_to_the_current_one_counts_once(tmp_path):
    current = generate_rsa_private_key_pem()
    keys = read_key_set(
        key_dir=tmp_path,
        environ={
            "IDP_OIDC_PRIVATE_KEY": current,
            "IDP_OIDC_NEXT_PRIVATE_KEY": current,  # activated, the NEXT variable not yet unset
            "IDP_OIDC_PREVIOUS_PRIVATE_KEY": current,
        },
    )
    assert (keys.current, keys.next, keys.previous) == (current, (), ())


def test_the_command_explains_the_environment_rollover(db, key_dir, monkeypatch):
    monkeypatch.setenv("IDP_OIDC_PRIVATE_KEY_FILE", "/run/secrets/oidc.pem")
    with pytest.raises(CommandError, match="IDP_OIDC_NEXT_PRIVATE_KEY") as refused:
        rotate("--stage")
    assert "IDP_OIDC_PREVIOUS_PRIVATE_KEY" in str(refused.value)
    assert staged_key_files(key_dir) == []
