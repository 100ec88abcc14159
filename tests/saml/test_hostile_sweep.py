"""A sweep of hostile SAML messages over every SAML endpoint, ours as an IdP and ours as an SP of
an upstream (tests/hostile.py): a genuine AuthnRequest with attributes replaced, elements
removed, entities and markup inserted, the message renamed or cut short; sent deflated over
HTTP-Redirect, over HTTP-POST, in a SOAP envelope, or as bytes that are no message at all, with
and without a signature. None is answered with a 500 or a redirect anywhere but this site and
the registered app."""

from __future__ import annotations

import base64
import random
import re
import zlib
from urllib.parse import urlsplit

import pytest
from saml2.s_utils import deflate_and_base64_encode

from tests.hostile import Sweep
from tests.saml.conftest import SP_ACS_URL, authn_request, consume, posted, send_redirect

REQUESTS = 150
ENDPOINTS = [
    "/saml/sso/redirect/",
    "/saml/sso/post/",
    "/saml/sso/continue/abc/",
    "/saml/sso/idp-initiated/nope/",
    "/saml/slo/redirect/",
    "/saml/slo/post/",
    "/saml/slo/soap/",
    "/saml/slo/continue/abc/",
    "/saml/slo/respond/abc/",
    "/saml/slo/frame/",
    "/saml/metadata/",
    "/accounts/saml/acme/acs/",
    "/accounts/saml/acme/acs/finish/",
    "/accounts/saml/acme/sls/",
    "/accounts/saml/acme/login/",
    "/accounts/saml/acme/metadata/",
]
INSERTS = (
    "",
    "x" * 5000,
    "\x00",
    "<!DOCTYPE x [<!ENTITY e SYSTEM 'file:///etc/passwd'>]>",
    "&e;",
    "]]>",
    "<a>",
    "é",
    "2099-01-01T00:00:00Z",
    "notadate",
    "https://evil.example/acs",
    "<samlp:Extensions/>",
    '<NameIDPolicy Format="urn:junk" AllowCreate="maybe"/>',
)
SIGNATURE_ALGORITHMS = (
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
    "http://www.w3.org/2000/09/xmldsig#rsa-sha1",
    "x",
)


def mutate_xml(r: random.Random, xml: str) -> str:
    for _ in range(r.randint(1, 4)):
        pick = r.random()
        if pick < 0.3:
            attributes = list(re.finditer(r'(\w+)="([^"]*)"', xml))
            if attributes:
                found = r.choice(attributes)
                value = r.choice(INSERTS).replace('"', "")
                xml = xml[: found.start(2)] + value + xml[found.end(2) :]
        elif pick < 0.5:
            tags = list(re.finditer(r"<[^>]+>", xml))
            if tags:
                found = r.choice(tags)
                xml = xml[: found.start()] + xml[found.end() :]
        elif pick < 0.7:
            at = r.randint(0, len(xml))
            xml = xml[:at] + r.choice(INSERTS) + xml[at:]
        elif pick < 0.85:
            renamed = r.choice(["LogoutRequest", "Response", "ArtifactResolve", "X"])
            xml = xml.replace("AuthnRequest", renamed, 2)
        else:
            xml = xml[: r.randint(0, len(xml))]
    return xml


def encoded(r: random.Random, xml: str) -> str:
    pick = r.random()
    if pick < 0.5:
        return deflate_and_base64_encode(xml)
    if pick < 0.8:
        return base64.b64encode(xml.encode()).decode()
    return r.choice(
        [
            "!!!",
            "AAAA",
            "%",
            base64.b64encode(r.randbytes(r.randint(0, 300))).decode(),
            base64.b64encode(zlib.compress(b"<x/>")).decode(),
            "a" * 100_000,
        ]
    )


@pytest.mark.parametrize("signed_in", [False, True], ids=["anonymous", "signed-in"])
def test_hostile_saml_messages_never_get_a_500(client, sp, user, signed_in):
    if signed_in:
        client.force_login(user)
        sent = authn_request(sp)
        answer = posted(send_redirect(client, sp, sent))
        assert consume(sp, answer, outstanding={sent.request_id: "/"})
    genuine = authn_request(sp).xml
    r = random.Random(f"saml {signed_in}")
    sweep = Sweep(f"SAML ({'signed in' if signed_in else 'anonymous'})")
    for _ in range(REQUESTS):
        endpoint = r.choice(ENDPOINTS)
        xml = mutate_xml(r, genuine)
        params = {r.choice(["SAMLRequest", "SAMLResponse"]): encoded(r, xml)}
        if r.random() < 0.5:
            params["RelayState"] = r.choice(INSERTS)
        if r.random() < 0.3:
            params["SigAlg"] = r.choice(SIGNATURE_ALGORITHMS)
            params["Signature"] = base64.b64encode(r.randbytes(256)).decode()
        binding = r.choice(["redirect", "post", "soap"])
        sent = (binding, endpoint, xml[:200])
        if binding == "redirect":
            response = sweep.send(sent, client.get, endpoint, params)
        elif binding == "post":
            response = sweep.send(sent, client.post, endpoint, params)
        else:
            envelope = (
                '<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/">'
                f"<soap:Body>{xml}</soap:Body></soap:Envelope>"
            )
            content_type = r.choice(["text/xml", "application/soap+xml", "text/plain"])
            body = r.choice([envelope, xml, "", "<"])
            response = sweep.send(sent, client.post, endpoint, body, content_type=content_type)
        if sweep.check_status(sent, response):
            sweep.check_redirect(sent, response, hosts={urlsplit(SP_ACS_URL).hostname or ""})
    sweep.assert_clean()
