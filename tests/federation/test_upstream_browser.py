"""Acceptance: in Debian's chromium, a person signs in to an OIDC app through the
upstream OpenID Provider (a second instance of this IdP, tests/federation/conftest.py), sent
there by the app's `login_hint`; they are created just in time, the app's ID token says how
they signed in (`amr: ["fed"]`), and the audit log shows the source."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator

import pytest
from authlib.integrations.requests_client import OAuth2Session

from accounts.models import AuditEvent, User
from federation.models import UpstreamProvider
from federation.secrets import encrypt_secret
from tests.browser.pages import APP_REDIRECT_PATH, redeem_and_verify
from tests.federation.conftest import Upstream, running_upstream
from tests.federation.upstream_server import UPSTREAM_PASSWORD
from tests.oidc.conftest import make_client

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    # Authlib's OIDC claim rules still live on its deprecated `authlib.jose`.
    pytest.mark.filterwarnings("ignore:authlib.jose module is deprecated"),
]


@pytest.fixture(scope="module")
def browser_upstream(live_server, tmp_path_factory) -> Iterator[Upstream]:
    """The upstream with this browser's way back registered: the live server's callback (on
    `localhost`, the upstream on 127.0.0.1: two hosts, so their cookies never mix)."""
    callback = f"{live_server.url}/accounts/upstream/corp/login/callback/"
    with running_upstream(tmp_path_factory.mktemp("browser-upstream"), callback) as upstream:
        yield upstream


@pytest.mark.spec("OpenID Connect Core 1.0", "3.1.2.1")
def test_a_person_signs_in_to_an_app_through_the_upstream_and_is_created_just_in_time(
    live_server, settings, browser_upstream, browser_page
):
    site = live_server.url
    settings.IDP_ISSUER = site
    settings.OAUTH2_PROVIDER = {**settings.OAUTH2_PROVIDER, "OIDC_ISS_ENDPOINT": site}
    UpstreamProvider.objects.create(
        name="Corp",
        slug="corp",
        kind=UpstreamProvider.Kind.OIDC,
        issuer=browser_upstream.url,
        client_id=browser_upstream.client_id,
        client_secret_encrypted=encrypt_secret(browser_upstream.client_secret),
        allow_private_network=True,
        email_domains="corp.example",
        create_accounts=True,
        scopes="openid profile email",
    )
    secret = "wiki-secret-" + "w" * 30
    app = make_client(
        name="Wiki",
        client_id="wiki",
        secret=secret,
        redirect_uris=f"{site}{APP_REDIRECT_PATH}",
        allowed_scopes="openid profile email",
        is_trusted=True,
    )
    session = OAuth2Session(
        app.client_id,
        secret,
        scope="openid profile email",
        redirect_uri=f"{site}{APP_REDIRECT_PATH}",
        code_challenge_method="S256",
    )
    verifier = secrets.token_urlsafe(48)
    url, _state = session.create_authorization_url(
        f"{site}/o/authorize/",
        code_verifier=verifier,
        nonce=secrets.token_urlsafe(16),
        login_hint="carol@corp.example",
    )

    page = browser_page
    page.goto(url)
    # Straight to the upstream's own sign-in page: ours is never shown.
    page.wait_for_url(re.compile(re.escape(browser_upstream.url) + "/accounts/login/"))
    page.locator("#id_login").fill("carol")
    page.locator("#id_password").fill(UPSTREAM_PASSWORD)
    page.locator("#id_password").press("Enter")
    page.wait_for_url(re.compile(re.escape(site + APP_REDIRECT_PATH) + r"\?"))

    claims = redeem_and_verify(site, session, page.url, verifier)
    carol = User.objects.get(email="carol@corp.example")
    assert claims["sub"] == str(carol.pk)
    assert claims["email"] == "carol@corp.example"
    assert claims["amr"] == ["fed"]
    assert not carol.has_usable_password()
    created = AuditEvent.objects.get(type=AuditEvent.Type.USER_CREATED, subject=carol)
    assert created.extra == {"source": "upstream", "provider": "corp", "just_in_time": True}
    signed_in = AuditEvent.objects.get(type=AuditEvent.Type.UPSTREAM_SIGNED_IN, subject=carol)
    assert (signed_in.extra["source"], signed_in.extra["provider"]) == ("upstream", "corp")
