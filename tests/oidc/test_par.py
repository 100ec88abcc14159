"""Pushed authorization requests (RFC 9126): POST /o/par/, then /o/authorize/ with `request_uri`.

The positive flows first (a confidential client with its secret, a public client through
sign-in and consent, a private_key_jwt client), then the attacks and mistakes: a request_uri
used twice, by another client, after it expired; a pushed request too large, from a client that
did not authenticate, carrying a request_uri, with an unregistered redirect URI; a client that
requires PAR sending a plain request.
"""

from __future__ import annotations

import datetime as dt
import json
from http import HTTPStatus
from io import StringIO
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import time_machine
from django.conf import settings
from django.core.management import call_command
from django.test import Client as HttpClient
from django.urls import reverse

from accounts.models import AuditEvent
from oauth_clients import services
from oauth_clients.models import Client
from tests.oidc.authorize_helpers import (
    AUTHORIZE_URL,
    assert_error_page,
    authorization_params,
    consent_form,
    redirect_query,
)
from tests.oidc.conftest import (
    CodeFlowResult,
    assert_dropping_is_a_weakening,
    basic_auth,
    make_client,
    pkce_pair,
    post_form,
)
from tests.oidc.pkjwt_helpers import ASSERTION_TYPE, ClientKey, jwks_of

PAR_URL = "/o/par/"
REQUEST_URI_PREFIX = "urn:ietf:params:oauth:request_uri:"


def push(http: HttpClient, oauth_client: Client, params: dict[str, str], **headers: Any) -> Any:
    """POST the authorization request to the PAR endpoint, authenticated as `oauth_client`
    (Basic for a confidential client, its id in the body for a public one)."""
    data = dict(params)
    if oauth_client.client_type == Client.CLIENT_CONFIDENTIAL and oauth_client.test_secret:
        headers.setdefault(
            "HTTP_AUTHORIZATION", basic_auth(oauth_client.client_id, oauth_client.test_secret)
        )
    return post_form(http, PAR_URL, data, **headers)


def pushed_request(oauth_client: Client, **overrides: Any) -> tuple[str, dict[str, str], str]:
    """Push a valid code + PKCE request: its request_uri, its parameters and the verifier."""
    verifier, challenge = pkce_pair()
    params = authorization_params(oauth_client, code_challenge=challenge, **overrides)
    response = push(HttpClient(), oauth_client, params)
    assert response.status_code == HTTPStatus.CREATED, response.content
    return response.json()["request_uri"], params, verifier


def authorize_url(client_id: str, request_uri: str) -> str:
    return f"{AUTHORIZE_URL}?{urlencode({'client_id': client_id, 'request_uri': request_uri})}"


def exchange(http: HttpClient, oauth_client: Client, flow: CodeFlowResult) -> Any:
    headers = {}
    data = flow.token_data()
    if oauth_client.client_type == Client.CLIENT_CONFIDENTIAL:
        headers["HTTP_AUTHORIZATION"] = basic_auth(oauth_client.client_id, oauth_client.test_secret)
    else:
        data["client_id"] = oauth_client.client_id
    return post_form(http, reverse("oauth2_provider:token"), data, **headers)


def signed_in(user: Any) -> HttpClient:
    browser = HttpClient()
    browser.force_login(user)
    return browser


@pytest.fixture
def par_client(db) -> Client:
    """A confidential web app that requires pushed authorization requests (RFC 9126 §6)."""
    return make_client(
        name="PAR App",
        client_id="par-app",
        secret="par-app-secret-" + "z" * 30,
        redirect_uris="https://par.example.com/callback",
        grant_types=[Client.GRANT_AUTHORIZATION_CODE, "refresh_token"],
        allowed_scopes="openid profile email",
        is_trusted=True,
        require_pushed_authorization_requests=True,
    )


# ----------------------------------------------------------------------------- positive flows


@pytest.mark.spec("RFC 9126", "2.1")
@pytest.mark.spec("RFC 9126", "2.2")
@pytest.mark.spec("RFC 9126", "4")
def test_pushed_request_gives_a_code_that_exchanges_with_pkce(web_client, user):
    verifier, challenge = pkce_pair()
    params = authorization_params(web_client, code_challenge=challenge)
    response = push(HttpClient(), web_client, params)

    assert response.status_code == HTTPStatus.CREATED, response.content
    assert "no-store" in response["Cache-Control"]
    body = response.json()
    assert body["expires_in"] == 60
    assert body["request_uri"].startswith(REQUEST_URI_PREFIX)
    assert len(body["request_uri"]) > len(REQUEST_URI_PREFIX) + 40

    # The browser carries only the reference; everything else comes from the pushed request.
    browser = signed_in(user)
    query = redirect_query(
        browser.get(authorize_url(web_client.client_id, body["request_uri"])),
        params["redirect_uri"],
    )
    assert query["state"] == params["state"]
    assert query["iss"] == settings.IDP_ISSUER
    flow = CodeFlowResult(
        query["code"], verifier, params["redirect_uri"], params["state"], params["nonce"]
    )
    tokens = exchange(HttpClient(), web_client, flow)
    assert tokens.status_code == HTTPStatus.OK, tokens.content
    assert {"access_token", "id_token", "refresh_token"} <= set(tokens.json())

    # The PKCE challenge travelled with the pushed request: a wrong verifier is refused.
    request_uri, params, _verifier = pushed_request(web_client)
    other = redirect_query(
        browser.get(authorize_url(web_client.client_id, request_uri)), params["redirect_uri"]
    )
    wrong = CodeFlowResult(other["code"], pkce_pair()[0], params["redirect_uri"], "", "")
    assert exchange(HttpClient(), web_client, wrong).json()["error"] == "invalid_grant"


@pytest.mark.spec("RFC 9126", "4")
def test_public_client_pushes_then_the_browser_signs_in_and_consents(spa_client, user, password):
    verifier, challenge = pkce_pair()
    params = authorization_params(spa_client, code_challenge=challenge, login_hint=user.username)
    response = push(HttpClient(), spa_client, params)  # a public client: its client_id only
    assert response.status_code == HTTPStatus.CREATED, response.content
    request_uri = response.json()["request_uri"]

    browser = HttpClient()
    to_login = browser.get(authorize_url(spa_client.client_id, request_uri))
    assert to_login.status_code == HTTPStatus.FOUND
    next_url = parse_qs(urlsplit(to_login["Location"]).query)["next"][0]
    next_query = parse_qs(urlsplit(next_url).query)
    # The sign-in round trip carries the reference and the sign-in page's hint, not the request.
    assert next_query["request_uri"] == [request_uri]
    assert next_query["login_hint"] == [user.username]
    assert "code_challenge" not in next_query
    assert "redirect_uri" not in next_query

    browser.force_login(user)
    consent = browser.get(next_url)
    action, fields = consent_form(consent)
    assert "request_uri" in action
    assert "redirect_uri" not in action
    assert "login_hint" not in action
    query = redirect_query(
        browser.post(action, {**fields, "allow": "allow"}), params["redirect_uri"]
    )
    assert query["state"] == params["state"]
    flow = CodeFlowResult(
        query["code"], verifier, params["redirect_uri"], params["state"], params["nonce"]
    )
    assert exchange(HttpClient(), spa_client, flow).status_code == HTTPStatus.OK


@pytest.mark.spec("RFC 9126", "2")
def test_private_key_jwt_client_pushes_with_an_assertion_for_the_par_endpoint(admin_user, user):
    key = ClientKey.rsa()
    signer, secret = services.register_client(
        actor=admin_user,
        kind=Client.Kind.WEB,
        name="Signer",
        client_id="signer-web",
        redirect_uris=["https://signer.example.com/cb"],
        is_trusted=True,
        jwks=jwks_of(key),
    )
    assert secret == ""
    params = authorization_params(signer)
    params.pop("client_id")  # RFC 7523: the assertion names the client
    for audience in (f"{settings.IDP_ISSUER}/o/par/", settings.IDP_ISSUER):
        assertion = key.assertion("signer-web", audience)
        response = post_form(
            HttpClient(),
            PAR_URL,
            {**params, "client_assertion_type": ASSERTION_TYPE, "client_assertion": assertion},
        )
        assert response.status_code == HTTPStatus.CREATED, response.content
    code = redirect_query(
        signed_in(user).get(authorize_url("signer-web", response.json()["request_uri"])),
        params["redirect_uri"],
    )
    assert "code" in code

    # The same assertion again is a replay (its jti is single use).
    replay = post_form(
        HttpClient(),
        PAR_URL,
        {**params, "client_assertion_type": ASSERTION_TYPE, "client_assertion": assertion},
    )
    assert replay.status_code == HTTPStatus.UNAUTHORIZED
    assert replay.json()["error"] == "invalid_client"


@pytest.mark.spec("RFC 9126", "4")
def test_prompt_login_reauthenticates_then_continues_the_pushed_request(web_client, user):
    request_uri, params, _verifier = pushed_request(web_client, prompt="login")
    browser = signed_in(user)
    to_reauth = browser.get(authorize_url(web_client.client_id, request_uri))
    assert to_reauth.status_code == HTTPStatus.FOUND
    assert urlsplit(to_reauth["Location"]).path == reverse("account_reauthenticate")
    next_url = parse_qs(urlsplit(to_reauth["Location"]).query)["next"][0]
    assert parse_qs(urlsplit(next_url).query)["request_uri"] == [request_uri]
    # Back from re-authentication: the request goes on without asking again.
    query = redirect_query(browser.get(next_url), params["redirect_uri"])
    assert "code" in query


def test_single_page_app_may_push_from_its_origin(admin_user):
    spa, _secret = services.register_client(
        actor=admin_user,
        kind=Client.Kind.SPA,
        name="Browser App",
        redirect_uris=["https://browser-app.example.com/cb"],
    )
    spa.test_secret = ""
    origin = "https://browser-app.example.com"
    preflight = HttpClient().options(PAR_URL, HTTP_ORIGIN=origin)
    assert preflight.status_code == HTTPStatus.NO_CONTENT
    assert preflight["Access-Control-Allow-Origin"] == origin
    response = push(HttpClient(), spa, authorization_params(spa), HTTP_ORIGIN=origin)
    assert response.status_code == HTTPStatus.CREATED, response.content
    assert response["Access-Control-Allow-Origin"] == origin
    other = push(HttpClient(), spa, authorization_params(spa), HTTP_ORIGIN="https://evil.example")
    assert "Access-Control-Allow-Origin" not in other


# ----------------------------------------------------------------------------- the request_uri


@pytest.mark.spec("RFC 9126", "4")
def test_request_uri_is_used_once(web_client, user):
    request_uri, params, _verifier = pushed_request(web_client)
    browser = signed_in(user)
    first = browser.get(authorize_url(web_client.client_id, request_uri))
    assert "code" in redirect_query(first, params["redirect_uri"])

    # Again in the same browser, and from another: the error page, never a redirect.
    assert_error_page(browser.get(authorize_url(web_client.client_id, request_uri)))
    assert_error_page(signed_in(user).get(authorize_url(web_client.client_id, request_uri)))


@pytest.mark.spec("RFC 9126", "4")
def test_request_uri_of_another_client_is_refused_and_stays_usable(web_client, spa_client, user):
    request_uri, params, _verifier = pushed_request(web_client)
    browser = signed_in(user)
    refused = browser.get(authorize_url(spa_client.client_id, request_uri))
    assert_error_page(refused)
    assert b"another client" in refused.content

    # Another client's attempt did not spend it: its own client still gets a code.
    ok = browser.get(authorize_url(web_client.client_id, request_uri))
    assert "code" in redirect_query(ok, params["redirect_uri"])


@pytest.mark.spec("RFC 9126", "2.2")
def test_request_uri_expires_after_sixty_seconds(web_client, user):
    request_uri, params, _verifier = pushed_request(web_client)
    browser = signed_in(user)
    with time_machine.travel(dt.datetime.now(tz=dt.UTC) + dt.timedelta(seconds=59)):
        live, _params, _verifier = pushed_request(web_client)
        assert "code" in redirect_query(
            browser.get(authorize_url(web_client.client_id, live)), params["redirect_uri"]
        )
    with time_machine.travel(dt.datetime.now(tz=dt.UTC) + dt.timedelta(seconds=61)):
        assert_error_page(browser.get(authorize_url(web_client.client_id, request_uri)))


def test_unknown_or_malformed_request_uri_gets_the_error_page(web_client, user):
    browser = signed_in(user)
    assert_error_page(browser.get(authorize_url(web_client.client_id, REQUEST_URI_PREFIX + "x")))
    assert_error_page(browser.get(authorize_url(web_client.client_id, "https://evil.example/r")))
    # A request_uri without the client_id it belongs to.
    request_uri, _params, _verifier = pushed_request(web_client)
    assert_error_page(browser.get(f"{AUTHORIZE_URL}?{urlencode({'request_uri': request_uri})}"))


@pytest.mark.spec("RFC 9126", "4")
def test_url_parameters_beside_request_uri_are_ignored(web_client, user):
    """Only the pushed parameters count: a redirect_uri added to the URL changes nothing."""
    request_uri, params, _verifier = pushed_request(web_client)
    url = (
        authorize_url(web_client.client_id, request_uri)
        + "&"
        + urlencode({"redirect_uri": "https://evil.example/cb", "state": "forged"})
    )
    query = redirect_query(signed_in(user).get(url), params["redirect_uri"])
    assert query["state"] == params["state"]


# ----------------------------------------------------------------------------- the PAR endpoint


@pytest.mark.spec("RFC 9126", "2.1")
def test_too_large_a_pushed_request_is_refused(web_client):
    _uri, _params, _verifier = pushed_request(web_client)  # a normal one is accepted
    params = authorization_params(web_client, state="s" * 8000, nonce="n" * 8000, claims="{}" * 900)
    response = push(HttpClient(), web_client, params)
    assert response.status_code == HTTPStatus.REQUEST_ENTITY_TOO_LARGE
    assert response.json()["error"] == "invalid_request"
    huge = push(HttpClient(), web_client, {**params, "claims": "x" * 3_000_000})
    assert huge.status_code == HTTPStatus.REQUEST_ENTITY_TOO_LARGE
    assert huge.json()["error"] == "invalid_request"


@pytest.mark.spec("RFC 9126", "2.1")
def test_client_that_does_not_authenticate_is_refused(web_client):
    params = authorization_params(web_client)
    assert push(HttpClient(), web_client, params).status_code == HTTPStatus.CREATED
    for headers, extra in (
        ({"HTTP_AUTHORIZATION": basic_auth(web_client.client_id, "wrong")}, {}),
        ({}, {}),  # a confidential client naming itself without its secret
        ({}, {"client_id": "no-such-client"}),
        ({}, {"client_id": ""}),
    ):
        response = post_form(HttpClient(), PAR_URL, {**params, **extra}, **headers)
        assert response.status_code == HTTPStatus.UNAUTHORIZED, (headers, extra)
        assert response.json()["error"] == "invalid_client"
        assert response["WWW-Authenticate"].startswith("Basic")


@pytest.mark.spec("RFC 9126", "2.1")
def test_request_uri_inside_a_pushed_request_is_refused(web_client):
    request_uri, params, _verifier = pushed_request(web_client)
    response = push(HttpClient(), web_client, {**params, "request_uri": request_uri})
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json()["error"] == "invalid_request"


@pytest.mark.spec("RFC 9126", "2.3")
@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"redirect_uri": "https://evil.example.com/callback"}, "invalid_request"),
        ({"redirect_uri": None}, "invalid_request"),
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"scope": "openid admin:users"}, "invalid_scope"),
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge": None, "code_challenge_method": None}, "invalid_request"),
        ({"request": "eyJhbGciOiJub25lIn0.e30."}, "request_not_supported"),
    ],
)
def test_pushed_request_is_validated_as_an_authorization_request(spa_client, overrides, error):
    assert push(HttpClient(), spa_client, authorization_params(spa_client)).status_code == 201
    response = push(HttpClient(), spa_client, authorization_params(spa_client, **overrides))
    assert response.status_code == HTTPStatus.BAD_REQUEST, response.content
    assert response.json()["error"] == error
    assert "no-store" in response["Cache-Control"]


@pytest.mark.parametrize(
    ("method", "content_type"),
    [("get", None), ("post", "application/json"), ("post", "multipart/form-data; boundary=x")],
)
def test_malformed_push_gets_an_oauth_error(web_client, method, content_type):
    http = HttpClient()
    if method == "get":
        response = http.get(PAR_URL)
        assert response.status_code == HTTPStatus.METHOD_NOT_ALLOWED
    else:
        response = http.post(PAR_URL, "{}", content_type=content_type)
        assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json()["error"] == "invalid_request"


@pytest.mark.spec("RFC 9126", "4")
def test_prompt_none_is_answered_when_the_browser_arrives(web_client, user):
    request_uri, params, _verifier = pushed_request(web_client, prompt="none")
    query = redirect_query(
        HttpClient().get(authorize_url(web_client.client_id, request_uri)),
        params["redirect_uri"],
    )
    assert query["error"] == "login_required"
    assert query["state"] == params["state"]
    # Answered: spent.
    assert_error_page(signed_in(user).get(authorize_url(web_client.client_id, request_uri)))


# ----------------------------------------------------------------------------- required PAR


@pytest.mark.spec("RFC 9126", "6")
def test_client_requiring_par_is_refused_a_plain_request(par_client, user):
    browser = signed_in(user)
    request_uri, params, _verifier = pushed_request(par_client)
    assert "code" in redirect_query(
        browser.get(authorize_url(par_client.client_id, request_uri)), params["redirect_uri"]
    )

    plain = authorization_params(par_client)
    query = redirect_query(browser.get(AUTHORIZE_URL, plain), plain["redirect_uri"])
    assert query["error"] == "invalid_request"
    assert "pushed" in query["error_description"]
    assert query["state"] == plain["state"]
    assert "code" not in query
    # An unregistered redirect URI still gets the error page, never a redirect.
    assert_error_page(
        browser.get(AUTHORIZE_URL, {**plain, "redirect_uri": "https://evil.example.com/cb"})
    )


def test_requiring_par_is_a_client_setting_changed_with_an_audit_row(web_client, admin_user):
    services.update_client(
        client=web_client,
        actor=admin_user,
        changes={"require_pushed_authorization_requests": True},
    )
    web_client.refresh_from_db()
    assert web_client.require_pushed_authorization_requests
    event = AuditEvent.objects.filter(type=AuditEvent.Type.CLIENT_CHANGED).latest("pk")
    assert event.client == web_client
    assert event.extra["fields"] == ["require_pushed_authorization_requests"]

    services.update_client(
        client=web_client,
        actor=admin_user,
        changes={"require_pushed_authorization_requests": False},
    )
    event = AuditEvent.objects.filter(type=AuditEvent.Type.CLIENT_CHANGED).latest("pk")
    assert event.extra["weakened"] == ["stops requiring pushed requests"]


def test_the_setting_travels_with_the_registry_export_and_import(admin_user):
    wiki, _secret = services.register_client(
        actor=admin_user,
        kind=Client.Kind.WEB,
        name="Wiki",
        redirect_uris=["https://wiki.example.com/cb"],
        require_pushed_authorization_requests=True,
    )
    # Turning it off weakens the app: refused without --force, nothing changes.
    assert_dropping_is_a_weakening(
        wiki,
        "require_pushed_authorization_requests",
        "stops requiring pushed requests",
        actor=admin_user,
    )


def test_clients_create_require_par_flag(admin_user):
    out = StringIO()
    call_command(
        "clients",
        "create",
        "--kind=web",
        "--name=Strict",
        "--redirect-uri=https://strict.example.com/cb",
        "--require-par",
        "--json",
        stdout=out,
        stderr=StringIO(),
    )
    data = json.loads(out.getvalue())
    assert data["require_pushed_authorization_requests"] is True
    assert Client.objects.get(client_id=data["client_id"]).require_pushed_authorization_requests


def test_admin_change_form_offers_the_setting(admin_client, web_client):
    page = admin_client.get(reverse("admin:oauth_clients_client_change", args=[web_client.pk]))
    assert page.status_code == HTTPStatus.OK
    form = page.context["adminform"].form
    assert "require_pushed_authorization_requests" in form.fields
    assert 'name="require_pushed_authorization_requests"' in page.content.decode()


@pytest.mark.spec("RFC 9126", "5")
def test_discovery_names_the_par_endpoint(client):
    metadata = client.get("/.well-known/openid-configuration").json()
    assert metadata["pushed_authorization_request_endpoint"] == f"{settings.IDP_ISSUER}/o/par/"
    assert metadata["require_pushed_authorization_requests"] is False
