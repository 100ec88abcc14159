"""Signing in through a real upstream SAML 2.0 identity provider: a second instance of this IdP
(its SAML IdP, oauth_clients/saml/), registered here by its metadata (federation/saml/)."""

from __future__ import annotations

import base64
import copy
import time
import zlib
from collections.abc import Callable
from http import HTTPStatus
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from allauth.account.models import EmailAddress
from allauth.socialaccount.models import SocialAccount
from django.contrib.auth.models import Group
from django.urls import reverse
from lxml import etree

from accounts.models import AuditEvent, User
from federation.models import UpstreamProvider
from federation.saml.metadata import read_idp_metadata
from tests.federation.conftest import SAML_SLUG, saml_acs_uri, saml_sp_entity_id
from tests.federation.saml_helpers import (
    NS,
    decode,
    encode,
    forge,
    other_key,
    path_of,
    sign_in_upstream_saml,
    strip_signatures,
    upstream_key,
)
from tests.federation.test_upstream_sign_in import session_amr

pytestmark = pytest.mark.spec("SAML 2.0 Profiles", "4.1.4.3")


@pytest.fixture
def corp_saml(db, upstream_idp) -> UpstreamProvider:
    metadata = requests.get(f"{upstream_idp.url}/saml/metadata/", timeout=10).content
    idp = read_idp_metadata(metadata)
    return UpstreamProvider.objects.create(
        name="Corp SAML",
        slug=SAML_SLUG,
        kind=UpstreamProvider.Kind.SAML,
        saml_entity_id=idp.entity_id,
        saml_sso_url=idp.sso_url,
        saml_certificate=idp.certificate,
        allow_private_network=True,
        email_domains="corp.example",
        create_accounts=True,
        asserts_verified_email=True,
    )


def refusals() -> list[str]:
    return [
        str(extra.get("reason", ""))
        for extra in AuditEvent.objects.filter(type=AuditEvent.Type.UPSTREAM_REFUSED).values_list(
            "extra", flat=True
        )
    ]


def assert_refused(response, reason: str, status: int = HTTPStatus.FORBIDDEN) -> None:
    """The branded page (no 500, no redirect) and the audited reason."""
    assert response.status_code == status, response.content[:500]
    assert b'<main id="main"' in response.content
    assert any(reason in got for got in refusals()), refusals()


def request_id_of(sso_url: str) -> str:
    raw = zlib.decompress(
        base64.b64decode(parse_qs(urlsplit(sso_url).query)["SAMLRequest"][0]), -15
    )
    request_id = etree.fromstring(raw).get("ID")
    assert request_id
    return str(request_id)


def start_saml(broker, slug=SAML_SLUG, **data) -> str:
    response = broker.post(f"/accounts/saml/{slug}/login/", {"process": "login", **data})
    assert response.status_code == HTTPStatus.FOUND, response.content[:500]
    return response["Location"]


def deliver(broker, acs: str, fields: dict[str, str]):
    """The browser posts the response to our ACS, which sends it on to finish with its session."""
    response = broker.post(path_of(acs), fields)
    assert response.status_code == HTTPStatus.FOUND, response.content[:500]
    return broker.get(response["Location"])


def test_a_person_signs_in_through_the_saml_upstream_and_is_created_just_in_time(
    broker, corp_saml, upstream_idp
):
    sso = start_saml(broker, next="/account/")
    assert sso.startswith(f"{upstream_idp.url}/saml/sso/redirect/")
    assert "SAMLRequest" in parse_qs(urlsplit(sso).query)
    acs, fields = sign_in_upstream_saml(sso, "carol")
    assert acs == saml_acs_uri(SAML_SLUG)

    response = deliver(broker, acs, fields)

    assert response.status_code == HTTPStatus.FOUND, refusals()
    assert response["Location"] == "/account/"
    user = User.objects.get(email="carol@corp.example")
    assert (user.username, user.first_name, user.last_name) == ("carol", "Carol", "Upstream")
    assert EmailAddress.objects.get(user=user).verified
    assert SocialAccount.objects.get(user=user).provider == SAML_SLUG
    created = AuditEvent.objects.get(type=AuditEvent.Type.USER_CREATED, subject=user)
    assert created.extra == {"source": "upstream", "provider": SAML_SLUG, "just_in_time": True}
    signed_in = AuditEvent.objects.get(type=AuditEvent.Type.UPSTREAM_SIGNED_IN, subject=user)
    assert signed_in.extra["provider"] == SAML_SLUG
    assert session_amr(broker) == ["fed"]


def test_the_sign_in_page_offers_the_saml_provider_and_its_domain_goes_there(
    broker, corp_saml, upstream_idp
):
    page = broker.get("/accounts/login/").content.decode()
    assert f"/accounts/saml/{SAML_SLUG}/login/" in page
    assert "Corp SAML" in page
    response = broker.post("/sign-in/organisation/", {"email": "carol@corp.example"})
    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"].startswith(f"{upstream_idp.url}/saml/sso/redirect/")
    # The main form too: the password typed is never checked here.
    response = broker.post(
        "/accounts/login/", {"login": "carol@corp.example", "password": "anything"}
    )
    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"].startswith(f"{upstream_idp.url}/saml/sso/redirect/")


def test_mapped_groups_and_a_trusted_second_factor_reach_the_session(
    broker, corp_saml, upstream_idp
):
    engineers = Group.objects.create(name="Engineers")
    corp_saml.group_mapping = {"engineering": "Engineers"}
    corp_saml.trust_mfa = True
    corp_saml.save()
    # carol: in "engineering" upstream, password only.
    acs, fields = sign_in_upstream_saml(start_saml(broker), "carol")
    assert deliver(broker, acs, fields).status_code == HTTPStatus.FOUND, refusals()
    carol = User.objects.get(email="carol@corp.example")
    assert list(carol.groups.all()) == [engineers]
    assert session_amr(broker) == ["fed"]
    # grace: a second factor upstream, stated as the REFEDS MFA class; trusted here. (Not dave,
    # whom tests/federation/test_upstream_sign_in.py signs in with the same code: a code is
    # accepted once per person, and both may run within the same 30 seconds.)
    other = type(broker)(HTTP_HOST=broker.defaults["HTTP_HOST"])
    acs, fields = sign_in_upstream_saml(start_saml(other), "grace", totp=True)
    assert b"https://refeds.org/profile/mfa" in base64.b64decode(fields["SAMLResponse"])
    assert deliver(other, acs, fields).status_code == HTTPStatus.FOUND, refusals()
    assert session_amr(other) == ["fed", "mfa"]
    grace = User.objects.get(email="grace@corp.example")
    assert not grace.groups.exists()


# --- Bad input: each a response made from a genuine one, changed in one way ---------------------


@pytest.fixture
def upstream_key_pem(upstream_idp) -> bytes:
    return upstream_key(upstream_idp.data_dir)


def acs_path() -> str:
    return path_of(saml_acs_uri(SAML_SLUG))


def test_a_forged_copy_signed_by_the_upstreams_key_signs_in(
    broker, corp_saml, genuine_saml_response, upstream_key_pem
):
    """The positive path of the tests below: only their one change makes the difference."""
    fields = forge(
        genuine_saml_response, request_id=request_id_of(start_saml(broker)), key=upstream_key_pem
    )
    response = deliver(broker, acs_path(), fields)
    assert response.status_code == HTTPStatus.FOUND, refusals()
    assert User.objects.filter(email="carol@corp.example").exists()


def _set(path: str, attribute: str | None, value: str) -> Callable[[etree._Element], None]:
    def change(root: etree._Element) -> None:
        element = root.find(path, NS)
        assert element is not None
        if attribute:
            element.set(attribute, value)
        else:
            element.text = value

    return change


def _past(root: etree._Element) -> None:
    for path in ("saml:Assertion/saml:Conditions", ".//saml:SubjectConfirmationData"):
        element = root.find(path, NS)
        assert element is not None
        element.set("NotOnOrAfter", "2020-01-01T00:00:00Z")


def _wrap(root: etree._Element, *, hide_in: str) -> None:
    """XML signature wrapping: an unsigned assertion about someone else where the signed one
    was, the signed original kept (so its signature still verifies by ID) inside the evil
    assertion's Subject or in the Response's Extensions."""
    signed = root.find("saml:Assertion", NS)
    assert signed is not None
    evil = copy.deepcopy(signed)
    evil.set("ID", "_evil")
    for signature in evil.findall("ds:Signature", NS):
        evil.remove(signature)
    for value in evil.iter(f"{{{NS['saml']}}}AttributeValue"):
        if value.text == "carol@corp.example":
            value.text = "ceo@corp.example"
    name_id = evil.find(".//saml:NameID", NS)
    assert name_id is not None
    name_id.text = "ceo"
    root.replace(signed, evil)
    if hide_in == "subject":
        subject = evil.find("saml:Subject", NS)
        assert subject is not None
        subject.append(signed)
    else:
        extensions = etree.Element(f"{{{NS['samlp']}}}Extensions")
        extensions.append(signed)
        root.insert(1, extensions)


@pytest.mark.parametrize(
    ("name", "key", "change", "reason"),
    [
        (
            "wrong audience",
            "upstream",
            _set(".//saml:Audience", None, "https://other.example/sp"),
            "audience",
        ),
        ("expired", "upstream", _past, "expired"),
        (
            "wrong recipient",
            "upstream",
            _set(".//saml:SubjectConfirmationData", "Recipient", "https://other.example/acs"),
            "A valid SubjectConfirmation was not found",
        ),
        (
            "wrong destination",
            "upstream",
            _set(".", "Destination", "https://other.example/acs"),
            "instead of",
        ),
        ("signed by another key", "other", None, "Signature validation failed"),
    ],
)
def test_a_signed_response_that_is_wrong_in_one_way_is_refused(
    broker, corp_saml, genuine_saml_response, upstream_key_pem, name, key, change, reason
):
    fields = forge(
        genuine_saml_response,
        request_id=request_id_of(start_saml(broker)),
        key=upstream_key_pem if key == "upstream" else other_key(),
        change=change,
    )
    response = deliver(broker, acs_path(), fields)
    assert_refused(response, reason)
    assert not User.objects.filter(email="carol@corp.example").exists()
    assert "_auth_user_id" not in broker.session


def test_an_unsigned_response_is_refused(
    broker, corp_saml, genuine_saml_response, upstream_key_pem
):
    fields = forge(
        genuine_saml_response, request_id=request_id_of(start_saml(broker)), key=upstream_key_pem
    )
    root = decode(fields)
    strip_signatures(root)
    response = deliver(broker, acs_path(), {"SAMLResponse": encode(root)})
    assert_refused(response, "No Signature found")
    assert not User.objects.filter(email="carol@corp.example").exists()


@pytest.mark.spec("SAML 2.0 Core", "5.4.2")
@pytest.mark.parametrize("hide_in", ["subject", "extensions"])
def test_xml_signature_wrapping_is_refused(
    broker, corp_saml, genuine_saml_response, upstream_key_pem, hide_in
):
    fields = forge(
        genuine_saml_response,
        request_id=request_id_of(start_saml(broker)),
        key=upstream_key_pem,
    )
    root = decode(fields)
    _wrap(root, hide_in=hide_in)
    response = deliver(broker, acs_path(), {"SAMLResponse": encode(root)})
    assert_refused(response, "must contain 1 assertion")
    assert not User.objects.filter(email__in=["ceo@corp.example", "carol@corp.example"]).exists()


def test_an_xml_external_entity_is_refused(broker, corp_saml, genuine_saml_response, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("s3cret")
    start_saml(broker)
    body = genuine_saml_response.decode().split("?>", 1)[-1]
    document = (
        f'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file://{secret}">]>'
        + body.replace("carol@corp.example", "&x;", 1)
    )
    response = deliver(broker, acs_path(), {"SAMLResponse": encode(document.encode())})
    assert_refused(response, "DTDForbidden")
    assert b"s3cret" not in response.content


def test_an_unsolicited_response_is_refused_unless_the_provider_accepts_them(
    broker, corp_saml, genuine_saml_response, upstream_key_pem
):
    fields = forge(genuine_saml_response, request_id=None, key=upstream_key_pem)
    assert_refused(deliver(broker, acs_path(), fields), "unsolicited response")
    assert not User.objects.filter(email="carol@corp.example").exists()
    corp_saml.allow_unsolicited = True
    corp_saml.save()
    fields = forge(genuine_saml_response, request_id=None, key=upstream_key_pem)
    assert deliver(broker, acs_path(), fields).status_code == HTTPStatus.FOUND, refusals()


def test_a_provider_disabled_mid_flow_is_refused(
    broker, corp_saml, genuine_saml_response, upstream_key_pem
):
    fields = forge(
        genuine_saml_response, request_id=request_id_of(start_saml(broker)), key=upstream_key_pem
    )
    corp_saml.enabled = False
    corp_saml.save()
    response = deliver(broker, acs_path(), fields)
    assert_refused(response, "provider unknown or disabled", status=HTTPStatus.BAD_REQUEST)
    assert not User.objects.filter(email="carol@corp.example").exists()


def test_an_address_is_linked_only_when_the_provider_asserts_verified_addresses(
    broker, corp_saml, genuine_saml_response, upstream_key_pem
):
    local = User.objects.create_user("carol.local", "carol@corp.example", "a long password 1")
    assert EmailAddress.objects.get(user=local, email="carol@corp.example").verified
    corp_saml.asserts_verified_email = False
    corp_saml.save()
    fields = forge(
        genuine_saml_response, request_id=request_id_of(start_saml(broker)), key=upstream_key_pem
    )
    assert_refused(deliver(broker, acs_path(), fields), "address not verified on both sides")
    assert not SocialAccount.objects.exists()
    assert User.objects.count() == 1
    # The same address from a provider marked as asserting verified addresses: linked.
    corp_saml.asserts_verified_email = True
    corp_saml.save()
    fields = forge(
        genuine_saml_response, request_id=request_id_of(start_saml(broker)), key=upstream_key_pem
    )
    assert deliver(broker, acs_path(), fields).status_code == HTTPStatus.FOUND, refusals()
    assert SocialAccount.objects.get().user == local


@pytest.mark.spec("SAML 2.0 Profiles", "4.1.4.5")
def test_a_replayed_response_is_refused(broker, corp_saml, genuine_saml_response, upstream_key_pem):
    fields = forge(
        genuine_saml_response, request_id=request_id_of(start_saml(broker)), key=upstream_key_pem
    )
    assert deliver(broker, acs_path(), fields).status_code == HTTPStatus.FOUND, refusals()
    # The same response again, in the same browser (its request pending once more) and in
    # another one: the assertion is accepted once.
    for browser in (broker, type(broker)(HTTP_HOST=broker.defaults["HTTP_HOST"])):
        browser.logout()
        start_saml(browser)
        assert_refused(deliver(browser, acs_path(), fields), "assertion replayed")
        assert "_auth_user_id" not in browser.session


def test_a_response_to_another_browsers_request_is_refused(
    broker, corp_saml, genuine_saml_response, upstream_key_pem
):
    start_saml(broker)
    other = type(broker)(HTTP_HOST=broker.defaults["HTTP_HOST"])
    fields = forge(
        genuine_saml_response, request_id=request_id_of(start_saml(other)), key=upstream_key_pem
    )
    response = deliver(broker, acs_path(), fields)
    assert_refused(response, "response to a request this browser did not make")
    assert not User.objects.filter(email="carol@corp.example").exists()


def test_a_response_naming_this_browsers_request_over_a_signed_other_one_is_refused(
    broker, corp_saml, genuine_saml_response, upstream_key_pem
):
    mine = request_id_of(start_saml(broker))
    other = type(broker)(HTTP_HOST=broker.defaults["HTTP_HOST"])
    fields = forge(
        genuine_saml_response, request_id=request_id_of(start_saml(other)), key=upstream_key_pem
    )
    root = decode(fields)
    # The Response's own InResponseTo is outside the assertion's signature: changed to ours,
    # while the signed SubjectConfirmationData still names the other request.
    root.set("InResponseTo", mine)
    response = deliver(broker, acs_path(), {"SAMLResponse": encode(root)})
    assert_refused(response, "A valid SubjectConfirmation was not found")
    assert not User.objects.filter(email="carol@corp.example").exists()


def test_a_transient_name_id_is_no_identity(
    broker, corp_saml, genuine_saml_response, upstream_key_pem
):
    fields = forge(
        genuine_saml_response,
        request_id=request_id_of(start_saml(broker)),
        key=upstream_key_pem,
        change=_set(
            ".//saml:NameID", "Format", "urn:oasis:names:tc:SAML:2.0:nameid-format:transient"
        ),
    )
    assert_refused(deliver(broker, acs_path(), fields), "transient NameID")
    assert not User.objects.exists()


def test_a_person_links_a_saml_identity_from_the_security_centre_only_by_a_verified_address(
    broker, corp_saml, genuine_saml_response, upstream_key_pem
):
    local = User.objects.create_user("carol.local", "carol@corp.example", "a long password 1")
    broker.force_login(local)
    session = broker.session
    session["account_authentication_methods"] = [{"method": "password", "at": time.time()}]
    session.save()
    page = broker.get(reverse("federation_identities")).content.decode()
    assert f"/accounts/saml/{SAML_SLUG}/login/" in page  # the "Link Corp SAML" button

    # The provider does not assert verified addresses: no link, even to the same address.
    corp_saml.asserts_verified_email = False
    corp_saml.save()
    fields = forge(
        genuine_saml_response,
        request_id=request_id_of(start_saml(broker, process="connect")),
        key=upstream_key_pem,
    )
    assert_refused(deliver(broker, acs_path(), fields), "link refused")
    assert not SocialAccount.objects.exists()

    corp_saml.asserts_verified_email = True
    corp_saml.save()
    fields = forge(
        genuine_saml_response,
        request_id=request_id_of(start_saml(broker, process="connect")),
        key=upstream_key_pem,
    )
    response = deliver(broker, acs_path(), fields)
    assert response.status_code == HTTPStatus.FOUND, refusals()
    assert SocialAccount.objects.get().user == local
    linked = AuditEvent.objects.get(type=AuditEvent.Type.IDENTITY_LINKED)
    assert linked.extra["how"] == "linked_by_user"
    assert linked.extra["provider"] == SAML_SLUG
    page = broker.get(reverse("federation_identities")).content.decode()
    assert "Corp SAML" in page
    assert "carol@corp.example" in page


def test_our_service_provider_metadata_names_the_entity_id_and_acs_to_register(broker, corp_saml):
    response = broker.get(f"/accounts/saml/{SAML_SLUG}/metadata/")
    assert response.status_code == HTTPStatus.OK
    document = etree.fromstring(response.content)
    assert document.get("entityID") == saml_sp_entity_id(SAML_SLUG)
    acs = document.find(".//{urn:oasis:names:tc:SAML:2.0:metadata}AssertionConsumerService")
    assert acs is not None
    assert acs.get("Location") == saml_acs_uri(SAML_SLUG)
    assert document.find(".//{urn:oasis:names:tc:SAML:2.0:metadata}SingleLogoutService") is None
    assert broker.get("/accounts/saml/nobody/metadata/").status_code == HTTPStatus.NOT_FOUND


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({}, "no SAML response"),
        ({"SAMLResponse": "not base64 at all!"}, "unreadable SAML response"),
        ({"SAMLResponse": encode(b"<not-saml/>")}, "SAML response refused"),
    ],
)
def test_garbage_at_the_acs_gets_the_branded_page(broker, corp_saml, fields, reason):
    start_saml(broker)
    assert_refused(deliver(broker, acs_path(), fields), reason)
    assert not User.objects.exists()


def test_a_response_signed_with_rsa_sha1_or_issued_by_another_entity_is_refused(
    broker, corp_saml, genuine_saml_response, upstream_key_pem
):
    # What this IdP's own SAML IdP signs with (oauth_clients/saml/idp.py): RSA-SHA256.
    genuine = etree.fromstring(genuine_saml_response)
    method = genuine.find(".//ds:SignatureMethod", NS)
    assert method is not None
    assert method.get("Algorithm") == "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
    fields = forge(
        genuine_saml_response,
        request_id=request_id_of(start_saml(broker)),
        key=upstream_key_pem,
        sha1=True,
    )
    assert_refused(deliver(broker, acs_path(), fields), "Deprecated signature algorithm")

    def other_issuer(root: etree._Element) -> None:
        for issuer in root.iter(f"{{{NS['saml']}}}Issuer"):
            issuer.text = "https://other-idp.example/saml"

    fields = forge(
        genuine_saml_response,
        request_id=request_id_of(start_saml(broker)),
        key=upstream_key_pem,
        change=other_issuer,
    )
    assert_refused(deliver(broker, acs_path(), fields), "Invalid issuer")
    assert not User.objects.exists()


def test_without_just_in_time_creation_an_unknown_person_is_refused(
    broker, corp_saml, genuine_saml_response, upstream_key_pem
):
    corp_saml.create_accounts = False
    corp_saml.save()
    fields = forge(
        genuine_saml_response, request_id=request_id_of(start_saml(broker)), key=upstream_key_pem
    )
    assert_refused(deliver(broker, acs_path(), fields), "no linked account")
    assert not User.objects.exists()
