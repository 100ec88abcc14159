"""Authorization code exchange at the token endpoint (RFC 6749 §4.1.3, RFC 7636, RFC 9700)."""

from __future__ import annotations

import datetime as dt
import hashlib
from http import HTTPStatus

import pytest
import time_machine
from django.test import Client as HttpClient
from django.urls import reverse
from oauthlib.common import Request

from accounts.models import AuditEvent
from accounts.sessions import SessionBinding
from oauth_clients.models import AccessToken, Grant, RefreshToken
from oauth_clients.oidc.grant_state import grant_state
from oauth_clients.oidc.validator import IdPOAuth2Validator
from tests.oidc.conftest import basic_auth, post_form


def sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def userinfo_status(client, access_token: str) -> int:
    response = client.get(
        reverse("oauth2_provider:user-info"), HTTP_AUTHORIZATION=f"Bearer {access_token}"
    )
    return response.status_code


@pytest.mark.spec("RFC 6749", "4.1.3")
def test_code_exchange_returns_tokens(web_client, run_code_flow, exchange_code):
    flow = run_code_flow(web_client)
    response = exchange_code(web_client, flow)
    assert response.status_code == HTTPStatus.OK, response.content
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["access_token"]
    assert body["refresh_token"]
    assert body["id_token"]
    assert body["expires_in"] == 600  # RFC 9700 §4.14: short-lived access tokens by default
    assert set(body["scope"].split()) == {"openid", "profile", "email"}
    # RFC 6749 §5.1: token responses are never cached.
    assert "no-store" in response["Cache-Control"]


@pytest.mark.spec("RFC 6749", "4.1.3")
def test_public_client_exchanges_code_with_pkce_only(spa_client, run_code_flow, exchange_code):
    flow = run_code_flow(spa_client)
    response = exchange_code(spa_client, flow)
    assert response.status_code == HTTPStatus.OK, response.content
    assert response.json()["access_token"]


@pytest.mark.spec("RFC 9700", "4.14")
def test_code_and_tokens_are_stored_only_as_hashes(web_client, run_code_flow, exchange_code):
    flow = run_code_flow(web_client)
    grant = Grant.objects.get()
    assert grant.code == sha256(flow.code)
    assert flow.code not in grant.code
    body = exchange_code(web_client, flow).json()

    access = AccessToken.objects.get()
    refresh = RefreshToken.objects.get()
    assert access.token == ""
    assert refresh.token == ""
    assert access.token_checksum == sha256(body["access_token"])
    assert refresh.token_checksum == sha256(body["refresh_token"])
    for row in (
        Grant.objects.values(),
        AccessToken.objects.values(),
        RefreshToken.objects.values(),
    ):
        stored = repr(list(row))
        assert flow.code not in stored
        assert body["access_token"] not in stored
        assert body["refresh_token"] not in stored


@pytest.mark.spec("RFC 6749", "4.1.2")
def test_exchanged_code_is_kept_as_consumed_not_deleted(web_client, run_code_flow, exchange_code):
    flow = run_code_flow(web_client)
    assert exchange_code(web_client, flow).status_code == HTTPStatus.OK
    grant = Grant.objects.get()
    assert grant.consumed_at is not None
    event = AuditEvent.objects.get(type=AuditEvent.Type.TOKENS_ISSUED)
    assert event.subject == grant.user
    assert event.client == web_client


def test_save_authorization_code_copies_session_facts_from_the_request(web_client, user):
    """The contract with the authorization side: the session binding lands on the Grant."""
    request = Request("https://idp.example/o/authorize/")
    request.client = web_client
    request.user = user
    request.redirect_uri = "https://web.example.com/callback"
    request.scopes = ["openid"]
    request.code_challenge = "x" * 43
    request.code_challenge_method = "S256"
    request.nonce = "n-1"
    request.claims = None
    grant_state(request).binding = SessionBinding(
        sid="session-123", auth_time=1_700_000_000, amr=["pwd", "otp"], acr="urn:company:mfa"
    )
    IdPOAuth2Validator().save_authorization_code(web_client.client_id, {"code": "abc"}, request)

    grant = Grant.objects.get()
    assert grant.code == sha256("abc")
    assert grant.sid == "session-123"
    assert grant.auth_time == dt.datetime.fromtimestamp(1_700_000_000, tz=dt.UTC)
    assert grant.amr == ["pwd", "otp"]
    assert grant.acr == "urn:company:mfa"
    assert grant.expires - grant.created <= dt.timedelta(seconds=60)


def test_tokens_carry_the_grant_session(web_client, run_code_flow, exchange_code):
    flow = run_code_flow(web_client)
    auth_time = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    Grant.objects.update(sid="sid-abc", auth_time=auth_time, amr=["pwd", "otp"])
    assert exchange_code(web_client, flow).status_code == HTTPStatus.OK

    access = AccessToken.objects.get()
    refresh = RefreshToken.objects.get()
    assert access.sid == "sid-abc"
    assert access.code_checksum == sha256(flow.code)
    assert (refresh.sid, refresh.auth_time, refresh.amr) == ("sid-abc", auth_time, ["pwd", "otp"])


@pytest.mark.spec("RFC 6749", "4.1.2")
@pytest.mark.spec("RFC 9700", "4.2.4")
def test_replayed_code_is_refused_and_revokes_everything_it_issued(
    client, web_client, run_code_flow, exchange_code, token_endpoint
):
    flow = run_code_flow(web_client)
    first = exchange_code(web_client, flow).json()
    assert userinfo_status(client, first["access_token"]) == HTTPStatus.OK
    # The family moves on by one rotation before the replay: the rotated tokens go too.
    rotated = post_form(
        client,
        token_endpoint,
        {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
        HTTP_AUTHORIZATION=basic_auth(web_client.client_id, web_client.test_secret),
    ).json()
    assert userinfo_status(client, rotated["access_token"]) == HTTPStatus.OK

    replay = exchange_code(web_client, flow)

    assert replay.status_code == HTTPStatus.BAD_REQUEST
    assert replay.json()["error"] == "invalid_grant"
    assert userinfo_status(client, first["access_token"]) == HTTPStatus.UNAUTHORIZED
    assert userinfo_status(client, rotated["access_token"]) == HTTPStatus.UNAUTHORIZED
    assert not AccessToken.objects.exists()
    assert not RefreshToken.objects.filter(revoked__isnull=True).exists()
    again = post_form(
        client,
        token_endpoint,
        {"grant_type": "refresh_token", "refresh_token": rotated["refresh_token"]},
        HTTP_AUTHORIZATION=basic_auth(web_client.client_id, web_client.test_secret),
    )
    assert again.json()["error"] == "invalid_grant"
    event = AuditEvent.objects.get(type=AuditEvent.Type.TOKEN_REPLAY)
    assert event.client == web_client
    assert event.extra["grant"] == "authorization_code"


@pytest.mark.spec("RFC 6749", "4.1.2")
def test_code_older_than_60_seconds_is_refused(web_client, run_code_flow, exchange_code):
    flow = run_code_flow(web_client)
    with time_machine.travel(dt.datetime.now(tz=dt.UTC) + dt.timedelta(seconds=61)):
        response = exchange_code(web_client, flow)
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json()["error"] == "invalid_grant"


@pytest.mark.spec("RFC 6749", "4.1.3")
def test_code_issued_to_another_client_is_refused_and_not_burnt(
    web_client, spa_client, run_code_flow, exchange_code
):
    flow = run_code_flow(web_client)
    stolen = exchange_code(spa_client, flow)
    assert stolen.status_code == HTTPStatus.BAD_REQUEST
    assert stolen.json()["error"] == "invalid_grant"
    # The rightful client still gets its tokens.
    assert exchange_code(web_client, flow).status_code == HTTPStatus.OK


@pytest.mark.spec("RFC 6749", "4.1.3")
def test_redirect_uri_must_be_identical(web_client, run_code_flow, exchange_code):
    flow = run_code_flow(web_client)
    response = exchange_code(web_client, flow, redirect_uri=flow.redirect_uri + "/other")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json()["error"] in {"invalid_grant", "invalid_request"}
    assert exchange_code(web_client, flow).status_code == HTTPStatus.OK


@pytest.mark.spec("RFC 7636", "4.6")
def test_wrong_code_verifier_is_refused(web_client, spa_client, run_code_flow, exchange_code):
    for oauth_client in (web_client, spa_client):
        flow = run_code_flow(oauth_client)
        response = exchange_code(oauth_client, flow, code_verifier="w" * 50)
        assert response.status_code == HTTPStatus.BAD_REQUEST
        assert response.json()["error"] == "invalid_grant"


@pytest.mark.spec("RFC 7636", "4.5")
def test_missing_code_verifier_is_refused(client, spa_client, run_code_flow, token_endpoint):
    flow = run_code_flow(spa_client)
    data = {**flow.token_data(), "client_id": spa_client.client_id}
    del data["code_verifier"]
    response = post_form(client, token_endpoint, data)
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json()["error"] == "invalid_request"


@pytest.mark.spec("RFC 9700", "2.1.1")
def test_plain_pkce_grant_is_refused_at_the_token_endpoint(
    web_client, run_code_flow, exchange_code
):
    """A grant with the `plain` method (say, from before the S256-only rule) never verifies,
    even with the verifier equal to the challenge."""
    flow = run_code_flow(web_client)
    Grant.objects.update(code_challenge=flow.verifier, code_challenge_method="plain")
    response = exchange_code(web_client, flow)
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json()["error"] == "invalid_grant"


@pytest.mark.spec("RFC 9700", "2.1.1")
def test_plain_pkce_is_refused_when_the_code_is_issued(web_client, user):
    http = HttpClient()
    http.force_login(user)
    response = http.get(
        reverse("oauth2_provider:authorize"),
        {
            "response_type": "code",
            "client_id": web_client.client_id,
            "redirect_uri": "https://web.example.com/callback",
            "scope": "openid",
            "state": "s1",
            "code_challenge": "p" * 43,
            "code_challenge_method": "plain",
        },
    )
    assert not Grant.objects.exists()
    if response.status_code == HTTPStatus.FOUND:
        assert "code=" not in response["Location"]
        assert "error=invalid_request" in response["Location"]
    else:
        assert response.status_code == HTTPStatus.BAD_REQUEST


@pytest.mark.spec("RFC 6749", "4.1.3")
def test_code_of_a_deactivated_user_is_refused(web_client, user, run_code_flow, exchange_code):
    flow = run_code_flow(web_client)
    user.is_active = False
    user.save(update_fields=["is_active"])
    response = exchange_code(web_client, flow)
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json()["error"] == "invalid_grant"


@pytest.mark.spec("RFC 6749", "4.1.2")
def test_two_exchanges_racing_on_one_code_cannot_both_win(web_client, user, run_code_flow):
    """Both requests passed validation before either consumed the code (nothing is locked in
    between): the store's conditional write lets exactly one issue tokens, and the loser is a
    replay that revokes what the code issued (oauth_clients/oidc/store.py), on every database."""
    from oauthlib.oauth2.rfc6749 import errors

    flow = run_code_flow(web_client)
    validator = IdPOAuth2Validator()
    racers = []
    for _ in range(2):
        request = Request("https://idp.example/o/token/")
        request.client = web_client
        request.grant_type = "authorization_code"
        request.scopes = []
        assert validator.validate_code(web_client.client_id, flow.code, web_client, request)
        racers.append(request)
    token = {"access_token": "a1", "refresh_token": "r1", "scope": "", "expires_in": 60}
    validator.save_bearer_token(token, racers[0])
    assert AccessToken.objects.count() == 1  # the winner's
    with pytest.raises(errors.InvalidGrantError):
        validator.save_bearer_token(
            {**token, "access_token": "a2", "refresh_token": "r2"}, racers[1]
        )
    assert Grant.objects.get().consumed_at is not None
    # RFC 6749 §4.1.2: a code used twice revokes what it issued; the loser wrote nothing.
    assert AccessToken.objects.count() == 0
    assert not RefreshToken.objects.filter(revoked__isnull=True).exists()
    assert AuditEvent.objects.filter(type=AuditEvent.Type.TOKEN_REPLAY).count() == 1


def test_signed_in_session_reaches_the_code_and_its_tokens(
    web_client, run_code_flow, exchange_code
):
    """End to end through the authorization side's contract (the request's session binding)."""
    from accounts.sessions import AUTH_TIME_KEY, SID_KEY

    http = HttpClient()
    flow = run_code_flow(web_client, http=http)
    sid, auth_time = http.session[SID_KEY], http.session[AUTH_TIME_KEY]
    grant = Grant.objects.get()
    assert grant.sid == sid
    assert grant.auth_time == dt.datetime.fromtimestamp(auth_time, tz=dt.UTC)
    assert exchange_code(web_client, flow).status_code == HTTPStatus.OK
    assert AccessToken.objects.get().sid == sid
    assert RefreshToken.objects.get().sid == sid


@pytest.mark.spec("RFC 8707", "2.2")
def test_resources_granted_at_authorization_carry_to_the_token_and_cannot_widen(
    web_client, run_code_flow, exchange_code
):
    from oauth_clients.models import AccessToken

    flow = run_code_flow(web_client, extra={"resource": "https://api.example.com"})
    assert exchange_code(web_client, flow).status_code == HTTPStatus.OK
    assert AccessToken.objects.get().resource == ["https://api.example.com"]

    widened = run_code_flow(web_client, extra={"resource": "https://api.example.com"})
    response = exchange_code(web_client, widened, resource="https://other.example.com")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json()["error"] == "invalid_target"
