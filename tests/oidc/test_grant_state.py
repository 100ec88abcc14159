"""The validator's state between oauthlib callbacks (oauth_clients/oidc/grant_state.py), and
the private DOT methods the validator still overrides (oauth_clients/oidc/token_policy.py)."""

from __future__ import annotations

import datetime as dt
import inspect
from http import HTTPStatus

import pytest
from oauth2_provider.oauth2_backends import OAuthLibCore
from oauth2_provider.oauth2_validators import OAuth2Validator
from oauthlib.common import Request
from oauthlib.oauth2.rfc6749 import errors

from accounts.sessions import SessionBinding
from oauth_clients.models import AccessToken, Grant, IDToken, RefreshToken
from oauth_clients.oidc.authorization_policy import AuthorizationPolicyMixin, decode_id_token
from oauth_clients.oidc.grant_state import GrantState, authorization_credentials, grant_state
from oauth_clients.oidc.token_policy import TokenPolicyMixin
from oauth_clients.oidc.validator import IdPOAuth2Validator
from tests.oidc.conftest import WEB_REDIRECT_URI

# The DOT private methods our validator overrides because DOT offers no public hook for them
# (each override says why), with the parameters DOT calls them with.
PRIVATE_OVERRIDES = {
    # Called by DOT's client_authentication_required, validate_client_id and more.
    "_load_application": ["self", "client_id", "request"],
    # Called by DOT's validate_bearer_token.
    "_load_access_token": ["self", "token"],
}
# The public DOT method that reaches each override: if DOT stops calling it there, our policy
# (the client cache, the token read with its client) would be silently bypassed.
PUBLIC_CALLERS = {
    "_load_application": "validate_client_id",
    "_load_access_token": "validate_bearer_token",
}


def token_request(**params: str) -> Request:
    return Request("https://idp.example/o/token/", http_method="POST", body=params)


def test_state_is_created_once_per_request_and_starts_empty():
    request = Request("https://idp.example/o/token/")
    state = grant_state(request)
    assert grant_state(request) is state
    assert state == GrantState()
    assert state.binding == SessionBinding()
    assert (state.grant, state.code_read, state.refresh_token_read, state.id_token) == (
        None,
        None,
        None,
        None,
    )


def test_state_does_not_leak_between_two_requests():
    first, second = Request("https://idp.example/o/token/"), Request("https://idp.example/o/token/")
    grant_state(first).binding = SessionBinding(sid="sid-1", auth_time=1, amr=["pwd"])
    assert grant_state(second).binding == SessionBinding()
    assert grant_state(second) is not grant_state(first)


def test_authorization_credentials_carry_the_binding_to_the_issuing_request():
    """oauthlib sets every credential on the request it builds to issue the code."""
    binding = SessionBinding(sid="sid-1", auth_time=1_700_000_000, amr=["pwd", "otp"], acr="x")
    request = Request("https://idp.example/o/authorize/")
    for name, value in authorization_credentials(binding).items():
        setattr(request, name, value)
    assert grant_state(request).binding == binding


@pytest.mark.parametrize("grant_type", ["authorization_code", "refresh_token"])
def test_saving_tokens_without_a_validated_grant_is_invalid_grant(db, web_client, grant_type):
    """A save on a fresh request (no `validate_code` / `validate_refresh_token` before it) is
    refused as oauthlib refuses a bad grant, never an AttributeError (a 500)."""
    request = token_request(grant_type=grant_type)
    request.client = web_client
    token = {"scope": "openid", "access_token": "a" * 30, "expires_in": 60}
    with pytest.raises(errors.InvalidGrantError):
        IdPOAuth2Validator().save_bearer_token(token, request)
    assert not AccessToken.objects.exists()


def test_code_questions_on_a_fresh_request_read_the_code(web_client, run_code_flow):
    """Without `validate_code` first, each question reads the requesting client's code."""
    flow = run_code_flow(web_client)
    request = token_request(grant_type="authorization_code", code=flow.code)
    request.client = web_client
    validator = IdPOAuth2Validator()
    grant = Grant.objects.get()
    assert validator.get_code_challenge(flow.code, request) == grant.code_challenge
    assert validator.get_code_challenge_method(flow.code, request) == "S256"
    assert validator.confirm_redirect_uri(
        web_client.client_id, flow.code, WEB_REDIRECT_URI, web_client, request
    )
    assert validator.get_authorization_code_nonce(
        web_client.client_id, flow.code, WEB_REDIRECT_URI, request
    ) == (grant.nonce or None)
    assert grant_state(request).grant is None


def test_two_exchanges_each_carry_their_own_code_session(web_client, run_code_flow, exchange_code):
    flows = [run_code_flow(web_client), run_code_flow(web_client)]
    for index, grant in enumerate(Grant.objects.order_by("pk")):
        Grant.objects.filter(pk=grant.pk).update(
            sid=f"sid-{index}", auth_time=dt.datetime(2026, 1, 1, index, tzinfo=dt.UTC)
        )
    for flow in flows:
        assert exchange_code(web_client, flow).status_code == HTTPStatus.OK
    for grant in Grant.objects.all():
        access = AccessToken.objects.get(code_checksum=grant.code)
        refresh = RefreshToken.objects.get(access_token=access)
        assert access.sid == refresh.sid == grant.sid
        assert refresh.auth_time == grant.auth_time


def test_the_id_token_row_is_the_signed_token(web_client, issue_tokens):
    """`finalize_id_token` signs it; the exchange writes its row (same jti) with the tokens."""
    body = issue_tokens(web_client)
    claims = decode_id_token(body["id_token"], issuer=None, accept_expired=False)
    assert claims is not None
    id_token = IDToken.objects.get()
    assert str(id_token.jti) == claims["jti"]
    assert id_token.sid == claims["sid"]
    assert AccessToken.objects.get().id_token == id_token


def test_an_id_token_presented_as_bearer_is_checked_against_our_keys(
    web_client, user, issue_tokens
):
    """oauthlib's `validate_id_token` (the public hook in place of DOT's private loader)."""
    body = issue_tokens(web_client)
    validator = IdPOAuth2Validator()
    request = Request("https://idp.example/resource")
    assert validator.validate_id_token(body["id_token"], ["openid"], request)
    assert (request.user, request.client) == (user, web_client)
    assert not validator.validate_id_token(body["access_token"], ["openid"], Request("https://x"))
    assert not validator.validate_id_token("", ["openid"], Request("https://x"))


@pytest.mark.parametrize("name", sorted(PRIVATE_OVERRIDES))
def test_dot_still_has_the_private_methods_we_override(name):
    """Fails when DOT renames one, changes its parameters or stops calling it, so the override
    is re-checked against DOT rather than silently bypassed."""
    parameters = PRIVATE_OVERRIDES[name]
    assert list(inspect.signature(getattr(OAuth2Validator, name)).parameters) == parameters
    assert list(inspect.signature(getattr(IdPOAuth2Validator, name)).parameters) == parameters
    caller = getattr(OAuth2Validator, PUBLIC_CALLERS[name])
    assert f"self.{name}(" in inspect.getsource(caller)


def test_no_other_private_dot_method_is_overridden():
    ours = {
        name
        for mixin in (AuthorizationPolicyMixin, TokenPolicyMixin)
        for name in vars(mixin)
        if name.startswith("_") and not name.startswith("__")
    }
    assert {name for name in ours if hasattr(OAuth2Validator, name)} == set(PRIVATE_OVERRIDES)


def test_dot_still_extracts_a_requests_parameters_as_we_call_it():
    """oauth_clients/oidc/backend.py builds the authorization request itself (to add who is
    signed in before oauthlib validates it) from DOT's private `_extract_params`."""
    parameters = list(inspect.signature(OAuthLibCore._extract_params).parameters)
    assert parameters == ["self", "request"]
