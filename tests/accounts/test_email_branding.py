"""Security emails name the company the administrator set in Branding: the subject's
"[Company]" and the site allauth's templates see (accounts/adapter.py), like the body."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import pytest
from allauth.account.adapter import DefaultAccountAdapter
from django.core import mail

from accounts.branding import update_branding
from tests.accounts.conftest import RESET_URL

pytestmark = pytest.mark.django_db


@pytest.fixture
def sent_contexts(monkeypatch) -> list[dict[str, Any]]:
    """The context each email is rendered with, as our adapter hands it to allauth's."""
    contexts: list[dict[str, Any]] = []
    original = DefaultAccountAdapter.send_mail

    def recording(self, template_prefix, email, context):
        contexts.append(context)
        return original(self, template_prefix, email, context)

    monkeypatch.setattr(DefaultAccountAdapter, "send_mail", recording)
    return contexts


def _request_reset(client, email: str) -> None:
    client.get(RESET_URL)
    assert client.post(RESET_URL, {"email": email}).status_code == HTTPStatus.FOUND


def test_the_subject_and_site_name_the_branded_company(client, user, settings, sent_contexts):
    settings.IDP_COMPANY_NAME = "Settings Co"
    update_branding(company_name="Acme Corp", actor=None)

    _request_reset(client, "alice@example.com")

    (message,) = mail.outbox
    assert message.subject == "[Acme Corp] Reset your password"
    assert message.body.startswith("Hello from Acme Corp,")
    (context,) = sent_contexts
    assert context["current_site"].name == "Acme Corp"
    assert context["current_site"].domain == "127.0.0.1:8000"  # the issuer's host (settings)


def test_a_branding_change_reaches_the_next_email(client, user, settings):
    settings.IDP_COMPANY_NAME = "Settings Co"
    update_branding(company_name="Acme Corp", actor=None)
    _request_reset(client, "alice@example.com")

    update_branding(company_name="Globex", actor=None)
    _request_reset(client, "alice@example.com")

    assert [message.subject for message in mail.outbox] == [
        "[Acme Corp] Reset your password",
        "[Globex] Reset your password",
    ]


def test_without_a_branded_name_emails_name_the_settings_company(
    client, user, settings, sent_contexts
):
    settings.IDP_COMPANY_NAME = "Settings Co"

    _request_reset(client, "alice@example.com")

    (message,) = mail.outbox
    assert message.subject == "[Settings Co] Reset your password"
    assert "127.0.0.1" not in message.subject
    (context,) = sent_contexts
    assert context["current_site"].name == "Settings Co"
