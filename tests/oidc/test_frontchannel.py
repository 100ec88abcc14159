"""Front-channel logout (OpenID Connect Front-Channel Logout 1.0 §3), for apps that cannot take
back-channel calls: the signed-out page frames each logout URI with iss and sid, under a CSP
that allows exactly those frames on that page only."""

from __future__ import annotations

import datetime as dt
from http import HTTPStatus
from urllib.parse import parse_qs, urlsplit

import pytest
import time_machine
from django.conf import settings
from django.test import Client as HttpClient

from tests.accounts.conftest import LOGOUT_URL, OVERVIEW_URL, is_signed_in, sign_in
from tests.oidc.authorize_helpers import PageParser
from tests.oidc.backchannel_helpers import sign_in_to_app, unverified_claims
from tests.oidc.conftest import make_client

pytestmark = pytest.mark.django_db

SPEC = "OpenID Connect Front-Channel Logout 1.0"
RP_LOGOUT_URL = "/o/logout/"
SIGNED_OUT_PATH = "/o/logged-out/"


def web_app(name: str, **fields):
    slug = name.lower()
    values = {
        "name": name,
        "client_id": slug,
        "secret": f"{slug}-secret-" + "f" * 30,
        "redirect_uris": f"https://{slug}.example.com/callback",
        "post_logout_redirect_uris": f"https://{slug}.example.com/signed-out",
        "grant_types": ["authorization-code", "refresh_token"],
        "allowed_scopes": "openid profile offline_access",
        "is_trusted": True,
        "frontchannel_logout_uri": f"https://{slug}.example.com/frontchannel-logout",
    }
    values.update(fields)
    return make_client(**values)


@pytest.fixture
def laptop(user, password) -> HttpClient:
    browser = HttpClient()
    assert sign_in(browser, "alice", password).status_code == HTTPStatus.FOUND
    assert browser.get(OVERVIEW_URL).status_code == HTTPStatus.OK
    return browser


def frames_of(page) -> list[dict[str, str]]:
    return PageParser(page.content.decode()).find_all("iframe")


def csp(response) -> dict[str, list[str]]:
    policy = response["Content-Security-Policy"]
    return {part.split()[0]: part.split()[1:] for part in policy.split(";") if part.strip()}


@pytest.mark.spec(SPEC, "3")
def test_discovery_advertises_front_channel_logout_with_sid(client):
    metadata = client.get("/.well-known/openid-configuration").json()
    assert metadata["frontchannel_logout_supported"] is True
    assert metadata["frontchannel_logout_session_supported"] is True


@pytest.mark.spec(SPEC, "3")
@pytest.mark.spec("OpenID Connect RP-Initiated Logout 1.0", "3")
def test_rp_initiated_logout_passes_through_the_page_that_frames_each_apps_logout_uri(laptop):
    shop, wiki = web_app("Shop"), web_app("Wiki")
    plain = web_app("Plain", frontchannel_logout_uri="")
    tokens = sign_in_to_app(laptop, shop)
    sign_in_to_app(laptop, wiki)
    sign_in_to_app(laptop, plain)
    sid = unverified_claims(tokens["id_token"])["sid"]

    response = laptop.get(
        RP_LOGOUT_URL,
        {
            "id_token_hint": tokens["id_token"],
            "post_logout_redirect_uri": "https://shop.example.com/signed-out",
            "state": "st-1",
        },
    )
    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"].startswith(f"{SIGNED_OUT_PATH}?t=")
    assert not is_signed_in(laptop)

    page = laptop.get(response["Location"])
    assert page.status_code == HTTPStatus.OK
    frames = frames_of(page)
    assert [urlsplit(f["src"]).netloc for f in frames] == ["shop.example.com", "wiki.example.com"]
    for frame in frames:
        assert urlsplit(frame["src"]).path == "/frontchannel-logout"
        assert parse_qs(urlsplit(frame["src"]).query) == {
            "iss": [settings.IDP_ISSUER],
            "sid": [sid],
        }
        assert "hidden" in frame
        assert frame["sandbox"] == "allow-same-origin allow-scripts"
    # Then on to the app's registered post-logout URI, with its state.
    html = page.content.decode()
    assert (
        'href="https://shop.example.com/signed-out?state=st-1" data-continue-when-signed-out'
    ) in html  # followed once the frames have loaded (static/idp/frontchannel.js)
    # This page, and only this page, may frame exactly those apps.
    policy = csp(page)
    assert sorted(policy["frame-src"]) == ["https://shop.example.com", "https://wiki.example.com"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["script-src"] == ["'self'"]
    assert "frame-src" not in csp(HttpClient().get("/accounts/login/"))


@pytest.mark.spec(SPEC, "3")
def test_signing_out_at_the_idp_frames_the_apps_then_goes_home(laptop):
    app = web_app("Shop", frontchannel_logout_uri="https://shop.example.com/fc?tenant=7")
    tokens = sign_in_to_app(laptop, app)
    sid = unverified_claims(tokens["id_token"])["sid"]

    response = laptop.post(LOGOUT_URL)

    assert response.status_code == HTTPStatus.FOUND
    assert not is_signed_in(laptop)
    page = laptop.get(response["Location"])
    (frame,) = frames_of(page)
    # A registered query is kept; iss and sid are added (§3: both or neither).
    assert parse_qs(urlsplit(frame["src"]).query) == {
        "tenant": ["7"],
        "iss": [settings.IDP_ISSUER],
        "sid": [sid],
    }
    assert 'href="/"' in page.content.decode()


def test_without_front_channel_apps_sign_out_redirects_as_before(laptop):
    app = web_app("Plain", frontchannel_logout_uri="")
    sign_in_to_app(laptop, app)
    assert laptop.post(LOGOUT_URL)["Location"] == "/"


@pytest.mark.parametrize(
    "value",
    ["", "garbage", "a" * 5000, "eyJjIjpbMV0sInMiOiJ4IiwibiI6Ii8ifQ:forged:sig", "\x00"],
)
def test_a_forged_or_broken_signed_out_link_frames_nothing(client, value):
    response = client.get(SIGNED_OUT_PATH, {"t": value})
    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"] == "/"


def test_a_signed_out_link_expires(laptop):
    sign_in_to_app(laptop, web_app("Shop"))
    link = laptop.post(LOGOUT_URL)["Location"]
    assert frames_of(laptop.get(link))  # positive path

    with time_machine.travel(dt.datetime.now(tz=dt.UTC) + dt.timedelta(minutes=10), tick=False):
        late = laptop.get(link)
    assert late.status_code == HTTPStatus.FOUND
    assert late["Location"] == "/"
