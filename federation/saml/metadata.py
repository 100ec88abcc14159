"""An upstream SAML identity provider's values (entity ID, single sign-on URL, signing
certificates) from its metadata or given by hand.

The metadata document is read with python3-saml's parser, which refuses any DTD or entity
declaration (no XXE, no entity expansion), after a size bound; a metadata URL is fetched through
the SSRF-safe sender (`oauth_clients.saml_metadata.fetch_sp_metadata`: https, no private network
unless allowed, no redirects, bounded time and size). The values are stored on the provider row:
a sign-in never fetches anything.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from onelogin.saml2.constants import OneLogin_Saml2_Constants
from onelogin.saml2.idp_metadata_parser import OneLogin_Saml2_IdPMetadataParser

from oauth_clients.saml_metadata import MAX_METADATA_BYTES, fetch_sp_metadata


@dataclass(frozen=True)
class IdPValues:
    entity_id: str
    sso_url: str
    certificate: str  # one or more PEM certificates


def normalize_certificates(text: str) -> str:
    """PEM certificates (or one base64 DER body, as metadata carries it), checked and re-encoded
    as PEM, one after the other. Raises ValidationError for anything that is not one."""
    text = (text or "").strip()
    if not text:
        raise ValidationError(_("Give the identity provider's signing certificate."))
    blocks: list[bytes] = []
    if "-----BEGIN CERTIFICATE-----" in text:
        for part in text.split("-----END CERTIFICATE-----"):
            if "-----BEGIN CERTIFICATE-----" in part:
                blocks.append((part.strip() + "\n-----END CERTIFICATE-----\n").encode("ascii"))
        loaders = [x509.load_pem_x509_certificate]
    else:
        try:
            blocks = [base64.b64decode("".join(text.split()), validate=True)]
        except (binascii.Error, ValueError) as error:
            raise ValidationError(_("The certificate is neither PEM nor base64.")) from error
        loaders = [x509.load_der_x509_certificate]
    pems = []
    for block in blocks:
        try:
            certificate = loaders[0](block)
        except ValueError as error:
            raise ValidationError(_("The certificate cannot be read.")) from error
        pems.append(certificate.public_bytes(serialization.Encoding.PEM).decode("ascii"))
    return "".join(pems)


def read_idp_metadata(document: bytes | str, *, entity_id: str | None = None) -> IdPValues:
    """The identity provider of a metadata document (`entity_id` picks one of several)."""
    raw = document.encode("utf-8") if isinstance(document, str) else document
    if len(raw) > MAX_METADATA_BYTES:
        raise ValidationError(_("The metadata is larger than 1 MiB."))
    try:
        parsed = OneLogin_Saml2_IdPMetadataParser.parse(
            raw,
            required_sso_binding=OneLogin_Saml2_Constants.BINDING_HTTP_REDIRECT,
            entity_id=entity_id or None,
        )
    except Exception as error:  # lxml's and python3-saml's many parse errors
        raise ValidationError(
            _("The metadata cannot be read: %(why)s") % {"why": str(error)[:200]}
        ) from error
    idp = parsed.get("idp") or {}
    sso = (idp.get("singleSignOnService") or {}).get("url", "")
    certificates = list((idp.get("x509certMulti") or {}).get("signing") or [])
    if idp.get("x509cert"):
        certificates.append(idp["x509cert"])
    if not idp.get("entityId") or not sso:
        raise ValidationError(
            _("The metadata names no identity provider with an HTTP-Redirect sign-on service.")
        )
    if not certificates:
        raise ValidationError(_("The metadata names no signing certificate."))
    pem = "".join(normalize_certificates(certificate) for certificate in certificates)
    return IdPValues(entity_id=str(idp["entityId"]), sso_url=str(sso), certificate=pem)


def fetch_idp_metadata(url: str, *, allow_private_network: bool) -> bytes:
    """The document at `url`, through the safe sender (ValidationError saying why not)."""
    return fetch_sp_metadata(url, allow_private_network=allow_private_network)


def certificate_bodies(pem: str) -> list[str]:
    """The base64 bodies of the stored PEM certificates (python3-saml's `x509cert` form)."""
    bodies = []
    for part in pem.split("-----END CERTIFICATE-----"):
        if "-----BEGIN CERTIFICATE-----" in part:
            body = part.split("-----BEGIN CERTIFICATE-----", 1)[1]
            bodies.append("".join(body.split()))
    return bodies
