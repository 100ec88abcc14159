"""An app's LogoutRequest (SAML 2.0 Core §3.7.1) read from its binding and checked (Profiles
§4.4.4.1), before anything about the browser session is touched.

Order of work, each failure a `Refusal` (branded page) until the app and a single logout URL it
registered for the browser are known, an `AnswerableLogout` (a LogoutResponse with the status to
that URL) after:

1. the transport, bounded like an AuthnRequest (`authn_request.decode_redirect` / `decode_post`:
   64 KiB encoded and inflated, so a deflate bomb stops at the cap);
2. the XML read by pysaml2 (defusedxml: no DTD entities, no XXE); the `Issuer` a registered,
   active SAML app; its single logout URL registered for HTTP-Redirect or HTTP-POST (the answer
   goes nowhere else; `Refusal("no_slo")` when there is none);
3. RelayState at most 80 bytes, no markup (Bindings §3.4.3, §3.5.3);
4. pysaml2's parse (`Server.parse_logout_request`): schema, version, an enveloped signature
   verified with the app's registered certificates only;
5. the signature always required (Profiles §4.4.4.1: a LogoutRequest through the browser is
   signed; an app without a registered certificate cannot start a logout): the query for
   HTTP-Redirect (over the raw values as sent), the XML for HTTP-POST; SHA-1 refused;
6. `Destination` our endpoint for the binding (required when signed, Bindings §3.4.5.2);
   `IssueInstant` within ±3 minutes, `NotOnOrAfter` not passed; the ID not seen before; a NameID.

Whether the NameID is the one this browser session gave the app is the view's question
(`slo_views`): a POST arrives without the session cookie.

Over SOAP (Bindings §3.2; `slo_soap`) the same checks run on the request taken out of the
envelope, with three differences: the answer goes back in the HTTP response, so the app needs
no single logout URL of its own; there is no RelayState; `Destination` is optional (§3.2 has no
rule for it), our SOAP endpoint when given. The signature is required all the same (Profiles
§4.4.4.2: the requester authenticates itself by signing, or by the transport, which we do not
offer).
"""

from __future__ import annotations

import calendar
import hashlib
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from django.core.cache import cache
from saml2 import BINDING_HTTP_REDIRECT, BINDING_SOAP, saml, samlp
from saml2.time_util import str_to_time

from oauth_clients.models import SamlServiceProvider
from oauth_clients.saml.authn_request import (
    REPLAY_WINDOW_SECONDS,
    STRONG_SIGNATURES,
    decode_post,
    decode_redirect,
    issue_time_ok,
    raw_query,
    redirect_signature_valid,
    registered_app,
    relay_state_ok,
)
from oauth_clients.saml.errors import (
    REQUEST_UNSUPPORTED,
    VERSION_MISMATCH,
    Refusal,
    StatusError,
)
from oauth_clients.saml.idp import server_for, slo_endpoints
from oauth_clients.saml.slo import answers_in_browser


@dataclass(frozen=True)
class CheckedLogout:
    """What a checked LogoutRequest asks (parked in the cache as a plain dict for POST)."""

    sp_id: int
    entity_id: str
    request_id: str
    name_id: str
    name_id_format: str
    session_indexes: list[str] = field(default_factory=list)
    relay_state: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> CheckedLogout | None:
        try:
            return cls(**values)
        except TypeError:
            return None

    def request_stub(self) -> samlp.LogoutRequest:
        """What pysaml2 reads of the request to answer it (its ID and Issuer)."""
        return samlp.LogoutRequest(id=self.request_id, issuer=saml.Issuer(text=self.entity_id))


class AnswerableLogout(Exception):
    """A refusal answered with a LogoutResponse to the app's registered single logout URL."""

    def __init__(
        self,
        *,
        sp: SamlServiceProvider,
        request: samlp.LogoutRequest,
        relay_state: str,
        error: StatusError,
    ) -> None:
        super().__init__(error.detail)
        self.sp = sp
        self.request = request
        self.relay_state = relay_state
        self.error = error


def _not_expired(not_on_or_after: str | None, now: float) -> bool:
    if not not_on_or_after:
        return True
    try:
        return now < calendar.timegm(str_to_time(not_on_or_after))
    except (TypeError, ValueError):
        return False


def _first_use(entity_id: str, request_id: str) -> bool:
    digest = hashlib.sha256(f"{entity_id}\n{request_id}".encode()).hexdigest()
    return bool(cache.add(f"saml:logout-request:{digest}", 1, timeout=REPLAY_WINDOW_SECONDS))


def _peek(xml: str, *, browser: bool = True) -> tuple[samlp.LogoutRequest, SamlServiceProvider]:
    try:
        message = samlp.logout_request_from_string(xml)
    except Exception as exc:  # defusedxml's and ElementTree's refusals alike
        raise Refusal("malformed", "The SAMLRequest is not well-formed XML.") from exc
    if message is None:
        raise Refusal("malformed", "The SAMLRequest is not a LogoutRequest.")
    issuer = (
        message.issuer.text.strip() if message.issuer is not None and message.issuer.text else ""
    )
    sp = registered_app(issuer)
    if browser and not answers_in_browser(sp):
        raise Refusal("no_slo", "The app registered no single logout URL for the browser.")
    return message, sp


def check_logout_request(
    *,
    binding: str,
    saml_request: str,
    relay_state: str,
    query_string: str = "",
    now: float | None = None,
) -> CheckedLogout:
    """The checked request, or `Refusal` / `AnswerableLogout` (see the module's order). Over
    SOAP, `saml_request` is the LogoutRequest's XML as taken out of the envelope."""
    now = time.time() if now is None else now
    soap = binding == BINDING_SOAP
    if soap:
        xml = saml_request
    elif binding == BINDING_HTTP_REDIRECT:
        xml = decode_redirect(saml_request)
    else:
        xml = decode_post(saml_request)
    peeked, sp = _peek(xml, browser=not soap)

    def refuse(detail: str, **status: str) -> AnswerableLogout:
        answer_relay = relay_state if relay_state_ok(relay_state) else ""
        return AnswerableLogout(
            sp=sp, request=peeked, relay_state=answer_relay, error=StatusError(detail, **status)
        )

    if not relay_state_ok(relay_state):
        raise refuse("RelayState is over 80 bytes or has markup.", status=REQUEST_UNSUPPORTED)
    if peeked.version != "2.0":
        raise refuse("Only SAML 2.0 requests are answered.", status="", top=VERSION_MISMATCH)
    try:
        parsed = server_for(sp).parse_logout_request(xml, binding=None)
    except Exception as exc:  # pysaml2 raises many kinds here; all mean "not verified"
        raise refuse("The request's signature or structure is not valid.") from exc
    message = parsed.message if parsed is not None else None
    if message is None or message.id != peeked.id:
        raise refuse("The request's signature or structure is not valid.")
    signed = False
    if binding == BINDING_HTTP_REDIRECT and "Signature" in raw_query(query_string):
        if not redirect_signature_valid(sp, query_string):
            raise refuse("The request's signature is not valid.")
        signed = True
    if message.signature is not None:
        if message.signature.signed_info.signature_method.algorithm not in STRONG_SIGNATURES:
            raise refuse("The request is signed with a weak algorithm.")
        signed = True
    if not signed:
        # Profiles §4.4.4.1: a LogoutRequest through the browser MUST be signed. Without that,
        # anyone who knows a person's NameID (an email address, for most apps) could sign them
        # out from a link; an app without a registered certificate cannot start a logout here.
        raise refuse("The app must sign its logout requests, and this one is not signed.")
    expected_destination = slo_endpoints()[binding]
    must_name_us = message.destination is not None or (signed and not soap)
    if must_name_us and message.destination != expected_destination:
        raise refuse("The request's Destination is not this endpoint.")
    if not issue_time_ok(message.issue_instant, now):
        raise refuse("The request's IssueInstant is outside the accepted ±3 minutes.")
    if not _not_expired(message.not_on_or_after, now):
        raise refuse("The request's NotOnOrAfter has passed.")
    name_id = message.name_id
    if name_id is None or not (name_id.text or "").strip():
        raise refuse("The request names no NameID (an encrypted ID is not accepted).")
    if not message.id or not _first_use(sp.entity_id, message.id):
        raise refuse("This request ID has been used before.")
    return CheckedLogout(
        sp_id=sp.pk,
        entity_id=sp.entity_id,
        request_id=str(message.id),
        name_id=name_id.text.strip(),
        name_id_format=str(name_id.format or ""),
        session_indexes=[str(index.text or "").strip() for index in message.session_index or []],
        relay_state=relay_state,
    )
