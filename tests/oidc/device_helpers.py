"""Helpers for the device authorization grant's tests (RFC 8628): a device app, the device's
requests and the person's steps on /device with Django's test client."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit

from django.test import Client as HttpClient
from django.urls import reverse

from oauth_clients.models import Client
from oauth_clients.oidc.device import DEVICE_CODE_GRANT
from oauth_clients.services import register_client
from tests.oidc.conftest import post_form


def register_device_app(**overrides: Any) -> Client:
    values: dict[str, Any] = {
        "actor": None,
        "kind": Client.Kind.DEVICE,
        "name": "Deploy CLI",
        "scopes": "openid profile email",
        "logo_uri": "https://cli.example.com/logo.png",
    }
    values.update(overrides)
    client, secret = register_client(**values)
    assert secret == ""
    return client


def start(http: HttpClient, client: Client, **extra: str) -> Any:
    """RFC 8628 §3.1: the device asks for its codes."""
    return post_form(
        http,
        reverse("oauth2_provider:device-authorization"),
        {"client_id": client.client_id, **extra},
    )


def poll(http: HttpClient, client_id: str, device_code: str) -> Any:
    """RFC 8628 §3.4: one poll of the token endpoint."""
    return post_form(
        http,
        reverse("oauth2_provider:token"),
        {"grant_type": DEVICE_CODE_GRANT, "device_code": device_code, "client_id": client_id},
    )


def enter_code(browser: HttpClient, user_code: str) -> Any:
    return browser.post(reverse("oauth2_provider:device"), {"user_code": user_code})


def approve(browser: HttpClient, user_code: str, *, decision: str = "allow") -> Any:
    """The person's steps after sign-in: the code, the confirmation page, the decision."""
    entered = enter_code(browser, user_code)
    assert entered.status_code == HTTPStatus.FOUND, entered.content[:500]
    assert entered["Location"] == reverse("oauth2_provider:device-confirm")
    page = browser.get(entered["Location"])
    assert page.status_code == HTTPStatus.OK, page.content[:500]
    decided = browser.post(reverse("oauth2_provider:device-confirm"), {decision: decision})
    assert decided.status_code == HTTPStatus.FOUND
    return decided


def outcome(response: Any) -> str:
    return parse_qs(urlsplit(response["Location"]).query)["r"][0]
