"""Helpers for the authorization-endpoint tests: build a request, read the redirect back."""

from __future__ import annotations

import html
import secrets
from html.parser import HTMLParser
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit

from django.conf import settings

from oauth_clients.models import Client
from tests.oidc.conftest import pkce_pair

AUTHORIZE_URL = "/o/authorize/"


def issuer() -> str:
    return settings.OAUTH2_PROVIDER["OIDC_ISS_ENDPOINT"]


def authorization_params(client: Client, **overrides: Any) -> dict[str, str]:
    """A valid code+PKCE authentication request for `client`; `None` in overrides drops a key."""
    _verifier, challenge = pkce_pair()
    params: dict[str, Any] = {
        "response_type": "code",
        "client_id": client.client_id,
        "redirect_uri": client.redirect_uris.split()[0],
        "scope": "openid profile email",
        "state": secrets.token_urlsafe(12),
        "nonce": secrets.token_urlsafe(12),
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    params.update(overrides)
    return {key: value for key, value in params.items() if value is not None}


def redirect_query(response: Any, redirect_uri: str) -> dict[str, str]:
    """The query of a redirect to `redirect_uri` (asserts it is one), single values."""
    assert response.status_code == HTTPStatus.FOUND, (response.status_code, response.content[:300])
    location = response["Location"]
    assert location.split("?")[0] == redirect_uri.split("?")[0], location
    query = parse_qs(urlsplit(location).query, keep_blank_values=True)
    assert all(len(values) == 1 for values in query.values()), query
    return {key: values[0] for key, values in query.items()}


def assert_error_page(response: Any) -> None:
    """The branded 400 page: no redirect anywhere, our layout, a message for the user."""
    assert response.status_code == HTTPStatus.BAD_REQUEST, response.status_code
    assert not response.has_header("Location")
    body = response.content.decode()
    assert "This sign-in request cannot be completed" in body
    assert 'class="site-header"' in body  # extends templates/base.html


class PageParser(HTMLParser):
    """Just enough HTML reading for our pages: elements with attributes (and the form each one
    sits in), texts of h1 and li."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str]]] = []
        # For each element, the index in `elements` of the <form> it sits in (forms do not nest).
        self.form_of: list[int | None] = []
        self.texts: dict[str, list[str]] = {"h1": [], "li": []}
        self._open: list[str] = []
        self._form: int | None = None
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, {key: value or "" for key, value in attrs}))
        if tag == "form":
            self._form = len(self.elements) - 1
        self.form_of.append(self._form)
        if tag in self.texts:
            self.texts[tag].append("")
            self._open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._form = None
        if self._open and self._open[-1] == tag:
            self._open.pop()

    def handle_data(self, data: str) -> None:
        if self._open:
            tag = self._open[-1]
            self.texts[tag][-1] += data

    def find_all(self, tag: str, **attrs: str) -> list[dict[str, str]]:
        return [
            found
            for name, found in self.elements
            if name == tag and all(found.get(key) == value for key, value in attrs.items())
        ]

    def text(self, tag: str) -> list[str]:
        return [" ".join(value.split()) for value in self.texts[tag]]

    def form_with(
        self, tag: str, **attrs: str
    ) -> tuple[dict[str, str], list[tuple[str, dict[str, str]]]]:
        """The one form holding an element `tag` with `attrs`: its attributes and its elements."""
        (form_index,) = {
            self.form_of[index]
            for index, (name, found) in enumerate(self.elements)
            if name == tag and all(found.get(key) == value for key, value in attrs.items())
        }
        assert form_index is not None, (tag, attrs)
        inside = [
            element
            for element, index in zip(self.elements, self.form_of, strict=True)
            if index == form_index
        ]
        return self.elements[form_index][1], inside


def consent_form(response: Any) -> tuple[str, dict[str, str]]:
    """The consent form's action and hidden fields, as a browser would submit them.

    The consent form is the one with Allow and Deny; the page's other forms (the header's
    sign-out, the language switcher) and their fields are not part of it."""
    assert response.status_code == HTTPStatus.OK, response.status_code
    page = PageParser(response.content.decode())
    form, inside = page.form_with("button", name="allow", value="allow")
    assert form["method"] == "post", form
    assert page.form_with("button", name="deny", value="deny")[0] is form
    fields = {
        i["name"]: i.get("value", "") for tag, i in inside if tag == "input" and i.get("name")
    }
    return html.unescape(form["action"]), fields


def authorize_code(browser: Any, oauth_client: Client, *, scope: str = "openid profile email"):
    """A code for `browser`'s session as it stands (no new sign-in, unlike `run_code_flow`)."""
    from tests.oidc.conftest import CodeFlowResult

    verifier, challenge = pkce_pair()
    params = authorization_params(oauth_client, scope=scope, code_challenge=challenge)
    redirect_uri = params["redirect_uri"]
    code = redirect_query(browser.get(AUTHORIZE_URL, params), redirect_uri)["code"]
    return CodeFlowResult(code, verifier, redirect_uri, params["state"], params["nonce"])
