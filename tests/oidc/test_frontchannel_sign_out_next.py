"""A sign-out that carries `next` (the consent page's "Not you?") still passes through the
front-channel logout page (OpenID Connect Front-Channel Logout 1.0 §3), then continues to
`next` (accounts/views.py SignOutView)."""

from __future__ import annotations

import html
import re
from http import HTTPStatus
from urllib.parse import parse_qs, urlsplit

import pytest
from django.conf import settings
from django.test import Client as HttpClient

from tests.accounts.conftest import LOGIN_URL, LOGOUT_URL, OVERVIEW_URL, is_signed_in, sign_in
from tests.oidc.authorize_helpers import AUTHORIZE_URL, PageParser, authorization_params
from tests.oidc.backchannel_helpers import sign_in_to_app, unverified_claims
from tests.oidc.test_frontchannel import SIGNED_OUT_PATH, web_app

pytestmark = pytest.mark.django_db

SPEC = "OpenID Connect Front-Channel Logout 1.0"


@pytest.fixture
def laptop(user, password) -> HttpClient:
    browser = HttpClient()
    assert sign_in(browser, "alice", password).status_code == HTTPStatus.FOUND
    assert browser.get(OVERVIEW_URL).status_code == HTTPStatus.OK
    return browser


def _not_you_next(consent_page) -> str:
    """The value the consent page's "Not you?" button posts as `next` with the header's form."""
    (button,) = PageParser(consent_page.content.decode()).find_all(
        "button", form="site-signout", name="next"
    )
    return html.unescape(button["value"])


@pytest.mark.spec(SPEC, "3")
def test_not_you_on_consent_frames_the_apps_logout_then_continues_to_the_request(laptop):
    shop = web_app("Shop")  # trusted, with a front-channel logout URI
    sid = unverified_claims(sign_in_to_app(laptop, shop)["id_token"])["sid"]
    wiki = web_app("Wiki", is_trusted=False, frontchannel_logout_uri="")  # asks for consent
    consent = laptop.get(AUTHORIZE_URL, authorization_params(wiki, scope="openid profile"))
    assert consent.status_code == HTTPStatus.OK
    next_url = _not_you_next(consent)
    assert next_url.startswith(f"{AUTHORIZE_URL}?")

    response = laptop.post(LOGOUT_URL, {"next": next_url})

    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"].startswith(f"{SIGNED_OUT_PATH}?t=")
    assert not is_signed_in(laptop)
    page = laptop.get(response["Location"])
    assert page.status_code == HTTPStatus.OK
    parsed = PageParser(page.content.decode())
    (frame,) = parsed.find_all("iframe")
    assert frame["src"].startswith("https://shop.example.com/frontchannel-logout?")
    assert parse_qs(urlsplit(frame["src"]).query) == {"iss": [settings.IDP_ISSUER], "sid": [sid]}
    # Then on to the same authorization request, which now asks for a sign-in.
    # The Continue link, which static/idp/frontchannel.js follows once the frames have loaded
    # (no timed refresh: WCAG 2.2 SC 2.2.1).
    (link,) = parsed.find_all("a", href=next_url)
    assert "data-continue-when-signed-out" in link
    assert parsed.find_all("script", src="/static/idp/frontchannel.js")
    assert not parsed.find_all("meta", **{"http-equiv": "refresh"})
    login = urlsplit(laptop.get(next_url)["Location"])
    assert login.path == LOGIN_URL
    assert parse_qs(login.query)["next"] == [next_url]


def test_the_confirmation_page_keeps_next_through_the_front_channel_page(laptop):
    sign_in_to_app(laptop, web_app("Shop"))
    page = laptop.get(LOGOUT_URL, {"next": "/account/apps/"})
    assert page.status_code == HTTPStatus.OK
    form, _ = PageParser(page.content.decode()).form_with(
        "input", name="next", value="/account/apps/"
    )
    assert (form["method"], form["action"]) == ("post", LOGOUT_URL)

    response = laptop.post(form["action"], {"next": "/account/apps/"})

    assert response["Location"].startswith(f"{SIGNED_OUT_PATH}?t=")
    assert 'href="/account/apps/"' in laptop.get(response["Location"]).content.decode()


def test_without_front_channel_apps_next_is_followed_directly(laptop):
    sign_in_to_app(laptop, web_app("Plain", frontchannel_logout_uri=""))
    response = laptop.post(LOGOUT_URL, {"next": "/account/apps/"})
    assert response["Location"] == "/account/apps/"
    assert not is_signed_in(laptop)


@pytest.mark.parametrize(
    "unsafe", ["https://evil.example/", "//evil.example/", "/\\evil.example/", "javascript:x"]
)
def test_an_unsafe_next_is_dropped_and_the_page_continues_home(laptop, unsafe):
    sign_in_to_app(laptop, web_app("Shop"))
    response = laptop.post(LOGOUT_URL, {"next": unsafe})
    assert response["Location"].startswith(f"{SIGNED_OUT_PATH}?t=")
    page = laptop.get(response["Location"]).content.decode()
    assert 'href="/"' in page
    assert not re.search(r"evil\.example|javascript:", page)
