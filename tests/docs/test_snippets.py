"""Every integration guide's snippet works against a live IdP (docs/snippets/, shown verbatim).

Python snippets run as written against `live_server`; the Node snippets are syntax-checked with
`node --check` (no npm packages are fetched), and the dependency-free SPA snippet also runs in
Node against the live server.
"""

from __future__ import annotations

import json
import runpy
import shutil
import subprocess
from http import HTTPStatus
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from oauth_clients.models import Client
from oauth_clients.services import register_client
from tests.docs.conftest import (
    DEMO_DIR,
    SNIPPETS_DIR,
    browser_sign_in,
    load_snippet,
)

pytestmark = [pytest.mark.django_db(transaction=True)]

APP_CALLBACK = "https://app.example.com/callback"
NODE = shutil.which("node")


@pytest.fixture
def web_app(db):
    client, secret = register_client(
        actor=None,
        kind=Client.Kind.WEB,
        name="Guide app",
        # The generic snippets' callback and mozilla-django-oidc's default callback path.
        redirect_uris=[APP_CALLBACK, "https://app.example.com/oidc/callback/"],
        post_logout_redirect_uris="https://app.example.com/",
        is_trusted=True,  # no consent screen in these tests
    )
    return client, secret


# --- Python: Authlib ---------------------------------------------------------------------------


@pytest.mark.spec("OpenID Connect Core 1.0", "3.1.3.7")
def test_authlib_snippet_signs_a_user_in_and_refreshes(provider, web_app, user, password):
    snippet = load_snippet("authlib_client")
    app, secret = web_app
    metadata = snippet.discover(provider)

    url, pending = snippet.start_sign_in(metadata, app.client_id, secret, APP_CALLBACK)
    callback = browser_sign_in(url, provider, "alice", password)
    claims, tokens = snippet.finish_sign_in(
        metadata, app.client_id, secret, APP_CALLBACK, callback, pending
    )

    assert claims["sub"] == str(user.pk)
    assert claims["iss"] == provider
    assert claims["email"] == "alice@example.com"
    refreshed = snippet.refresh(metadata, app.client_id, secret, tokens["refresh_token"])
    assert refreshed["access_token"] != tokens["access_token"]
    assert refreshed["refresh_token"] != tokens["refresh_token"]


def test_authlib_snippet_refuses_a_foreign_state_or_nonce(provider, web_app, user, password):
    snippet = load_snippet("authlib_client")
    app, secret = web_app
    metadata = snippet.discover(provider)

    url, pending = snippet.start_sign_in(metadata, app.client_id, secret, APP_CALLBACK)
    callback = browser_sign_in(url, provider, "alice", password)
    with pytest.raises(Exception, match=r"(?i)state"):
        snippet.finish_sign_in(
            metadata, app.client_id, secret, APP_CALLBACK, callback, {**pending, "state": "x"}
        )

    url, pending = snippet.start_sign_in(metadata, app.client_id, secret, APP_CALLBACK)
    callback = browser_sign_in(url, provider, "alice", password)
    with pytest.raises(Exception, match="nonce"):
        snippet.finish_sign_in(
            metadata, app.client_id, secret, APP_CALLBACK, callback, {**pending, "nonce": "x"}
        )


# --- Python: machine-to-machine and resource server --------------------------------------------


@pytest.fixture
def service_and_api(db):
    service, service_secret = register_client(actor=None, kind=Client.Kind.SERVICE, name="Batch")
    api, api_secret = register_client(
        actor=None, kind=Client.Kind.SERVICE, name="Orders API", is_resource_server=True
    )
    return (service, service_secret), (api, api_secret)


@pytest.mark.spec("RFC 6749", "4.4")
@pytest.mark.spec("RFC 7662", "2.1")
def test_service_token_is_accepted_by_a_resource_server(provider, service_and_api):
    (service, service_secret), (api, api_secret) = service_and_api
    tokens = load_snippet("client_credentials").ServiceTokens(
        provider, service.client_id, service_secret
    )
    resource_server = load_snippet("resource_server")
    validator = resource_server.TokenValidator(provider, api.client_id, api_secret)

    token = tokens.access_token()
    assert tokens.access_token() == token, "reused until it nearly expires"
    answer = validator.validate(f"Bearer {token}")
    assert answer["active"] is True
    assert answer["client_id"] == service.client_id

    # The snippet's call() sends the token as a Bearer header: the IdP's UserInfo recognises it
    # (and refuses it, since a machine's token carries no openid scope).
    userinfo = tokens.call("GET", f"{provider}/o/userinfo/")
    assert userinfo.status_code in (HTTPStatus.FORBIDDEN, HTTPStatus.UNAUTHORIZED)
    assert "invalid_request" not in userinfo.headers.get("WWW-Authenticate", "")


@pytest.mark.spec("RFC 7662", "2.2")
@pytest.mark.spec("RFC 6750", "3.1")
def test_resource_server_refuses_missing_unknown_revoked_and_underscoped_tokens(
    provider, service_and_api
):
    (service, service_secret), (api, api_secret) = service_and_api
    tokens = load_snippet("client_credentials").ServiceTokens(
        provider, service.client_id, service_secret
    )
    resource_server = load_snippet("resource_server")
    validator = resource_server.TokenValidator(provider, api.client_id, api_secret)
    token = tokens.access_token()
    assert validator.validate(f"Bearer {token}")["active"] is True  # positive path first

    for header in (None, "", "Basic abc", "Bearer ", "Bearer not-a-token"):
        with pytest.raises(resource_server.InvalidToken):
            validator.validate(header)
    with pytest.raises(resource_server.InsufficientScope):
        validator.validate(f"Bearer {token}", scope="orders:write")

    revoked = requests.post(
        f"{provider}/o/revoke_token/",
        data={"token": token},
        auth=(service.client_id, service_secret),
        timeout=10,
    )
    assert revoked.status_code == HTTPStatus.OK
    with pytest.raises(resource_server.InvalidToken):
        validator.validate(f"Bearer {token}")


# --- Django: mozilla-django-oidc and allauth ----------------------------------------------------


@pytest.mark.urls("tests.docs.mozilla_urls")
def test_mozilla_django_oidc_settings_sign_a_user_in(
    provider, settings, web_app, user, password, monkeypatch
):
    app, secret = web_app
    monkeypatch.setenv("COMPANY_IDP_ISSUER", provider)
    monkeypatch.setenv("COMPANY_IDP_CLIENT_ID", app.client_id)
    monkeypatch.setenv("COMPANY_IDP_CLIENT_SECRET", secret)
    guide = runpy.run_path(str(SNIPPETS_DIR / "mozilla_django_oidc_settings.py"))
    for name, value in guide.items():
        if name.isupper() and name != "COMPANY_IDP":
            setattr(settings, name, value)
    # The IdP's own sign-in backend stays first: this test process is both IdP and app.
    settings.AUTHENTICATION_BACKENDS = [
        "accounts.backends.LockoutAwareBackend",
        *guide["AUTHENTICATION_BACKENDS"],
    ]
    from django.test import Client as Browser

    rp = Browser(HTTP_HOST="app.example.com", **{"wsgi.url_scheme": "https"})
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "app.example.com"]
    start = rp.get("/oidc/authenticate/", secure=True)
    assert start.status_code == HTTPStatus.FOUND
    query = parse_qs(urlsplit(start["Location"]).query)
    assert query["code_challenge_method"] == ["S256"]
    assert query["redirect_uri"] == ["https://app.example.com/oidc/callback/"]

    callback = browser_sign_in(start["Location"], provider, "alice", password)
    # Registered for the test: the guide's callback path on the app's host.
    assert callback.startswith("https://app.example.com/oidc/callback/?")
    done = rp.get(urlsplit(callback).path + "?" + urlsplit(callback).query, secure=True)

    assert done.status_code == HTTPStatus.FOUND, done.content[:300]
    assert done["Location"] == guide["LOGIN_REDIRECT_URL"]
    assert rp.session["_auth_user_backend"] == guide["AUTHENTICATION_BACKENDS"][0]
    assert rp.session["oidc_id_token"], "kept for id_token_hint"


def test_allauth_guide_settings_are_the_demo_apps(tmp_path, monkeypatch):
    """deploy/demo-app runs these settings in the browser story (tests/browser/test_demo_story)."""
    monkeypatch.setenv("COMPANY_IDP_ISSUER", "http://127.0.0.1:8000")
    monkeypatch.setenv("COMPANY_IDP_CLIENT_ID", "demo-app")
    monkeypatch.setenv("COMPANY_IDP_CLIENT_SECRET", "s3cret")
    monkeypatch.setenv("DEMO_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("DEMO_CLIENT_ID", "demo-app")
    monkeypatch.setenv("DEMO_CLIENT_SECRET", "s3cret")
    guide = runpy.run_path(str(SNIPPETS_DIR / "allauth_settings.py"))
    demo = runpy.run_path(str(DEMO_DIR / "demo_site" / "settings.py"))

    names = [name for name in guide if name.isupper() and name != "COMPANY_IDP"]
    assert "SOCIALACCOUNT_PROVIDERS" in names
    assert {name: guide[name] for name in names} == {name: demo[name] for name in names}


# --- Node ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["openid_client.mjs", "spa_pkce.mjs"])
def test_node_snippets_are_valid_javascript(name):
    assert NODE, "node (20+) is needed to check the Node snippets"
    result = subprocess.run(
        [NODE, "--check", str(SNIPPETS_DIR / name)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def run_spa(step: str, payload: dict) -> dict:
    result = subprocess.run(
        [NODE, str(SNIPPETS_DIR.parent.parent / "tests" / "docs" / "run_spa_snippet.mjs"), step],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout)


@pytest.mark.spec("RFC 7636", "4.2")
def test_spa_snippet_signs_a_user_in_with_pkce_and_no_secret(provider, user, password):
    assert NODE, "node (20+) is needed to run the SPA snippet"
    spa, secret = register_client(
        actor=None,
        kind=Client.Kind.SPA,
        name="SPA",
        redirect_uris="https://spa.example.com/callback",
        is_trusted=True,
    )
    assert secret == "", "a single-page app has no secret"
    config = {
        "issuer": provider,
        "clientId": spa.client_id,
        "redirectUri": "https://spa.example.com/callback",
    }

    started = run_spa("start", config)
    query = parse_qs(urlsplit(started["url"]).query)
    assert query["code_challenge_method"] == ["S256"]
    callback = browser_sign_in(started["url"], provider, "alice", password)

    finished = run_spa("finish", {**config, "callbackUrl": callback, "storage": started["storage"]})
    assert finished["user"]["sub"] == str(user.pk)
    assert finished["user"]["email"] == "alice@example.com"
    assert finished["tokens"]["id_token"]

    # A callback whose state is not ours is refused before any token request.
    replay = run_spa(
        "finish-expecting-error",
        {**config, "callbackUrl": callback, "storage": {"oidc": json.dumps({"state": "other"})}},
    )
    assert replay["error"] == "state mismatch"
