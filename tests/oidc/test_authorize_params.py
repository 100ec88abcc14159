"""Authorization request parameters refused rather than ignored: a `code_challenge` that is no
S256 challenge (RFC 7636 §4.2) and `prompt` values we do not support (OIDC Core §3.1.2.1). Both
go back to the registered redirect URI as invalid_request, with `state` and `iss`."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import pytest

from oauth_clients.models import Grant
from tests.oidc.authorize_helpers import (
    AUTHORIZE_URL,
    authorization_params,
    issuer,
    redirect_query,
)
from tests.oidc.conftest import WEB_REDIRECT_URI, pkce_pair


def assert_invalid_request(response: Any, params: dict[str, str]) -> None:
    error = redirect_query(response, WEB_REDIRECT_URI)
    assert error["error"] == "invalid_request", error
    assert error["state"] == params["state"]
    assert error["iss"] == issuer()
    assert "code" not in error


# --------------------------------------------------------------------------- code_challenge


@pytest.mark.spec("RFC 7636", "4.2")
def test_s256_challenge_of_43_base64url_characters_is_accepted(client, user, web_client):
    client.force_login(user)
    _verifier, challenge = pkce_pair()
    assert len(challenge) == 43
    params = authorization_params(web_client, code_challenge=challenge)
    assert redirect_query(client.get(AUTHORIZE_URL, params), WEB_REDIRECT_URI)["code"]


@pytest.mark.spec("RFC 7636", "4.2")
@pytest.mark.parametrize(
    "challenge",
    [
        "",
        "a" * 42,  # too short for 32 bytes
        "a" * 44,  # too long for 32 bytes
        "a" * 128,  # a plain-method length, not an S256 digest
        "a" * 42 + "=",  # padded
        "a" * 41 + "+/",  # base64, not base64url
        "a" * 42 + "~",  # unreserved, but not base64url
        "a" * 42 + ".",
        "a" * 21 + " " + "a" * 21,
        "a" * 42 + "é",
    ],
    ids=["empty", "42", "44", "128", "padded", "base64", "tilde", "dot", "space", "non-ascii"],
)
def test_malformed_code_challenge_is_invalid_request(client, user, web_client, challenge):
    client.force_login(user)
    ok = authorization_params(web_client)
    assert redirect_query(client.get(AUTHORIZE_URL, ok), WEB_REDIRECT_URI)["code"]
    params = authorization_params(web_client, code_challenge=challenge)
    assert_invalid_request(client.get(AUTHORIZE_URL, params), params)
    assert Grant.objects.count() == 1  # only the positive request's code


# --------------------------------------------------------------------------- prompt


@pytest.mark.spec("OpenID Connect Core 1.0", "3.1.2.1")
def test_supported_prompt_values_are_honoured(client, user, web_client):
    client.force_login(user)
    silent = client.get(AUTHORIZE_URL, authorization_params(web_client, prompt="none"))
    assert redirect_query(silent, WEB_REDIRECT_URI)["code"]
    consent = client.get(AUTHORIZE_URL, authorization_params(web_client, prompt="consent"))
    assert consent.status_code == HTTPStatus.OK  # the consent screen, despite a trusted app
    both = client.get(AUTHORIZE_URL, authorization_params(web_client, prompt="login consent"))
    assert both.status_code == HTTPStatus.FOUND
    assert not both["Location"].startswith(WEB_REDIRECT_URI)  # to re-authentication first


@pytest.mark.spec("OpenID Connect Core 1.0", "3.1.2.1")
@pytest.mark.parametrize(
    "prompt",
    ["select_account", "create", "bogus", "login bogus", "LOGIN"],
)
def test_unsupported_prompt_value_is_invalid_request(client, user, web_client, prompt):
    client.force_login(user)
    ok = authorization_params(web_client, prompt="none")
    assert redirect_query(client.get(AUTHORIZE_URL, ok), WEB_REDIRECT_URI)["code"]
    params = authorization_params(web_client, prompt=prompt)
    assert_invalid_request(client.get(AUTHORIZE_URL, params), params)


@pytest.mark.spec("OpenID Connect Core 1.0", "3.1.2.1")
@pytest.mark.parametrize("scope", ["openid profile", "profile"], ids=["oidc", "plain-oauth"])
def test_prompt_none_with_another_value_is_invalid_request_with_or_without_openid(
    client, user, web_client, scope
):
    client.force_login(user)
    ok = authorization_params(web_client, scope=scope, prompt="none")
    assert redirect_query(client.get(AUTHORIZE_URL, ok), WEB_REDIRECT_URI)["code"]
    params = authorization_params(web_client, scope=scope, prompt="none consent")
    assert_invalid_request(client.get(AUTHORIZE_URL, params), params)
