"""The sign-in form's markup: the same inputs, labels and errors as Django's own templates give.

`accounts.forms.SignInFormRenderer` writes Django's label and <input> templates in Python (the
page's hottest templates); these tests hold it to the templates, field by field and page by page.
"""

from __future__ import annotations

import re
from collections import Counter
from http import HTTPStatus

import pytest
from django.forms.renderers import DjangoTemplates, get_default_renderer
from django.test import Client
from django.utils.functional import lazy
from django.utils.safestring import mark_safe

from accounts.forms import SIGN_IN_FORM_RENDERER, LoginForm
from tests.accounts.conftest import CHANGE_URL, LOGIN_URL, WRONG_PASSWORD_ERROR, sign_in
from tests.oidc.authorize_helpers import AUTHORIZE_URL, PageParser, authorization_params

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


# --- Against Django's own templates -------------------------------------------------------------


def _without_csrf_tokens(html: str) -> str:
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", html)


def _sign_in_pages(oauth_client, password) -> dict[str, object]:
    """The sign-in page in each state it has."""
    params = authorization_params(oauth_client, login_hint='alice"<&>')
    browser = Client()
    pages = {"next": browser.get(browser.get(AUTHORIZE_URL, params)["Location"])}
    pages["plain"] = Client().get(LOGIN_URL)
    pages["empty"] = Client().post(LOGIN_URL, {"login": "", "password": ""})
    pages["too_long"] = Client().post(
        LOGIN_URL, {"login": "<b>" + "a" * 300, "password": "x", "remember": "on"}
    )
    pages["wrong_password"] = sign_in(Client(), "alice", "not the password", next="/account/")
    for _ in range(4):
        sign_in(Client(), "alice", "not the password")
    pages["rate_limited"] = sign_in(Client(), "alice", password)
    assert TOO_MANY in pages["rate_limited"].content.decode()
    return pages


def test_sign_in_pages_match_djangos_own_widget_rendering(settings, app, user, password):
    settings.IDP_LOCKOUT_THRESHOLD = 1000  # allauth's rate limit, not our lock
    for name, response in _sign_in_pages(app, password).items():
        assert response.status_code == HTTPStatus.OK, name
        form = response.context_data["form"]
        assert form.renderer is SIGN_IN_FORM_RENDERER, name

        form.renderer = get_default_renderer()  # the same page through Django's own templates
        template = response.resolve_template(response.template_name)
        djangos = template.render(response.context_data, response.wsgi_request)

        assert _without_csrf_tokens(response.content.decode()) == _without_csrf_tokens(djangos)


def test_login_form_takes_the_python_templates_only_with_djangos_default_renderer(settings):
    assert LoginForm().renderer is SIGN_IN_FORM_RENDERER

    settings.FORM_RENDERER = "django.forms.renderers.TemplatesSetting"
    assert LoginForm().renderer is get_default_renderer()
    assert not isinstance(LoginForm().renderer, DjangoTemplates)


_lazy_text = lazy(lambda: "Lazy <text>", str)


@pytest.mark.parametrize(
    "attrs",
    [
        {},
        {"required": True, "disabled": False, "autofocus": True},
        {"placeholder": 'a "quoted" <tag> & more', "maxlength": 254, "size": 0, "data-one": 1},
        {"data-safe": mark_safe("<b>kept</b>"), "data-lazy": _lazy_text()},
        {"data-tuple": (1, 2), "data-none": None, "data-list": ["x", "<y>"]},
        {"aria-describedby": "id_a_helptext id_a_error", "aria-invalid": "true"},
    ],
)
@pytest.mark.parametrize("value", [None, "", "plain", "x\"<&>'", mark_safe("<i>safe</i>")])
@pytest.mark.parametrize(
    "template_name",
    [
        "django/forms/widgets/input.html",
        "django/forms/widgets/text.html",
        "django/forms/widgets/password.html",
        "django/forms/widgets/checkbox.html",
        "django/forms/widgets/email.html",
    ],
)
def test_inputs_match_djangos_templates(template_name, value, attrs):
    context = {
        "widget": {
            "name": 'field"<name>',
            "is_hidden": False,
            "required": True,
            "value": value,
            "attrs": attrs,
            "template_name": template_name,
            "type": "text",
        }
    }
    expected = get_default_renderer().render(template_name, context)

    assert SIGN_IN_FORM_RENDERER.render(template_name, context) == expected


@pytest.mark.parametrize(
    "label", ["Login:", "  spaced  ", "<b>escaped</b>", mark_safe("<b>kept</b>"), _lazy_text()]
)
@pytest.mark.parametrize(
    ("use_tag", "tag", "attrs"),
    [
        (True, "label", {"for": "id_login"}),
        (True, "label", None),
        (True, "legend", {"for": "id_x", "class": 'required "x"'}),
        (False, "label", {"for": "ignored"}),
    ],
)
def test_labels_match_djangos_template(label, use_tag, tag, attrs):
    context = {"field": None, "label": label, "attrs": attrs, "use_tag": use_tag, "tag": tag}
    expected = get_default_renderer().render("django/forms/label.html", context)

    assert SIGN_IN_FORM_RENDERER.render("django/forms/label.html", context) == expected


def test_what_the_python_declines_goes_to_djangos_templates():
    for value, attrs in [
        (None, {"data-x": lambda: "called by the template"}),
        (None, {1234: "number-named"}),
        (lambda: "called by the template", {}),
    ]:
        context = {"widget": {"type": "text", "name": "n", "value": value, "attrs": attrs}}
        expected = get_default_renderer().render("django/forms/widgets/text.html", context)

        assert "called by the template" in expected or "1234" in expected
        assert SIGN_IN_FORM_RENDERER.render("django/forms/widgets/text.html", context) == expected
    errors = LoginForm(data={"login": "", "password": ""}).errors["login"]
    assert SIGN_IN_FORM_RENDERER.render(errors.template_name, errors.get_context()) == str(errors)


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
