"""Every bad AuthnRequest is refused, never a 500 and never an assertion for the wrong app: the
branded page when no registered ACS is known, a SAML error Response to that ACS otherwise.

Each test shows the positive path with the same SP first (the `accepted` helper)."""

from __future__ import annotations

import base64
import datetime as dt
import re
import zlib
from http import HTTPStatus

import pytest
import time_machine
from saml2 import BINDING_HTTP_POST, samlp
from saml2.s_utils import deflate_and_base64_encode

from accounts.models import AuditEvent
from oauth_clients.models import Client
from tests.saml.conftest import (
    REDIRECT_URL,
    SP_ACS_URL,
    SP_OTHER_ACS_URL,
    authn_request,
    consume,
    follow_to_post,
    idp_metadata,
    make_sp,
    posted,
    register_sp,
    send_post,
    send_redirect,
    status_of,
)

REQUESTER_DENIED = [samlp.STATUS_REQUESTER, samlp.STATUS_REQUEST_DENIED]


def accepted(client, sp, **kwargs) -> None:
    sent = authn_request(sp, **kwargs)
    assert consume(sp, posted(send_redirect(client, sp, sent)), outstanding={sent.request_id: "/"})


def refused_on_page(response) -> str:
    assert response.status_code == HTTPStatus.BAD_REQUEST
    body = response.content.decode()
    assert "This sign-in request cannot be completed" in body
    assert "SAMLResponse" not in body
    return body


def no_assertion_issued() -> bool:
    return not AuditEvent.objects.filter(type=AuditEvent.Type.SAML_ASSERTION_ISSUED).exists()


@pytest.fixture
def signed_in(client, user):
    client.force_login(user)
    return client


@pytest.mark.spec("SAML 2.0 Profiles", "4.1.4.1")
def test_an_unknown_issuer_gets_the_branded_page(signed_in, sp, sp_keys, client):
    accepted(client, sp)
    stranger = make_sp(idp_metadata(client), sp_keys, entity_id="https://stranger.example/sp")
    body = refused_on_page(send_redirect(client, stranger, authn_request(stranger)))
    assert "not registered here" in body


def test_a_disabled_app_gets_the_branded_page(signed_in, sp, saml_app, client):
    accepted(client, sp)
    saml_app.client.is_active = False
    saml_app.client.save()
    refused_on_page(send_redirect(client, sp, authn_request(sp)))


@pytest.mark.spec("SAML 2.0 Profiles", "4.1.4.1")
@pytest.mark.parametrize(
    "acs",
    [
        {"assertion_consumer_service_url": "https://evil.example/acs"},
        {"assertion_consumer_service_url": SP_ACS_URL + "/"},
        {"assertion_consumer_service_url": SP_ACS_URL + "?x=1"},
        {"assertion_consumer_service_index": "7"},
    ],
)
def test_an_unregistered_acs_is_never_answered(signed_in, sp, client, acs):
    accepted(client, sp)
    body = refused_on_page(send_redirect(client, sp, authn_request(sp, **acs)))
    assert "evil.example" not in body.split("<code>")[0]
    # Only the positive path's assertion.
    assert AuditEvent.objects.filter(type=AuditEvent.Type.SAML_ASSERTION_ISSUED).count() == 1


def test_an_unsupported_response_binding_gets_the_branded_page(signed_in, sp, client):
    accepted(client, sp)
    sent = authn_request(sp, response_binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Artifact")
    refused_on_page(send_redirect(client, sp, sent))


@pytest.mark.spec("SAML 2.0 Bindings", "3.4.4.1")
def test_an_unsigned_request_is_refused_when_the_app_must_sign(signed_in, saml_app, sp, client):
    saml_app.want_authn_requests_signed = True
    saml_app.save()
    signed = authn_request(sp)
    assert consume(
        sp,
        posted(send_redirect(client, sp, signed, sign=True)),
        outstanding={signed.request_id: "/"},
    )

    redirect = posted(send_redirect(client, sp, authn_request(sp)))
    assert redirect.action == SP_ACS_URL
    assert status_of(redirect) == REQUESTER_DENIED
    post = posted(send_post(client, authn_request(sp, binding=BINDING_HTTP_POST)))
    assert status_of(post) == REQUESTER_DENIED


def test_a_redirect_signature_by_another_key_is_refused(
    signed_in, saml_app, sp, other_keys, client
):
    accepted(client, sp)
    forger = make_sp(idp_metadata(client), other_keys)
    post = posted(send_redirect(client, forger, authn_request(forger), sign=True))
    assert status_of(post) == REQUESTER_DENIED


def test_a_tampered_redirect_query_is_refused(signed_in, saml_app, sp, client):
    saml_app.want_authn_requests_signed = True
    saml_app.save()
    sent = authn_request(sp)
    good = send_redirect(client, sp, sent, sign=True)
    assert consume(sp, posted(good), outstanding={sent.request_id: "/"})
    other = authn_request(sp)
    signed = sp.apply_binding(
        "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect",
        other.xml,
        "http://x",
        "state-1",
        sign=True,
        sigalg="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
    )
    query = dict(signed["headers"])["Location"].split("?", 1)[1].replace("state-1", "state-2")
    assert status_of(posted(client.get(f"{REDIRECT_URL}?{query}"))) == REQUESTER_DENIED


@pytest.mark.spec("SAML 2.0 Core", "5.4")
def test_a_tampered_signed_post_request_is_refused(signed_in, saml_app, sp, client):
    saml_app.want_authn_requests_signed = True
    saml_app.save()
    good = authn_request(sp, binding=BINDING_HTTP_POST, sign=True)
    assert consume(
        sp,
        posted(follow_to_post(client, send_post(client, good))),
        outstanding={good.request_id: "/"},
    )

    sent = authn_request(sp, binding=BINDING_HTTP_POST, sign=True)
    tampered = sent.xml.replace(
        f'AssertionConsumerServiceURL="{SP_ACS_URL}"',
        f'AssertionConsumerServiceURL="{SP_OTHER_ACS_URL}"',
    )
    assert tampered != sent.xml
    sent.xml = tampered
    assert status_of(posted(send_post(client, sent))) == REQUESTER_DENIED


def test_a_request_signed_with_sha1_is_refused(signed_in, saml_app, sp, client):
    saml_app.want_authn_requests_signed = True
    saml_app.save()
    good = authn_request(sp, binding=BINDING_HTTP_POST, sign=True)
    assert consume(
        sp,
        posted(follow_to_post(client, send_post(client, good))),
        outstanding={good.request_id: "/"},
    )
    weak = authn_request(
        sp,
        binding=BINDING_HTTP_POST,
        sign=True,
        sign_alg="http://www.w3.org/2000/09/xmldsig#rsa-sha1",
    )
    assert status_of(posted(send_post(client, weak))) == REQUESTER_DENIED


@pytest.mark.spec("SAML 2.0 Core", "5.4.2")
def test_signature_wrapping_is_refused(signed_in, saml_app, sp, client):
    """A signed request carried inside an unsigned one (XSW): the root is unsigned."""
    saml_app.want_authn_requests_signed = True
    saml_app.save()
    good = authn_request(sp, binding=BINDING_HTTP_POST, sign=True)
    assert consume(
        sp,
        posted(follow_to_post(client, send_post(client, good))),
        outstanding={good.request_id: "/"},
    )

    signed = authn_request(sp, binding=BINDING_HTTP_POST, sign=True)
    inner = signed.xml.split("?>", 1)[-1]
    unsigned = authn_request(sp, binding=BINDING_HTTP_POST)
    protocol = re.search(r"<(\w+):AuthnRequest", unsigned.xml)[1]
    wrapper = re.sub(
        r"(</[\w]+:Issuer>)",
        rf"\1<{protocol}:Extensions>{inner}</{protocol}:Extensions>",
        unsigned.xml,
        count=1,
    )
    assert inner in wrapper
    unsigned.xml = wrapper
    response = send_post(client, unsigned)
    if response.status_code == HTTPStatus.BAD_REQUEST:
        refused_on_page(response)
    else:
        assert status_of(posted(response)) == REQUESTER_DENIED


@pytest.mark.spec("SAML 2.0 Core", "5.4")
def test_a_comment_in_the_issuer_never_reads_as_another_app(signed_in, sp_keys, other_keys, client):
    """CVE-2017-11427 family: text split by a comment is read whole, so a request of the app
    "<victim>.evil" (signed with its own key) is never taken for the app "<victim>"."""
    victim = register_sp(certificates=sp_keys.cert_pem)
    evil = register_sp(
        name="Evil",
        client_id="saml-evil",
        entity_id=victim.entity_id + ".evil",
        acs_url="https://evil.example/acs",
        certificates=other_keys.cert_pem,
    )
    evil_sp = make_sp(idp_metadata(client), other_keys, entity_id=evil.entity_id)
    sent = authn_request(evil_sp, binding=BINDING_HTTP_POST, sign=True)
    injected = re.sub(
        rf">{re.escape(evil.entity_id)}(</[\w]+:Issuer>)",
        rf">{victim.entity_id}<!---->.evil\1",
        sent.xml,
    )
    assert injected != sent.xml
    sent.xml = injected
    response = follow_to_post(client, send_post(client, sent))
    if response.status_code == HTTPStatus.OK:
        assert posted(response).action == "https://evil.example/acs"
    else:
        assert response.status_code == HTTPStatus.BAD_REQUEST
    assert not AuditEvent.objects.filter(client=victim.client).exists()


@pytest.mark.spec("SAML 2.0 Core", "3.2.1")
def test_a_replayed_request_id_is_refused(signed_in, sp, client):
    sent = authn_request(sp)
    assert consume(sp, posted(send_redirect(client, sp, sent)), outstanding={sent.request_id: "/"})
    replay = posted(send_redirect(client, sp, sent))
    assert status_of(replay) == REQUESTER_DENIED


@pytest.mark.spec("SAML 2.0 Core", "3.2.1")
@pytest.mark.parametrize("shift_minutes", [-10, 10])
def test_an_expired_or_future_issue_instant_is_refused(signed_in, sp, client, shift_minutes):
    accepted(client, sp)
    sent = authn_request(sp)
    moved = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=-shift_minutes)
    with time_machine.travel(moved, tick=True):
        response = send_redirect(client, sp, sent)
    assert status_of(posted(response)) == REQUESTER_DENIED


@pytest.mark.parametrize(
    "payload",
    [
        "not base64 !!!",
        base64.b64encode(b"not deflated").decode(),
        deflate_and_base64_encode("<not-closed"),
        deflate_and_base64_encode(
            "<samlp:LogoutRequest xmlns:samlp='urn:oasis:names:tc:SAML:2.0:protocol'/>"
        ),
    ],
)
def test_malformed_requests_get_the_branded_page(signed_in, sp, client, payload):
    accepted(client, sp)
    refused_on_page(client.get(REDIRECT_URL, {"SAMLRequest": payload}))


def test_a_repeated_parameter_is_refused(signed_in, sp, client):
    accepted(client, sp)
    value = deflate_and_base64_encode(authn_request(sp).xml)
    refused_on_page(client.get(f"{REDIRECT_URL}?SAMLRequest={value}&SAMLRequest={value}"))


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol"
  ID="_x" Version="2.0">&lol3;</samlp:AuthnRequest>"""

XXE = """<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol"
  xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_x" Version="2.0"
  IssueInstant="2030-01-01T00:00:00Z"><saml:Issuer>&xxe;</saml:Issuer></samlp:AuthnRequest>"""


@pytest.mark.parametrize("document", [BILLION_LAUGHS, XXE], ids=["billion-laughs", "xxe"])
def test_entity_expansion_and_external_entities_are_refused(signed_in, sp, client, document):
    accepted(client, sp)
    body = refused_on_page(
        client.get(REDIRECT_URL, {"SAMLRequest": deflate_and_base64_encode(document)})
    )
    assert "root:" not in body
    post = client.post(
        "/saml/sso/post/", {"SAMLRequest": base64.b64encode(document.encode()).decode()}
    )
    assert "root:" not in refused_on_page(post)


def test_an_oversized_request_is_refused(signed_in, sp, client):
    accepted(client, sp)
    huge = base64.b64encode(b"x" * (70 * 1024)).decode()
    body = refused_on_page(client.get(REDIRECT_URL, {"SAMLRequest": huge}))
    assert "too large" in body
    refused_on_page(client.post("/saml/sso/post/", {"SAMLRequest": huge}))


def test_a_deflate_bomb_stops_at_the_cap(signed_in, sp, client):
    accepted(client, sp)
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    bomb = compressor.compress(b"<" + b"a" * (50 * 1024 * 1024)) + compressor.flush()
    assert len(bomb) < 64 * 1024
    body = refused_on_page(
        client.get(REDIRECT_URL, {"SAMLRequest": base64.b64encode(bomb).decode()})
    )
    assert "too large" in body


@pytest.mark.spec("SAML 2.0 Bindings", "3.4.3")
@pytest.mark.parametrize(
    "relay_state", ["r" * 81, "<script>alert(1)</script>", 'a"onmouseover="x', "line\nbreak"]
)
def test_a_bad_relay_state_is_refused_and_not_echoed(signed_in, sp, client, relay_state):
    accepted(client, sp)
    post = posted(send_redirect(client, sp, authn_request(sp), relay_state=relay_state))
    assert status_of(post)[0] == samlp.STATUS_REQUESTER
    assert post.relay_state is None


def test_a_relay_state_of_80_bytes_is_kept(signed_in, sp, client):
    sent = authn_request(sp)
    post = posted(send_redirect(client, sp, sent, relay_state="r" * 80))
    assert post.relay_state == "r" * 80


def test_a_nameid_policy_the_app_is_not_registered_for_is_refused(signed_in, sp, client):
    accepted(client, sp)
    sent = authn_request(sp, nameid_format="urn:oasis:names:tc:SAML:2.0:nameid-format:persistent")
    assert status_of(posted(send_redirect(client, sp, sent))) == [
        samlp.STATUS_REQUESTER,
        samlp.STATUS_INVALID_NAMEID_POLICY,
    ]


def test_an_unknown_resume_key_gets_the_branded_page(signed_in, client):
    refused_on_page(client.get("/saml/sso/continue/nope/"))


def test_an_app_disabled_while_the_person_signs_in_gets_nothing(client, user, saml_app, sp):
    response = send_redirect(client, sp, authn_request(sp))
    assert response.status_code == HTTPStatus.FOUND
    Client.objects.filter(pk=saml_app.client.pk).update(is_active=False)
    client.force_login(user)
    resume = response["Location"].split("next=", 1)[1]
    refused_on_page(client.get(resume))
    assert no_assertion_issued()
