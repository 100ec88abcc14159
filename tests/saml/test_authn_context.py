"""RequestedAuthnContext (SAML 2.0 Core §3.3.2.2.1): an app asks for a class of authentication;
the IdP asserts the strongest class the session has that the app accepts, sends a password-only
session to its second factor when only that would do, and answers NoAuthnContext when no class
it asserts can meet the request."""

from __future__ import annotations

from http import HTTPStatus

import pytest
from saml2 import saml, samlp

from accounts.models import AuditEvent
from oauth_clients.saml.authn_context import (
    PASSWORD,
    PASSWORD_PROTECTED_TRANSPORT,
    REFEDS_MFA,
    UNSPECIFIED,
    Requested,
)
from tests.saml.conftest import SP_ACS_URL, authn_request, consume, posted, send_redirect, status_of
from tests.saml.test_sso import record_second_factor

X509 = "urn:oasis:names:tc:SAML:2.0:ac:classes:X509"
KERBEROS = "urn:oasis:names:tc:SAML:2.0:ac:classes:Kerberos"


def requested(*classes: str, comparison: str = "exact") -> samlp.RequestedAuthnContext:
    return samlp.RequestedAuthnContext(
        authn_context_class_ref=[saml.AuthnContextClassRef(text=c) for c in classes],
        comparison=comparison,
    )


def signed_in_class(client, sp, context, **kwargs) -> str:
    sent = authn_request(sp, requested_authn_context=context, **kwargs)
    result = consume(
        sp, posted(send_redirect(client, sp, sent)), outstanding={sent.request_id: "/"}
    )
    return result.authn_info()[0][0]


@pytest.mark.parametrize(
    ("classes", "comparison", "accepted"),
    [
        ((PASSWORD_PROTECTED_TRANSPORT,), "exact", {PASSWORD_PROTECTED_TRANSPORT}),
        ((PASSWORD_PROTECTED_TRANSPORT,), "minimum", {PASSWORD_PROTECTED_TRANSPORT, REFEDS_MFA}),
        ((PASSWORD_PROTECTED_TRANSPORT,), "better", {REFEDS_MFA}),
        ((PASSWORD_PROTECTED_TRANSPORT,), "maximum", {PASSWORD, PASSWORD_PROTECTED_TRANSPORT}),
        ((REFEDS_MFA,), "exact", {REFEDS_MFA}),
        ((UNSPECIFIED,), "exact", {PASSWORD, PASSWORD_PROTECTED_TRANSPORT, REFEDS_MFA}),
        ((X509, REFEDS_MFA), "exact", {REFEDS_MFA}),
        ((X509,), "minimum", set()),
    ],
)
@pytest.mark.spec("SAML 2.0 Core", "3.3.2.2.1")
def test_each_comparison_accepts_the_classes_the_core_names(classes, comparison, accepted):
    asked = Requested(classes=classes, comparison=comparison)

    assert {
        c for c in (PASSWORD, PASSWORD_PROTECTED_TRANSPORT, REFEDS_MFA) if asked.accepts(c)
    } == (accepted)


@pytest.mark.spec("SAML 2.0 Core", "3.3.2.2.1")
def test_the_strongest_class_the_session_has_that_the_app_accepts_is_asserted(client, user, sp):
    client.force_login(user)
    assert signed_in_class(client, sp, None) == PASSWORD_PROTECTED_TRANSPORT
    assert (
        signed_in_class(client, sp, requested(PASSWORD_PROTECTED_TRANSPORT))
        == PASSWORD_PROTECTED_TRANSPORT
    )

    record_second_factor(client, user)

    assert signed_in_class(client, sp, None) == REFEDS_MFA
    assert (
        signed_in_class(client, sp, requested(PASSWORD_PROTECTED_TRANSPORT, comparison="minimum"))
        == REFEDS_MFA
    )
    # An app that asked for exactly a password is told exactly that, and so is one whose
    # ceiling is a password over TLS.
    assert signed_in_class(client, sp, requested(PASSWORD)) == PASSWORD
    assert (
        signed_in_class(client, sp, requested(PASSWORD_PROTECTED_TRANSPORT, comparison="maximum"))
        == PASSWORD_PROTECTED_TRANSPORT
    )
    event = AuditEvent.objects.filter(type=AuditEvent.Type.SAML_ASSERTION_ISSUED).latest("pk")
    assert event.extra["authn_context"] == PASSWORD_PROTECTED_TRANSPORT


@pytest.mark.parametrize(
    "context",
    [requested(REFEDS_MFA), requested(PASSWORD_PROTECTED_TRANSPORT, comparison="better")],
    ids=["exact-mfa", "better-than-password"],
)
@pytest.mark.spec("SAML 2.0 Core", "3.3.2.2.1")
def test_a_request_only_a_second_factor_meets_steps_a_password_session_up(
    client, user, sp, context
):
    client.force_login(user)

    response = send_redirect(client, sp, authn_request(sp, requested_authn_context=context))

    assert response.status_code == HTTPStatus.FORBIDDEN
    assert "Two-step verification required" in response.content.decode()
    assert not AuditEvent.objects.filter(type=AuditEvent.Type.SAML_ASSERTION_ISSUED).exists()
    record_second_factor(client, user)
    assert signed_in_class(client, sp, context) == REFEDS_MFA


@pytest.mark.spec("SAML 2.0 Core", "3.4.1")
def test_is_passive_with_a_second_factor_asked_of_a_password_session_answers_no_passive(
    client, user, sp
):
    client.force_login(user)
    record_second_factor(client, user)
    assert signed_in_class(client, sp, requested(REFEDS_MFA), is_passive="true") == REFEDS_MFA
    client.logout()
    client.force_login(user)

    sent = authn_request(sp, requested_authn_context=requested(REFEDS_MFA), is_passive="true")
    post = posted(send_redirect(client, sp, sent))

    assert status_of(post) == [samlp.STATUS_RESPONDER, samlp.STATUS_NO_PASSIVE]
    assert "Assertion" not in post.xml.split("Status")[0]


@pytest.mark.parametrize(
    "context",
    [requested(X509), requested(KERBEROS, X509, comparison="minimum")],
    ids=["exact-x509", "minimum-unknown"],
)
@pytest.mark.spec("SAML 2.0 Core", "3.3.2.2.1")
def test_a_class_no_sign_in_here_can_meet_is_answered_no_authn_context_at_once(
    client, user, sp, context
):
    client.force_login(user)
    assert signed_in_class(client, sp, requested(X509, REFEDS_MFA, PASSWORD_PROTECTED_TRANSPORT))
    client.logout()

    post = posted(send_redirect(client, sp, authn_request(sp, requested_authn_context=context)))

    assert post.action == SP_ACS_URL
    assert status_of(post) == [samlp.STATUS_RESPONDER, samlp.STATUS_NO_AUTHN_CONTEXT]
    assert "Assertion" not in post.xml.split("Status")[0]
