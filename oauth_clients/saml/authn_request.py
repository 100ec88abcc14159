"""An AuthnRequest (SAML 2.0 Core §3.4.1) read from its binding and checked, before anyone signs in.

Order of work (SAML 2.0 Profiles §4.1.4.1), each failure a `Refusal` (branded page) until an ACS
of a registered app is known, a `StatusError` (a SAML Response to that ACS) after:

1. the transport, bounded: at most 64 KiB encoded and 64 KiB inflated (Bindings §3.4.4.1's
   DEFLATE, inflated with a cap, so a deflate bomb stops at the cap);
2. the XML read by pysaml2 (defusedxml: no DTD entities, so no billion laughs and no XXE);
   the `Issuer` must be a registered, active SAML app;
3. the ACS: by URL or index (and binding), exactly one the app registered (`acs_for`), answered
   over HTTP-POST;
4. RelayState at most 80 bytes (Bindings §3.4.3, §3.5.3) and no markup or control characters;
5. pysaml2's parse (`Server.parse_authn_request`): schema, version, and an enveloped signature
   when present, verified with the app's registered certificates only (pysaml2 refuses a
   signature that references anything but the request's own root: signature wrapping);
6. the app's signing requirement: HTTP-Redirect signs the query (Bindings §3.4.4.1, verified
   over the raw URL-encoded values as sent), HTTP-POST signs the XML; SHA-1 is refused;
7. `Destination` is our endpoint for the binding (required when signed, Bindings §3.4.5.2);
   `IssueInstant` within ±3 minutes; the request ID not seen before (kept until it would have
   expired anyway); the NameID policy one we can meet; the RequestedAuthnContext one some
   class we assert can meet (`authn_context.py`; else the status NoAuthnContext).
"""

from __future__ import annotations

import base64
import binascii
import calendar
import hashlib
import re
import time
import zlib
from dataclasses import dataclass, field, fields
from typing import Any
from urllib.parse import unquote_plus

from django.core.cache import cache
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT, samlp
from saml2.sigver import SIGNER_ALGS, extract_rsa_key_from_x509_cert
from saml2.time_util import str_to_time
from saml2.xmldsig import (
    SIG_ECDSA_SHA256,
    SIG_ECDSA_SHA384,
    SIG_ECDSA_SHA512,
    SIG_RSA_SHA256,
    SIG_RSA_SHA384,
    SIG_RSA_SHA512,
)

from oauth_clients.models import Client, SamlServiceProvider
from oauth_clients.saml.authn_context import Unmeetable, requested_from
from oauth_clients.saml.errors import (
    INVALID_NAMEID_POLICY,
    NO_AUTHN_CONTEXT,
    REQUEST_UNSUPPORTED,
    RESPONDER,
    VERSION_MISMATCH,
    Refusal,
    StatusError,
)
from oauth_clients.saml.idp import server_for, sso_endpoints

MAX_MESSAGE_BYTES = 64 * 1024
# Base64 of MAX_MESSAGE_BYTES, with room for line breaks some encoders add.
MAX_ENCODED_LENGTH = MAX_MESSAGE_BYTES * 4 // 3 + 4096
MAX_RELAY_STATE_BYTES = 80
MAX_CLOCK_SKEW_SECONDS = 180
# A request ID is remembered as long as its IssueInstant could still be accepted.
REPLAY_WINDOW_SECONDS = 2 * MAX_CLOCK_SKEW_SECONDS + 60
STRONG_SIGNATURES = frozenset(
    {
        SIG_RSA_SHA256,
        SIG_RSA_SHA384,
        SIG_RSA_SHA512,
        SIG_ECDSA_SHA256,
        SIG_ECDSA_SHA384,
        SIG_ECDSA_SHA512,
    }
)
# Markup or control characters: RelayState goes back into an HTML form and to the app.
UNSAFE_RELAY_STATE = re.compile(r"[<>\"'`\x00-\x1f\x7f]")
UNSPECIFIED = SamlServiceProvider.NameIdFormat.UNSPECIFIED.value


@dataclass(frozen=True)
class CheckedRequest:
    """What a checked AuthnRequest asks of us (stored in the session as a plain dict)."""

    sp_id: int
    entity_id: str
    request_id: str
    acs_url: str
    relay_state: str
    force_authn: bool
    is_passive: bool
    received_at: int
    # RequestedAuthnContext (`authn_context.Requested.as_pending`), None when not asked.
    authn_context: dict[str, Any] | None = None
    # The app's row as read for the check, so the first step need not read it again; never
    # kept (a later step reads the app afresh: it may have changed or been disabled).
    sp: SamlServiceProvider | None = field(default=None, compare=False, repr=False)

    def as_pending(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "sp"}


@dataclass(frozen=True)
class Answerable:
    """A request whose app and ACS are known (errors from here on go to the ACS)."""

    sp: SamlServiceProvider
    acs_url: str
    request_id: str
    relay_state: str


def decode_redirect(value: str) -> str:
    """HTTP-Redirect: base64 of raw DEFLATE (Bindings §3.4.4.1), inflated to at most 64 KiB."""
    raw = _base64(value)
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    try:
        xml = inflater.decompress(raw, MAX_MESSAGE_BYTES)
    except zlib.error as exc:
        raise Refusal("malformed", "The SAMLRequest is not DEFLATE-encoded.") from exc
    if not inflater.eof:
        if inflater.unconsumed_tail:
            raise Refusal("too_large", "The SAMLRequest inflates beyond 64 KiB.")
        raise Refusal("malformed", "The SAMLRequest is truncated.")
    return _text(xml)


def decode_post(value: str) -> str:
    """HTTP-POST: base64 of the XML (Bindings §3.5.4)."""
    return _text(_base64(value))


def _base64(value: str) -> bytes:
    if not value:
        raise Refusal("malformed", "The SAMLRequest parameter is missing.")
    if len(value) > MAX_ENCODED_LENGTH:
        raise Refusal("too_large", "The SAMLRequest is larger than 64 KiB.")
    try:
        decoded = base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise Refusal("malformed", "The SAMLRequest is not base64.") from exc
    if len(decoded) > MAX_MESSAGE_BYTES:
        raise Refusal("too_large", "The SAMLRequest is larger than 64 KiB.")
    return decoded


def _text(xml: bytes) -> str:
    try:
        return xml.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Refusal("malformed", "The SAMLRequest is not UTF-8.") from exc


def registered_app(entity_id: str | None) -> SamlServiceProvider:
    """The active SAML app registered under this entity ID (a disabled app is unknown here)."""
    sp = (
        SamlServiceProvider.objects.select_related("client")
        .filter(entity_id=entity_id or "")
        .first()
    )
    if sp is None or not sp.client.is_active or sp.client.kind != Client.Kind.SAML:
        raise Refusal("unknown_app", "The Issuer is not a registered, active SAML app.")
    return sp


def post_acs(sp: SamlServiceProvider, *, url: str | None = None, index: int | None = None) -> str:
    """The registered HTTP-POST ACS for the request's URL or index, or the app's default."""
    if url is None and index is None:
        default = sp.default_acs()
        if default is not None and default.get("binding") == BINDING_HTTP_POST:
            return str(default["url"])
        found = sp.acs_for(binding=BINDING_HTTP_POST)
    else:
        found = sp.acs_for(url=url, index=index)
    if found is None:
        raise Refusal("acs", "The ACS is not one the app registered.")
    if found.get("binding") != BINDING_HTTP_POST:
        raise Refusal("binding", "Responses are sent over HTTP-POST only.")
    return str(found["url"])


def _answerable(xml: str, relay_state: str) -> tuple[samlp.AuthnRequest, Answerable]:
    try:
        message = samlp.authn_request_from_string(xml)
    except Exception as exc:  # defusedxml's and ElementTree's refusals alike
        raise Refusal("malformed", "The SAMLRequest is not well-formed XML.") from exc
    if message is None:
        raise Refusal("malformed", "The SAMLRequest is not an AuthnRequest.")
    issuer = (
        message.issuer.text.strip() if message.issuer is not None and message.issuer.text else ""
    )
    sp = registered_app(issuer)
    url = message.assertion_consumer_service_url
    raw_index = message.assertion_consumer_service_index
    if url is not None and raw_index is not None:
        # SAML 2.0 Core §3.4.1: mutually exclusive.
        raise Refusal("acs", "The request names both an ACS URL and an ACS index.")
    index = None
    if raw_index is not None:
        try:
            index = int(raw_index)
        except ValueError as exc:
            raise Refusal("acs", "The ACS index is not a number.") from exc
    binding = message.protocol_binding
    if binding is not None and binding != BINDING_HTTP_POST:
        raise Refusal("binding", "Responses are sent over HTTP-POST only.")
    acs_url = post_acs(sp, url=url, index=index)
    request_id = str(message.id or "")
    if not relay_state_ok(relay_state):
        answer = Answerable(sp=sp, acs_url=acs_url, request_id=request_id, relay_state="")
        raise AnswerableError(
            answer,
            StatusError("RelayState is over 80 bytes or has markup.", status=REQUEST_UNSUPPORTED),
        )
    return message, Answerable(
        sp=sp, acs_url=acs_url, request_id=request_id, relay_state=relay_state
    )


def relay_state_ok(relay_state: str) -> bool:
    return len(
        relay_state.encode("utf-8")
    ) <= MAX_RELAY_STATE_BYTES and not UNSAFE_RELAY_STATE.search(relay_state)


class AnswerableError(Exception):
    """A `StatusError` with the app and ACS it is answered to."""

    def __init__(self, answer: Answerable, error: StatusError) -> None:
        super().__init__(error.detail)
        self.answer = answer
        self.error = error


def raw_query(query_string: str) -> dict[str, str]:
    """The query's parameters as sent (still URL-encoded): the Redirect binding signs these."""
    values: dict[str, str] = {}
    for part in query_string.split("&"):
        name, _sep, value = part.partition("=")
        values.setdefault(name, value)
    return values


def redirect_signature_valid(sp: SamlServiceProvider, query_string: str) -> bool:
    raw = raw_query(query_string)
    signed = "&".join(
        f"{name}={raw[name]}" for name in ("SAMLRequest", "RelayState", "SigAlg") if name in raw
    ).encode("ascii", "replace")
    try:
        algorithm = unquote_plus(raw.get("SigAlg", ""))
        signature = base64.b64decode(unquote_plus(raw.get("Signature", "")), validate=True)
    except (binascii.Error, ValueError):
        return False
    signer = SIGNER_ALGS.get(algorithm)
    if algorithm not in STRONG_SIGNATURES or signer is None:
        return False
    for pem in sp.certificate_list():
        try:
            if signer.verify(signed, signature, extract_rsa_key_from_x509_cert(pem.encode())):
                return True
        except Exception:  # noqa: S112 (a certificate that cannot verify is just not this one)
            continue
    return False


def issue_time_ok(issue_instant: str | None, now: float) -> bool:
    if not issue_instant:
        return False
    try:
        issued_at = calendar.timegm(str_to_time(issue_instant))
    except (TypeError, ValueError):
        return False
    return abs(now - issued_at) <= MAX_CLOCK_SKEW_SECONDS


def _first_use(entity_id: str, request_id: str) -> bool:
    digest = hashlib.sha256(f"{entity_id}\n{request_id}".encode()).hexdigest()
    return bool(cache.add(f"saml:authn-request:{digest}", 1, timeout=REPLAY_WINDOW_SECONDS))


def check_authn_request(
    *,
    binding: str,
    saml_request: str,
    relay_state: str,
    query_string: str = "",
    now: float | None = None,
) -> CheckedRequest:
    """The checked request, or `Refusal` / `AnswerableError` (see the module's order)."""
    now = time.time() if now is None else now
    xml = (
        decode_redirect(saml_request)
        if binding == BINDING_HTTP_REDIRECT
        else decode_post(saml_request)
    )
    peeked, answer = _answerable(xml, relay_state)
    sp = answer.sp

    def refuse(detail: str, **status: str) -> AnswerableError:
        return AnswerableError(answer, StatusError(detail, **status))

    if peeked.version != "2.0":
        raise refuse("Only SAML 2.0 requests are answered.", status="", top=VERSION_MISMATCH)
    try:
        parsed = server_for(sp).parse_authn_request(xml, binding=None)
    except Exception as exc:  # pysaml2 raises many kinds here; all mean "not verified"
        raise refuse("The request's signature or structure is not valid.") from exc
    message = parsed.message if parsed is not None else None
    if message is None or message.id != peeked.id:
        raise refuse("The request's signature or structure is not valid.")
    signed = False
    if binding == BINDING_HTTP_REDIRECT:
        raw = raw_query(query_string)
        if "Signature" in raw or sp.want_authn_requests_signed:
            if not redirect_signature_valid(sp, query_string):
                raise refuse("The request's signature is missing or not valid.")
            signed = True
    if message.signature is not None:
        algorithm = message.signature.signed_info.signature_method.algorithm
        if algorithm not in STRONG_SIGNATURES:
            raise refuse("The request is signed with a weak algorithm.")
        signed = True
    if sp.want_authn_requests_signed and not signed:
        raise refuse("The app must sign its requests, and this one is not signed.")
    expected_destination = sso_endpoints()[binding]
    if (message.destination is not None or signed) and message.destination != expected_destination:
        raise refuse("The request's Destination is not this endpoint.")
    if not issue_time_ok(message.issue_instant, now):
        raise refuse("The request's IssueInstant is outside the accepted ±3 minutes.")
    policy = message.name_id_policy
    requested_format = policy.format if policy is not None else None
    if requested_format not in (None, UNSPECIFIED, sp.nameid_format):
        raise refuse(
            "The app is registered for another NameID format.", status=INVALID_NAMEID_POLICY
        )
    try:
        requested = requested_from(message)
    except Unmeetable as exc:
        raise refuse(str(exc), status=NO_AUTHN_CONTEXT, top=RESPONDER) from exc
    if not message.id or not _first_use(sp.entity_id, message.id):
        raise refuse("This request ID has been used before.")
    return CheckedRequest(
        sp_id=sp.pk,
        entity_id=sp.entity_id,
        request_id=str(message.id),
        acs_url=answer.acs_url,
        relay_state=answer.relay_state,
        force_authn=str(message.force_authn).lower() in {"true", "1"},
        is_passive=str(message.is_passive).lower() in {"true", "1"},
        received_at=int(now),
        authn_context=requested.as_pending() if requested is not None else None,
        sp=sp,
    )
