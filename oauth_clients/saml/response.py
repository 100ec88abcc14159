"""The SAML Response (SAML 2.0 Profiles §4.1.4.2) and the page that posts it to the app's ACS.

A success carries one assertion signed with our current RSA key (the whole Response too when the
app asks, `sign_response`), with:

- NameID in the app's format (SAML 2.0 Core §8.3): emailAddress = the account's email;
  unspecified = the username; persistent = a pairwise pseudonym, the hex HMAC-SHA256 of
  "<user pk>\\n<SP entity ID>" keyed with `IDP_SAML_NAMEID_SECRET` (else `SECRET_KEY`, through
  Django's `salted_hmac` with its own salt): the same for one person at one app on every
  sign-in, unlinkable between apps, revealing nothing — changing that secret changes every
  persistent NameID, so set `IDP_SAML_NAMEID_SECRET` before rotating `SECRET_KEY`;
  transient = random per response;
- `AuthnContextClassRef`: PasswordProtectedTransport (SAML 2.0 Authn Context §3.4.7) for a
  session without a second factor; with one (`accounts.sessions.has_second_factor`, the same
  reading as the ID token's `amr`), the REFEDS MFA Profile's `https://refeds.org/profile/mfa`,
  the class SAML apps check for "used a second factor" — the SAML 2.0 classes each name one
  specific mechanism (TimeSyncToken a hardware OTP token), which a passkey or an app's TOTP
  code is not; an app's `RequestedAuthnContext` chooses among the classes the session has
  (`authn_context.py`);
- attributes from the one claims function (`oauth_clients.oidc.claims.build_claims`, with the
  app: its roles, filtered groups and mapped claims), for the scopes among profile, email and
  groups the app may receive; each claim under the app's `attribute_names` name, else its own;
  a list (groups, roles) is one multi-valued attribute.

Every assertion is audited (`saml.assertion_issued`) and recorded in the session for single
logout (`state.record_sign_in`). Errors carry their status and no assertion.
"""

from __future__ import annotations

import base64
import secrets
import time
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.crypto import salted_hmac
from saml2 import VERSION, saml, samlp
from saml2.s_utils import sid
from saml2.time_util import instant

from accounts.audit import record_event
from accounts.models import AuditEvent
from accounts.sessions import get_sid, has_second_factor, session_binding
from oauth_clients.access import EffectiveGroups
from oauth_clients.models import SamlServiceProvider
from oauth_clients.oidc.claims import build_claims
from oauth_clients.saml import state
from oauth_clients.saml.authn_context import PASSWORD_PROTECTED_TRANSPORT, REFEDS_MFA
from oauth_clients.saml.errors import RESPONDER, StatusError
from oauth_clients.saml.idp import entity_id, server_for

# The scopes whose claims a SAML app may receive as attributes (if its registration allows them).
ATTRIBUTE_SCOPES = ("profile", "email", "groups")
# OIDC-only claims that say nothing a SAML app needs (the subject is the NameID).
NOT_ATTRIBUTES = frozenset({"sub", "email_verified", "updated_at"})
Format = SamlServiceProvider.NameIdFormat
POST_TEMPLATE = "saml/post.html"


def name_id_for(*, sp: SamlServiceProvider, user: Any) -> saml.NameID:
    """The subject's NameID in the app's registered format (see the module docstring)."""
    fmt = sp.nameid_format
    if fmt == Format.EMAIL:
        email = (user.email or "").strip()
        if not email:
            raise StatusError(
                "The account has no email address.",
                status=samlp.STATUS_INVALID_NAMEID_POLICY,
                top=RESPONDER,
            )
        return saml.NameID(format=fmt, text=email)
    if fmt == Format.PERSISTENT:
        return saml.NameID(
            format=fmt,
            name_qualifier=entity_id(),
            sp_name_qualifier=sp.entity_id,
            text=persistent_id(user_pk=user.pk, sp_entity_id=sp.entity_id),
        )
    if fmt == Format.TRANSIENT:
        return saml.NameID(
            format=fmt,
            name_qualifier=entity_id(),
            sp_name_qualifier=sp.entity_id,
            text=f"_{secrets.token_hex(20)}",
        )
    return saml.NameID(format=Format.UNSPECIFIED, text=user.get_username())


def persistent_id(*, user_pk: Any, sp_entity_id: str) -> str:
    secret = getattr(settings, "IDP_SAML_NAMEID_SECRET", "") or settings.SECRET_KEY
    return salted_hmac(
        "idp.saml.persistent-nameid",
        f"{user_pk}\n{sp_entity_id}",
        secret=secret,
        algorithm="sha256",
    ).hexdigest()


def _attribute_value(value: Any) -> list[str] | str:
    if isinstance(value, list | tuple):
        return [str(item) for item in value]
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def attributes_for(*, sp: SamlServiceProvider, user: Any) -> dict[str, list[str] | str]:
    """The app's attributes: claims renamed by `attribute_names` (see the module docstring)."""
    client = sp.client
    allowed = set((client.allowed_scopes or "").split())
    scopes = [scope for scope in ATTRIBUTE_SCOPES if scope in allowed]
    claims = build_claims(
        user=user, scopes=scopes, client=client, groups=EffectiveGroups(user_id=user.pk)
    )
    names = sp.attribute_names if isinstance(sp.attribute_names, dict) else {}
    attributes: dict[str, list[str] | str] = {}
    for claim, value in claims.items():
        if claim in NOT_ATTRIBUTES or value is None:
            continue
        attributes[str(names.get(claim) or claim)] = _attribute_value(value)
    return attributes


def authn_context_class(amr: list[str]) -> str:
    """The class of a sign-in nobody asked a class of (IdP-initiated, or no
    RequestedAuthnContext): the strongest the session has."""
    return REFEDS_MFA if has_second_factor(amr) else PASSWORD_PROTECTED_TRANSPORT


def auto_post_page(
    request: HttpRequest,
    *,
    application: Any,
    action: str,
    field: str,
    value: str,
    relay_state: str,
    signing_out: bool = False,
    status: int = 200,
) -> HttpResponse:
    """The HTTP-POST binding (Bindings §3.5.4): a form posting `field` (SAMLResponse or
    SAMLRequest, base64) to the app, submitted by a script file (the page's CSP allows no
    inline script), or by the person's click without JavaScript."""
    context = {
        "application": application,
        "action": action,
        "field": field,
        "value": value,
        "relay_state": relay_state,
        "signing_out": signing_out,
    }
    response = render(request, POST_TEMPLATE, context, status=status)
    response["Cache-Control"] = "no-store"
    return response


def post_page(
    request: HttpRequest, *, sp: SamlServiceProvider, acs_url: str, xml: str, relay_state: str
) -> HttpResponse:
    """A Response (an assertion or an error status) posted to the app's ACS."""
    return auto_post_page(
        request,
        application=sp.client,
        action=acs_url,
        field="SAMLResponse",
        value=base64.b64encode(xml.encode("utf-8")).decode("ascii"),
        relay_state=relay_state,
    )


def issue_assertion(
    request: HttpRequest,
    *,
    sp: SamlServiceProvider,
    acs_url: str,
    in_response_to: str | None,
    relay_state: str,
    class_ref: str | None = None,
) -> HttpResponse:
    """Sign the person in to the app: the Response, its audit row, the session's record.
    `class_ref`: the authentication context the request's RequestedAuthnContext chose."""
    user = request.user
    binding = session_binding(request)
    name_id = name_id_for(sp=sp, user=user)
    authn = {
        "class_ref": class_ref or authn_context_class(binding.amr),
        "authn_instant": binding.auth_time or int(time.time()),
    }
    server = server_for(sp)
    xml = server.create_authn_response(
        attributes_for(sp=sp, user=user),
        in_response_to,
        acs_url,
        sp.entity_id,
        name_id=name_id,
        authn=authn,
        sign_assertion=True,
        sign_response=sp.sign_response,
    )
    xml = xml if isinstance(xml, str) else str(xml)
    # Our own document, read back for what the session must remember (the SessionIndex
    # pysaml2 chose) and the audit row.
    issued = samlp.response_from_string(xml)
    assertion = issued.assertion[0]
    session_index = assertion.authn_statement[0].session_index
    state.record_sign_in(
        request,
        {
            "entity_id": sp.entity_id,
            "client_id": sp.client.client_id,
            "name_id": name_id.text,
            "name_id_format": name_id.format,
            "session_index": session_index,
            "issued_at": int(time.time()),
        },
    )
    record_event(
        type=AuditEvent.Type.SAML_ASSERTION_ISSUED,
        request=request,
        actor=user,
        subject=user,
        client=sp.client,
        entity_id=sp.entity_id,
        assertion_id=assertion.id,
        in_response_to=in_response_to or "",
        nameid_format=name_id.format,
        authn_context=authn["class_ref"],
        sid=get_sid(request),
    )
    return post_page(request, sp=sp, acs_url=acs_url, xml=xml, relay_state=relay_state)


def error_response(
    request: HttpRequest,
    *,
    sp: SamlServiceProvider,
    acs_url: str,
    in_response_to: str | None,
    relay_state: str,
    error: StatusError,
) -> HttpResponse:
    """A Response with `error`'s status and no assertion (SAML 2.0 Core §3.2.2.2), signed when
    the app wants signed responses."""
    inner = samlp.StatusCode(value=error.status) if error.status else None
    response = samlp.Response(
        id=sid(),
        version=VERSION,
        issue_instant=instant(),
        destination=acs_url,
        in_response_to=in_response_to or None,
        issuer=saml.Issuer(text=entity_id(), format=saml.NAMEID_FORMAT_ENTITY),
        status=samlp.Status(
            status_code=samlp.StatusCode(value=error.top, status_code=inner),
            status_message=samlp.StatusMessage(text=error.detail),
        ),
    )
    xml = server_for(sp).sign(response) if sp.sign_response else str(response)
    return post_page(request, sp=sp, acs_url=acs_url, xml=str(xml), relay_state=relay_state)
