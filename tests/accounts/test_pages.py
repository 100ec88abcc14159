"""Pages: one branded layout, security headers, error pages, no inline script or style."""

from __future__ import annotations

import re
from http import HTTPStatus
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.test import Client

from tests.accounts.conftest import LOGIN_URL, OVERVIEW_URL, RESET_URL, sign_in

pytestmark = pytest.mark.django_db

TEMPLATES_DIR = Path(django_settings.BASE_DIR) / "templates"


@pytest.fixture
def no_debug(settings):
    settings.DEBUG = False
    return settings


@pytest.mark.parametrize(
    "path", [LOGIN_URL, RESET_URL, "/accounts/logout/", OVERVIEW_URL, "/nope/"]
)
def test_pages_send_the_security_headers(client, user, password, path):
    if path in (OVERVIEW_URL, "/accounts/logout/"):
        sign_in(client, "alice", password)
    response = client.get(path)

    assert response.status_code in (HTTPStatus.OK, HTTPStatus.NOT_FOUND)
    csp = response["Content-Security-Policy"]
    directives = {part.split()[0]: part.split()[1:] for part in csp.split(";") if part.strip()}
    assert directives["frame-ancestors"] == ["'none'"]
    assert directives["script-src"] == ["'self'"]
    assert directives["style-src"] == ["'self'"]
    assert directives["object-src"] == ["'none'"]
    assert "'unsafe-inline'" not in csp
    assert "'unsafe-eval'" not in csp
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"


def test_pages_share_one_branded_layout(client, settings, user, password):
    settings.IDP_COMPANY_NAME = "Acme Corp"
    settings.IDP_LOGO_URL = "https://cdn.acme.example/logo.svg"
    for path in [LOGIN_URL, RESET_URL, "/nope/"]:
        html = client.get(path).content.decode()
        assert "Acme Corp" in html
        assert 'src="https://cdn.acme.example/logo.svg"' in html
        assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html
        assert 'class="skip-link" href="#main"' in html
        assert '<main id="main"' in html
        assert "/static/idp/idp.css" in html


def _inline_code(html: str) -> list[str]:
    """Inline style attributes, <style> blocks and executable inline <script> blocks."""
    found = re.findall(r"\sstyle\s*=", html, flags=re.I)
    found += re.findall(r"<style\b", html, flags=re.I)
    for attrs, body in re.findall(r"<script\b([^>]*)>(.*?)</script>", html, flags=re.I | re.S):
        if "src=" in attrs or "application/json" in attrs:
            continue  # external files and JSON data blocks are fine under script-src 'self'
        if body.strip():
            found.append(f"<script{attrs}>")
    found += re.findall(r"\son[a-z]+\s*=", html, flags=re.I)  # onclick= and friends
    return found


def test_no_template_carries_inline_script_or_style():
    offenders = {}
    for template in TEMPLATES_DIR.rglob("*.html"):
        inline = _inline_code(template.read_text())
        if inline:
            offenders[str(template.relative_to(TEMPLATES_DIR))] = inline
    assert offenders == {}


def test_rendered_account_pages_carry_no_inline_script_or_style(client, user, password):
    pages = [LOGIN_URL, RESET_URL, "/accounts/signup/"]
    for path in pages:
        assert _inline_code(client.get(path).content.decode()) == [], path
    sign_in(client, "alice", password)
    for path in [
        OVERVIEW_URL,
        "/accounts/logout/",
        "/accounts/password/change/",
        "/accounts/2fa/",
        "/accounts/sessions/",
    ]:
        response = client.get(path)
        assert response.status_code == HTTPStatus.OK, path
        assert _inline_code(response.content.decode()) == [], path


def test_the_stylesheet_gives_focus_a_visible_outline():
    css = (Path(django_settings.BASE_DIR) / "static" / "idp" / "idp.css").read_text()
    assert re.search(r":focus-visible[^{]*\{[^}]*outline:\s*3px solid", css)
    assert "@media (max-width: 480px)" in css


# --- Error pages (DEBUG off) ---------------------------------------------------------------------


def test_404_page_is_branded(no_debug, client):
    response = client.get("/no/such/page/")
    assert response.status_code == HTTPStatus.NOT_FOUND
    html = response.content.decode()
    assert "This page does not exist" in html
    assert "Company" in html
    assert "Traceback" not in html


def test_400_page_is_branded(no_debug, client):
    response = client.get(LOGIN_URL, HTTP_HOST="evil.example")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert "We could not understand that request" in response.content.decode()


def test_403_page_is_branded(no_debug, user, password):
    client = Client(enforce_csrf_checks=True)
    response = client.post(LOGIN_URL, {"login": "alice", "password": password})
    assert response.status_code == HTTPStatus.FORBIDDEN
    html = response.content.decode()
    assert "You cannot open this page" in html
    assert "This form has expired" in html


@pytest.mark.urls("tests.accounts.error_urls")
def test_500_page_is_branded_and_hides_the_error(no_debug, user, password):
    client = Client(raise_request_exception=False)
    sign_in(client, "alice", password)
    response = client.get("/boom/")
    assert response.status_code == HTTPStatus.INTERNAL_SERVER_ERROR
    html = response.content.decode()
    assert "Something went wrong on our side" in html
    assert "Company" in html
    assert "a bug" not in html
    assert "RuntimeError" not in html


@pytest.mark.parametrize(
    "path",
    [
        "/accounts/login/?next=%00",
        "/accounts/login/?next=" + "a" * 10_000,
        "/accounts/login/%00",
        "/account/%00",
        "/admin/login/?next=%00",
        "/accounts/password/reset/key/%00-%00/",
    ],
)
def test_odd_urls_never_answer_500(no_debug, path):
    response = Client(raise_request_exception=False).get(path)
    assert response.status_code < HTTPStatus.INTERNAL_SERVER_ERROR
