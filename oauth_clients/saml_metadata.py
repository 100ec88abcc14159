"""A SAML app's service-provider metadata, read and fetched safely (SAML 2.0 Metadata §2).

`parse_sp_metadata` reads what a service provider publishes about itself (entity ID, assertion
consumer services, logout service, signing certificates, whether it signs its requests, the
NameID formats it accepts) with pysaml2's metadata classes, after defusedxml has refused what an
XML parser must never be fed: a DTD, entities (billion laughs), external references (XXE), and
more than `MAX_METADATA_BYTES`. `fetch_sp_metadata` gets it from a URL through the SSRF-safe
sender (`oauth_clients.outbound`). `sp_errors` is the registration rule set for the values,
however they were entered (metadata, by hand, a registry import). Every refusal is a
`ValidationError` whose message says what to fix.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from xml.etree.ElementTree import ParseError

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring as defused_fromstring
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from saml2 import md

from oauth_clients import outbound, uri_rules
from oauth_clients.models import PEM_CERTIFICATE_RE, SamlServiceProvider

# A service provider's own metadata is a few kilobytes; a federation aggregate is not what an
# app registers (and parsing megabytes of XML on an admin's request is a denial of service).
MAX_METADATA_BYTES = 1024 * 1024
# Fetching metadata: per connect/read, and the whole exchange ends after twice that.
FETCH_TIMEOUT_SECONDS = 10
USER_AGENT = "company-idp SAML metadata"
MAX_ENTITY_ID_LENGTH = 1024
MAX_CERTIFICATES = 10

# SAML 2.0 Bindings §3.
BINDING_HTTP_REDIRECT = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
BINDING_HTTP_POST = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
BINDING_HTTP_ARTIFACT = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Artifact"
BINDING_SOAP = "urn:oasis:names:tc:SAML:2.0:bindings:SOAP"
BINDING_PAOS = "urn:oasis:names:tc:SAML:2.0:bindings:PAOS"
ACS_BINDINGS = (BINDING_HTTP_POST, BINDING_HTTP_REDIRECT, BINDING_HTTP_ARTIFACT, BINDING_PAOS)
# The logout endpoint kept when the SP lists several: the browser bindings first (the IdP's
# single logout runs in the browser), then SOAP.
SLO_BINDINGS = (BINDING_HTTP_POST, BINDING_HTTP_REDIRECT, BINDING_SOAP)
# SAML 2.0 Metadata §2.4.1: protocolSupportEnumeration must name SAML 2.0.
SAML2_PROTOCOL = "urn:oasis:names:tc:SAML:2.0:protocol"
_MD = "{urn:oasis:names:tc:SAML:2.0:metadata}"
# Claim name → SAML attribute Name: the claim side as in oauth_clients.models.CLAIM_NAME_RE;
# the attribute side a URI, an OID URN or a plain name, printable, without spaces.
_ATTRIBUTE_NAME_RE = re.compile(r"[!-~]{1,256}")
_CLAIM_NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9_.:-]{0,63}")


@dataclass(frozen=True)
class SpMetadata:
    """What one service provider's metadata declares, in the model's shapes."""

    entity_id: str
    acs_urls: list[dict[str, Any]]
    slo_url: str = ""
    slo_binding: str = ""
    certificates: list[str] = field(default_factory=list)  # PEM, signing use
    authn_requests_signed: bool = False
    # The first NameID format the SP lists that this IdP offers; None when it lists none of them.
    nameid_format: str | None = None
    nameid_formats: list[str] = field(default_factory=list)  # as listed


# --- Reading ---------------------------------------------------------------------------------


def _refuse(message: str, code: str) -> ValidationError:
    return ValidationError(message, code=code)


def _safe_root(xml: bytes) -> Any:
    """The document's root element, parsed with DTDs, entities and external references
    forbidden (billion laughs, quadratic blowup, XXE); raises ValidationError."""
    if len(xml) > MAX_METADATA_BYTES:
        raise _refuse(
            _("The metadata is larger than %(limit)d KiB; register the app's own metadata.")
            % {"limit": MAX_METADATA_BYTES // 1024},
            "too_large",
        )
    try:
        return defused_fromstring(xml, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise _refuse(
            _(
                "The metadata declares a DTD or XML entities, which are refused "
                "(entity expansion and external entities are attacks on the parser)."
            ),
            "xml_forbidden",
        ) from exc
    except (ParseError, ValueError) as exc:
        raise _refuse(_("This is not well-formed XML."), "not_xml") from exc


def _entities(root: Any, xml: bytes) -> list[Any]:
    """Every md.EntityDescriptor in the document (nested EntitiesDescriptors flattened)."""
    try:
        if root.tag == f"{_MD}EntityDescriptor":
            found = [md.entity_descriptor_from_string(xml)]
        elif root.tag == f"{_MD}EntitiesDescriptor":
            found = []
            pending = [md.entities_descriptor_from_string(xml)]
            while pending:
                group = pending.pop(0)
                found.extend(group.entity_descriptor or [])
                pending.extend(group.entities_descriptor or [])
        else:
            found = []
    except Exception as exc:  # pysaml2 raises many kinds on schema-invalid input
        raise _refuse(
            _("This is not valid SAML 2.0 metadata (%(why)s).") % {"why": type(exc).__name__},
            "invalid_metadata",
        ) from exc
    if root.tag not in (f"{_MD}EntityDescriptor", f"{_MD}EntitiesDescriptor") or not found:
        raise _refuse(
            _("This is not SAML 2.0 metadata: expected an EntityDescriptor."), "not_metadata"
        )
    return [entity for entity in found if entity is not None]


def _sp_descriptor(entity: Any) -> Any:
    """The entity's SPSSODescriptor that speaks SAML 2.0, or None."""
    for descriptor in entity.spsso_descriptor or []:
        protocols = (descriptor.protocol_support_enumeration or "").split()
        if SAML2_PROTOCOL in protocols:
            return descriptor
    return None


def _true(value: Any) -> bool:
    # xs:boolean (XML Schema Part 2 §3.2.2): "true" or "1".
    return str(value or "").strip().lower() in ("true", "1")


def _acs_list(descriptor: Any) -> list[dict[str, Any]]:
    endpoints = []
    for acs in descriptor.assertion_consumer_service or []:
        try:
            index = int(str(acs.index).strip())
        except (TypeError, ValueError) as exc:
            raise _refuse(
                _("An assertion consumer service has no valid index (%(url)s).")
                % {"url": acs.location},
                "invalid_acs",
            ) from exc
        endpoints.append(
            {
                "url": (acs.location or "").strip(),
                "binding": (acs.binding or "").strip(),
                "index": index,
                "is_default": _true(acs.is_default),
            }
        )
    return endpoints


def _slo(descriptor: Any) -> tuple[str, str]:
    services = [
        ((slo.location or "").strip(), (slo.binding or "").strip())
        for slo in descriptor.single_logout_service or []
    ]
    for binding in SLO_BINDINGS:
        for location, declared in services:
            if declared == binding:
                return location, declared
    return "", ""


def _signing_certificates(descriptor: Any) -> list[str]:
    """PEM of every certificate the SP declares for signing (KeyDescriptor use="signing", or no
    use: both, SAML 2.0 Metadata §2.4.1.1)."""
    found = []
    for key in descriptor.key_descriptor or []:
        if key.use not in (None, "", "signing"):
            continue
        key_info = key.key_info
        for data in (key_info.x509_data if key_info is not None else None) or []:
            certificate = data.x509_certificate
            if certificate is not None and certificate.text:
                found.append(der_base64_to_pem(certificate.text))
    return found


def parse_sp_metadata(xml: bytes | str, *, entity_id: str | None = None) -> SpMetadata:
    """The service provider declared in `xml` (an EntityDescriptor, or the one chosen by
    `entity_id` in an EntitiesDescriptor); raises ValidationError saying why not."""
    data = xml.encode("utf-8") if isinstance(xml, str) else bytes(xml)
    root = _safe_root(data)
    entities = _entities(root, data)
    providers = [entity for entity in entities if _sp_descriptor(entity) is not None]
    if entity_id:
        providers = [entity for entity in providers if entity.entity_id == entity_id]
        if not providers:
            raise _refuse(
                _("The metadata has no SAML 2.0 service provider with entity ID %(id)s.")
                % {"id": entity_id},
                "unknown_entity",
            )
    if not providers:
        if any(entity.idpsso_descriptor for entity in entities):
            raise _refuse(
                _(
                    "This is an identity provider's metadata (IDPSSODescriptor); register the "
                    "app's own service-provider metadata."
                ),
                "idp_metadata",
            )
        raise _refuse(
            _("The metadata declares no SAML 2.0 service provider (SPSSODescriptor)."),
            "no_sp",
        )
    if len(providers) > 1:
        names = ", ".join(str(entity.entity_id) for entity in providers[:5])
        raise _refuse(
            _(
                "The metadata lists %(count)d service providers (%(names)s…); choose one by "
                "its entity ID."
            )
            % {"count": len(providers), "names": names},
            "several_sps",
        )
    entity = providers[0]
    descriptor = _sp_descriptor(entity)
    slo_url, slo_binding = _slo(descriptor)
    formats = [
        (nameid.text or "").strip() for nameid in descriptor.name_id_format or [] if nameid.text
    ]
    offered = [value for value in formats if value in SamlServiceProvider.NameIdFormat.values]
    return SpMetadata(
        entity_id=(entity.entity_id or "").strip(),
        acs_urls=_acs_list(descriptor),
        slo_url=slo_url,
        slo_binding=slo_binding,
        certificates=_signing_certificates(descriptor),
        authn_requests_signed=_true(descriptor.authn_requests_signed),
        nameid_format=offered[0] if offered else None,
        nameid_formats=formats,
    )


# --- Certificates ----------------------------------------------------------------------------


def der_base64_to_pem(text: str) -> str:
    """An X509Certificate element's base64 DER as PEM; raises ValidationError if unreadable."""
    try:
        der = base64.b64decode("".join(text.split()), validate=True)
        certificate = x509.load_der_x509_certificate(der)
    except (binascii.Error, ValueError) as exc:
        raise _refuse(
            _("A certificate in the metadata cannot be read as X.509."), "invalid_certificate"
        ) from exc
    return certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")


def read_certificates(text: str | Iterable[str]) -> list[str]:
    """PEM certificates (one or more, or bare base64 DER) as a list of normalized PEM blocks."""
    joined = text if isinstance(text, str) else "\n".join(text)
    blocks = PEM_CERTIFICATE_RE.findall(joined)
    if not blocks and joined.strip():
        return [der_base64_to_pem(joined)]
    leftover = PEM_CERTIFICATE_RE.sub("", joined).strip()
    if leftover:
        raise _refuse(
            _("Paste PEM certificates only (-----BEGIN CERTIFICATE----- … END CERTIFICATE-----)."),
            "invalid_certificate",
        )
    certificates = []
    for block in blocks:
        try:
            certificate = x509.load_pem_x509_certificate(block.encode("ascii"))
        except ValueError as exc:
            raise _refuse(
                _("A certificate cannot be read as X.509 PEM."), "invalid_certificate"
            ) from exc
        certificates.append(certificate.public_bytes(serialization.Encoding.PEM).decode("ascii"))
    return certificates


# --- The rules for a service provider's values --------------------------------------------------


def acs_errors(acs_urls: Any) -> list[str]:
    """Assertion consumer services: well-formed, safe URLs, unique indexes, one default at most,
    and one over HTTP-POST (this IdP answers over HTTP-POST, SAML 2.0 Profiles §4.1.2)."""
    if not isinstance(acs_urls, list) or not acs_urls:
        return [_("Register at least one assertion consumer service (ACS) URL.")]
    problems: list[str] = []
    indexes: set[int] = set()
    defaults = 0
    for acs in acs_urls:
        if not isinstance(acs, dict) or set(acs) != {"url", "binding", "index", "is_default"}:
            problems.append(_("Each ACS is an object with url, binding, index and is_default."))
            continue
        url, binding, index = acs["url"], acs["binding"], acs["index"]
        if not isinstance(url, str) or not url:
            problems.append(_("An ACS has no URL."))
            continue
        problem = uri_rules.saml_endpoint_problem(url)
        if problem:
            problems.append(f"{url}: {problem}")
        if len(url) > MAX_ENTITY_ID_LENGTH:
            problems.append(_("%(url)s: at most 1024 characters.") % {"url": url[:80]})
        if binding not in ACS_BINDINGS:
            problems.append(
                _("%(url)s: unknown binding %(binding)s.") % {"url": url, "binding": binding}
            )
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index <= 65535:
            problems.append(_("%(url)s: the index is a number from 0 to 65535.") % {"url": url})
        elif index in indexes:
            problems.append(_("Two ACS URLs share the index %(index)d.") % {"index": index})
        else:
            indexes.add(index)
        if not isinstance(acs["is_default"], bool):
            problems.append(_("%(url)s: is_default is true or false.") % {"url": url})
        elif acs["is_default"]:
            defaults += 1
    if defaults > 1:
        problems.append(_("Only one ACS URL may be the default."))
    if not problems and not any(acs["binding"] == BINDING_HTTP_POST for acs in acs_urls):
        problems.append(
            _(
                "The app declares no ACS with the HTTP-POST binding; this IdP sends its "
                "responses over HTTP-POST."
            )
        )
    return problems


def attribute_name_errors(value: Any) -> list[str]:
    if not isinstance(value, dict):
        return [_("Map claim names to SAML attribute names.")]
    problems = []
    for claim, name in value.items():
        if not isinstance(claim, str) or not _CLAIM_NAME_RE.fullmatch(claim):
            problems.append(_("%(claim)s is not a claim name.") % {"claim": claim})
        if not isinstance(name, str) or not _ATTRIBUTE_NAME_RE.fullmatch(name):
            problems.append(
                _("The attribute name for %(claim)s is 1 to 256 printable characters, no spaces.")
                % {"claim": claim}
            )
    return problems


def sp_errors(values: Mapping[str, Any], *, exclude_pk: int | None = None) -> dict[str, list[str]]:
    """Every rule on a service provider's values at once, as {field: [messages]}.

    `values` holds the model's field names (certificates as PEM text); `exclude_pk` is the
    provider being changed (its own entity ID is not a duplicate).
    """
    errors: dict[str, list[str]] = {}
    entity_id = values.get("entity_id")
    if not isinstance(entity_id, str) or not entity_id.strip():
        errors["entity_id"] = [_("Enter the app's entity ID (from its metadata).")]
    elif len(entity_id) > MAX_ENTITY_ID_LENGTH or not entity_id.isprintable():
        errors["entity_id"] = [_("An entity ID is at most 1024 printable characters.")]
    else:
        taken = SamlServiceProvider.objects.filter(entity_id=entity_id)
        if exclude_pk is not None:
            taken = taken.exclude(pk=exclude_pk)
        if taken.exists():
            errors["entity_id"] = [
                _("Another app is already registered with the entity ID %(id)s.")
                % {"id": entity_id}
            ]
    if "acs_urls" in values:
        problems = acs_errors(values["acs_urls"])
        if problems:
            errors["acs_urls"] = problems
    slo_url = values.get("slo_url") or ""
    slo_binding = values.get("slo_binding") or ""
    if slo_url:
        problem = uri_rules.saml_endpoint_problem(slo_url)
        if problem:
            errors["slo_url"] = [f"{slo_url}: {problem}"]
        elif slo_binding not in SLO_BINDINGS:
            errors["slo_binding"] = [
                _("Choose the logout binding: %(bindings)s.")
                % {"bindings": ", ".join(SLO_BINDINGS)}
            ]
    elif slo_binding:
        errors["slo_url"] = [_("Enter the logout URL for this binding, or clear the binding.")]
    certificates: list[str] = []
    try:
        certificates = read_certificates(values.get("certificates") or "")
    except ValidationError as exc:
        errors["certificates"] = list(exc.messages)
    if len(certificates) > MAX_CERTIFICATES:
        errors["certificates"] = [
            _("At most %(count)d certificates.") % {"count": MAX_CERTIFICATES}
        ]
    if (
        values.get("want_authn_requests_signed")
        and not certificates
        and "certificates" not in errors
    ):
        errors["certificates"] = [
            _("The app signs its requests: give its signing certificate to check them with.")
        ]
    nameid = values.get("nameid_format")
    if nameid is not None and nameid not in SamlServiceProvider.NameIdFormat.values:
        errors["nameid_format"] = [
            _("Choose one of the NameID formats: %(formats)s.")
            % {"formats": ", ".join(SamlServiceProvider.NameIdFormat.values)}
        ]
    if "attribute_names" in values:
        problems = attribute_name_errors(values["attribute_names"])
        if problems:
            errors["attribute_names"] = problems
    return errors


# --- Fetching --------------------------------------------------------------------------------


def fetch_sp_metadata(
    url: str,
    *,
    allow_private_network: bool = False,
    resolver: uri_rules.Resolver | None = None,
    timeout: float | None = None,
    verify: bool | str = True,
) -> bytes:
    """The metadata document at `url`, through the SSRF-safe sender: https (http only on
    loopback), public addresses unless the app may call private ones, no redirects, at most
    `MAX_METADATA_BYTES`, a bounded time. Raises ValidationError saying why not."""
    url = (url or "").strip()
    problem = uri_rules.metadata_url_problem(
        url, allow_private_network=allow_private_network, resolver=resolver
    )
    if problem:
        raise _refuse(f"{url}: {problem}", "invalid_url")
    address, refusal, _retryable = outbound.check_destination(
        url, allow_private_network=allow_private_network, resolver=resolver
    )
    if address is None:
        raise _refuse(
            _("The metadata cannot be fetched: %(why)s.") % {"why": refusal}, "fetch_refused"
        )
    seconds = float(
        timeout
        if timeout is not None
        else getattr(settings, "IDP_SAML_METADATA_TIMEOUT_SECONDS", FETCH_TIMEOUT_SECONDS)
    )
    answer = outbound.send_pinned(
        method="GET",
        uri=url,
        address=address,
        timeout=seconds,
        max_bytes=MAX_METADATA_BYTES,
        headers={
            "User-Agent": USER_AGENT,
            "Accept": "application/samlmetadata+xml, application/xml;q=0.9, text/xml;q=0.8",
        },
        verify=verify,
    )
    if answer.status_code is None:
        raise _refuse(
            _("The metadata cannot be fetched: %(why)s.") % {"why": answer.error}, "fetch_failed"
        )
    if 300 <= answer.status_code < 400:
        raise _refuse(
            _(
                "The metadata URL answered with a redirect, which is never followed; "
                "enter the final URL."
            ),
            "fetch_redirect",
        )
    if answer.status_code != 200:
        raise _refuse(
            _("The metadata URL answered HTTP %(status)d, not the metadata.")
            % {"status": answer.status_code},
            "fetch_status",
        )
    if answer.truncated:
        raise _refuse(
            _("The metadata is larger than %(limit)d KiB; register the app's own metadata.")
            % {"limit": MAX_METADATA_BYTES // 1024},
            "too_large",
        )
    return answer.body
