"""Every registration rule, with accepted and refused examples (oauth_clients.uri_rules)."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from oauth_clients import uri_rules
from oauth_clients.models import Client

# --- Redirect URIs (also post-logout redirect URIs: the same function serves both)

ACCEPTED_FOR_EVERY_KIND = [
    "https://app.example.com/callback",
    "https://app.example.com:8443/oidc/callback?tenant=eu",
    "https://app.example.com",
    "https://[2001:db8::1]/cb",
    "http://127.0.0.1/callback",
    "http://127.0.0.1:53682/callback",
    "http://[::1]:8080/cb",
    "http://localhost:3000/callback",
    "HTTPS://APP.EXAMPLE.COM/callback",
]

REFUSED_FOR_EVERY_KIND = [
    # (uri, words the message must contain)
    ("/callback", "absolute"),
    ("app.example.com/callback", "absolute"),
    ("https:/app.example.com/callback", "absolute"),
    ("https:app.example.com", "absolute"),
    ("https:///callback", "host"),
    ("http://app.example.com/callback", "https"),
    ("http://127.0.0.2/callback", "https"),
    ("http://10.0.0.5/callback", "https"),
    ("http://localhost.evil.com/callback", "https"),
    ("https://app.example.com/callback#frag", "fragment"),
    ("https://app.example.com/callback#", "fragment"),
    ("https://*.example.com/callback", "wildcard"),
    ("https://app.example.com/*", "wildcard"),
    ("https://user:pw@app.example.com/callback", "user name or password"),
    ("https://evil.com@app.example.com/callback", "user name or password"),
    ("javascript:alert(1)", "javascript"),
    ("JavaScript:alert(1)", "javascript"),
    ("JAVASCRIPT://app.example.com/%0aalert(1)", "javascript"),
    ("data:text/html,<script>x</script>", "not allowed"),
    ("DATA:text/html;base64,PHNjcmlwdD4=", "data"),
    ("file:///etc/passwd", "file"),
    ("FiLe://host/share", "file"),
    ("vbscript:msgbox", "vbscript"),
    ("https://app.example.com/call back", "not allowed"),
    ("https://app.example.com:99999/cb", "port"),
    ("https://app.example.com:abc/cb", "port"),
]


@pytest.mark.parametrize("kind", [Client.Kind.WEB, Client.Kind.SPA, Client.Kind.NATIVE])
@pytest.mark.parametrize("uri", ACCEPTED_FOR_EVERY_KIND)
def test_safe_redirect_uri_is_accepted(uri, kind):
    assert uri_rules.redirect_uri_problem(uri, native=kind == Client.Kind.NATIVE) is None
    assert uri_rules.validate_redirect_uris([uri], native=kind == Client.Kind.NATIVE) == [uri]


@pytest.mark.parametrize("native", [False, True])
@pytest.mark.parametrize(("uri", "reason"), REFUSED_FOR_EVERY_KIND)
def test_unsafe_redirect_uri_is_refused_with_its_reason(uri, reason, native):
    assert uri_rules.redirect_uri_problem("https://app.example.com/cb", native=native) is None
    problem = uri_rules.redirect_uri_problem(uri, native=native)
    assert problem is not None
    assert reason.lower() in problem.lower()


@pytest.mark.spec("RFC 8252", "7.1")
@pytest.mark.parametrize(
    "uri",
    [
        "com.example.app:/callback",
        "com.example.app:/oauth2redirect/company",
        "com.example.app://callback",
        "io.github.someone.tool:/cb",
        "Com.Example.App:/callback",
    ],
)
def test_reverse_domain_private_use_scheme_is_accepted_for_native_apps(uri):
    assert uri_rules.redirect_uri_problem(uri, native=True) is None


@pytest.mark.spec("RFC 8252", "7.1")
@pytest.mark.parametrize(
    "uri", ["com.example.app:/callback", "myapp.example:/cb", "com.example.app://callback"]
)
def test_private_use_scheme_is_refused_for_web_and_browser_apps(uri):
    assert uri_rules.redirect_uri_problem(uri, native=True) is None
    problem = uri_rules.redirect_uri_problem(uri, native=False)
    assert problem is not None
    assert "native" in problem


@pytest.mark.spec("RFC 8252", "7.1")
@pytest.mark.parametrize(
    ("uri", "reason"),
    [
        ("myapp:/callback", "reverse domain"),
        ("myapp://callback", "reverse domain"),
        ("com.:/callback", "reverse domain"),
        (".com.example:/callback", "absolute"),
        ("com.example.app:", "path"),
        ("com.example.app:/", "path"),
        ("com.example.app:///callback", "path"),
        ("com.example.app:callback", "path"),
        ("com.example.app://user@host/cb", "user name"),
        ("com.example.app:/callback#x", "fragment"),
        ("com.example.*:/callback", "wildcard"),
    ],
)
def test_malformed_private_use_scheme_is_refused_even_for_native_apps(uri, reason):
    assert uri_rules.redirect_uri_problem("com.example.app:/callback", native=True) is None
    problem = uri_rules.redirect_uri_problem(uri, native=True)
    assert problem is not None
    assert reason in problem


def test_validate_redirect_uris_reports_every_refused_uri_by_name():
    good = "https://app.example.com/cb"
    assert uri_rules.validate_redirect_uris(f"{good}\n{good}", native=False) == [good]
    with pytest.raises(ValidationError) as exc:
        uri_rules.validate_redirect_uris(
            [good, "http://evil.example/cb", "javascript:alert(1)"], native=False
        )
    messages = exc.value.messages
    assert len(messages) == 2
    assert messages[0].startswith("http://evil.example/cb:")
    assert messages[1].startswith("javascript:alert(1):")


def test_required_redirect_uris_must_not_be_empty():
    assert uri_rules.validate_redirect_uris("", native=False) == []
    with pytest.raises(ValidationError, match="at least one redirect URI"):
        uri_rules.validate_redirect_uris("  ", native=False, required=True)


# --- Back-channel and front-channel logout URIs


def public_resolver(host: str) -> list[str]:
    return {"rp.example.com": ["93.184.216.34"]}.get(host, [])


@pytest.mark.spec("OpenID Connect Back-Channel Logout 1.0", "2.2")
@pytest.mark.parametrize(
    "uri",
    [
        "https://rp.example.com/backchannel-logout",
        "https://rp.example.com:8443/logout?x=1",
        "https://93.184.216.34/logout",
    ],
)
def test_public_https_backchannel_logout_uri_is_accepted(uri):
    assert uri_rules.validate_logout_uri(uri, backchannel=True, resolver=public_resolver) == uri


@pytest.mark.spec("OpenID Connect Back-Channel Logout 1.0", "2.2")
@pytest.mark.parametrize(
    ("uri", "reason"),
    [
        ("http://rp.example.com/logout", "https"),
        ("https://rp.example.com/logout#frag", "fragment"),
        ("https://u:p@rp.example.com/logout", "user name"),
        ("javascript:alert(1)", "javascript"),
        ("com.example.app:/logout", "https"),
        ("https://*.example.com/logout", "wildcard"),
    ],
)
def test_unsafe_logout_uri_is_refused_on_both_channels(uri, reason):
    for backchannel in (True, False):
        with pytest.raises(ValidationError) as exc:
            uri_rules.validate_logout_uri(
                uri, backchannel=backchannel, allow_private_network=True, resolver=public_resolver
            )
        assert reason in exc.value.messages[0]


@pytest.mark.spec("OpenID Connect Back-Channel Logout 1.0", "2.2")
@pytest.mark.parametrize(
    "uri",
    [
        "https://10.1.2.3/logout",
        "https://172.16.0.1/logout",
        "https://192.168.1.10/logout",
        "https://127.0.0.1/logout",
        "http://127.0.0.1:9000/logout",
        "http://localhost/logout",
        "https://[::1]/logout",
        "https://169.254.169.254/latest/meta-data",
        "https://[fe80::1]/logout",
        "https://[fd00::1]/logout",
        "https://[::ffff:10.0.0.1]/logout",
        "https://100.64.0.1/logout",
        "https://0.0.0.0/logout",
        "https://internal.example.com/logout",
        "https://metadata.example.com/logout",
        "https://unresolvable.example.com/logout",
    ],
)
def test_backchannel_uri_to_internal_address_is_refused_unless_private_network_allowed(uri):
    def resolver(host: str) -> list[str]:
        return {
            "internal.example.com": ["10.20.30.40"],
            # One public and one private answer: the private one decides.
            "metadata.example.com": ["93.184.216.34", "169.254.169.254"],
        }.get(host, [])

    assert (
        uri_rules.validate_logout_uri(
            uri, backchannel=True, allow_private_network=True, resolver=resolver
        )
        == uri
    )
    with pytest.raises(ValidationError) as exc:
        uri_rules.validate_logout_uri(uri, backchannel=True, resolver=resolver)
    assert "internal" in exc.value.messages[0]


def test_frontchannel_logout_uri_may_be_loopback_http_without_private_network_flag():
    # The browser, not the IdP, calls a front-channel URI: no server-side request is made.
    uri = "http://localhost:3000/logout"
    assert uri_rules.validate_logout_uri(uri, backchannel=False) == uri
    with pytest.raises(ValidationError):
        uri_rules.validate_logout_uri(uri, backchannel=True)


def test_empty_logout_uri_is_allowed():
    assert uri_rules.validate_logout_uri("", backchannel=True) == ""
    assert uri_rules.validate_logout_uri(None, backchannel=False) == ""


def test_default_resolver_reads_literal_names(monkeypatch):
    monkeypatch.setattr(uri_rules, "resolve_host", lambda host: ["192.168.0.7"])
    with pytest.raises(ValidationError, match=r"192\.168\.0\.7"):
        uri_rules.validate_logout_uri("https://nas.example.com/logout", backchannel=True)


# --- Scopes, lifetimes, info URLs and the whole registration at once


def test_known_scopes_are_accepted_and_sorted():
    assert uri_rules.validate_scopes("profile openid email", sign_in=True) == [
        "email",
        "openid",
        "profile",
    ]


@pytest.mark.parametrize(
    ("scopes", "sign_in", "reason"),
    [
        ("openid admin", True, "Unknown scopes: admin"),
        ("", True, "openid"),
        ("profile email", True, "openid"),
        ("groups", False, "acts for no person"),
        ("openid", False, "user scopes openid"),
    ],
)
def test_bad_scopes_are_refused(scopes, sign_in, reason):
    with pytest.raises(ValidationError, match=reason):
        uri_rules.validate_scopes(scopes, sign_in=sign_in)


def test_lifetimes_inside_bounds_are_accepted():
    assert (
        uri_rules.lifetime_errors(
            {
                "access_token_lifetime": 300,
                "id_token_lifetime": None,
                "refresh_token_idle_lifetime": 86400,
                "refresh_token_absolute_lifetime": 30 * 86400,
            }
        )
        == {}
    )


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"access_token_lifetime": 10}, "access_token_lifetime"),
        ({"access_token_lifetime": 2 * 86400}, "access_token_lifetime"),
        ({"id_token_lifetime": 0}, "id_token_lifetime"),
        ({"refresh_token_absolute_lifetime": 400 * 86400}, "refresh_token_absolute_lifetime"),
        (
            {"refresh_token_idle_lifetime": 7200, "refresh_token_absolute_lifetime": 3600},
            "refresh_token_idle_lifetime",
        ),
    ],
)
def test_lifetimes_outside_bounds_are_refused(values, field):
    assert list(uri_rules.lifetime_errors(values)) == [field]


@pytest.mark.parametrize(
    "uri", ["https://app.example.com/logo.png", "http://localhost:8000/privacy", ""]
)
def test_safe_info_url_is_accepted(uri):
    assert uri_rules.info_uri_problem(uri) is None


@pytest.mark.parametrize(
    "uri",
    ["javascript:alert(1)", "http://app.example.com/privacy", "ftp://example.com/x", "/logo.png"],
)
def test_unsafe_info_url_is_refused(uri):
    assert uri_rules.info_uri_problem(uri)


def safe_registration(**overrides):
    values = {
        "kind": Client.Kind.WEB,
        "redirect_uris": ["https://app.example.com/cb"],
        "post_logout_redirect_uris": ["https://app.example.com/"],
        "scopes": ["openid", "profile"],
        "backchannel_logout_uri": "https://app.example.com/bcl",
        "frontchannel_logout_uri": "https://app.example.com/fcl",
        "info_uris": {"logo_uri": "https://app.example.com/logo.png"},
        "resolver": lambda host: ["93.184.216.34"],
    }
    values.update(overrides)
    return values


def test_registration_errors_is_empty_for_a_safe_registration():
    assert uri_rules.registration_errors(**safe_registration()) == {}


def test_registration_errors_reports_one_message_per_field():
    errors = uri_rules.registration_errors(
        **safe_registration(
            redirect_uris=["http://app.example.com/cb"],
            post_logout_redirect_uris=["https://app.example.com/#done"],
            scopes=["profile"],
            backchannel_logout_uri="https://10.0.0.1/bcl",
            frontchannel_logout_uri="http://app.example.com/fcl",
            info_uris={"policy_uri": "javascript:alert(1)"},
            lifetimes={"access_token_lifetime": 5},
        )
    )
    assert set(errors) == {
        "redirect_uris",
        "post_logout_redirect_uris",
        "allowed_scopes",
        "backchannel_logout_uri",
        "frontchannel_logout_uri",
        "policy_uri",
        "access_token_lifetime",
    }
    assert all(len(messages) == 1 for messages in errors.values())


def test_service_kind_takes_no_redirect_uris_and_needs_no_openid():
    service = safe_registration(
        kind=Client.Kind.SERVICE,
        redirect_uris=[],
        post_logout_redirect_uris=[],
        scopes=[],
        backchannel_logout_uri="",
        frontchannel_logout_uri="",
    )
    assert uri_rules.registration_errors(**service) == {}
    service["redirect_uris"] = ["https://app.example.com/cb"]
    errors = uri_rules.registration_errors(**service)
    assert "machine-to-machine" in errors["redirect_uris"][0]


def test_unknown_kind_is_refused():
    assert "kind" in uri_rules.registration_errors(**safe_registration(kind="desktop"))
