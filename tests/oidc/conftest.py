"""OIDC fixtures shared by the token-side and authorization-side tests (add fixtures, never edit).

Clients are created with a known clear secret (`client.test_secret`); the model stores only its
keyed hash. `run_code_flow` drives the authorization endpoint through Django's test client as a
signed-in user and returns the code, so token tests start from a real authorization.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from django.test import Client as HttpClient
from django.urls import reverse

from oauth_clients.models import Client

WEB_REDIRECT_URI = "https://web.example.com/callback"
SPA_REDIRECT_URI = "https://spa.example.com/callback"
WEB_SECRET = "web-client-secret-" + "x" * 30
MACHINE_SECRET = "machine-client-secret-" + "y" * 30


def make_client(*, secret: str = "", **fields: Any) -> Client:
    """A registered client; `secret` is kept on the instance as `test_secret` for requests."""
    values: dict[str, Any] = {
        "client_type": Client.CLIENT_CONFIDENTIAL,
        "authorization_grant_type": Client.GRANT_AUTHORIZATION_CODE,
        "algorithm": Client.RS256_ALGORITHM,
        "skip_authorization": False,
    }
    values.update(fields)
    client = Client.objects.create(client_secret=secret, **values)
    client.test_secret = secret
    return client


def assert_dropping_is_a_weakening(
    client: Client, field: str, weakening: str, *, actor: Any = None
) -> dict[str, Any]:
    """A security switch of `client` (`field`, on) travels in its registry entry; an import
    turning it off weakens the app: refused (`weakening` in the reason) and nothing changed,
    unless forced. Returns the exported entry."""
    from oauth_clients import selectors, services

    entry = selectors.registry_entry(client)
    assert entry[field] is True
    document = {"version": 1, "clients": [{**entry, field: False}]}
    with pytest.raises(services.RegistryImportError, match=weakening):
        services.import_registry(document=document, actor=actor)
    client.refresh_from_db()
    assert getattr(client, field) is True
    report = services.import_registry(document=document, actor=actor, force=True)
    assert report.updated
    client.refresh_from_db()
    assert getattr(client, field) is False
    return entry


@pytest.fixture
def web_client(db) -> Client:
    """A trusted first-party confidential web app (code flow + refresh, skips consent)."""
    return make_client(
        name="Web App",
        client_id="web-app",
        secret=WEB_SECRET,
        redirect_uris=WEB_REDIRECT_URI,
        post_logout_redirect_uris="https://web.example.com/signed-out",
        grant_types=[Client.GRANT_AUTHORIZATION_CODE, "refresh_token"],
        allowed_scopes="openid profile email groups offline_access",
        is_trusted=True,
    )


@pytest.fixture
def spa_client(db) -> Client:
    """A public single-page app (no secret, PKCE only), not trusted: it sees the consent screen."""
    return make_client(
        name="Single Page App",
        client_id="spa-app",
        client_type=Client.CLIENT_PUBLIC,
        redirect_uris=SPA_REDIRECT_URI,
        post_logout_redirect_uris="https://spa.example.com/signed-out",
        grant_types=[Client.GRANT_AUTHORIZATION_CODE, "refresh_token"],
        allowed_scopes="openid profile email offline_access",
    )


@pytest.fixture
def machine_client(db) -> Client:
    """A service-to-service client using the client-credentials grant only."""
    return make_client(
        name="Batch Service",
        client_id="batch-service",
        secret=MACHINE_SECRET,
        authorization_grant_type=Client.GRANT_CLIENT_CREDENTIALS,
        redirect_uris="",
        allowed_scopes="",
    )


FORM = "application/x-www-form-urlencoded"


def post_form(http: HttpClient, url: str, data: dict[str, str], **headers: Any) -> Any:
    """POST `data` form-urlencoded, as RFC 6749 §4.1.3 requires at the token endpoint (Django's
    test client would send multipart/form-data)."""
    return http.post(url, urlencode(data), content_type=FORM, **headers)


def basic_auth(client_id: str, secret: str) -> str:
    """RFC 6749 §2.3.1: form-urlencoded id and secret, then HTTP Basic."""
    from urllib.parse import quote

    raw = f"{quote(client_id, safe='')}:{quote(secret, safe='')}".encode()
    return "Basic " + base64.b64encode(raw).decode("ascii")


def pkce_pair() -> tuple[str, str]:
    """RFC 7636 §4.1/§4.2: a verifier and its S256 challenge."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
    return verifier, challenge


@dataclass
class CodeFlowResult:
    """What the authorization step produced, plus what the token request needs."""

    code: str
    verifier: str
    redirect_uri: str
    state: str
    nonce: str
    params: dict[str, list[str]] = field(default_factory=dict)

    def token_data(self) -> dict[str, str]:
        return {
            "grant_type": "authorization_code",
            "code": self.code,
            "redirect_uri": self.redirect_uri,
            "code_verifier": self.verifier,
        }


def _code_from_redirect(response: Any, redirect_uri: str) -> dict[str, list[str]]:
    assert response.status_code == HTTPStatus.FOUND, (response.status_code, response.content[:500])
    location = response["Location"]
    assert location.startswith(redirect_uri), location
    return parse_qs(urlsplit(location).query)


@pytest.fixture
def run_code_flow(user) -> Callable[..., CodeFlowResult]:
    """Run the authorization endpoint as the signed-in `user` (or `as_user`) and return the code.

    Signs in with `force_login` (Django's `user_logged_in` fires, so the session has its sid and
    auth_time). If the endpoint shows a consent form instead of redirecting, it is submitted with
    "Allow" so the helper also works for untrusted clients.
    """

    def run(
        client: Client,
        *,
        scope: str = "openid profile email",
        as_user: Any = None,
        http: HttpClient | None = None,
        redirect_uri: str | None = None,
        extra: dict[str, str] | None = None,
    ) -> CodeFlowResult:
        http = http or HttpClient()
        http.force_login(as_user or user)
        redirect_uri = redirect_uri or client.redirect_uris.split()[0]
        verifier, challenge = pkce_pair()
        state = secrets.token_urlsafe(16)
        nonce = secrets.token_urlsafe(16)
        params = {
            "response_type": "code",
            "client_id": client.client_id,
            "redirect_uri": redirect_uri,
            "scope": scope,
            "state": state,
            "nonce": nonce,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            **(extra or {}),
        }
        url = reverse("oauth2_provider:authorize")
        response = http.get(url, params)
        if response.status_code == HTTPStatus.OK:
            # Consent screen: allow with the same parameters.
            response = http.post(url, {**params, "allow": "Allow"})
        query = _code_from_redirect(response, redirect_uri)
        assert query.get("state") == [state], query
        return CodeFlowResult(
            code=query["code"][0],
            verifier=verifier,
            redirect_uri=redirect_uri,
            state=state,
            nonce=nonce,
            params=query,
        )

    return run


@pytest.fixture
def token_endpoint() -> str:
    return reverse("oauth2_provider:token")


@pytest.fixture
def exchange_code(client, token_endpoint) -> Callable[..., Any]:
    """POST the code to the token endpoint authenticating as `oauth_client` (Basic or none)."""

    def exchange(oauth_client: Client, flow: CodeFlowResult, **overrides: str) -> Any:
        data = {**flow.token_data(), **overrides}
        headers = {}
        if oauth_client.client_type == Client.CLIENT_CONFIDENTIAL:
            headers["HTTP_AUTHORIZATION"] = basic_auth(
                oauth_client.client_id, oauth_client.test_secret
            )
        else:
            data.setdefault("client_id", oauth_client.client_id)
        return post_form(client, token_endpoint, data, **headers)

    return exchange


@pytest.fixture
def issue_tokens(run_code_flow, exchange_code) -> Callable[..., dict[str, Any]]:
    """Code flow plus code exchange: returns the token response JSON (asserts 200)."""

    def issue(oauth_client: Client, *, scope: str = "openid profile email", **kw: Any) -> dict:
        flow = run_code_flow(oauth_client, scope=scope, **kw)
        response = exchange_code(oauth_client, flow)
        assert response.status_code == HTTPStatus.OK, response.content
        return response.json()

    return issue


@pytest.fixture
def revoke(client):
    """POST to the revocation endpoint as `caller` (RFC 7009 §2.1): Basic for a confidential
    client, `client_id` in the body for a public one."""

    def do(caller: Client, token: str, **extra: str):
        data = {"token": token, **extra}
        headers = {}
        if caller.client_type == Client.CLIENT_CONFIDENTIAL:
            headers["HTTP_AUTHORIZATION"] = basic_auth(caller.client_id, caller.test_secret)
        else:
            data["client_id"] = caller.client_id
        return post_form(client, reverse("oauth2_provider:revoke-token"), data, **headers)

    return do
