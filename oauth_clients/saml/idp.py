"""pysaml2's IdP, configured in code: the `Server` per service provider and our metadata.

Nothing is read from configuration files. The IdP's entity ID is `<issuer>/saml/metadata/`
(where its metadata is served, the usual convention); its SSO endpoints are
`/saml/sso/redirect/` (HTTP-Redirect) and `/saml/sso/post/` (HTTP-POST); its single logout
endpoints (SAML 2.0 Profiles §4.4) `/saml/slo/redirect/`, `/saml/slo/post/` and, for an app's
back-channel request over SOAP (Bindings §3.2), `/saml/slo/soap/`.

One `Server` per service provider, cached per process under a digest of everything it is built
from (the SP row's protocol fields, the signing key set, the issuer): a changed row, a rotated
key or a new issuer gives a new digest, so the next request builds a new Server at once, with no
invalidation to forget. The digest costs nothing more than the SP row each request reads anyway.

The SP's metadata given to pysaml2 is built from the registry row (entity ID, ACS endpoints,
logout endpoint, certificates, NameID format), never from the imported `metadata_xml` as such:
the row is what the registry parsed and an administrator may have edited since (a new
certificate takes effect at once), an expired `validUntil` in an old import cannot silently
drop the app, and the SP's `RequestedAttribute` list cannot override the app's attribute mapping
(pysaml2's release policy filters on it).
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import logging
import shutil
import threading
from collections import OrderedDict
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.urls import reverse
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT, BINDING_SOAP, md, samlp
from saml2.attribute_converter import AttributeConverter
from saml2.config import IdPConfig
from saml2.metadata import do_key_descriptor, entity_descriptor, metadata_tostring_fix
from saml2.saml import NAME_FORMAT_URI
from saml2.server import Server
from saml2.xmldsig import DIGEST_SHA256, SIG_RSA_SHA256

from oauth_clients.models import SamlServiceProvider
from oauth_clients.saml.keys import KeyFiles, certificate_base64, key_files
from oauth_clients.saml.signing import InProcessSigning
from oauth_clients.saml.xmlsec import without_ca_bundle

logger = logging.getLogger(__name__)

NAMEID_FORMATS = [
    SamlServiceProvider.NameIdFormat.UNSPECIFIED.value,
    SamlServiceProvider.NameIdFormat.EMAIL.value,
    SamlServiceProvider.NameIdFormat.PERSISTENT.value,
    SamlServiceProvider.NameIdFormat.TRANSIENT.value,
]
# SAML 2.0 Profiles §4.1.4.2: the assertion's validity window (NotOnOrAfter of the conditions and
# of the bearer confirmation); the SP consumes it right away.
ASSERTION_LIFETIME = {"minutes": 5}
SERVER_CACHE_SIZE = 64
# The usual prefixes in our metadata (readable by people; any prefix means the same to an SP).
METADATA_PREFIXES = {
    "md": md.NAMESPACE,
    "ds": "http://www.w3.org/2000/09/xmldsig#",
    "xs": "http://www.w3.org/2001/XMLSchema",
}


def absolute_url(name: str, **kwargs: Any) -> str:
    """One of our SAML endpoints on the issuer's scheme and host."""
    issuer = urlsplit(settings.IDP_ISSUER)
    return f"{issuer.scheme}://{issuer.netloc}{reverse(f'saml:{name}', kwargs=kwargs or None)}"


def entity_id() -> str:
    return absolute_url("metadata")


def sso_endpoints() -> dict[str, str]:
    """Binding → our SingleSignOnService location."""
    return {
        BINDING_HTTP_REDIRECT: absolute_url("sso_redirect"),
        BINDING_HTTP_POST: absolute_url("sso_post"),
    }


def slo_endpoints() -> dict[str, str]:
    """Binding → our SingleLogoutService location (Metadata §2.4.2; Profiles §4.4.4): the
    browser's two, and SOAP for an app's back-channel request (Bindings §3.2; `slo_soap`)."""
    return {
        BINDING_HTTP_REDIRECT: absolute_url("slo_redirect"),
        BINDING_HTTP_POST: absolute_url("slo_post"),
        BINDING_SOAP: absolute_url("slo_soap"),
    }


def xmlsec_binary() -> str:
    """Debian's `xmlsec1` (IDP_SAML_XMLSEC1 names another), started without the system's CA
    bundle, which SAML never uses (`oauth_clients.saml.xmlsec`)."""
    configured = getattr(settings, "IDP_SAML_XMLSEC1", "") or shutil.which("xmlsec1")
    if not configured:
        raise ImproperlyConfigured("SAML needs the xmlsec1 program (apt-get install xmlsec1)")
    return without_ca_bundle(str(configured))


def _idp_settings(files: KeyFiles) -> dict[str, Any]:
    return {
        "entityid": entity_id(),
        "key_file": files.key_file,
        "cert_file": files.cert_file,
        "additional_cert_files": list(files.other_cert_files) or None,
        "service": {
            "idp": {
                "endpoints": {
                    "single_sign_on_service": [
                        (url, binding) for binding, url in sso_endpoints().items()
                    ],
                    "single_logout_service": [
                        (url, binding) for binding, url in slo_endpoints().items()
                    ],
                },
                "name_id_format": NAMEID_FORMATS,
                # Per app (SamlServiceProvider.want_authn_requests_signed), checked by
                # authn_request.py; metadata says false (SAML 2.0 Metadata §2.4.3).
                "want_authn_requests_signed": False,
                "sign_assertion": True,
                "sign_response": False,
                # pysaml2 reads these per service ("idp"), not from the top level below: without
                # them it signs with RSA-SHA1, which python3-saml refuses as deprecated
                # (tests/federation/test_saml_upstream.py signs in through this IdP).
                "signing_algorithm": SIG_RSA_SHA256,
                "digest_algorithm": DIGEST_SHA256,
                "policy": {
                    "default": {"lifetime": ASSERTION_LIFETIME, "name_form": NAME_FORMAT_URI}
                },
            }
        },
        # Signatures are checked only with the keys the registry holds for the sender, never
        # with a certificate the message itself carries.
        "only_use_keys_in_metadata": True,
        "signing_algorithm": SIG_RSA_SHA256,
        "digest_algorithm": DIGEST_SHA256,
        "delete_tmpfiles": True,
    }


def _verbatim_names() -> list[AttributeConverter]:
    """Attributes go out under exactly the names the app's mapping gives (no OID translation
    of well-known names, which pysaml2's default maps would apply)."""
    converter = AttributeConverter()
    converter.from_dict({"identifier": NAME_FORMAT_URI, "to": {}, "fro": {}})
    return [converter]


def sp_metadata_xml(sp: SamlServiceProvider) -> str:
    """The SP's metadata (SAML 2.0 Metadata §2.4.4) from its registry row."""
    endpoints = []
    for position, acs in enumerate(sp.acs_urls or []):
        endpoints.append(
            md.AssertionConsumerService(
                location=str(acs.get("url", "")),
                binding=str(acs.get("binding", BINDING_HTTP_POST)),
                index=str(acs.get("index", position)),
                is_default="true" if acs.get("is_default") else None,
            )
        )
    certificates = []
    for pem in sp.certificate_list():
        try:
            certificates.append(certificate_base64(pem))
        except ValueError:
            logger.warning("SAML app %s: a certificate that cannot be read is ignored", sp.pk)
    descriptor = md.SPSSODescriptor(
        protocol_support_enumeration=samlp.NAMESPACE,
        authn_requests_signed="true" if sp.want_authn_requests_signed else "false",
        want_assertions_signed="true",
        assertion_consumer_service=endpoints,
        name_id_format=[md.NameIDFormat(text=sp.nameid_format)],
    )
    if certificates:
        descriptor.key_descriptor = do_key_descriptor(cert=certificates, use="signing")
    if sp.slo_url:
        descriptor.single_logout_service = [
            md.SingleLogoutService(
                location=sp.slo_url, binding=sp.slo_binding or BINDING_HTTP_REDIRECT
            )
        ]
    return str(md.EntityDescriptor(entity_id=sp.entity_id, spsso_descriptor=[descriptor]))


def _sp_digest(sp: SamlServiceProvider, files: KeyFiles) -> str:
    fields = [
        sp.pk,
        sp.entity_id,
        sp.acs_urls,
        sp.slo_url,
        sp.slo_binding,
        sp.certificates,
        sp.want_authn_requests_signed,
        sp.nameid_format,
        files.fingerprint,
        entity_id(),
    ]
    return hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()


class IdPServer(Server):
    """pysaml2's IdP without its in-memory assertion store: we answer no AssertionIDRequest or
    AuthnQuery, and the store would grow for the life of the process."""

    def support_AssertionIDRequest(self) -> bool:
        return False

    def support_AuthnQuery(self) -> bool:
        return False


_servers: OrderedDict[str, IdPServer] = OrderedDict()
_servers_lock = threading.Lock()


def _build_server(sp: SamlServiceProvider, files: KeyFiles) -> IdPServer:
    config = IdPConfig()
    values = _idp_settings(files)
    values["xmlsec_binary"] = xmlsec_binary()
    values["metadata"] = {"inline": [sp_metadata_xml(sp)]}
    config.load(copy.deepcopy(values))
    config.setattr("", "attribute_converters", _verbatim_names())
    server = IdPServer(config=config)
    # Signatures made in the worker by libxmlsec1, checks still by the xmlsec1 program
    # (oauth_clients/saml/signing.py).
    server.sec.crypto = InProcessSigning(values["xmlsec_binary"], delete_tmpfiles=True)
    return server


def server_for(sp: SamlServiceProvider) -> IdPServer:
    """The IdP `Server` that knows this SP (and only it), built once per version of its row."""
    files = key_files()
    digest = _sp_digest(sp, files)
    with _servers_lock:
        found = _servers.get(digest)
        if found is not None:
            _servers.move_to_end(digest)
            return found
    server = _build_server(sp, files)
    with _servers_lock:
        _servers[digest] = server
        while len(_servers) > SERVER_CACHE_SIZE:
            _servers.popitem(last=False)
    return server


@functools.lru_cache(maxsize=4)
def _metadata_document(fingerprint: str, issuer: str, files: KeyFiles) -> bytes:
    config = IdPConfig()
    # No xmlsec1 here: pysaml2 would list every algorithm xmlsec1 knows (MD5 and SHA-1
    # included) as supported; we sign with RSA-SHA256 only.
    config.load(copy.deepcopy(_idp_settings(files)))
    descriptor = entity_descriptor(config)
    document = metadata_tostring_fix(descriptor, METADATA_PREFIXES)
    return document if isinstance(document, bytes) else document.encode("utf-8")


def metadata_document() -> bytes:
    """Our EntityDescriptor (SAML 2.0 Metadata §2.4.3 IDPSSODescriptor): signing certificates of
    every published RSA key (current first), both SSO bindings, the NameID formats; built once
    per key set and issuer."""
    files = key_files()
    return _metadata_document(files.fingerprint, settings.IDP_ISSUER, files)
