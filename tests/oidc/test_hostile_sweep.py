"""A sweep of hostile requests over every OAuth/OIDC endpoint, signed in and not (tests/hostile.py):
parameters, Authorization and DPoP headers, bodies, content types and methods in combinations
nobody wrote a test for. The back-channel endpoints answer RFC 6749 §5.2's JSON error; no
endpoint answers a 500 or redirects anywhere but this site and the registered apps."""

from __future__ import annotations

import json
import random
from http import HTTPStatus
from urllib.parse import urlencode

import pytest
from django.test import Client as HttpClient
from django.urls import reverse

from tests.hostile import (
    OAUTH_PARAMETERS,
    Sweep,
    hostile_authorization,
    hostile_form_body,
    hostile_jwt,
    hostile_value,
)
from tests.oidc.conftest import (
    MACHINE_SECRET,
    WEB_REDIRECT_URI,
    WEB_SECRET,
    basic_auth,
    pkce_pair,
    post_form,
)
from tests.oidc.device_helpers import register_device_app, start

REQUESTS_PER_ENDPOINT = 60
CLIENT_AUTHENTICATION = "client_id client_secret client_assertion client_assertion_type "
AUTHORIZATION_REQUEST = (
    "client_id response_type redirect_uri scope state nonce code_challenge code_challenge_method "
    "prompt max_age ui_locales claims login_hint id_token_hint acr_values request request_uri "
    "response_mode kc_idp_hint resource "
)
# Each endpoint's own parameters, which most of its requests carry (tests/hostile.py).
OWN_PARAMETERS = {
    "/o/token/": CLIENT_AUTHENTICATION
    + "grant_type code redirect_uri code_verifier refresh_token scope resource audience "
    "device_code",
    "/o/par/": CLIENT_AUTHENTICATION + AUTHORIZATION_REQUEST + "dpop_jkt",
    "/o/device-authorization/": CLIENT_AUTHENTICATION + "scope resource",
    "/o/introspect/": CLIENT_AUTHENTICATION + "token token_type_hint",
    "/o/revoke_token/": CLIENT_AUTHENTICATION + "token token_type_hint",
    "/o/userinfo/": "access_token scope",
    "/o/authorize/": AUTHORIZATION_REQUEST,
    "/o/logout/": "id_token_hint post_logout_redirect_uri state client_id logout_hint ui_locales",
    "/device": "user_code",
    "/device/confirm": "user_code action decision",
    "/accounts/login/": "login password remember next",
    "/accounts/password/reset/": "email next",
    "/accounts/2fa/authenticate/": "code next",
    "/sign-in/organisation/": "email next",
    "/accounts/github/login/": "process next",
    "/accounts/github/login/callback/": "code state error error_description",
    "/accounts/upstream/nobody/login/": "process next",
    "/accounts/upstream/nobody/login/callback/": "code state error error_description",
}
# Answer in RFC 6749 §5.2's format (or RFC 6750 §3.1's at userinfo): JSON with an `error`.
BACK_CHANNEL = {
    "/o/token/",
    "/o/par/",
    "/o/device-authorization/",
    "/o/introspect/",
    "/o/revoke_token/",
    "/o/userinfo/",
}
BROWSER_FACING = [
    "/o/authorize/",
    "/o/logout/",
    "/o/logged-out/",
    "/device",
    "/device/confirm",
    "/device/done",
    "/accounts/login/",
    "/accounts/password/reset/",
    "/accounts/2fa/authenticate/",
    "/sign-in/organisation/",
    # Upstream providers' sign-in and return (federation/), none of them configured here.
    "/accounts/github/login/",
    "/accounts/github/login/callback/",
    "/accounts/upstream/nobody/login/",
    "/accounts/upstream/nobody/login/callback/",
]
DOCUMENTS = [
    "/.well-known/openid-configuration",
    "/.well-known/oauth-authorization-server",
    "/.well-known/jwks.json",
]
CONTENT_TYPES = [
    *["application/x-www-form-urlencoded"] * 6,
    "application/x-www-form-urlencoded; charset=latin1",
    "application/json",
    "text/plain",
    "multipart/form-data; boundary=x",
    "",
]
METHODS = ["POST"] * 4 + ["GET"] * 3 + ["PUT", "DELETE", "OPTIONS", "HEAD"]


@pytest.fixture
def known(client, machine_client, web_client, user) -> dict[str, list[str]]:
    """The positive paths the sweep departs from, and real values it mixes into its requests:
    a client-credentials token, an authorization that redirects to the app with a code, a
    device's codes."""
    machine = basic_auth(machine_client.client_id, MACHINE_SECRET)
    web = basic_auth(web_client.client_id, WEB_SECRET)
    issued = post_form(
        client,
        reverse("oauth2_provider:token"),
        {"grant_type": "client_credentials"},
        HTTP_AUTHORIZATION=machine,
    )
    assert issued.status_code == HTTPStatus.OK, issued.content
    browser = HttpClient()
    browser.force_login(user)
    _, challenge = pkce_pair()
    authorized = browser.get(
        reverse("oauth2_provider:authorize"),
        {
            "client_id": web_client.client_id,
            "response_type": "code",
            "redirect_uri": WEB_REDIRECT_URI,
            "scope": "openid",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        },
    )
    assert authorized.status_code == HTTPStatus.FOUND
    assert authorized["Location"].startswith(WEB_REDIRECT_URI + "?code=")
    device = start(client, register_device_app())
    assert device.status_code == HTTPStatus.OK, device.content
    return {
        "authorization": [machine, web, "Bearer " + issued.json()["access_token"]],
        "values": [
            issued.json()["access_token"],
            device.json()["device_code"],
            device.json()["user_code"],
            WEB_REDIRECT_URI,
            web_client.client_id,
            machine_client.client_id,
        ],
    }


def hostile_request(r: random.Random, endpoint: str, known: dict[str, list[str]]) -> dict:
    headers = hostile_authorization(r, known["authorization"])
    if r.random() < 0.3:
        headers["HTTP_DPOP"] = hostile_jwt(r) if r.random() < 0.7 else hostile_value(r)
    if r.random() < 0.1:
        headers["HTTP_ACCEPT_LANGUAGE"] = hostile_value(r)
    if r.random() < 0.1:
        headers["HTTP_ORIGIN"] = hostile_value(r)
    own = tuple(OWN_PARAMETERS.get(endpoint, "").split()) or OAUTH_PARAMETERS
    body = hostile_form_body(r, own)
    if r.random() < 0.3:  # a real token, code or client id under one of the endpoint's names
        body += b"&" + urlencode([(r.choice(own), r.choice(known["values"]))]).encode()
    return {
        "method": r.choice(METHODS),
        "content_type": r.choice(CONTENT_TYPES),
        "body": body,
        "headers": headers,
    }


def send(http: HttpClient, endpoint: str, sent: dict):
    if sent["method"] in ("GET", "HEAD", "DELETE"):
        query = sent["body"].decode("latin-1")
        return http.generic(sent["method"], f"{endpoint}?{query}", **sent["headers"])
    return http.generic(
        sent["method"],
        endpoint,
        sent["body"],
        content_type=sent["content_type"],
        **sent["headers"],
    )


def oauth_error_json(response) -> bool:
    if not response.get("Content-Type", "").startswith("application/json"):
        return False
    try:
        return "error" in json.loads(response.content)
    except ValueError:
        return False


@pytest.mark.parametrize("signed_in", [False, True], ids=["anonymous", "signed-in"])
@pytest.mark.parametrize("endpoint", [*sorted(BACK_CHANNEL), *BROWSER_FACING, *DOCUMENTS])
def test_hostile_requests_get_the_protocols_error_never_a_500(known, user, endpoint, signed_in):
    http = HttpClient()
    if signed_in:
        http.force_login(user)
    r = random.Random(f"oidc {endpoint} {signed_in}")
    sweep = Sweep(f"{endpoint} ({'signed in' if signed_in else 'anonymous'})")
    for _ in range(REQUESTS_PER_ENDPOINT):
        sent = hostile_request(r, endpoint, known)
        response = sweep.send(sent, send, http, endpoint, sent)
        if not sweep.check_status(sent, response):
            continue
        sweep.check_redirect(sent, response, hosts={"web.example.com"})
        if (
            endpoint in BACK_CHANNEL
            and response.status_code >= HTTPStatus.BAD_REQUEST
            and sent["method"] not in ("HEAD", "OPTIONS")
            and not oauth_error_json(response)
        ):
            sweep.record("an error that is not RFC 6749 §5.2 JSON", sent, response)
    sweep.assert_clean()
