"""Client registry services: what each kind of app gets, rotation, disable, revoke, delete."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.utils import timezone
from oauth2_provider.models import (
    get_access_token_model,
    get_grant_model,
    get_id_token_model,
    get_refresh_token_model,
)

from accounts.models import AuditEvent
from oauth_clients import services
from oauth_clients.models import Client, Consent
from oauth_clients.secrets import check_client_secret
from tests.clients.conftest import WEB_REDIRECT, issue_tokens

AccessToken = get_access_token_model()
RefreshToken = get_refresh_token_model()
IDToken = get_id_token_model()
Grant = get_grant_model()


# --- Registration: the kind of app decides everything


def test_web_app_is_confidential_code_flow_with_pkce_and_secret_returned_once(
    web_client, admin_user
):
    client, secret = web_client
    client.refresh_from_db()
    assert client.kind == Client.Kind.WEB
    assert client.client_type == Client.CLIENT_CONFIDENTIAL
    assert client.allowed_grant_types() == {Client.GRANT_AUTHORIZATION_CODE}
    assert client.allows_grant_type(Client.GRANT_AUTHORIZATION_CODE)
    assert not client.allows_grant_type(Client.GRANT_CLIENT_CREDENTIALS)
    assert client.require_pkce is True
    assert client.algorithm == Client.RS256_ALGORITHM
    assert client.redirect_uris == WEB_REDIRECT
    assert client.allowed_scopes == "email openid profile"
    # Only the keyed hash is stored; the plaintext matches it.
    assert len(secret) >= 43
    assert secret not in client.client_secret
    assert check_client_secret(secret, client.client_secret)
    event = AuditEvent.objects.get(type=AuditEvent.Type.CLIENT_CREATED)
    assert event.actor == admin_user
    assert event.client == client
    assert event.extra["kind"] == "web"
    assert secret not in str(event.extra)


@pytest.mark.parametrize(
    ("kind", "redirect"),
    [
        (Client.Kind.SPA, "https://spa.example.com/callback"),
        (Client.Kind.NATIVE, "com.example.app:/callback"),
    ],
)
def test_browser_and_native_apps_are_public_code_flow_with_pkce_and_no_secret(
    kind, redirect, admin_user
):
    client, secret = services.register_client(
        actor=admin_user, kind=kind, name="App", redirect_uris=[redirect], scopes="openid"
    )
    assert secret == ""
    assert client.client_secret == ""
    assert client.client_type == Client.CLIENT_PUBLIC
    assert client.allowed_grant_types() == {Client.GRANT_AUTHORIZATION_CODE}
    assert client.require_pkce is True


def test_spa_gets_its_https_redirect_origins_for_cors(admin_user):
    client, _ = services.register_client(
        actor=admin_user,
        kind=Client.Kind.SPA,
        name="Dashboard",
        redirect_uris=["https://dash.example.com/cb", "http://localhost:5173/cb"],
        scopes="openid",
    )
    assert client.allowed_origins == "https://dash.example.com"


def test_machine_to_machine_service_gets_client_credentials_only(service_client):
    client, secret = service_client
    assert client.client_type == Client.CLIENT_CONFIDENTIAL
    assert client.allowed_grant_types() == {Client.GRANT_CLIENT_CREDENTIALS}
    assert not client.allows_grant_type(Client.GRANT_AUTHORIZATION_CODE)
    assert client.redirect_uris == ""
    assert check_client_secret(secret, client.client_secret)


def test_trusted_app_skips_consent_in_dot_too(admin_user):
    client, _ = services.register_client(
        actor=admin_user,
        kind=Client.Kind.WEB,
        name="Intranet",
        redirect_uris=[WEB_REDIRECT],
        scopes="openid",
        is_trusted=True,
    )
    assert client.is_trusted
    assert client.skip_authorization


@pytest.mark.spec("RFC 8252", "7.1")
def test_native_app_private_use_scheme_is_an_allowed_redirect_scheme_for_it_only(admin_user):
    native, _ = services.register_client(
        actor=admin_user,
        kind=Client.Kind.NATIVE,
        name="Mobile",
        redirect_uris=["com.example.app:/callback", "http://127.0.0.1/cb"],
        scopes="openid",
    )
    web, _ = services.register_client(
        actor=admin_user,
        kind=Client.Kind.WEB,
        name="Web",
        redirect_uris=[WEB_REDIRECT],
        scopes="openid",
    )
    assert "com.example.app" in native.get_allowed_schemes()
    assert "com.example.app" not in web.get_allowed_schemes()
    assert native.redirect_uri_allowed("com.example.app:/callback")


def test_unsafe_registration_is_refused_per_field_and_nothing_is_saved(admin_user):
    with pytest.raises(ValidationError) as exc:
        services.register_client(
            actor=admin_user,
            kind=Client.Kind.WEB,
            name="",
            redirect_uris=["http://app.example.com/cb"],
            post_logout_redirect_uris=["javascript:alert(1)"],
            scopes=["profile"],
            owner_contact="not-an-email",
        )
    assert set(exc.value.message_dict) == {
        "name",
        "redirect_uris",
        "post_logout_redirect_uris",
        "allowed_scopes",
        "owner_contact",
    }
    assert not Client.objects.exists()
    assert not AuditEvent.objects.exists()


def test_unknown_kind_is_refused(admin_user):
    with pytest.raises(ValidationError) as exc:
        services.register_client(actor=admin_user, kind="desktop", name="X", scopes="openid")
    assert "kind" in exc.value.message_dict
    assert not Client.objects.exists()


def test_explicit_client_id_must_be_new(admin_user, web_client):
    client, _ = web_client
    registered, _ = services.register_client(
        actor=admin_user,
        kind=Client.Kind.SERVICE,
        name="Batch",
        scopes="",
        client_id="batch-service",
    )
    assert registered.client_id == "batch-service"
    with pytest.raises(ValidationError, match="already exists"):
        services.register_client(
            actor=admin_user,
            kind=Client.Kind.SERVICE,
            name="Batch 2",
            scopes="",
            client_id=client.client_id,
        )


# --- Changes after registration


def test_update_client_saves_validated_changes_and_audits_the_fields(web_client, admin_user):
    client, _ = web_client
    changed = services.update_client(
        client=client,
        actor=admin_user,
        changes={
            "name": "Team wiki",
            "redirect_uris": f"{WEB_REDIRECT}\nhttp://localhost:8000/cb",
            "is_trusted": True,
        },
    )
    assert changed == ["is_trusted", "name", "redirect_uris"]
    client.refresh_from_db()
    assert client.name == "Team wiki"
    assert client.redirect_uris == f"{WEB_REDIRECT} http://localhost:8000/cb"
    assert client.skip_authorization is True
    event = AuditEvent.objects.get(type=AuditEvent.Type.CLIENT_CHANGED)
    assert event.actor == admin_user
    assert event.extra["fields"] == changed
    assert "marks the app trusted (skips consent)" in event.extra["weakened"]


def test_update_client_with_no_difference_writes_nothing(web_client, admin_user):
    client, _ = web_client
    updated = Client.objects.get(pk=client.pk).updated
    assert services.update_client(client=client, actor=admin_user, changes={"name": "Wiki"}) == []
    assert Client.objects.get(pk=client.pk).updated == updated
    assert not AuditEvent.objects.filter(type=AuditEvent.Type.CLIENT_CHANGED).exists()


def test_update_client_refuses_unsafe_values_and_keeps_the_old_ones(web_client, admin_user):
    client, _ = web_client
    with pytest.raises(ValidationError) as exc:
        services.update_client(
            client=client,
            actor=admin_user,
            changes={"name": "Renamed", "redirect_uris": "https://evil.example.com/#x"},
        )
    assert list(exc.value.message_dict) == ["redirect_uris"]
    client.refresh_from_db()
    assert client.name == "Wiki"
    assert client.redirect_uris == WEB_REDIRECT


def test_update_client_refuses_fields_fixed_at_registration(web_client, admin_user):
    client, _ = web_client
    with pytest.raises(ValidationError) as exc:
        services.update_client(client=client, actor=admin_user, changes={"kind": "spa"})
    assert "kind" in exc.value.message_dict


def test_weakening_changes_lists_each_weakening(web_client):
    client, _ = web_client
    assert services.weakening_changes(client=client, changes={"name": "New"}) == []
    reasons = services.weakening_changes(
        client=client,
        changes={
            "redirect_uris": [WEB_REDIRECT, "http://127.0.0.1/cb"],
            "require_pkce": False,
            "is_trusted": True,
            "allowed_scopes": "openid profile email groups",
            "access_token_lifetime": 3600,
        },
    )
    assert reasons == [
        "adds the plain-http URI http://127.0.0.1/cb to redirect_uris",
        "widens scopes with groups",
        "turns PKCE off",
        "marks the app trusted (skips consent)",
        "lengthens access_token_lifetime from 600 s to 3600 s",
    ]


# --- ID-token signing algorithm: RS256 by default, ES256 for apps that take it


def register_web(admin_user, **arguments):
    return services.register_client(
        actor=admin_user,
        kind=Client.Kind.WEB,
        name=arguments.pop("name", "Wiki"),
        redirect_uris=[WEB_REDIRECT],
        scopes="openid",
        **arguments,
    )


@pytest.mark.parametrize("kind", [Client.Kind.WEB, Client.Kind.SPA, Client.Kind.NATIVE])
def test_a_sign_in_app_may_choose_es256_and_the_registration_audit_says_so(admin_user, kind):
    redirect = "com.example.app:/cb" if kind == Client.Kind.NATIVE else WEB_REDIRECT
    client, _ = services.register_client(
        actor=admin_user,
        kind=kind,
        name="Modern",
        redirect_uris=[redirect],
        scopes="openid",
        algorithm="ES256",
    )
    client.refresh_from_db()
    assert client.algorithm == Client.ES256_ALGORITHM
    event = AuditEvent.objects.get(type=AuditEvent.Type.CLIENT_CREATED)
    assert event.extra["algorithm"] == "ES256"


@pytest.mark.parametrize("algorithm", [None, "", "RS256"])
def test_rs256_stays_the_default_for_sign_in_apps(admin_user, algorithm):
    client, _ = register_web(admin_user, algorithm=algorithm)
    client.refresh_from_db()
    assert client.algorithm == Client.RS256_ALGORITHM
    assert AuditEvent.objects.get(type=AuditEvent.Type.CLIENT_CREATED).extra["algorithm"] == "RS256"


@pytest.mark.parametrize("algorithm", ["HS256", "none", "RS512", "es256", "PS256"])
def test_an_algorithm_that_is_not_offered_is_refused_and_nothing_is_saved(admin_user, algorithm):
    register_web(admin_user, name="Fine", algorithm="ES256")
    with pytest.raises(ValidationError) as exc:
        register_web(admin_user, name="Odd", algorithm=algorithm)
    assert exc.value.message_dict == {
        "algorithm": [f"{algorithm} is not offered: choose RS256 (the default) or ES256."]
    }
    assert list(Client.objects.values_list("name", flat=True)) == ["Fine"]
    assert AuditEvent.objects.filter(type=AuditEvent.Type.CLIENT_CREATED).count() == 1


def test_es256_without_an_ec_signing_key_is_refused_rather_than_failing_at_sign_in(
    admin_user, settings
):
    register_web(admin_user, name="With key", algorithm="ES256")
    settings.IDP_OIDC_EC_PRIVATE_KEYS = []
    with pytest.raises(ValidationError) as exc:
        register_web(admin_user, name="Without key", algorithm="ES256")
    (message,) = exc.value.message_dict["algorithm"]
    assert "ES256 needs an EC signing key and none is configured" in message
    assert "IDP_OIDC_EC_PRIVATE_KEY_FILE" in message
    assert not Client.objects.filter(name="Without key").exists()
    # RS256 needs only the RSA key, which is always there.
    assert register_web(admin_user, name="RSA")[0].algorithm == "RS256"


def test_a_service_keeps_no_algorithm_and_may_not_be_given_one(service_client, admin_user):
    client, _ = service_client
    client.refresh_from_db()
    assert client.algorithm == Client.NO_ALGORITHM
    assert (
        services.register_client(
            actor=admin_user, kind=Client.Kind.SERVICE, name="Also none", algorithm=""
        )[0].algorithm
        == Client.NO_ALGORITHM
    )
    with pytest.raises(ValidationError) as exc:
        services.register_client(
            actor=admin_user, kind=Client.Kind.SERVICE, name="Batch", algorithm="RS256"
        )
    assert "gets no ID tokens" in exc.value.message_dict["algorithm"][0]
    assert not Client.objects.filter(name="Batch").exists()
    with pytest.raises(ValidationError) as exc:
        services.update_client(client=client, actor=admin_user, changes={"algorithm": "ES256"})
    assert "gets no ID tokens" in exc.value.message_dict["algorithm"][0]
    assert Client.objects.get(pk=client.pk).algorithm == Client.NO_ALGORITHM


def test_switching_the_algorithm_is_audited_with_before_and_after(web_client, admin_user):
    client, _ = web_client
    changed = services.update_client(
        client=client, actor=admin_user, changes={"algorithm": "ES256"}
    )
    assert changed == ["algorithm"]
    assert client.algorithm == "ES256"
    assert Client.objects.get(pk=client.pk).algorithm == "ES256"
    event = AuditEvent.objects.get(type=AuditEvent.Type.CLIENT_CHANGED)
    assert event.actor == admin_user
    assert event.client == client
    assert event.extra["fields"] == ["algorithm"]
    assert event.extra["algorithm"] == {"before": "RS256", "after": "ES256"}
    assert event.extra["weakened"] == []
    # Other changes keep the choice (the kind's derived fields do not reset it).
    services.update_client(client=client, actor=admin_user, changes={"name": "Team wiki"})
    assert Client.objects.get(pk=client.pk).algorithm == "ES256"
    # Choosing it again changes nothing; empty means the default.
    assert (
        services.update_client(client=client, actor=admin_user, changes={"algorithm": "ES256"})
        == []
    )
    assert services.update_client(client=client, actor=admin_user, changes={"algorithm": ""}) == [
        "algorithm"
    ]
    assert Client.objects.get(pk=client.pk).algorithm == "RS256"


def test_update_refuses_an_algorithm_not_offered_or_without_its_key(
    web_client, admin_user, settings
):
    client, _ = web_client
    assert services.update_client(client=client, actor=admin_user, changes={"algorithm": "ES256"})
    services.update_client(client=client, actor=admin_user, changes={"algorithm": "RS256"})
    events = AuditEvent.objects.count()
    with pytest.raises(ValidationError) as exc:
        services.update_client(
            client=client, actor=admin_user, changes={"name": "Renamed", "algorithm": "HS256"}
        )
    assert list(exc.value.message_dict) == ["algorithm"]
    settings.IDP_OIDC_EC_PRIVATE_KEYS = []
    with pytest.raises(ValidationError) as exc:
        services.update_client(client=client, actor=admin_user, changes={"algorithm": "ES256"})
    assert "EC signing key" in exc.value.message_dict["algorithm"][0]
    stored = Client.objects.get(pk=client.pk)
    assert (stored.name, stored.algorithm) == ("Wiki", "RS256")
    assert AuditEvent.objects.count() == events


# --- Secret rotation


def test_rotation_without_grace_invalidates_the_old_secret_at_once(web_client, admin_user):
    client, old = web_client
    new = services.rotate_client_secret(client=client, actor=admin_user)
    client.refresh_from_db()
    assert new != old
    assert check_client_secret(new, client.client_secret)
    assert not check_client_secret(old, client.client_secret)
    assert client.previous_client_secret == ""
    assert client.previous_secret_expires_at is None
    event = AuditEvent.objects.get(type=AuditEvent.Type.CLIENT_SECRET_ROTATED)
    assert event.actor == admin_user
    assert event.extra == {"grace_seconds": 0, "previous_valid_until": None}


def test_rotation_with_grace_keeps_the_old_hash_until_the_grace_ends(web_client, admin_user):
    client, old = web_client
    with time_machine.travel(timezone.now(), tick=False):
        new = services.rotate_client_secret(client=client, actor=admin_user, grace_seconds=3600)
        client.refresh_from_db()
        assert check_client_secret(new, client.client_secret)
        assert check_client_secret(old, client.previous_client_secret)
        assert client.previous_secret_expires_at == timezone.now() + timedelta(hours=1)
    # A second rotation without grace forgets the previous secret.
    services.rotate_client_secret(client=client, actor=admin_user)
    client.refresh_from_db()
    assert client.previous_client_secret == ""


@pytest.mark.parametrize("grace", [-1, 31 * 24 * 3600, True, "60"])
def test_rotation_refuses_a_bad_grace_period(web_client, admin_user, grace):
    client, old = web_client
    with pytest.raises(ValidationError):
        services.rotate_client_secret(client=client, actor=admin_user, grace_seconds=grace)
    client.refresh_from_db()
    assert check_client_secret(old, client.client_secret)


def test_public_client_has_no_secret_to_rotate(admin_user):
    spa, _ = services.register_client(
        actor=admin_user,
        kind=Client.Kind.SPA,
        name="SPA",
        redirect_uris=["https://spa.example.com/cb"],
        scopes="openid",
    )
    with pytest.raises(ValidationError, match="public client"):
        services.rotate_client_secret(client=spa, actor=admin_user)


# --- Disable, enable, revoke, delete


def test_disable_revokes_every_token_at_once_and_enable_does_not_revive_them(
    web_client, admin_user, user
):
    client, _ = web_client
    issued = issue_tokens(client, user)
    other, _ = services.register_client(
        actor=admin_user,
        kind=Client.Kind.WEB,
        name="Other",
        redirect_uris=[WEB_REDIRECT],
        scopes="openid",
    )
    others = issue_tokens(other, user)

    services.disable_client(client=client, actor=admin_user)

    client.refresh_from_db()
    assert client.is_active is False
    assert not client.is_usable(None)
    assert not AccessToken.objects.filter(application=client).exists()
    assert not IDToken.objects.filter(application=client).exists()
    issued["refresh"].refresh_from_db()
    assert issued["refresh"].revoked is not None
    assert not Grant.objects.filter(application=client).exists()
    # Consents are kept: re-enabling should not make every user consent again.
    assert Consent.objects.filter(client=client).exists()
    # Another app's tokens are untouched.
    assert AccessToken.objects.filter(pk=others["access"].pk).exists()
    event = AuditEvent.objects.get(type=AuditEvent.Type.CLIENT_DISABLED)
    assert event.actor == admin_user
    assert event.extra["access_tokens"] == 1
    assert event.extra["refresh_tokens"] == 1

    services.enable_client(client=client, actor=admin_user)
    client.refresh_from_db()
    assert client.is_active is True
    issued["refresh"].refresh_from_db()
    assert issued["refresh"].revoked is not None
    assert AuditEvent.objects.get(type=AuditEvent.Type.CLIENT_ENABLED).actor == admin_user


def test_consumed_codes_are_kept_on_disable_for_replay_tracing(web_client, admin_user, user):
    client, _ = web_client
    issued = issue_tokens(client, user)
    Grant.objects.filter(pk=issued["code"].pk).update(consumed_at=timezone.now())
    services.disable_client(client=client, actor=admin_user)
    assert Grant.objects.filter(pk=issued["code"].pk).exists()


def test_revoke_all_tokens_and_consents(web_client, admin_user, user):
    client, _ = web_client
    issued = issue_tokens(client, user)
    counts = services.revoke_all_client_tokens(client=client, actor=admin_user)
    assert counts.as_dict() == {
        "access_tokens": 1,
        "refresh_tokens": 1,
        "id_tokens": 1,
        "codes": 1,
        "consents": 1,
    }
    assert not AccessToken.objects.filter(application=client).exists()
    assert RefreshToken.objects.get(pk=issued["refresh"].pk).revoked is not None
    assert not Consent.objects.filter(client=client).exists()
    client.refresh_from_db()
    assert client.is_active is True
    revoked = AuditEvent.objects.get(type=AuditEvent.Type.TOKEN_REVOKED)
    assert revoked.actor == admin_user
    assert revoked.client == client
    assert revoked.extra["reason"] == "admin_revoked_all"
    assert AuditEvent.objects.get(type=AuditEvent.Type.CONSENT_REVOKED).extra["consents"] == 1


def test_delete_client_removes_it_and_its_tokens_but_keeps_the_audit_trail(
    web_client, admin_user, user
):
    client, _ = web_client
    issue_tokens(client, user)
    client_id = client.client_id
    services.delete_client(client=client, actor=admin_user)
    assert not Client.objects.filter(client_id=client_id).exists()
    assert not RefreshToken.objects.exists()
    assert not Consent.objects.exists()
    event = AuditEvent.objects.get(type=AuditEvent.Type.CLIENT_DELETED)
    assert event.actor == admin_user
    assert event.client is None
    assert event.client_repr == client_id
    assert event.extra["name"] == "Wiki"
