"""Front-channel logout in a real browser (Debian chromium): after signing out at the IdP, the
signed-out page's frame really loads the app's logout URI with iss and sid — our CSP lets that
page, and only that page, frame the app — then the browser moves on."""

from __future__ import annotations

import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from django.conf import settings

from oauth_clients.models import Client, Grant
from tests.conftest import PASSWORD
from tests.oidc.conftest import make_client, pkce_pair

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SPEC = "OpenID Connect Front-Channel Logout 1.0"


class AppServer:
    """The relying party on loopback: its redirect URI and its front-channel logout URI."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        self.seen = threading.Event()
        app = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                app.requests.append(self.path)
                if self.path.startswith("/frontchannel-logout"):
                    app.seen.set()
                body = b"<!doctype html><title>app</title><p>ok</p>"
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Cache-Control", "no-cache, no-store")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def app_server():
    server = AppServer()
    yield server
    server.close()


@pytest.mark.spec(SPEC, "3")
def test_the_signed_out_page_loads_the_apps_logout_uri_in_the_browser(
    live_server, browser_page, user, app_server
):
    app = make_client(
        name="Shop",
        client_id="shop",
        secret="shop-secret-" + "b" * 30,
        redirect_uris=f"{app_server.base}/callback",
        grant_types=[Client.GRANT_AUTHORIZATION_CODE],
        allowed_scopes="openid profile",
        is_trusted=True,
        frontchannel_logout_uri=f"{app_server.base}/frontchannel-logout",
    )
    violations: list[str] = []
    browser_page.on(
        "console",
        lambda message: (
            violations.append(message.text)
            if "Content Security Policy" in message.text or message.type == "error"
            else None
        ),
    )
    page = browser_page
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=login]", "alice")
    page.fill("input[name=password]", PASSWORD)
    page.click("form button[type=submit]")
    page.wait_for_url(f"{live_server.url}/account/")
    # The app signs the user in (code flow): this session now has the app.
    _verifier, challenge = pkce_pair()
    query = urlencode(
        {
            "response_type": "code",
            "client_id": app.client_id,
            "redirect_uri": f"{app_server.base}/callback",
            "scope": "openid profile",
            "state": "s1",
            "nonce": "n1",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
    )
    page.goto(f"{live_server.url}/o/authorize/?{query}")
    page.wait_for_url(f"{app_server.base}/callback?**")
    sid = Grant.objects.get(application=app).sid
    assert sid

    page.goto(f"{live_server.url}/accounts/logout/")
    with page.expect_response(lambda response: "/o/logged-out/" in response.url) as signed_out:
        page.click("main form button[type=submit]")
    assert signed_out.value.status == HTTPStatus.OK
    # The signed-out page moves on as soon as its frames load, and a response the browser has
    # navigated away from has no body left to read: the same signed link, read again with the
    # browser's cookies, shows what it showed.
    again = page.request.get(signed_out.value.url)
    assert "You are signed out" in again.text()

    assert app_server.seen.wait(timeout=15), app_server.requests
    (logout_call,) = [p for p in app_server.requests if p.startswith("/frontchannel-logout")]
    assert parse_qs(urlsplit(logout_call).query) == {"iss": [settings.IDP_ISSUER], "sid": [sid]}
    # Then on to the home page by itself once the frames have loaded, signed out.
    page.wait_for_url(f"{live_server.url}/**", timeout=10_000)
    page.wait_for_function("() => !location.pathname.startsWith('/o/logged-out/')")
    assert not [v for v in violations if "Content Security Policy" in v], violations
