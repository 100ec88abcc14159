"""Single logout messages (SAML 2.0 Core §3.7) built by pysaml2 and signed with our current key.

- `logout_request`: the LogoutRequest we send an app when the IdP session ends (Profiles
  §4.4.3.3 / §4.4.4.1): the NameID and SessionIndex the session's record holds for it
  (`state.SESSIONS_KEY`), a `NotOnOrAfter` a few minutes ahead, signed — in the query for
  HTTP-Redirect (Bindings §3.4.4.1), in the XML for HTTP-POST and SOAP;
- `logout_response`: our answer to an app's LogoutRequest (Core §3.7.3.2), Success or the
  refusal's status, to the app's registered single logout URL, signed the same way;
  `soap_logout_response` the same answer to a request that came over SOAP, signed, in the
  SOAP envelope of the HTTP response (Bindings §3.2.3.3).

`Outgoing` says how the browser (or the SOAP sender) carries the message: a URL to follow or
frame (Redirect), a form to post (POST), an envelope to send (SOAP).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT, BINDING_SOAP, saml, samlp
from saml2.pack import make_soap_enveloped_saml_thingy
from saml2.time_util import in_a_while
from saml2.xmldsig import DIGEST_SHA256, SIG_RSA_SHA256

from oauth_clients.models import SamlServiceProvider
from oauth_clients.saml.errors import StatusError
from oauth_clients.saml.idp import entity_id, server_for

# Core §3.7.3: why the session ends.
REASON_USER = "urn:oasis:names:tc:SAML:2.0:logout:user"
REASON_ADMIN = "urn:oasis:names:tc:SAML:2.0:logout:admin"
# Core §3.7.1 NotOnOrAfter: the app acts on it at once.
REQUEST_LIFETIME_MINUTES = 5
# The bindings an app's registered single logout URL may use (saml_metadata.SLO_BINDINGS).
BROWSER_BINDINGS = (BINDING_HTTP_REDIRECT, BINDING_HTTP_POST)
Format = SamlServiceProvider.NameIdFormat


@dataclass(frozen=True)
class Outgoing:
    """One message to an app's single logout endpoint, ready for its binding."""

    message_id: str
    binding: str
    url: str  # HTTP-Redirect: the whole signed URL; otherwise the endpoint
    field: str  # "SAMLRequest" or "SAMLResponse"
    value: str = ""  # HTTP-POST: base64 of the signed XML
    relay_state: str = ""
    envelope: str = ""  # SOAP: the SOAP 1.1 envelope around the signed XML


def name_id_of(*, sp: SamlServiceProvider, entry: dict) -> saml.NameID:
    """The NameID the app received in the assertion this session record stands for
    (`response.name_id_for`: persistent and transient ones carry both qualifiers)."""
    fmt = str(entry.get("name_id_format") or Format.UNSPECIFIED)
    if fmt in (Format.PERSISTENT, Format.TRANSIENT):
        return saml.NameID(
            format=fmt,
            name_qualifier=entity_id(),
            sp_name_qualifier=sp.entity_id,
            text=str(entry.get("name_id", "")),
        )
    return saml.NameID(format=fmt, text=str(entry.get("name_id", "")))


def _bind(
    *,
    sp: SamlServiceProvider,
    binding: str,
    message_id: str,
    xml: str,
    field: str,
    relay_state: str = "",
) -> Outgoing:
    if binding == BINDING_HTTP_REDIRECT:
        info = server_for(sp).apply_binding(
            BINDING_HTTP_REDIRECT,
            xml,
            sp.slo_url,
            relay_state,
            response=field == "SAMLResponse",
            sign=True,
            sigalg=SIG_RSA_SHA256,
        )
        location = dict(info["headers"])["Location"]
        return Outgoing(message_id=message_id, binding=binding, url=location, field=field)
    if binding == BINDING_SOAP:
        envelope = make_soap_enveloped_saml_thingy(xml)
        return Outgoing(
            message_id=message_id,
            binding=binding,
            url=sp.slo_url,
            field=field,
            envelope=envelope if isinstance(envelope, str) else envelope.decode("utf-8"),
        )
    return Outgoing(
        message_id=message_id,
        binding=BINDING_HTTP_POST,
        url=sp.slo_url,
        field=field,
        value=base64.b64encode(xml.encode("utf-8")).decode("ascii"),
        relay_state=relay_state,
    )


def logout_request(*, sp: SamlServiceProvider, entry: dict, reason: str | None) -> Outgoing:
    """Our LogoutRequest for a session record of `sp` (its NameID; every SessionIndex the
    session got from the app under it, `session_indexes`), over the app's registered binding."""
    binding = sp.slo_binding or BINDING_HTTP_REDIRECT
    indexes = entry.get("session_indexes") or [entry.get("session_index")]
    session_indexes = [str(index) for index in indexes if index]
    message_id, message = server_for(sp).create_logout_request(
        destination=sp.slo_url,
        issuer_entity_id=sp.entity_id,
        name_id=name_id_of(sp=sp, entry=entry),
        reason=reason,
        expire=in_a_while(minutes=REQUEST_LIFETIME_MINUTES),
        session_indexes=session_indexes or None,
        # HTTP-Redirect signs the query instead (Bindings §3.4.4.1: no XML signature).
        sign=binding != BINDING_HTTP_REDIRECT,
        sign_alg=SIG_RSA_SHA256,
        digest_alg=DIGEST_SHA256,
    )
    return _bind(
        sp=sp, binding=binding, message_id=str(message_id), xml=str(message), field="SAMLRequest"
    )


def answers_in_browser(sp: SamlServiceProvider) -> bool:
    """The app registered a single logout URL a browser can carry a message to."""
    return bool(sp.slo_url) and (sp.slo_binding or BINDING_HTTP_REDIRECT) in BROWSER_BINDINGS


def _status(error: StatusError | None) -> samlp.Status | None:
    if error is None:
        return None
    inner = samlp.StatusCode(value=error.status) if error.status else None
    return samlp.Status(
        status_code=samlp.StatusCode(value=error.top, status_code=inner),
        status_message=samlp.StatusMessage(text=error.detail),
    )


def soap_logout_response(
    *, sp: SamlServiceProvider, request: samlp.LogoutRequest, error: StatusError | None = None
) -> tuple[str, str]:
    """(message ID, SOAP envelope) of our signed LogoutResponse to an app's LogoutRequest
    that came over SOAP; Success unless `error`."""
    built = server_for(sp).create_logout_response(
        request,
        bindings=[BINDING_SOAP],
        status=_status(error),
        sign=True,
        sign_alg=SIG_RSA_SHA256,
        digest_alg=DIGEST_SHA256,
    )
    xml = str(built)
    envelope = make_soap_enveloped_saml_thingy(xml)
    message_id = str(samlp.logout_response_from_string(xml).id)
    return message_id, envelope if isinstance(envelope, str) else envelope.decode("utf-8")


def logout_response(
    *,
    sp: SamlServiceProvider,
    request: samlp.LogoutRequest,
    relay_state: str,
    error: StatusError | None = None,
) -> Outgoing:
    """Our LogoutResponse to the app's registered single logout URL (`answers_in_browser`),
    InResponseTo the app's request; Success unless `error`."""
    binding = sp.slo_binding or BINDING_HTTP_REDIRECT
    built = server_for(sp).create_logout_response(
        request,
        bindings=[binding],
        status=_status(error),
        sign=binding == BINDING_HTTP_POST,
        sign_alg=SIG_RSA_SHA256,
        digest_alg=DIGEST_SHA256,
    )
    xml = str(built)
    return _bind(
        sp=sp,
        binding=binding,
        message_id=str(samlp.logout_response_from_string(xml).id),
        xml=xml,
        field="SAMLResponse",
        relay_state=relay_state,
    )
