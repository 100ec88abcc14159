"""Authorization endpoint: code flow + PKCE, exact redirect URIs, errors where the spec says."""

from __future__ import annotations

from http import HTTPStatus
from urllib.parse import urlencode, urlsplit

import pytest

from oauth_clients.models import Grant
from oauth_clients.oidc.consent import grant_consent
from tests.oidc.authorize_helpers import (
    AUTHORIZE_URL,
    assert_error_page,
    authorization_params,
    issuer,
    redirect_query,
)
from tests.oidc.conftest import SPA_REDIRECT_URI, WEB_REDIRECT_URI, make_client

# --------------------------------------------------------------------------- positive paths


@pytest.mark.spec("RFC 6749", "4.1.2")
@pytest.mark.spec("RFC 9207", "2")
def test_code_flow_redirects_with_code_state_and_iss(client, user, web_client):
    client.force_login(user)
    params = authorization_params(web_client)
    query = redirect_query(client.get(AUTHORIZE_URL, params), WEB_REDIRECT_URI)
    assert query["code"]
    assert query["state"] == params["state"]
    assert query["iss"] == issuer()


@pytest.mark.spec("OpenID Connect Core 1.0", "3.1.2.1")
def test_authorization_request_by_post_form_body(client, user, web_client):
    client.force_login(user)
    params = authorization_params(web_client)
    query = redirect_query(client.post(AUTHORIZE_URL, params), WEB_REDIRECT_URI)
    assert query["code"]
    assert query["state"] == params["state"]


@pytest.mark.spec("OpenID Connect Core 1.0", "3.1.2.1")
def test_post_request_of_anonymous_user_keeps_its_parameters_through_sign_in(client, web_client):
    params = authorization_params(web_client)
    response = client.post(AUTHORIZE_URL, params)
    assert response.status_code == HTTPStatus.FOUND
    next_url = urlsplit(response["Location"])
    assert next_url.path == "/accounts/login/"
    assert "code_challenge%3D" in next_url.query  # the request rides along in `next`


def test_code_is_bound_to_the_session_that_authorized_it(client, user, web_client):
    client.force_login(user)
    redirect_query(client.get(AUTHORIZE_URL, authorization_params(web_client)), WEB_REDIRECT_URI)
    grant = Grant.objects.get()
    session = client.session
    assert grant.sid == session["idp_sid"]
    assert grant.sid
    assert int(grant.auth_time.timestamp()) == session["idp_auth_time"]
    assert grant.amr == ["pwd"]
    assert grant.user == user


@pytest.mark.spec("OpenID Connect Core 1.0", "3.1.2.1")
@pytest.mark.parametrize(
    "extra",
    [
        {"display": "popup"},
        {"ui_locales": "fr-CA fr en"},
        {"claims_locales": "de"},
        {"acr_values": "urn:example:loa:2 phr"},
        {"login_hint": "alice"},
        {"response_mode": "query"},
        {"some_unknown_parameter": "whatever"},
        {"claims": '{"userinfo": {"email": {"essential": true}}, "id_token": {"auth_time": null}}'},
    ],
    ids=lambda extra: next(iter(extra)),
)
def test_optional_and_unknown_parameters_are_accepted(client, user, web_client, extra):
    client.force_login(user)
    params = authorization_params(web_client, **extra)
    query = redirect_query(client.get(AUTHORIZE_URL, params), WEB_REDIRECT_URI)
    assert query["code"]
    assert query["state"] == params["state"]


def test_client_without_pkce_requirement_may_omit_pkce(client, user):
    legacy = make_client(
        name="Legacy",
        client_id="legacy",
        secret="legacy-secret-" + "z" * 30,
        redirect_uris="https://legacy.example.com/cb",
        is_trusted=True,
        require_pkce=False,
    )
    client.force_login(user)
    params = authorization_params(legacy, code_challenge=None, code_challenge_method=None)
    assert redirect_query(client.get(AUTHORIZE_URL, params), "https://legacy.example.com/cb")[
        "code"
    ]


def test_loopback_redirect_uri_matches_on_any_port(client, user):
    native = make_client(
        name="Desktop",
        client_id="desktop",
        kind="native",
        client_type="public",
        redirect_uris="http://127.0.0.1/callback",
        is_trusted=True,
    )
    client.force_login(user)
    params = authorization_params(native, redirect_uri="http://127.0.0.1:53117/callback")
    assert redirect_query(client.get(AUTHORIZE_URL, params), "http://127.0.0.1:53117/callback")[
        "code"
    ]


@pytest.mark.spec("RFC 8252", "7.1")
def test_native_app_private_use_scheme_redirect(client, user):
    native = make_client(
        name="Mobile",
        client_id="mobile",
        client_type="public",
        kind="native",
        redirect_uris="com.example.mobile:/oauth2redirect",
        is_trusted=True,
    )
    client.force_login(user)
    params = authorization_params(native)
    query = redirect_query(client.get(AUTHORIZE_URL, params), "com.example.mobile:/oauth2redirect")
    assert query["code"]
    assert query["iss"] == issuer()
    other = authorization_params(native, redirect_uri="com.example.evil:/oauth2redirect")
    assert_error_page(client.get(AUTHORIZE_URL, other))


# --------------------------------------------------------------------------- fatal errors:
# the client or redirect URI is not trustworthy, so nobody is redirected anywhere.


@pytest.mark.spec("RFC 6749", "4.1.2.1")
@pytest.mark.parametrize("signed_in", [True, False], ids=["signed-in", "anonymous"])
@pytest.mark.parametrize(
    "overrides",
    [
        {"client_id": "no-such-client"},
        {"client_id": None},
        {"redirect_uri": None},
        {"redirect_uri": "https://evil.example.com/callback"},
    ],
    ids=["unknown-client", "missing-client", "missing-redirect-uri", "unregistered-redirect-uri"],
)
def test_bad_client_or_redirect_uri_gets_error_page_and_no_redirect(
    client, user, web_client, signed_in, overrides
):
    if signed_in:
        client.force_login(user)
    positive = client.get(AUTHORIZE_URL, authorization_params(web_client))
    assert positive.status_code == HTTPStatus.FOUND
    expected = WEB_REDIRECT_URI if signed_in else "/accounts/login/"
    assert positive["Location"].startswith(expected)
    assert_error_page(client.get(AUTHORIZE_URL, authorization_params(web_client, **overrides)))


@pytest.mark.spec("RFC 6749", "4.1.2.1")
def test_disabled_client_gets_error_page(client, user, web_client):
    client.force_login(user)
    redirect_query(client.get(AUTHORIZE_URL, authorization_params(web_client)), WEB_REDIRECT_URI)
    web_client.is_active = False
    web_client.save(update_fields=["is_active"])
    response = client.get(AUTHORIZE_URL, authorization_params(web_client))
    assert_error_page(response)
    assert "disabled" in response.content.decode()


@pytest.mark.spec("RFC 9700", "4.1.3")
@pytest.mark.spec("OpenID Connect Core 1.0", "3.1.2.1")
@pytest.mark.parametrize(
    "redirect_uri",
    [
        "https://web.example.com/callback/extra",  # path suffix
        "https://web.example.com/callbackx",  # string suffix
        "https://web.example.com/callback?next=https://evil.example.com",  # query added
        "https://web.example.com/callback?",  # empty query added
        "https://web.example.com:8443/callback",  # other port
        "https://web.example.com:443/callback",  # explicit default port: not the same string
        "https://WEB.example.com/callback",  # other case (host)
        "https://web.example.com/Callback",  # other case (path)
        "HTTPS://web.example.com/callback",  # other case (scheme)
        "https://evil.example.com@web.example.com/callback",  # userinfo
        "https://web.example.com@evil.example.com/callback",  # userinfo, other host
        "https://web.example.com/callback#frag",  # fragment
        "https://web.example.com/callback/..;/evil",  # path parameter traversal
        "https://web.example.com/callback/../evil",  # dot segments
        "http://web.example.com/callback",  # other scheme
        "https://web.example.com./callback",  # trailing dot host
        "https://web.example.com/callback%2F..%2Fevil",  # encoded traversal
        " https://web.example.com/callback",  # leading space
        "//evil.example.com/callback",  # scheme-relative
        "javascript:alert(1)//web.example.com/callback",
    ],
)
def test_hostile_redirect_uri_variants_get_error_page(client, user, web_client, redirect_uri):
    client.force_login(user)
    redirect_query(client.get(AUTHORIZE_URL, authorization_params(web_client)), WEB_REDIRECT_URI)
    response = client.get(
        AUTHORIZE_URL, authorization_params(web_client, redirect_uri=redirect_uri)
    )
    assert_error_page(response)
    assert not Grant.objects.filter(redirect_uri=redirect_uri).exists()


@pytest.mark.spec("RFC 6749", "3.1")
@pytest.mark.parametrize("name", ["client_id", "redirect_uri", "response_type", "scope", "state"])
def test_duplicated_core_parameter_gets_error_page(client, user, web_client, name):
    client.force_login(user)
    params = authorization_params(web_client)
    query = urlencode([*params.items(), (name, params[name])])
    assert_error_page(client.get(f"{AUTHORIZE_URL}?{query}"))


@pytest.mark.spec("RFC 6749", "3.1")
@pytest.mark.parametrize("name", ["nonce", "code_challenge", "prompt", "max_age"])
def test_duplicated_other_parameter_is_refused_to_the_redirect_uri(client, user, web_client, name):
    client.force_login(user)
    params = authorization_params(web_client, prompt="consent", max_age="600")
    query = urlencode([*params.items(), (name, params[name])])
    error = redirect_query(client.get(f"{AUTHORIZE_URL}?{query}"), WEB_REDIRECT_URI)
    assert error["error"] == "invalid_request"
    assert error["state"] == params["state"]
    assert error["iss"] == issuer()
    assert not Grant.objects.exists()


@pytest.mark.spec("RFC 6749", "3.1")
def test_parameter_repeated_in_query_and_body_is_refused(client, user, web_client):
    client.force_login(user)
    params = authorization_params(web_client)
    response = client.post(f"{AUTHORIZE_URL}?{urlencode({'nonce': 'a'})}", params)
    error = redirect_query(response, WEB_REDIRECT_URI)
    assert error["error"] == "invalid_request"


# --------------------------------------------------------------------------- errors redirected
# to the validated redirect URI, each with state and iss.


@pytest.mark.spec("RFC 6749", "4.1.2.1")
@pytest.mark.spec("RFC 9700", "2.1.2")
@pytest.mark.parametrize(
    "response_type",
    ["token", "id_token", "id_token token", "code id_token", "code token", "code id_token token"],
)
def test_implicit_and_hybrid_response_types_are_unsupported(
    client, user, web_client, response_type
):
    client.force_login(user)
    redirect_query(client.get(AUTHORIZE_URL, authorization_params(web_client)), WEB_REDIRECT_URI)
    params = authorization_params(web_client, response_type=response_type)
    error = redirect_query(client.get(AUTHORIZE_URL, params), WEB_REDIRECT_URI)
    assert error["error"] == "unsupported_response_type"
    assert error["state"] == params["state"]
    assert error["iss"] == issuer()
    assert "access_token" not in error
    assert "id_token" not in error
    assert "code" not in error


@pytest.mark.spec("RFC 6749", "4.1.2.1")
@pytest.mark.parametrize("response_type", [None, "none", "bogus"])
def test_missing_or_unknown_response_type_is_refused(client, user, web_client, response_type):
    client.force_login(user)
    params = authorization_params(web_client, response_type=response_type)
    error = redirect_query(client.get(AUTHORIZE_URL, params), WEB_REDIRECT_URI)
    assert error["error"] in {"invalid_request", "unsupported_response_type"}
    assert error["state"] == params["state"]
    assert error["iss"] == issuer()


@pytest.mark.spec("RFC 7636", "4.4.1")
@pytest.mark.spec("RFC 9700", "2.1.1")
@pytest.mark.parametrize(
    "overrides",
    [
        {"code_challenge": None, "code_challenge_method": None},
        {"code_challenge_method": "plain"},
        {"code_challenge_method": None},  # RFC 7636 §4.3: defaults to plain
        {"code_challenge_method": "S512"},
    ],
    ids=["missing", "plain", "method-omitted", "unknown-method"],
)
def test_pkce_s256_is_required(client, user, web_client, spa_client, overrides):
    client.force_login(user)
    for oauth_client in (web_client, spa_client):
        params = authorization_params(oauth_client, **overrides)
        redirect_uri = oauth_client.redirect_uris.split()[0]
        error = redirect_query(client.get(AUTHORIZE_URL, params), redirect_uri)
        assert error["error"] == "invalid_request", error
        assert error["state"] == params["state"]
        assert error["iss"] == issuer()
    assert not Grant.objects.exists()


@pytest.mark.spec("OpenID Connect Core 1.0", "6")
@pytest.mark.parametrize(
    ("name", "error_code"),
    [
        ("request", "request_not_supported"),
        ("request_uri", "request_uri_not_supported"),
    ],
)
def test_request_objects_are_refused_not_ignored(client, user, web_client, name, error_code):
    client.force_login(user)
    params = authorization_params(web_client, **{name: "eyJhbGciOiJub25lIn0.e30."})
    error = redirect_query(client.get(AUTHORIZE_URL, params), WEB_REDIRECT_URI)
    assert error["error"] == error_code
    assert error["state"] == params["state"]
    assert error["iss"] == issuer()


@pytest.mark.spec("RFC 8707", "2")
def test_resource_indicators_are_kept_on_the_code(client, user, web_client):
    client.force_login(user)
    params = authorization_params(web_client)
    query = urlencode(
        [
            *params.items(),
            ("resource", "https://api.example.com"),
            ("resource", "https://b.example"),
        ]
    )
    assert redirect_query(client.get(f"{AUTHORIZE_URL}?{query}"), WEB_REDIRECT_URI)["code"]
    assert Grant.objects.get().resource == ["https://api.example.com", "https://b.example"]


@pytest.mark.spec("RFC 8707", "2")
@pytest.mark.parametrize("resource", ["not a uri", "/relative", "https://api.example.com/#frag"])
def test_invalid_resource_is_invalid_target(client, user, web_client, resource):
    client.force_login(user)
    params = authorization_params(web_client, resource=resource)
    error = redirect_query(client.get(AUTHORIZE_URL, params), WEB_REDIRECT_URI)
    assert error["error"] == "invalid_target"
    assert error["state"] == params["state"]
    assert not Grant.objects.exists()


@pytest.mark.spec("OAuth 2.0 Multiple Response Type Encoding Practices", "2.1")
@pytest.mark.parametrize("response_mode", ["fragment", "form_post", "web_message"])
def test_response_modes_other_than_query_are_refused(client, user, web_client, response_mode):
    client.force_login(user)
    params = authorization_params(web_client, response_mode=response_mode)
    response = client.get(AUTHORIZE_URL, params)
    assert "#" not in response["Location"]
    error = redirect_query(response, WEB_REDIRECT_URI)
    assert error["error"] == "invalid_request"
    assert error["state"] == params["state"]
    assert not Grant.objects.exists()


@pytest.mark.spec("RFC 6749", "4.1.2.1")
def test_scope_outside_the_clients_allowed_scopes_is_invalid_scope(client, user, spa_client):
    client.force_login(user)
    params = authorization_params(spa_client, scope="openid groups")
    error = redirect_query(client.get(AUTHORIZE_URL, params), spa_client.redirect_uris)
    assert error["error"] == "invalid_scope"
    assert error["state"] == params["state"]
    assert error["iss"] == issuer()


@pytest.mark.spec("RFC 6749", "4.1.2.1")
def test_unknown_scope_is_invalid_scope(client, user, web_client):
    client.force_login(user)
    params = authorization_params(web_client, scope="openid admin")
    assert redirect_query(client.get(AUTHORIZE_URL, params), WEB_REDIRECT_URI)["error"] == (
        "invalid_scope"
    )


@pytest.mark.spec("OpenID Connect Core 1.0", "3.1.2.1")
@pytest.mark.parametrize("max_age", ["-1", "ten", "1.5", "１２"])
def test_malformed_max_age_is_invalid_request(client, user, web_client, max_age):
    client.force_login(user)
    params = authorization_params(web_client, max_age=max_age)
    assert redirect_query(client.get(AUTHORIZE_URL, params), WEB_REDIRECT_URI)["error"] == (
        "invalid_request"
    )


@pytest.mark.spec("OpenID Connect Core 1.0", "5.5")
def test_malformed_claims_parameter_is_invalid_request(client, user, web_client):
    client.force_login(user)
    params = authorization_params(web_client, claims="{not json")
    error = redirect_query(client.get(AUTHORIZE_URL, params), WEB_REDIRECT_URI)
    assert error["error"] == "invalid_request"
    assert error["state"] == params["state"]


# --------------------------------------------------------------------------- hostile input:
# never a 500, never a redirect to anything unvalidated.


@pytest.mark.parametrize("signed_in", [True, False], ids=["signed-in", "anonymous"])
@pytest.mark.parametrize(
    "raw_query",
    [
        "client_id=web%00app&response_type=code",
        "client_id=web-app&redirect_uri=https%3A%2F%2Fweb.example.com%2Fcallback%00&response_type=code",
        "client_id=%ff%fe%fd&response_type=code&redirect_uri=https%3A%2F%2Fweb.example.com%2Fcallback",
        "client_id=web-app&redirect_uri=%ff%fe&response_type=code",
        "client_id=web-app&response_type=code&redirect_uri=https%3A%2F%2Fweb.example.com%2Fcallback"
        "&state=%zz",
        "client_id=web-app&response_type=code&redirect_uri=https%3A%2F%2Fweb.example.com%2Fcallback"
        "&scope=openid%00profile",
        "%00=%00",
        "client_id",
        "&&&==&",
    ],
)
def test_nul_bytes_and_broken_encoding_never_fail(client, user, web_client, signed_in, raw_query):
    if signed_in:
        client.force_login(user)
    response = client.get(f"{AUTHORIZE_URL}?{raw_query}")
    assert response.status_code in {HTTPStatus.BAD_REQUEST, HTTPStatus.FOUND}
    if response.status_code == HTTPStatus.FOUND:
        # Only ever to the registered redirect URI (with an error) or to our own sign-in page.
        location = response["Location"]
        assert location.startswith((WEB_REDIRECT_URI + "?error=", "/accounts/login/")), location


def test_nul_byte_and_broken_utf8_in_state_still_reach_the_client_safely(client, user, web_client):
    client.force_login(user)
    params = authorization_params(web_client)
    query = urlencode({**params, "state": "x"}).replace("state=x", "state=a%00b%ff")
    response = client.get(f"{AUTHORIZE_URL}?{query}")
    assert response.status_code in {HTTPStatus.FOUND, HTTPStatus.BAD_REQUEST}
    if response.status_code == HTTPStatus.FOUND:
        assert response["Location"].startswith(WEB_REDIRECT_URI + "?")


@pytest.mark.parametrize(
    "name", ["nonce", "code_challenge", "claims", "login_hint", "acr_values", "state", "x"]
)
def test_nul_byte_in_a_stored_or_echoed_parameter_is_invalid_request(
    client, user, web_client, name
):
    client.force_login(user)
    params = authorization_params(web_client)
    assert redirect_query(client.get(AUTHORIZE_URL, params), WEB_REDIRECT_URI)["code"]
    params = authorization_params(web_client, **{name: "a\x00b"})
    error = redirect_query(client.get(AUTHORIZE_URL, params), WEB_REDIRECT_URI)
    assert error["error"] == "invalid_request"
    assert Grant.objects.count() == 1


@pytest.mark.parametrize("name", ["state", "nonce", "redirect_uri", "client_id", "scope", "foo"])
@pytest.mark.parametrize("method", ["get", "post"])
def test_200_kb_parameter_gets_error_page(client, user, web_client, name, method):
    client.force_login(user)
    params = authorization_params(web_client, **{name: "A" * 200_000})
    response = getattr(client, method)(AUTHORIZE_URL, params)
    assert_error_page(response)


def test_unsupported_method_is_405(client, web_client):
    assert client.put(AUTHORIZE_URL).status_code == HTTPStatus.METHOD_NOT_ALLOWED


def test_silent_code_issuance_pins_its_queries(
    client, user, web_client, spa_client, django_assert_max_num_queries
):
    """Session, user, allauth's user-session tracking, one client lookup, the Grant insert."""
    client.force_login(user)
    redirect_query(client.get(AUTHORIZE_URL, authorization_params(web_client)), WEB_REDIRECT_URI)
    with django_assert_max_num_queries(9):
        response = client.get(AUTHORIZE_URL, authorization_params(web_client))
    assert redirect_query(response, WEB_REDIRECT_URI)["code"]
    # A remembered consent adds its lookup and its last-used stamp.
    grant_consent(user=user, client=spa_client, scopes=["openid", "profile", "email"])
    with django_assert_max_num_queries(11):
        response = client.get(AUTHORIZE_URL, authorization_params(spa_client))
    assert redirect_query(response, SPA_REDIRECT_URI)["code"]


HOSTILE_VALUES = [
    "\x00",
    "%",
    "%zz",
    "A" * 9000,
    "<script>alert(1)</script>",
    "\r\nX: y",
    "ü\ufffd",
]
AUTHORIZE_PARAMETERS = [
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
    "prompt",
    "max_age",
    "id_token_hint",
    "login_hint",
    "claims",
    "ui_locales",
    "resource",
    "response_mode",
]


@pytest.mark.parametrize("signed_in", [True, False], ids=["signed-in", "anonymous"])
@pytest.mark.parametrize("name", AUTHORIZE_PARAMETERS)
def test_hostile_value_in_any_parameter_never_fails(client, user, web_client, signed_in, name):
    if signed_in:
        client.force_login(user)
    for value in HOSTILE_VALUES:
        response = client.get(AUTHORIZE_URL, authorization_params(web_client, **{name: value}))
        assert response.status_code in {HTTPStatus.FOUND, HTTPStatus.BAD_REQUEST}, (value, response)
        if response.status_code == HTTPStatus.FOUND:
            location = response["Location"]
            assert location.startswith((WEB_REDIRECT_URI + "?", "/accounts/login/")), location
            assert "\n" not in location
            assert "<script>" not in location
