"""The page's language: the switcher's choice > the app's ui_locales > Accept-Language > English.

OIDC Core §3.1.2.1 `ui_locales`: space-separated BCP47 tags in preference order; the first one
these pages exist in wins, through the sign-in (password and code step) to the consent screen.
"""

from __future__ import annotations

import re
from http import HTTPStatus
from urllib.parse import unquote, urlencode

import pytest
from django.test import Client as HttpClient

from idp.locale import SESSION_KEY, first_supported
from oauth_clients.models import Client
from tests.accounts.conftest import (
    LOGIN_URL,
    MFA_AUTHENTICATE_URL,
    enable_totp,
    totp_code,
)
from tests.oidc.authorize_helpers import AUTHORIZE_URL, authorization_params, redirect_query
from tests.oidc.conftest import make_client

WIKI_REDIRECT_URI = "https://wiki.example.com/callback"
SETLANG_URL = "/i18n/setlang/"


@pytest.fixture
def wiki(db) -> Client:
    """An app that asks for consent (not trusted), so the consent screen is shown."""
    return make_client(
        name="Wiki",
        client_id="wiki",
        secret="wiki-secret-" + "w" * 30,
        redirect_uris=WIKI_REDIRECT_URI,
        allowed_scopes="openid profile email",
    )


def page_language(response) -> str:
    """The language the page declares on <html lang> (WCAG 3.1.1), checked against the header."""
    match = re.search(r'<html lang="([^"]+)"', response.content.decode())
    assert match, response.content[:200]
    assert response["Content-Language"] == match.group(1)
    return match.group(1)


def authorize_url(client: Client, **params: str) -> str:
    return f"{AUTHORIZE_URL}?{urlencode(authorization_params(client, **params))}"


def follow_to_sign_in(http: HttpClient, url: str, **headers: str):
    """An anonymous authorize request, then the sign-in page it redirects to (with next)."""
    response = http.get(url, **headers)
    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"].startswith(f"{LOGIN_URL}?next=")
    return response, http.get(response["Location"], **headers)


# --- Accept-Language ---------------------------------------------------------------------------


def test_accept_language_german_gives_the_german_sign_in_page(client, db):
    response = client.get(LOGIN_URL, HTTP_ACCEPT_LANGUAGE="de-DE,de;q=0.9,en;q=0.5")

    assert response.status_code == HTTPStatus.OK
    assert page_language(response) == "de"
    body = response.content.decode()
    assert "Passwort vergessen?" in body
    assert ">Sprache</label>" in body
    assert "Accept-Language" in response["Vary"]


def test_without_any_preference_the_page_is_english(client, db):
    response = client.get(LOGIN_URL)

    assert page_language(response) == "en"
    assert "Forgot your password?" in response.content.decode()


def test_japanese_page_declares_lang_ja_on_html(client, db):
    response = client.get(LOGIN_URL, HTTP_ACCEPT_LANGUAGE="ja")

    assert response.content.decode().count('<html lang="ja">') == 1
    assert page_language(response) == "ja"
    assert "パスワードをお忘れですか？" in response.content.decode()


# --- ui_locales (OIDC Core §3.1.2.1) ------------------------------------------------------------


@pytest.mark.spec("OIDC Core", "3.1.2.1")
def test_ui_locales_fr_carries_to_the_sign_in_page(client, wiki):
    _redirect, response = follow_to_sign_in(
        client, authorize_url(wiki, ui_locales="fr-CA en"), HTTP_ACCEPT_LANGUAGE="de"
    )

    assert response.status_code == HTTPStatus.OK
    assert page_language(response) == "fr"
    assert "Mot de passe oublié\u00a0?" in response.content.decode()


@pytest.mark.spec("OIDC Core", "3.1.2.1")
def test_ui_locales_fr_keeps_the_page_french_after_a_wrong_password(client, wiki, user):
    redirect, _page = follow_to_sign_in(client, authorize_url(wiki, ui_locales="fr"))
    next_url = redirect["Location"].split("next=", 1)[1]
    response = client.post(
        LOGIN_URL, {"login": user.username, "password": "wrong", "next": unquote(next_url)}
    )

    assert response.status_code == HTTPStatus.OK
    assert page_language(response) == "fr"


@pytest.mark.spec("OIDC Core", "3.1.2.1")
def test_ui_locales_fr_carries_through_the_code_step_to_consent(client, wiki, user, password):
    secret = enable_totp(user)
    redirect, _page = follow_to_sign_in(client, authorize_url(wiki, ui_locales="fr"))
    next_url = unquote(redirect["Location"].split("next=", 1)[1])
    signed_in = client.post(
        LOGIN_URL, {"login": user.username, "password": password, "next": next_url}
    )
    assert signed_in["Location"] == MFA_AUTHENTICATE_URL
    code_step = client.get(MFA_AUTHENTICATE_URL)
    assert page_language(code_step) == "fr"

    verified = client.post(MFA_AUTHENTICATE_URL, {"code": totp_code(secret)})
    assert verified.status_code == HTTPStatus.FOUND
    consent = client.get(verified["Location"])

    assert consent.status_code == HTTPStatus.OK
    assert page_language(consent) == "fr"
    body = consent.content.decode()
    assert "Autoriser" in body
    assert "Refuser" in body
    # What the app asks for, in French too (the scopes' descriptions: idp/settings.py).
    assert "Vous connecter avec votre compte d’entreprise" in body
    assert "Sign you in with your company account" not in body


@pytest.mark.spec("OIDC Core", "3.1.2.1")
def test_ui_locales_is_forgotten_once_the_app_has_its_answer(client, wiki, user):
    client.force_login(user)
    url = authorize_url(wiki, ui_locales="fr")
    consent = client.get(url)
    assert page_language(consent) == "fr"
    assert client.session[SESSION_KEY] == "fr"

    answer = client.post(url, {"allow": "Allow"})

    redirect_query(answer, WIKI_REDIRECT_URI)
    assert SESSION_KEY not in client.session
    assert page_language(client.get("/account/")) == "en"


def test_the_switchers_choice_beats_ui_locales_and_accept_language(client, wiki):
    chosen = client.post(SETLANG_URL, {"language": "de", "next": "/accounts/login/"})
    assert chosen.status_code == HTTPStatus.FOUND
    assert chosen["Location"] == "/accounts/login/"
    assert client.cookies["django_language"].value == "de"

    _redirect, response = follow_to_sign_in(
        client, authorize_url(wiki, ui_locales="fr"), HTTP_ACCEPT_LANGUAGE="es"
    )

    assert page_language(response) == "de"
    assert SESSION_KEY not in client.session


@pytest.mark.parametrize(
    ("accept_language", "expected"), [("es-ES,es;q=0.9", "es"), ("", "en")], ids=["es", "none"]
)
def test_unsupported_ui_locales_falls_back_to_accept_language_then_english(
    client, wiki, accept_language, expected
):
    _redirect, response = follow_to_sign_in(
        client, authorize_url(wiki, ui_locales="xx tlh-Latn"), HTTP_ACCEPT_LANGUAGE=accept_language
    )

    assert page_language(response) == expected


def test_ui_locales_of_another_page_than_authorize_is_not_a_hint(client, db):
    response = client.get(f"{LOGIN_URL}?ui_locales=fr&next=/account/")

    assert page_language(response) == "en"


def test_a_next_to_another_site_carries_no_hint(client, db):
    response = client.get(
        f"{LOGIN_URL}?{urlencode({'next': 'https://evil.example/o/authorize/?ui_locales=fr'})}"
    )

    assert page_language(response) == "en"


@pytest.mark.parametrize(
    ("ui_locales", "expected"),
    [
        ("fr", "fr"),
        ("de-CH fr", "de"),
        ("JA", "ja"),
        ("xx es", "es"),
        ("xx", None),
        ("", None),
        ("<script> ../../etc", None),
        (" ".join(["xx"] * 50 + ["fr"]), None),
    ],
)
def test_first_supported_reads_bcp47_tags_in_order(ui_locales, expected):
    assert first_supported(ui_locales) == expected


def test_every_language_offered_has_the_projects_catalogue(settings):
    from pathlib import Path

    offered = {code for code, _name in settings.LANGUAGES} - {settings.LANGUAGE_CODE}
    locale_dir = Path(settings.LOCALE_PATHS[0])

    assert offered == {"de", "es", "fr", "ja"}
    assert all((locale_dir / code / "LC_MESSAGES" / "django.po").exists() for code in offered)


# --- The switcher ------------------------------------------------------------------------------


def test_every_page_has_the_switcher_keeping_the_current_page(client, db):
    response = client.get(f"{LOGIN_URL}?next=/account/", HTTP_ACCEPT_LANGUAGE="fr")
    body = response.content.decode()

    assert f'action="{SETLANG_URL}"' in body
    assert 'name="next" value="/accounts/login/?next=/account/"' in body
    for code, name in [("en", "English"), ("de", "Deutsch"), ("fr", "Français"), ("ja", "日本語")]:
        assert f'<option value="{code}" lang="{code}"' in body
        assert name in body
    assert '<option value="fr" lang="fr" selected>' in body


def test_the_error_pages_have_the_switcher_too(client, db):
    response = client.get("/no-such-page/", HTTP_ACCEPT_LANGUAGE="es")

    assert response.status_code == HTTPStatus.NOT_FOUND
    assert page_language(response) == "es"
    assert f'action="{SETLANG_URL}"' in response.content.decode()


def test_the_admin_has_the_switcher_in_the_users_language(client, admin_user):
    client.force_login(admin_user)
    response = client.get("/admin/", HTTP_ACCEPT_LANGUAGE="de")

    assert response.status_code == HTTPStatus.OK
    body = response.content.decode()
    assert '<html lang="de"' in body
    assert f'action="{SETLANG_URL}"' in body


def test_the_switcher_refuses_a_next_to_another_site(client, db):
    response = client.post(SETLANG_URL, {"language": "ja", "next": "https://evil.example/"})

    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"] == "/"


def test_the_switcher_needs_the_csrf_token(db):
    http = HttpClient(enforce_csrf_checks=True)

    response = http.post(SETLANG_URL, {"language": "ja", "next": "/"})

    assert response.status_code == HTTPStatus.FORBIDDEN
    assert "django_language" not in response.cookies


def test_the_language_cookie_is_not_readable_by_scripts(client, db):
    response = client.post(SETLANG_URL, {"language": "es", "next": "/"})

    cookie = response.cookies["django_language"]
    assert cookie["httponly"]
    assert cookie["samesite"] == "Lax"
