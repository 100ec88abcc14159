"""docs/snippets/device_flow.py against a live IdP: the device polls while a person approves."""

from __future__ import annotations

import threading

import pytest
from django.test import Client as Browser

from tests.docs.conftest import load_snippet
from tests.oidc.device_helpers import approve, register_device_app

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.spec("RFC 8628", "3.4")
def test_the_device_flow_snippet_gets_tokens_once_the_person_allows(provider, settings, user):
    settings.IDP_DEVICE_POLL_INTERVAL = 1
    snippet = load_snippet("device_flow")
    app = register_device_app()
    started = snippet.start_sign_in(provider, app.client_id)
    result: dict = {}
    device = threading.Thread(
        target=lambda: result.update(tokens=snippet.wait_for_tokens(started, app.client_id)),
        daemon=True,
    )
    device.start()
    person = Browser()
    person.force_login(user)
    approve(person, started["user_code"])
    device.join(timeout=30)
    assert result["tokens"]["access_token"]
    assert result["tokens"]["id_token"]


def test_the_device_flow_snippet_reports_a_denial(provider, settings, user):
    settings.IDP_DEVICE_POLL_INTERVAL = 1
    snippet = load_snippet("device_flow")
    app = register_device_app()
    started = snippet.start_sign_in(provider, app.client_id)
    person = Browser()
    person.force_login(user)
    approve(person, started["user_code"], decision="deny")
    with pytest.raises(snippet.DeviceSignInFailed, match="access_denied"):
        snippet.wait_for_tokens(started, app.client_id)
