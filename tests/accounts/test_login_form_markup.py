"""The sign-in form's markup: its inputs, labels and errors, each tied to its field."""

from __future__ import annotations

import re
from collections import Counter

import pytest
from django.test import Client

from tests.accounts.conftest import CHANGE_URL, LOGIN_URL, WRONG_PASSWORD_ERROR, sign_in
from tests.oidc.authorize_helpers import PageParser

pytestmark = pytest.mark.django_db

TOO_MANY = "Too many failed login attempts. Try again later."


def _inputs(html: str) -> dict[str, dict[str, str]]:
    return {found["name"]: found for found in PageParser(html).find_all("input") if "name" in found}


def _sign_in_form(html: str) -> str:
    """The sign-in form's markup, without the page's other forms (sign-out, language, passkey)."""
    (form,) = re.findall(r'<form method="post" action="/accounts/login/".*?</form>', html, re.S)
    return form


def _labels(html: str) -> dict[str, str]:
    """label for= → its text."""
    return {
        match[0]: match[1] for match in re.findall(r'<label for="([^"]+)">([^<]*)</label>', html)
    }


def test_sign_in_form_keeps_its_inputs_labels_and_links(client):
    html = _sign_in_form(client.get(LOGIN_URL, {"next": "/account/"}).content.decode())

    inputs = _inputs(html)
    assert inputs["login"] == {
        "type": "text",
        "name": "login",
        "placeholder": "Username or email",
        "autocomplete": "email",
        "maxlength": "254",
        "required": "",
        "id": "id_login",
    }
    assert inputs["password"] == {
        "type": "password",
        "name": "password",
        "placeholder": "Password",
        "autocomplete": "current-password",
        "required": "",
        "aria-describedby": "id_password_helptext",
        "id": "id_password",
    }
    assert inputs["remember"] == {"type": "checkbox", "name": "remember", "id": "id_remember"}
    assert inputs["next"] == {"type": "hidden", "name": "next", "value": "/account/"}
    assert inputs["csrfmiddlewaretoken"]["type"] == "hidden"
    # The house's words, not the form's ("Login:", "Remember Me:").
    assert _labels(html) == {
        "id_login": "Email or username",
        "id_password": "Password",
        "id_remember": "Keep me signed in",
    }
    assert 'id="id_password_helptext"><a href="/accounts/password/reset/">' in html
    assert "aria-invalid" not in html


def test_field_errors_sit_next_to_their_fields_and_mark_them_invalid(client):
    html = client.post(LOGIN_URL, {"login": "", "password": ""}).content.decode()

    inputs = _inputs(html)
    assert inputs["login"]["aria-invalid"] == "true"
    assert inputs["login"]["aria-describedby"] == "id_login_error"
    assert inputs["password"]["aria-invalid"] == "true"
    assert inputs["password"]["aria-describedby"] == "id_password_helptext id_password_error"
    assert '<div class="field field-error">' in html
    # Django's error list carries the id the input points at; no other element has it.
    assert '<ul class="errorlist" id="id_login_error">' in html
    assert '<ul class="errorlist" id="id_password_error">' in html
    assert html.count('id="id_login_error"') == 1
    assert html.count('id="id_password_error"') == 1
    assert 'role="alert"' not in html  # no summary without a form-wide error


def test_a_wrong_password_is_summarised_once_and_keeps_the_typed_login(client, user):
    html = sign_in(client, "alice", "not the password").content.decode()

    assert html.count(WRONG_PASSWORD_ERROR) == 1
    assert (
        '<div class="form-errors" role="alert" id="login-errors"><ul class="errorlist nonfield">'
        f"<li>{WRONG_PASSWORD_ERROR}</li></ul></div>"
    ) in html
    inputs = _inputs(html)
    assert inputs["login"]["value"] == "alice"
    assert "value" not in inputs["password"], "a password is never sent back"
    # Both fields point at the one message and are marked invalid (which was wrong is not said).
    assert inputs["login"]["aria-invalid"] == inputs["password"]["aria-invalid"] == "true"
    assert inputs["login"]["aria-describedby"] == "login-errors"
    assert inputs["password"]["aria-describedby"] == "id_password_helptext login-errors"


def test_pages_with_field_errors_have_unique_ids(client, user, password):
    sign_in(client, "alice", password)
    pages = [
        Client().post(LOGIN_URL, {"login": "", "password": ""}),
        client.post(CHANGE_URL, {"oldpassword": "wrong", "password1": "x", "password2": "y"}),
    ]
    for page in pages:
        html = page.content.decode()
        assert 'class="errorlist"' in html  # the errors are there
        ids = Counter(re.findall(r'\sid="([^"]+)"', html))
        assert [i for i, n in ids.items() if n > 1] == []
