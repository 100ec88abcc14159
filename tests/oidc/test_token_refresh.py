"""Refresh tokens: rotation, client binding, idle and absolute lifetimes, reuse detection
(RFC 6749 §6, RFC 9700 §4.14)."""

from __future__ import annotations

import datetime as dt
import string
from http import HTTPStatus

import pytest
import time_machine
from django.db import connection
from django.urls import reverse

from accounts.models import AuditEvent
from oauth_clients.models import AccessToken, Client, RefreshToken
from oauth_clients.oidc.tokens import token_checksum
from tests.oidc.conftest import basic_auth, make_client, post_form


@pytest.fixture
def refresh(client, token_endpoint):
    def do(oauth_client: Client, refresh_token: str, **extra: str):
        data = {"grant_type": "refresh_token", "refresh_token": refresh_token, **extra}
        headers = {}
        if oauth_client.client_type == Client.CLIENT_CONFIDENTIAL:
            headers["HTTP_AUTHORIZATION"] = basic_auth(
                oauth_client.client_id, oauth_client.test_secret
            )
        else:
            data["client_id"] = oauth_client.client_id
        return post_form(client, token_endpoint, data, **headers)

    return do


def now() -> dt.datetime:
    return dt.datetime.now(tz=dt.UTC)


@pytest.mark.spec("RFC 6749", "6")
@pytest.mark.spec("RFC 9700", "4.14.2")
def test_refresh_rotates_the_refresh_token(client, web_client, issue_tokens, refresh):
    first = issue_tokens(web_client)
    response = refresh(web_client, first["refresh_token"])
    assert response.status_code == HTTPStatus.OK, response.content
    second = response.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    assert second["expires_in"] == 600
    assert set(second["scope"].split()) == {"openid", "profile", "email"}

    old = RefreshToken.objects.get(revoked__isnull=False)
    new = RefreshToken.objects.get(revoked__isnull=True)
    assert old.token_family == new.token_family
    # The absolute lifetime is fixed for the family; the idle one moves on.
    assert new.family_expires == old.family_expires
    assert new.expires >= old.expires
    # The previous access token dies with its pair.
    userinfo = reverse("oauth2_provider:user-info")
    before = client.get(userinfo, HTTP_AUTHORIZATION=f"Bearer {first['access_token']}")
    after = client.get(userinfo, HTTP_AUTHORIZATION=f"Bearer {second['access_token']}")
    assert before.status_code == HTTPStatus.UNAUTHORIZED
    assert after.status_code == HTTPStatus.OK
    # Its row is deleted by the rotation, on every database (oauth_clients/oidc/store.py).
    old_access = AccessToken.objects.filter(token_checksum=token_checksum(first["access_token"]))
    assert not old_access.exists()
    assert AccessToken.objects.filter(
        token_checksum=token_checksum(second["access_token"])
    ).exists()


@pytest.mark.spec("RFC 6749", "6")
def test_public_client_refreshes_with_its_id(spa_client, issue_tokens, refresh):
    first = issue_tokens(spa_client)
    response = refresh(spa_client, first["refresh_token"])
    assert response.status_code == HTTPStatus.OK, response.content


def test_rotation_keeps_session_facts(web_client, issue_tokens, refresh):
    first = issue_tokens(web_client)
    auth_time = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    RefreshToken.objects.update(sid="sid-1", auth_time=auth_time, amr=["pwd"])
    AccessToken.objects.update(code_checksum="c" * 64)
    refresh(web_client, first["refresh_token"])

    new = RefreshToken.objects.get(revoked__isnull=True)
    assert (new.sid, new.auth_time, new.amr) == ("sid-1", auth_time, ["pwd"])
    access = AccessToken.objects.latest("pk")
    assert (access.sid, access.code_checksum) == ("sid-1", "c" * 64)


@pytest.mark.spec("RFC 9700", "4.14.2")
def test_replayed_rotated_refresh_token_revokes_the_whole_family(
    client, web_client, issue_tokens, refresh
):
    first = issue_tokens(web_client)
    second = refresh(web_client, first["refresh_token"]).json()

    replay = refresh(web_client, first["refresh_token"])

    assert replay.status_code == HTTPStatus.BAD_REQUEST
    assert replay.json()["error"] == "invalid_grant"
    # The attacker's and the client's current tokens are both dead now.
    assert refresh(web_client, second["refresh_token"]).json()["error"] == "invalid_grant"
    userinfo = client.get(
        reverse("oauth2_provider:user-info"), HTTP_AUTHORIZATION=f"Bearer {second['access_token']}"
    )
    assert userinfo.status_code == HTTPStatus.UNAUTHORIZED
    assert not RefreshToken.objects.filter(revoked__isnull=True).exists()
    event = AuditEvent.objects.get(type=AuditEvent.Type.TOKEN_REPLAY)
    assert event.extra["grant"] == "refresh_token"
    assert event.client == web_client


@pytest.mark.spec("RFC 6749", "6")
def test_refresh_token_is_bound_to_its_client(web_client, issue_tokens, refresh):
    other = make_client(
        name="Other",
        client_id="other-web",
        secret="other-secret-" + "z" * 30,
        redirect_uris="https://other.example.com/cb",
        grant_types=["authorization-code", "refresh_token"],
    )
    first = issue_tokens(web_client)
    response = refresh(other, first["refresh_token"])
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json()["error"] == "invalid_grant"
    # Not a replay: the rightful client keeps its family.
    assert refresh(web_client, first["refresh_token"]).status_code == HTTPStatus.OK


@pytest.mark.spec("RFC 6749", "6")
def test_scope_may_narrow_but_never_widen(web_client, issue_tokens, refresh):
    first = issue_tokens(web_client, scope="openid profile")
    widened = refresh(web_client, first["refresh_token"], scope="openid profile email")
    assert widened.status_code == HTTPStatus.BAD_REQUEST
    assert widened.json()["error"] == "invalid_scope"

    narrowed = refresh(web_client, first["refresh_token"], scope="openid")
    assert narrowed.status_code == HTTPStatus.OK, narrowed.content
    assert narrowed.json()["scope"] == "openid"


@pytest.mark.spec("RFC 9700", "4.14.2")
def test_idle_refresh_token_expires(web_client, issue_tokens, refresh):
    web_client.refresh_token_idle_lifetime = 3600
    web_client.save(update_fields=["refresh_token_idle_lifetime"])
    first = issue_tokens(web_client)
    rt = RefreshToken.objects.get()
    assert abs((rt.expires - now()).total_seconds() - 3600) < 30

    with time_machine.travel(now() + dt.timedelta(seconds=3601)):
        response = refresh(web_client, first["refresh_token"])
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json()["error"] == "invalid_grant"


@pytest.mark.spec("RFC 9700", "4.14.2")
def test_family_dies_at_its_absolute_lifetime_however_active(web_client, issue_tokens, refresh):
    web_client.refresh_token_idle_lifetime = 3600
    web_client.refresh_token_absolute_lifetime = 3 * 3600
    web_client.save(
        update_fields=["refresh_token_idle_lifetime", "refresh_token_absolute_lifetime"]
    )
    token = issue_tokens(web_client)["refresh_token"]
    start = now()
    for hours in (0.9, 1.8, 2.7):  # used every 54 minutes: never idle for an hour
        with time_machine.travel(start + dt.timedelta(hours=hours)):
            response = refresh(web_client, token)
            assert response.status_code == HTTPStatus.OK, (hours, response.content)
            token = response.json()["refresh_token"]
    latest = RefreshToken.objects.get(revoked__isnull=True)
    assert latest.expires <= latest.family_expires  # idle expiry capped by the absolute one

    with time_machine.travel(start + dt.timedelta(hours=3, seconds=1)):
        response = refresh(web_client, token)
    assert response.json()["error"] == "invalid_grant"


def test_access_token_lifetime_is_per_client(web_client, issue_tokens, refresh):
    web_client.access_token_lifetime = 120
    web_client.save(update_fields=["access_token_lifetime"])
    first = issue_tokens(web_client)
    assert first["expires_in"] == 120
    access = AccessToken.objects.get()
    assert abs((access.expires - now()).total_seconds() - 120) < 30
    assert refresh(web_client, first["refresh_token"]).json()["expires_in"] == 120


def test_deactivated_user_cannot_refresh(web_client, user, issue_tokens, refresh):
    first = issue_tokens(web_client)
    user.is_active = False
    user.save(update_fields=["is_active"])
    response = refresh(web_client, first["refresh_token"])
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json()["error"] == "invalid_grant"


def test_deactivated_client_cannot_refresh(web_client, issue_tokens, refresh):
    first = issue_tokens(web_client)
    Client.objects.filter(pk=web_client.pk).update(is_active=False)
    response = refresh(web_client, first["refresh_token"])
    assert response.status_code == HTTPStatus.UNAUTHORIZED
    assert response.json()["error"] == "invalid_client"


def test_revoked_refresh_token_cannot_refresh(client, web_client, issue_tokens, refresh):
    first = issue_tokens(web_client)
    revoke = post_form(
        client,
        reverse("oauth2_provider:revoke-token"),
        {"token": first["refresh_token"], "token_type_hint": "refresh_token"},
        HTTP_AUTHORIZATION=basic_auth(web_client.client_id, web_client.test_secret),
    )
    assert revoke.status_code == HTTPStatus.OK
    assert refresh(web_client, first["refresh_token"]).json()["error"] == "invalid_grant"


def test_unknown_refresh_token_is_invalid_grant(web_client, refresh):
    response = refresh(web_client, "not-a-token")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json()["error"] == "invalid_grant"


@pytest.mark.spec("RFC 6749", "5.2")
@pytest.mark.parametrize(
    ("client_id", "secret"),
    [("web-app", "not-the-secret"), ("no-such-client", "whatever"), ("web\x00app", "x")],
)
def test_refresh_by_an_unknown_or_unauthenticated_client_is_invalid_client(
    client, token_endpoint, web_client, issue_tokens, refresh, client_id, secret
):
    """The client is read with the refresh token it presents (one statement on PostgreSQL):
    a wrong secret, an unknown or a malformed client id is still invalid_client, and the
    token stays usable by its own client."""
    first = issue_tokens(web_client)
    response = post_form(
        client,
        token_endpoint,
        {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
        HTTP_AUTHORIZATION=basic_auth(client_id, secret),
    )
    assert response.status_code == HTTPStatus.UNAUTHORIZED
    assert response.json()["error"] == "invalid_client"
    assert refresh(web_client, first["refresh_token"]).status_code == HTTPStatus.OK


def test_refresh_grant_query_count_is_pinned(
    web_client, issue_tokens, refresh, django_assert_max_num_queries
):
    first = issue_tokens(web_client)
    one_statement = connection.vendor == "postgresql"
    # The client with the refresh token it presents (one statement), then the store's writes:
    # one statement on PostgreSQL; elsewhere one transaction of six (oauth_clients/oidc/store.py).
    with django_assert_max_num_queries(2 if one_statement else 10) as captured:
        response = refresh(web_client, first["refresh_token"])
    assert response.status_code == HTTPStatus.OK, response.content
    # The new ID token's email_verified came with the refresh-token row, not a query of its own.
    assert not any(q["sql"].startswith("SELECT 1 AS") for q in captured)
    kinds = [q["sql"].split()[0].upper() for q in captured]
    writes = sorted(k for k in kinds if k in {"INSERT", "UPDATE", "DELETE", "WITH"})
    if one_statement:
        # Every write in one statement (oauth_clients/oidc/store.py): the old refresh token
        # revoked, its access token deleted, the new ID, access and refresh tokens; no
        # transaction, no row lock.
        assert writes == ["WITH"]
        (rotation,) = [q["sql"] for q in captured if q["sql"].startswith("WITH")]
        assert rotation.count("INSERT INTO") == 3
        assert rotation.count("UPDATE ") == 1
        assert rotation.count("DELETE FROM") == 1
        assert not any(k in {"BEGIN", "SAVEPOINT", "COMMIT"} for k in kinds)
        assert not any("FOR UPDATE" in q["sql"] for q in captured)
        return
    # One transaction (one commit): the old refresh token retired, its access token deleted
    # (Django's delete also clears what still points at it: the second UPDATE), the new ID,
    # access and refresh tokens. The conditional UPDATE settles races
    # (test_two_refreshes_racing_on_one_token_cannot_both_rotate); nothing is locked.
    assert writes == ["DELETE", "INSERT", "INSERT", "INSERT", "UPDATE", "UPDATE"]
    assert kinds.count("COMMIT") <= 1
    assert not any("FOR UPDATE" in q["sql"] for q in captured)


@pytest.mark.spec("RFC 9700", "4.14.2")
def test_two_refreshes_racing_on_one_token_cannot_both_rotate(web_client, issue_tokens):
    """Both passed validation before either rotated (what a lost row lock would allow): the
    conditional UPDATE lets exactly one mint a successor."""
    from oauthlib.common import Request
    from oauthlib.oauth2.rfc6749 import errors

    from oauth_clients.oidc.validator import IdPOAuth2Validator

    first = issue_tokens(web_client)
    validator = IdPOAuth2Validator()
    racers = []
    for _ in range(2):
        request = Request("https://idp.example/o/token/")
        request.client = web_client
        request.grant_type = "refresh_token"
        assert validator.validate_refresh_token(first["refresh_token"], web_client, request)
        racers.append(request)
    token = {"access_token": "a1", "refresh_token": "r1", "scope": "openid", "expires_in": 60}
    validator.save_bearer_token(token, racers[0])
    with pytest.raises(errors.InvalidGrantError):
        validator.save_bearer_token(
            {**token, "access_token": "a2", "refresh_token": "r2"}, racers[1]
        )
    assert RefreshToken.objects.filter(revoked__isnull=True).count() == 1
    # The loser wrote nothing: the winner's access token is the only one (the first pair's was
    # deleted by the winner's rotation).
    assert AccessToken.objects.count() == 1
    assert AccessToken.objects.filter(token_checksum=token_checksum("a1")).exists()


def test_tokens_are_256_bit_urlsafe_and_never_repeat(web_client, issue_tokens, refresh):
    """RFC 6749 §10.10 / RFC 6750 §5.2: tokens an attacker cannot guess (256 bits here)."""
    first = issue_tokens(web_client)
    second = refresh(web_client, first["refresh_token"]).json()
    values = [first["access_token"], first["refresh_token"]]
    values += [second["access_token"], second["refresh_token"]]
    assert len(set(values)) == 4
    for value in values:
        assert len(value) == 43  # 32 random bytes, base64url without padding
        assert set(value) <= set(string.ascii_letters + string.digits + "-_")
