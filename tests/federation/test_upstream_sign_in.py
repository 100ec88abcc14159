"""Signing in through a real upstream OpenID Provider (a second instance of this IdP)."""

from __future__ import annotations

from http import HTTPStatus

import pytest
from allauth.account.models import EmailAddress
from allauth.socialaccount.models import SocialAccount

from accounts.models import AuditEvent, User
from accounts.sessions import UPSTREAM_MFA_KEY, authentication_methods
from tests.federation.conftest import callback_uri
from tests.federation.helpers import path_and_query, query, sign_in_upstream

pytestmark = pytest.mark.spec("OpenID Connect Core 1.0", "3.1.3.7")


def start(broker, slug="corp", **data):
    response = broker.post(f"/accounts/upstream/{slug}/login/", {"process": "login", **data})
    assert response.status_code == HTTPStatus.FOUND, response.content[:500]
    return response["Location"]


def session_amr(broker) -> list[str]:
    session = broker.session
    return authentication_methods(
        session["account_authentication_methods"], upstream_mfa=session.get(UPSTREAM_MFA_KEY)
    )


def test_a_person_signs_in_upstream_and_is_created_just_in_time_with_the_source_audited(
    broker, corp, upstream_idp
):
    authorize = start(broker, next="/account/")
    assert authorize.startswith(f"{upstream_idp.url}/o/authorize/")
    params = query(authorize)
    assert params["client_id"] == upstream_idp.client_id
    assert params["redirect_uri"] == callback_uri("corp")
    assert params["nonce"]
    assert params["code_challenge_method"] == "S256"
    callback = sign_in_upstream(authorize, upstream_idp.url, "carol")
    assert callback.startswith(callback_uri("corp"))

    response = broker.get(path_and_query(callback))

    assert response.status_code == HTTPStatus.FOUND, response.content[:800]
    assert response["Location"] == "/account/"
    user = User.objects.get(email="carol@corp.example")
    assert (user.username, user.first_name, user.last_name) == ("carol", "Carol", "Upstream")
    assert not user.has_usable_password()
    assert EmailAddress.objects.get(user=user, email="carol@corp.example").verified
    link = SocialAccount.objects.get(user=user)
    assert link.provider == "corp"
    created = AuditEvent.objects.get(type=AuditEvent.Type.USER_CREATED, subject=user)
    assert created.extra == {"source": "upstream", "provider": "corp", "just_in_time": True}
    signed_in = AuditEvent.objects.get(type=AuditEvent.Type.UPSTREAM_SIGNED_IN, subject=user)
    assert signed_in.extra["source"] == "upstream"
    assert signed_in.extra["provider"] == "corp"
    assert signed_in.extra["upstream_mfa"] is False
    # RFC 8176 "fed": the session (and so every ID token it obtains) says how it signed in.
    assert session_amr(broker) == ["fed"]
