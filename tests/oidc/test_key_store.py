"""Signing keys in the database (oauth_clients/key_store.py, key_rotation.py): the schedule's
state machine, the encryption under the key-encryption key, the provider every process reads
through (a change seen without restart, no query per token), and what goes wrong."""

from __future__ import annotations

from datetime import timedelta
from http import HTTPStatus
from io import StringIO

import jwt
import pytest
from cryptography.fernet import Fernet
from django.core.cache import cache
from django.core.management import CommandError, call_command
from django.utils import timezone
from oauth2_provider.settings import oauth2_settings

from accounts.models import AuditEvent
from oauth_clients import key_rotation, key_store
from oauth_clients.checks import check_database_signing_keys, check_provider_security
from oauth_clients.key_rotation import KeyRotationError
from oauth_clients.key_store import KeyStoreUnreadable
from oauth_clients.keys import ES256, RS256, key_id, write_new_key, write_staged_key
from oauth_clients.models import Client, SigningKey
from tests.oidc.conftest import make_client

pytestmark = pytest.mark.django_db

JWKS = "/.well-known/jwks.json"
DAY = 24 * 3600
State = SigningKey.State


@pytest.fixture
def db_keys(database_key_store):
    """The database key store (tests/conftest.py) on this schedule."""
    database_key_store.IDP_SIGNING_KEY_ROTATION_SECONDS = 90 * DAY
    database_key_store.IDP_SIGNING_KEY_PREPUBLISH_SECONDS = 2 * DAY
    database_key_store.IDP_SIGNING_KEYS_REFRESH_SECONDS = 5
    return database_key_store


def states(algorithm: str = RS256) -> dict[str, str]:
    return dict(
        SigningKey.objects.filter(algorithm=algorithm).values_list("kid", "state").order_by("pk")
    )


def steps() -> list[str]:
    return [
        event.extra["step"]
        for event in AuditEvent.objects.filter(type=AuditEvent.Type.SIGNING_KEY_ROTATED).order_by(
            "pk"
        )
    ]


def jwks_kids(client) -> list[str]:
    return [key["kid"] for key in client.get(JWKS).json()["keys"]]


# --- The schedule ------------------------------------------------------------------------------


def test_the_schedule_publishes_the_next_key_ahead_activates_it_and_removes_the_old_one(
    db_keys, django_capture_on_commit_callbacks
):
    start = timezone.now()
    with django_capture_on_commit_callbacks(execute=True):
        [first] = key_rotation.create_first_key(algorithm=RS256, now=start)
    assert first.state == State.ACTIVE
    assert key_store.published_pems()
    assert key_id(key_store.signing_pem(RS256)) == first.kid

    # Nothing due until the lead time before the end of the rotation period.
    assert key_rotation.tick(now=start + timedelta(days=87)) == []
    [staged_line] = key_rotation.tick(now=start + timedelta(days=88))
    [staged] = SigningKey.objects.filter(state=State.NEXT)
    assert staged.kid in staged_line
    key_store.forget()
    assert [key_id(p) for p in key_store.published_pems()] == [first.kid, staged.kid]
    assert key_id(key_store.signing_pem(RS256)) == first.kid  # published, not signing

    # Activated at the end of the period: the next key signs, the old one is retired but
    # still published (tokens it signed still verify).
    assert key_rotation.tick(now=start + timedelta(days=89)) == []
    key_rotation.tick(now=start + timedelta(days=90))
    assert states() == {first.kid: State.RETIRED, staged.kid: State.ACTIVE}
    key_store.forget()
    assert [key_id(p) for p in key_store.published_pems()] == [staged.kid, first.kid]
    assert key_id(key_store.signing_pem(RS256)) == staged.kid

    # Removed once the longest token it signed has expired (the ID-token lifetime here).
    lifetime = key_rotation.longest_token_lifetime()
    assert lifetime == oauth2_settings.ID_TOKEN_EXPIRE_SECONDS
    retired_at = start + timedelta(days=90)
    key_rotation.tick(now=retired_at + timedelta(seconds=lifetime - 1))
    assert states()[first.kid] == State.RETIRED
    key_rotation.tick(now=retired_at + timedelta(seconds=lifetime))
    removed = SigningKey.objects.get(kid=first.kid)
    assert removed.state == State.REMOVED
    assert removed.encrypted_private_key == ""
    key_store.forget()
    assert [key_id(p) for p in key_store.published_pems()] == [staged.kid]
    assert steps() == ["create", "stage", "activate", "retire"]


def test_a_retired_key_stays_published_as_long_as_the_longest_api_token(db_keys):
    assert key_rotation.longest_token_lifetime() == oauth2_settings.ID_TOKEN_EXPIRE_SECONDS
    make_client(
        client_id="orders-api",
        kind=Client.Kind.API,
        audience="https://orders.example/api",
        authorization_grant_type=Client.GRANT_CLIENT_CREDENTIALS,
        algorithm="",
        access_token_lifetime=3600,
    )
    assert key_rotation.longest_token_lifetime() == 3600


def test_the_first_run_imports_the_key_directory_so_kids_do_not_change(db_keys):
    active = write_new_key(db_keys.IDP_SIGNING_KEY_DIR)
    staged = write_staged_key(db_keys.IDP_SIGNING_KEY_DIR)
    key_rotation.tick()
    assert states() == {
        key_id(active.read_text()): State.ACTIVE,
        key_id(staged.read_text()): State.NEXT,
    }
    assert steps() == ["import"]


def test_explicit_steps_and_their_audit_rows(db_keys):
    [first] = key_rotation.create_first_key(algorithm=ES256)
    staged = key_rotation.stage_next_key(algorithm=ES256)
    with pytest.raises(KeyRotationError, match="already published"):
        key_rotation.stage_next_key(algorithm=ES256)
    with pytest.raises(KeyRotationError, match="Wait, or pass --force"):
        key_rotation.activate_next_key(algorithm=ES256)
    key_rotation.activate_next_key(algorithm=ES256, force=True)
    new = key_rotation.rotate_now(algorithm=ES256)
    assert states(ES256) == {
        first.kid: State.RETIRED,
        staged.kid: State.RETIRED,
        new.kid: State.ACTIVE,
    }
    event = AuditEvent.objects.filter(type=AuditEvent.Type.SIGNING_KEY_ROTATED).latest("pk")
    assert event.extra == {
        "step": "rotate",
        "algorithm": ES256,
        "source": "database",
        "new_kid": new.kid,
        "previous_kid": staged.kid,
    }


def test_rotating_with_no_active_key_is_refused_with_what_to_do(db_keys):
    for option in ("--stage", "--activate", ""):
        with pytest.raises(CommandError, match=r"No RS256 key is active.*--auto"):
            call_command("rotate_signing_key", *([option] if option else []), stdout=StringIO())
    assert not SigningKey.objects.exists()
    out = StringIO()
    call_command("rotate_signing_key", "--auto", stdout=out)
    assert "first key" in out.getvalue()
    with pytest.raises(CommandError, match="No next RS256 key"):
        call_command("rotate_signing_key", "--activate", stdout=StringIO())


def test_an_auto_run_that_cannot_take_its_step_is_audited_with_the_reason(db_keys):
    call_command("rotate_signing_key", "--auto", stdout=StringIO())
    failed = AuditEvent.Type.SIGNING_KEY_ROTATION_FAILED
    assert not AuditEvent.objects.filter(type=failed).exists()
    staged = key_rotation.stage_next_key(algorithm=RS256)
    SigningKey.objects.filter(state=State.ACTIVE).delete()  # a next key, nothing active

    with pytest.raises(CommandError, match=f"No RS256 key is active but {staged.kid} is next"):
        call_command("rotate_signing_key", "--auto", stdout=StringIO())

    event = AuditEvent.objects.get(type=failed)
    assert event.extra["error"] == "KeyRotationError"
    assert staged.kid in event.extra["reason"]
    assert event.extra["source"] == "database"
    assert event.extra["algorithms"] == ["RS256"]


def test_auto_needs_the_database_store(settings):
    settings.IDP_SIGNING_KEY_STORE = "files"
    with pytest.raises(CommandError, match="IDP_SIGNING_KEY_STORE=database"):
        call_command("rotate_signing_key", "--auto", stdout=StringIO())


def test_a_key_set_in_the_environment_wins_over_the_database(db_keys):
    key_rotation.create_first_key(algorithm=RS256)
    environment_pem = oauth2_settings.OIDC_RSA_PRIVATE_KEY
    assert environment_pem
    assert key_store.signing_pem(RS256) != environment_pem
    db_keys.IDP_SIGNING_KEYS_FROM_ENVIRONMENT = ["RS256"]
    assert key_store.signing_pem(RS256) == environment_pem
    with pytest.raises(CommandError, match="always wins over the key directory"):
        call_command("rotate_signing_key", "--stage", stdout=StringIO())


# --- Encryption --------------------------------------------------------------------------------


def test_private_keys_are_stored_encrypted(db_keys):
    [row] = key_rotation.create_first_key(algorithm=RS256)
    row.refresh_from_db()
    assert "PRIVATE KEY" not in row.encrypted_private_key
    assert key_id(key_store.decrypt_private_key(row)) == row.kid


def test_a_wrong_key_encryption_key_is_a_clear_error_naming_the_key(db_keys):
    [row] = key_rotation.create_first_key(algorithm=RS256)
    key_store.decrypt_private_key(row)
    key_rotation.stage_next_key(algorithm=RS256)
    db_keys.IDP_KEY_ENCRYPTION_KEY = [Fernet.generate_key().decode()]
    with pytest.raises(KeyStoreUnreadable, match=f"{row.kid} does not decrypt") as caught:
        key_store.decrypt_private_key(row)
    assert "PRIVATE" not in str(caught.value)
    [error] = check_database_signing_keys(databases=["default"])
    assert error.id == "oauth_clients.E011"
    with pytest.raises(CommandError, match="does not decrypt"):
        call_command("rotate_signing_key", "--activate", "--force", stdout=StringIO())


def test_a_tampered_or_moved_ciphertext_is_refused(db_keys):
    [row] = key_rotation.create_first_key(algorithm=RS256)
    other = key_rotation.stage_next_key(algorithm=RS256)
    text = row.encrypted_private_key
    row.encrypted_private_key = text[:40] + ("A" if text[40] != "A" else "B") + text[41:]
    with pytest.raises(KeyStoreUnreadable, match="does not decrypt"):
        key_store.decrypt_private_key(row)
    row.encrypted_private_key = other.encrypted_private_key  # a valid ciphertext, another key
    with pytest.raises(KeyStoreUnreadable, match="decrypts to another key"):
        key_store.decrypt_private_key(row)


@pytest.mark.parametrize(
    ("value", "message"),
    [([], "is not set"), (["not-a-fernet-key-at-all"], "is not a Fernet key")],
)
def test_a_missing_or_malformed_key_encryption_key_fails_the_deploy_check(db_keys, value, message):
    assert [e.id for e in check_provider_security()] == []
    db_keys.IDP_KEY_ENCRYPTION_KEY = value
    errors = [e for e in check_provider_security() if e.id == "oauth_clients.E010"]
    assert len(errors) == 1
    assert message in errors[0].msg
    assert "not-a-fernet" not in errors[0].msg + errors[0].hint  # never echoed
    with pytest.raises(KeyRotationError, match=message):
        key_rotation.create_first_key(algorithm=RS256)


def test_no_active_key_in_the_database_fails_the_database_check(db_keys):
    [error] = check_database_signing_keys(databases=["default"])
    assert error.id == "oauth_clients.E012"
    key_rotation.create_first_key(algorithm=RS256)
    assert check_database_signing_keys(databases=["default"]) == []


# --- Every process follows, cheaply ------------------------------------------------------------


def test_a_process_sees_another_process_change_within_the_refresh_interval(
    db_keys, client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        [first] = key_rotation.create_first_key(algorithm=RS256)
    assert jwks_kids(client) == [first.kid]
    # Another process stages a key: its rows and its generation in the shared cache, while
    # this process still holds its ring (nothing tells it directly).
    staged = key_rotation.stage_next_key(algorithm=RS256)  # not committed: no on_commit run
    cache.set(key_store.GENERATION_CACHE_KEY, key_store.database_generation(), timeout=None)
    assert jwks_kids(client) == [first.kid]  # within the interval: the loaded ring
    key_store._provider.check_after = 0  # the interval has passed
    assert jwks_kids(client) == [first.kid, staged.kid]
    # A cache that lost the generation is refilled from the database.
    cache.clear()
    key_store._provider.check_after = 0
    assert jwks_kids(client) == [first.kid, staged.kid]
    assert cache.get(key_store.GENERATION_CACHE_KEY) == key_store.database_generation()


def test_signing_and_publishing_cost_no_query_between_checks(
    db_keys, client, django_assert_num_queries
):
    key_rotation.create_first_key(algorithm=RS256)
    key_store.sign_jwt({"sub": "warm"}, algorithm=RS256)
    with django_assert_num_queries(0):
        for n in range(20):
            token = key_store.sign_jwt({"sub": str(n)}, algorithm=RS256)
            key_store.published_public_key(jwt.get_unverified_header(token)["kid"])
        assert client.get(JWKS).status_code == HTTPStatus.OK


def test_jwks_answers_503_when_the_keys_cannot_be_read(db_keys, client):
    key_rotation.create_first_key(algorithm=RS256)
    db_keys.IDP_KEY_ENCRYPTION_KEY = [Fernet.generate_key().decode()]
    response = client.get(JWKS)
    assert response.status_code == HTTPStatus.SERVICE_UNAVAILABLE
    assert response.json()["error"] == "temporarily_unavailable"


def test_a_process_keeps_its_keys_when_a_reload_fails(db_keys, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        [first] = key_rotation.create_first_key(algorithm=RS256)
    assert key_id(key_store.signing_pem(RS256)) == first.kid
    # A change whose row does not decrypt (tampered in the database): the process logs it and
    # keeps signing with the ring it holds, instead of failing every token.
    staged = key_rotation.stage_next_key(algorithm=RS256)
    SigningKey.objects.filter(pk=staged.pk).update(encrypted_private_key="gAAAAAtampered")
    cache.set(key_store.GENERATION_CACHE_KEY, key_store.database_generation(), timeout=None)
    key_store._provider.check_after = 0
    assert key_id(key_store.signing_pem(RS256)) == first.kid
    assert [key_id(p) for p in key_store.published_pems()] == [first.kid]
    # A process with nothing loaded yet has no keys to fall back on: the error is raised.
    key_store.forget()
    with pytest.raises(KeyStoreUnreadable, match=f"{staged.kid} does not decrypt"):
        key_store.signing_pem(RS256)


def test_ensure_signing_key_creates_the_first_database_key_once(db_keys):
    out = StringIO()
    call_command("ensure_signing_key", stdout=out)
    [row] = SigningKey.objects.all()
    assert row.state == State.ACTIVE
    assert row.kid in out.getvalue()
    call_command("ensure_signing_key", stdout=out)
    assert "Signing key present." in out.getvalue()
    assert SigningKey.objects.count() == 1


def test_a_server_refuses_to_start_without_readable_database_keys(db_keys):
    from idp.startup import signing_key_errors

    assert [e.id for e in signing_key_errors()] == ["idp.E005"]  # no active key yet
    key_rotation.create_first_key(algorithm=RS256)
    key_store.forget()
    assert signing_key_errors() == []
    db_keys.IDP_KEY_ENCRYPTION_KEY = [Fernet.generate_key().decode()]
    [error] = signing_key_errors()
    assert error.id == "idp.E004"
    assert "does not decrypt" in error.msg


@pytest.mark.spec("OpenID Connect RP-Initiated Logout 1.0", "2")
def test_an_id_token_hint_signed_by_a_retired_key_verifies_until_the_key_is_removed(db_keys):
    from oauth_clients.oidc.authorization_policy import decode_id_token

    start = timezone.now()
    key_rotation.create_first_key(algorithm=RS256, now=start)
    hint = key_store.sign_jwt({"iss": "https://idp.example", "sub": "alice"}, algorithm=RS256)
    key_rotation.stage_next_key(algorithm=RS256, now=start)
    key_rotation.activate_next_key(algorithm=RS256, force=True, now=start)
    key_store.forget()
    assert (
        decode_id_token(hint, issuer="https://idp.example", accept_expired=True)["sub"] == "alice"
    )
    key_rotation.remove_retired_keys(algorithm=RS256, now=start + timedelta(days=1))
    key_store.forget()
    assert decode_id_token(hint, issuer="https://idp.example", accept_expired=True) is None


def test_a_new_key_encryption_key_reads_the_old_rows_and_reencrypt_moves_them(db_keys):
    [row] = key_rotation.create_first_key(algorithm=RS256)
    old_kek = db_keys.IDP_KEY_ENCRYPTION_KEY[0]
    new_kek = Fernet.generate_key().decode()
    db_keys.IDP_KEY_ENCRYPTION_KEY = [new_kek, old_kek]  # the new one first, the old after it
    assert key_id(key_store.signing_pem(RS256)) == row.kid
    out = StringIO()
    call_command("rotate_signing_key", "--reencrypt", stdout=out)
    assert "1 stored keys" in out.getvalue()
    db_keys.IDP_KEY_ENCRYPTION_KEY = [new_kek]  # the old one gone
    assert key_id(key_store.signing_pem(RS256)) == row.kid
    assert steps() == ["create", "reencrypt"]
    # Without the key the rows were written with, the step refuses and changes nothing.
    db_keys.IDP_KEY_ENCRYPTION_KEY = [Fernet.generate_key().decode()]
    with pytest.raises(CommandError, match="does not decrypt"):
        call_command("rotate_signing_key", "--reencrypt", stdout=StringIO())
