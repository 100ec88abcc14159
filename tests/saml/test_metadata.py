"""IdP metadata (SAML 2.0 Metadata §2.4.3) and the signing certificates, rollover included."""

from __future__ import annotations

import re
from http import HTTPStatus

import pytest
from cryptography import x509
from django.conf import settings
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.xml.schema import validate as validate_against_schema

from oauth_clients.keys import generate_rsa_private_key_pem
from oauth_clients.saml.keys import certificate_base64, certificate_pem, key_files, rsa_pems
from tests.saml.conftest import (
    NameIdFormat,
    authn_request,
    consume,
    idp_metadata,
    idp_url,
    make_sp,
    posted,
    send_redirect,
)


def entity(metadata_xml: str, keys):
    """pysaml2's metadata store of an SP that loaded our metadata (`saml2.mdstore`)."""
    return make_sp(metadata_xml, keys).metadata, idp_url("/saml/metadata/")


@pytest.mark.spec("SAML 2.0 Metadata", "2.4.3")
def test_metadata_describes_the_idp(client, db, sp_keys):
    response = client.get("/saml/metadata/")

    assert response.status_code == HTTPStatus.OK
    assert response["Content-Type"] == "application/samlmetadata+xml"
    store, entity_id = entity(response.content.decode(), sp_keys)
    assert list(store.keys()) == [entity_id]
    assert store.single_sign_on_service(entity_id, BINDING_HTTP_REDIRECT)[0]["location"] == idp_url(
        "/saml/sso/redirect/"
    )
    assert store.single_sign_on_service(entity_id, BINDING_HTTP_POST)[0]["location"] == idp_url(
        "/saml/sso/post/"
    )
    descriptor = store[entity_id]["idpsso_descriptor"][0]
    assert descriptor["want_authn_requests_signed"] == "false"
    assert {f["text"] for f in descriptor["name_id_format"]} == {f.value for f in NameIdFormat}
    certs = store.certs(entity_id, "idpsso", "signing")
    assert len(certs) == len(rsa_pems())
    # Profiles §4.4: single logout over both browser bindings (tests/saml/test_slo.py).
    for binding, path in ((BINDING_HTTP_REDIRECT, "redirect"), (BINDING_HTTP_POST, "post")):
        (slo,) = store.single_logout_service(entity_id, binding, "idpsso")
        assert slo["location"] == idp_url(f"/saml/slo/{path}/")


@pytest.mark.spec("SAML 2.0 Metadata", "2.3.2")
def test_metadata_is_valid_against_the_saml_metadata_schema(client, db):
    validate_against_schema(client.get("/saml/metadata/").content.decode())


def test_the_certificate_is_the_same_for_the_same_key():
    pem = generate_rsa_private_key_pem()
    certificate_pem.cache_clear()
    first = certificate_pem(pem)
    certificate_pem.cache_clear()
    assert certificate_pem(pem) == first
    loaded = x509.load_pem_x509_certificate(first.encode())
    assert loaded.not_valid_after_utc.year == 9999
    assert certificate_pem(generate_rsa_private_key_pem()) != first


def test_key_files_are_private_and_outside_the_repository(db):
    import os
    import stat

    files = key_files()
    for path in (files.key_file, files.cert_file):
        assert not path.startswith(str(settings.BASE_DIR))
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.dirname(files.key_file)).st_mode) == 0o700


@pytest.fixture
def rotated(settings):
    """A rollover: a new key signs, the old one is still published."""
    old = settings.OAUTH2_PROVIDER["OIDC_RSA_PRIVATE_KEY"]
    new = generate_rsa_private_key_pem()
    provider = {
        **settings.OAUTH2_PROVIDER,
        "OIDC_RSA_PRIVATE_KEY": new,
        "OIDC_RSA_PRIVATE_KEYS_INACTIVE": [old],
    }
    settings.OAUTH2_PROVIDER = provider
    return old, new


def metadata_with_only(metadata_xml: str, drop_pem: str) -> str:
    """Our metadata as held by an SP that trusts one certificate: the other's KeyDescriptor cut."""
    drop = certificate_base64(certificate_pem(drop_pem))
    descriptors = re.findall(r"<md:KeyDescriptor.*?</md:KeyDescriptor>", metadata_xml, re.S)
    dropped = [d for d in descriptors if drop in d]
    assert len(dropped) == 1
    return metadata_xml.replace(dropped[0], "")


@pytest.mark.spec("SAML 2.0 Metadata", "2.4.1.1")
def test_rollover_publishes_both_certificates_and_signs_with_the_new_key(
    client, user, saml_app, sp_keys, rotated
):
    old, new = rotated
    metadata_xml = idp_metadata(client)
    store, entity_id = entity(metadata_xml, sp_keys)
    published = [
        "".join(cert.split()) for _name, cert in store.certs(entity_id, "idpsso", "signing")
    ]
    assert published[:2] == [
        certificate_base64(certificate_pem(new)),
        certificate_base64(certificate_pem(old)),
    ]
    client.force_login(user)

    # An SP that refreshed our metadata (both certificates) and one that trusts only the new one
    # validate; one that still trusts only the old one does not (it must refresh metadata).
    for trusted, valid in ((metadata_xml, True), (metadata_with_only(metadata_xml, old), True)):
        sp = make_sp(trusted, sp_keys)
        sent = authn_request(sp)
        result = consume(
            sp, posted(send_redirect(client, sp, sent)), outstanding={sent.request_id: "/"}
        )
        assert (result is not None) is valid
    stale = make_sp(metadata_with_only(metadata_xml, new), sp_keys)
    sent = authn_request(stale)
    with pytest.raises(Exception):  # noqa: B017, PT011 (pysaml2 raises SignatureError subclasses)
        consume(
            stale, posted(send_redirect(client, stale, sent)), outstanding={sent.request_id: "/"}
        )


def test_pysaml2_and_xmlschema_keep_their_messages_out_of_the_log(client, caplog):
    """pysaml2 logs the messages it handles (assertions, NameIDs) at INFO: never in our log."""
    import logging

    with caplog.at_level(logging.INFO):
        assert client.get("/saml/metadata/").status_code == 200
    assert not [r for r in caplog.records if r.name.split(".")[0] in {"saml2", "xmlschema"}]
    assert logging.getLogger("saml2").getEffectiveLevel() == logging.WARNING
