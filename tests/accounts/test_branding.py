"""Branding set by an administrator: shown on every page, cached, audited, safe when things fail."""

from __future__ import annotations

import re
from http import HTTPStatus
from unittest import mock

import pytest
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import OperationalError
from django.test import Client

from accounts import branding
from accounts.models import AuditEvent, Branding
from oauth_clients.services import register_client
from tests.accounts.conftest import LOGIN_URL, OVERVIEW_URL, sign_in
from tests.oidc.authorize_helpers import authorization_params

pytestmark = pytest.mark.django_db

ACME = {
    "company_name": "Acme Corp",
    "logo_url": "https://cdn.acme.example/logo.svg",
    "primary_color": "#0F766E",
    "support_url": "https://help.acme.example/",
}


@pytest.fixture(autouse=True)
def _fresh_branding(monkeypatch):
    """Each test starts and ends without a cached row or a remembered database failure."""
    monkeypatch.setattr(branding, "_database_failed_at", None)
    branding.invalidate_branding_cache()
    yield
    branding.invalidate_branding_cache()


@pytest.fixture
def no_debug(settings):
    settings.DEBUG = False
    return settings


def css_link(html: str) -> str:
    match = re.search(r'<link rel="stylesheet" href="(/branding\.css\?v=[0-9a-f]+)">', html)
    assert match, "base.html links the branding stylesheet"
    return match.group(1)


def assert_branded(html: str, values: dict[str, str]) -> None:
    assert values["company_name"] in html
    assert f'src="{values["logo_url"]}"' in html
    assert f'href="{values["support_url"]}"' in html


# --- What pages show ---------------------------------------------------------------------------


def test_without_a_row_pages_show_the_settings(client, settings):
    settings.IDP_COMPANY_NAME = "Settings Co"
    settings.IDP_LOGO_URL = "https://settings.example/logo.png"
    settings.IDP_SUPPORT_URL = "https://settings.example/help"

    html = client.get(LOGIN_URL).content.decode()

    assert_branded(
        html,
        {
            "company_name": "Settings Co",
            "logo_url": "https://settings.example/logo.png",
            "support_url": "https://settings.example/help",
        },
    )
    css = client.get(css_link(html)).content.decode()
    assert f"--brand: {branding.DEFAULT_PRIMARY_COLOR};" in css


def test_admin_branding_shows_on_login_account_consent_and_error_pages(
    client, user, password, admin_user, no_debug
):
    branding.update_branding(actor=admin_user, **ACME)

    assert_branded(client.get(LOGIN_URL).content.decode(), ACME)
    not_found = client.get("/no/such/page/")
    assert not_found.status_code == HTTPStatus.NOT_FOUND
    assert_branded(not_found.content.decode(), ACME)

    sign_in(client, "alice", password)
    assert_branded(client.get(OVERVIEW_URL).content.decode(), ACME)

    app, _secret = register_client(
        actor=None, kind="web", name="Wiki", redirect_uris="https://wiki.example.com/cb"
    )
    consent = client.get("/o/authorize/", authorization_params(app))
    assert consent.status_code == HTTPStatus.OK
    html = consent.content.decode()
    assert "Wiki wants to use your Acme Corp account" in html
    assert_branded(html, ACME)


def test_primary_colour_reaches_the_css_without_inline_styles(client, admin_user):
    before = css_link(client.get(LOGIN_URL).content.decode())

    branding.update_branding(actor=admin_user, primary_color="#0F766E")

    html = client.get(LOGIN_URL).content.decode()
    after = css_link(html)
    assert after != before, "the stylesheet URL changes with the colour (no stale caches)"
    assert "style=" not in html
    assert "<style" not in html
    response = client.get(after)
    assert response.status_code == HTTPStatus.OK
    assert response["Content-Type"].startswith("text/css")
    css = response.content.decode()
    assert "--brand: #0f766e;" in css
    assert "--brand-text: #ffffff;" in css


def test_branding_css_is_cacheable_and_revalidates_with_its_etag(client, admin_user):
    first = client.get("/branding.css")
    assert first.status_code == HTTPStatus.OK
    assert "public" in first["Cache-Control"]
    assert "max-age=86400" in first["Cache-Control"]
    etag = first["ETag"]

    assert client.get("/branding.css", HTTP_IF_NONE_MATCH=etag).status_code == (
        HTTPStatus.NOT_MODIFIED
    )

    branding.update_branding(actor=admin_user, primary_color="#7c3aed")
    changed = client.get("/branding.css", HTTP_IF_NONE_MATCH=etag)
    assert changed.status_code == HTTPStatus.OK
    assert changed["ETag"] != etag
    assert client.post("/branding.css").status_code == HTTPStatus.METHOD_NOT_ALLOWED


def test_a_light_colour_gets_dark_button_text_and_a_readable_link_shade():
    values = branding.BrandingValues("X", "", "#facc15", "")  # yellow
    css = branding.branding_css(values)

    link = re.search(r"--brand-dark: (#[0-9a-f]{6});", css).group(1)
    assert branding.contrast_ratio(link, "#f3f4f6") >= 4.5
    assert branding.contrast_ratio(link, "#ffffff") >= 4.5
    assert "--brand-text: #111827;" in css
    assert branding.contrast_ratio("#111827", "#facc15") >= 4.5
    # A dark colour is readable as it is.
    assert branding.readable_on_light("#1d4ed8") == "#1d4ed8"


# --- Changing it -------------------------------------------------------------------------------


def test_update_is_audited_with_the_admin_and_the_changed_fields(admin_user):
    changed = branding.update_branding(actor=admin_user, **ACME)

    assert changed == sorted(ACME)
    row = Branding.objects.get()
    assert row.primary_color == "#0f766e"
    event = AuditEvent.objects.get(type=AuditEvent.Type.BRANDING_CHANGED)
    assert event.actor == admin_user
    assert event.extra["fields"] == sorted(ACME)
    assert event.extra["after"]["company_name"] == "Acme Corp"

    # The same values again change nothing and write nothing.
    assert branding.update_branding(actor=admin_user, **ACME) == []
    assert AuditEvent.objects.filter(type=AuditEvent.Type.BRANDING_CHANGED).count() == 1


def test_emptied_fields_fall_back_to_the_settings(client, settings, admin_user):
    settings.IDP_COMPANY_NAME = "Settings Co"
    branding.update_branding(actor=admin_user, **ACME)
    assert "Acme Corp" in client.get(LOGIN_URL).content.decode()

    branding.update_branding(actor=admin_user, **{**ACME, "company_name": ""})

    html = client.get(LOGIN_URL).content.decode()
    assert "Settings Co" in html
    assert "Acme Corp" not in html


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("primary_color", "red"),
        ("primary_color", "#12345"),
        ("primary_color", "#1234567"),
        ("primary_color", "#12345g"),
        ("primary_color", "#abc"),
        ("primary_color", "#123456;} body{display:none"),  # CSS injection into /branding.css
        ("logo_url", "javascript:alert(1)"),
        ("logo_url", "http://cdn.example/logo.png"),  # the CSP would block it anyway
        ("logo_url", "//evil.example/logo.png"),
        ("logo_url", "data:image/svg+xml,<svg/>"),
        ("support_url", "javascript:alert(1)"),
        ("support_url", "http://help.example/"),
        ("support_url", "mailto:not an address"),
        ("company_name", "x" * 81),
    ],
)
def test_unsafe_or_malformed_values_are_refused_with_the_field(admin_user, field, value):
    # The positive path first: valid values of each kind are accepted.
    assert branding.update_branding(
        actor=admin_user,
        company_name="Acme",
        logo_url="/static/idp/favicon.svg",
        primary_color="#ABCDEF",
        support_url="mailto:help@acme.example",
    )

    with pytest.raises(ValidationError) as error:
        branding.update_branding(actor=admin_user, **{**ACME, field: value})

    assert field in error.value.message_dict
    assert Branding.objects.get().company_name == "Acme", "nothing was written"
    assert AuditEvent.objects.filter(type=AuditEvent.Type.BRANDING_CHANGED).count() == 1


def test_only_one_row_can_exist(admin_user):
    branding.update_branding(actor=admin_user, company_name="Acme")
    from django.db import IntegrityError, transaction

    with pytest.raises(IntegrityError), transaction.atomic():
        Branding.objects.create(id=2, company_name="Second")


# --- The admin ---------------------------------------------------------------------------------


def test_admin_edits_the_single_row_through_the_service(client, admin_user, password):
    sign_in(client, "root", password)

    listing = client.get("/admin/accounts/branding/")
    assert listing.status_code == HTTPStatus.FOUND
    assert listing["Location"] == "/admin/accounts/branding/add/"

    bad = client.post("/admin/accounts/branding/add/", {**ACME, "primary_color": "blue"})
    assert bad.status_code == HTTPStatus.OK
    assert "Enter a colour as #rrggbb" in bad.content.decode()
    assert not Branding.objects.exists()

    saved = client.post("/admin/accounts/branding/add/", ACME)
    assert saved.status_code == HTTPStatus.FOUND
    assert Branding.objects.get().company_name == "Acme Corp"
    assert AuditEvent.objects.get(type=AuditEvent.Type.BRANDING_CHANGED).actor == admin_user
    assert "Acme Corp" in client.get(OVERVIEW_URL).content.decode()

    assert client.get("/admin/accounts/branding/")["Location"] == (
        "/admin/accounts/branding/1/change/"
    )
    assert client.get("/admin/accounts/branding/add/").status_code == HTTPStatus.FORBIDDEN
    assert client.get("/admin/accounts/branding/1/delete/").status_code == HTTPStatus.FORBIDDEN
    change = client.post("/admin/accounts/branding/1/change/", {**ACME, "company_name": "Acme 2"})
    assert change.status_code == HTTPStatus.FOUND
    assert "Acme 2" in client.get(OVERVIEW_URL).content.decode()


def test_staff_without_the_permission_cannot_change_branding(client, user, password):
    user.is_staff = True
    user.save()
    sign_in(client, "alice", password)
    assert client.get("/admin/accounts/branding/add/").status_code == HTTPStatus.FORBIDDEN


# --- Cache and failures ------------------------------------------------------------------------


def test_branding_is_read_from_the_cache_after_the_first_page(
    admin_user, django_assert_num_queries
):
    branding.update_branding(actor=admin_user, **ACME)
    assert branding.get_branding().company_name == "Acme Corp"  # fills the cache

    with django_assert_num_queries(0):
        assert branding.get_branding().company_name == "Acme Corp"


def test_error_pages_fall_back_to_the_settings_when_the_database_is_down(no_debug, settings):
    settings.IDP_COMPANY_NAME = "Settings Co"
    assert Client().get("/no/such/page/").status_code == HTTPStatus.NOT_FOUND  # positive path
    branding.invalidate_branding_cache()

    with mock.patch(
        "django.db.backends.utils.CursorWrapper.execute",
        side_effect=OperationalError("server closed the connection unexpectedly"),
    ) as execute:
        response = Client(raise_request_exception=False).get("/no/such/page/")
        again = Client(raise_request_exception=False).get("/still/missing/")

    assert response.status_code == HTTPStatus.NOT_FOUND
    assert "Settings Co" in response.content.decode()
    assert again.status_code == HTTPStatus.NOT_FOUND
    assert execute.call_count == 1, "after one failure the database is left alone for a while"


@pytest.mark.urls("tests.accounts.error_urls")
def test_the_500_page_shows_cached_branding_without_asking_the_database(
    no_debug, admin_user, django_assert_num_queries
):
    branding.update_branding(actor=admin_user, **ACME)
    branding.get_branding()  # a page view filled the cache
    with django_assert_num_queries(0):
        assert branding.get_branding(use_database=False).company_name == "Acme Corp"

    response = Client(raise_request_exception=False).get("/boom/")
    assert response.status_code == HTTPStatus.INTERNAL_SERVER_ERROR
    assert "Acme Corp" in response.content.decode()

    branding.invalidate_branding_cache()
    with django_assert_num_queries(0):
        values = branding.get_branding(use_database=False)
    assert values.company_name == "Company", "no cache: the settings, still no query"


def test_a_cache_outage_falls_back_to_the_database(admin_user):
    branding.update_branding(actor=admin_user, **ACME)
    with mock.patch.object(cache, "get", side_effect=ConnectionError("redis down")):
        assert branding.get_branding().company_name == "Acme Corp"
    with (
        mock.patch.object(cache, "get", side_effect=ConnectionError("redis down")),
        mock.patch.object(cache, "set", side_effect=ConnectionError("redis down")),
    ):
        assert branding.get_branding().company_name == "Acme Corp"


# --- The sign-in button kit ----------------------------------------------------------------------


def test_button_page_serves_the_snippet_with_light_and_dark_logos(client, admin_user, settings):
    branding.update_branding(actor=admin_user, company_name="Acme Corp")
    response = client.get("/button/")

    assert response.status_code == HTTPStatus.OK
    html = response.content.decode()
    assert "Sign in with Acme Corp" in html
    base = f"{settings.IDP_ISSUER}/static/idp/button/"
    assert f'href="{base}button.css"' in html
    assert f'src="{base}logo-light.svg"' in html
    assert f'src="{base}logo-dark.svg"' in html
    assert "company-signin--light" in html
    assert "company-signin--dark" in html
    # The copy-paste code is shown escaped.
    assert "&lt;a class=&quot;company-signin company-signin--light&quot;" in html
    from django.contrib.staticfiles import finders

    for name in ("button.css", "logo-light.svg", "logo-dark.svg", "snippet.html"):
        assert finders.find(f"idp/button/{name}"), name
