"""SAML fixtures: a real service provider (pysaml2's `Saml2Client`, its own key and certificate)
registered through the model, and helpers that carry its messages over both bindings.

The SP trusts our IdP through the metadata it reads from `/saml/metadata/` (as a deployed SP
would), so every test that consumes a Response also proves the signature against it.
"""

from __future__ import annotations

import base64
import html
import re
import shutil
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

with warnings.catch_warnings():
    # pysaml2 imports cryptography's CFB mode, deprecated there: a library's warning, not ours.
    warnings.simplefilter("ignore")
    from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
    from saml2.client import Saml2Client
    from saml2.config import SPConfig
    from saml2.s_utils import deflate_and_base64_encode
    from saml2.xmldsig import DIGEST_SHA1, DIGEST_SHA256, SIG_RSA_SHA1, SIG_RSA_SHA256

from oauth_clients.models import Client, SamlServiceProvider
from tests.clients.saml_helpers import make_sp_keys

SP_ENTITY_ID = "https://sp.example.com/saml/metadata"
SP_ACS_URL = "https://sp.example.com/saml/acs"
SP_OTHER_ACS_URL = "https://sp.example.com/saml/acs-2"
REDIRECT_URL = "/saml/sso/redirect/"
POST_URL = "/saml/sso/post/"
NameIdFormat = SamlServiceProvider.NameIdFormat


def idp_url(path: str) -> str:
    """Our endpoint as the SP addresses it: on the issuer's scheme and host."""
    from django.conf import settings

    parts = urlsplit(settings.IDP_ISSUER)
    return f"{parts.scheme}://{parts.netloc}{path}"


@dataclass
class KeyPair:
    key_file: str
    cert_file: str
    cert_pem: str


def make_key_pair(directory: Path, name: str) -> KeyPair:
    """An SP's key and self-signed certificate (tests/clients/saml_helpers.py makes them), with
    the file names as pysaml2's configuration takes them."""
    keys = make_sp_keys(directory, name)
    return KeyPair(str(keys.key_file), str(keys.cert_file), keys.cert_pem)


@pytest.fixture(scope="session")
def sp_keys(tmp_path_factory) -> KeyPair:
    return make_key_pair(tmp_path_factory.mktemp("sp-keys"), "sp")


@pytest.fixture(scope="session")
def other_keys(tmp_path_factory) -> KeyPair:
    """A key pair the app never registered (a forger's)."""
    return make_key_pair(tmp_path_factory.mktemp("other-keys"), "other")


def register_sp(
    *,
    name: str = "Wiki (SAML)",
    client_id: str = "saml-wiki",
    entity_id: str = SP_ENTITY_ID,
    acs_url: str = SP_ACS_URL,
    certificates: str = "",
    client_fields: dict[str, Any] | None = None,
    **fields: Any,
) -> SamlServiceProvider:
    """A SAML app registered through the models directly (the registry's services are the other
    helper's; the engine only reads the rows)."""
    client = Client.objects.create(
        name=name,
        client_id=client_id,
        kind=Client.Kind.SAML,
        client_type=Client.CLIENT_CONFIDENTIAL,
        authorization_grant_type=Client.GRANT_AUTHORIZATION_CODE,
        redirect_uris="",
        allowed_scopes="profile email groups",
        **(client_fields or {}),
    )
    values: dict[str, Any] = {
        "acs_urls": [
            {"url": acs_url, "binding": BINDING_HTTP_POST, "index": 0, "is_default": True},
            {
                "url": SP_OTHER_ACS_URL,
                "binding": BINDING_HTTP_POST,
                "index": 1,
                "is_default": False,
            },
        ],
        "certificates": certificates,
        "nameid_format": NameIdFormat.EMAIL,
    }
    values.update(fields)
    return SamlServiceProvider.objects.create(client=client, entity_id=entity_id, **values)


@pytest.fixture
def saml_app(db, sp_keys) -> SamlServiceProvider:
    return register_sp(certificates=sp_keys.cert_pem)


def idp_metadata(client) -> str:
    response = client.get("/saml/metadata/")
    assert response.status_code == 200
    return response.content.decode()


def make_sp(
    metadata_xml: str,
    keys: KeyPair,
    *,
    entity_id: str = SP_ENTITY_ID,
    want_response_signed: bool = False,
) -> Saml2Client:
    """pysaml2's SP, trusting the IdP described by `metadata_xml`."""
    config = SPConfig()
    config.load(
        {
            "entityid": entity_id,
            "xmlsec_binary": shutil.which("xmlsec1"),
            "key_file": keys.key_file,
            "cert_file": keys.cert_file,
            "metadata": {"inline": [metadata_xml]},
            "allow_unknown_attributes": True,
            "accepted_time_diff": 60,
            "service": {
                "sp": {
                    "endpoints": {
                        "assertion_consumer_service": [
                            (SP_ACS_URL, BINDING_HTTP_POST),
                            (SP_OTHER_ACS_URL, BINDING_HTTP_POST),
                        ]
                    },
                    "want_response_signed": want_response_signed,
                    "want_assertions_signed": True,
                    "allow_unsolicited": True,
                    "only_use_keys_in_metadata": True,
                }
            },
        }
    )
    return Saml2Client(config=config)


@pytest.fixture
def sp(client, saml_app, sp_keys) -> Saml2Client:
    return make_sp(idp_metadata(client), sp_keys)


@dataclass
class Sent:
    """An AuthnRequest as the SP sends it."""

    request_id: str
    xml: str
    relay_state: str = "state-1"
    extra: dict[str, str] = field(default_factory=dict)


def authn_request(
    sp: Saml2Client,
    *,
    binding: str = BINDING_HTTP_REDIRECT,
    sign: bool = False,
    response_binding: str = BINDING_HTTP_POST,
    sign_alg: str = SIG_RSA_SHA256,
    **kwargs: Any,
) -> Sent:
    """The SP's AuthnRequest for our SSO endpoint of `binding` (signed in the XML for POST)."""
    destination = idp_url(REDIRECT_URL if binding == BINDING_HTTP_REDIRECT else POST_URL)
    request_id, request = sp.create_authn_request(
        destination=destination,
        binding=response_binding,
        sign=sign and binding == BINDING_HTTP_POST,
        # pysaml2 signs with RSA-SHA1 unless told otherwise; the IdP refuses SHA-1.
        sign_alg=sign_alg,
        digest_alg=DIGEST_SHA256 if sign_alg != SIG_RSA_SHA1 else DIGEST_SHA1,
        **kwargs,
    )
    return Sent(request_id=request_id, xml=str(request))


def send_redirect(
    client, sp: Saml2Client, sent: Sent, *, sign: bool = False, relay_state: str | None = None
):
    relay = sent.relay_state if relay_state is None else relay_state
    if sign:
        info = sp.apply_binding(
            BINDING_HTTP_REDIRECT,
            sent.xml,
            idp_url(REDIRECT_URL),
            relay,
            sign=True,
            sigalg=SIG_RSA_SHA256,
        )
        location = dict(info["headers"])["Location"]
        return client.get(f"{REDIRECT_URL}?{urlsplit(location).query}")
    params = {"SAMLRequest": deflate_and_base64_encode(sent.xml)}
    if relay:
        params["RelayState"] = relay
    return client.get(REDIRECT_URL, params)


def send_post(client, sent: Sent, *, relay_state: str | None = None):
    relay = sent.relay_state if relay_state is None else relay_state
    data = {"SAMLRequest": base64.b64encode(sent.xml.encode()).decode()}
    if relay:
        data["RelayState"] = relay
    return client.post(POST_URL, data)


FORM_FIELD = re.compile(r'<input type="hidden" name="(?P<name>\w+)" value="(?P<value>[^"]*)">')
FORM_ACTION = re.compile(r'<form method="post" action="(?P<action>[^"]*)" data-saml-post>')


@dataclass
class Posted:
    """What the auto-posting page sends to the app."""

    action: str
    saml_response: str
    relay_state: str | None

    @property
    def xml(self) -> str:
        return base64.b64decode(self.saml_response).decode()


def posted(response) -> Posted:
    assert response.status_code == 200, response.content[:500]
    body = response.content.decode()
    action = FORM_ACTION.search(body)
    assert action, body[:1000]
    fields = {m["name"]: html.unescape(m["value"]) for m in FORM_FIELD.finditer(body)}
    return Posted(
        action=html.unescape(action["action"]),
        saml_response=fields["SAMLResponse"],
        relay_state=fields.get("RelayState"),
    )


def follow_to_post(client, response):
    """Follow our own redirects (the POST binding's resume step) to the auto-posting page."""
    while response.status_code in (302, 303) and response["Location"].startswith("/saml/"):
        response = client.get(response["Location"])
    return response


def consume(sp: Saml2Client, post: Posted, *, outstanding: dict | None = None):
    """The SP's own validation of our Response (signature against our metadata, audience,
    recipient, times): pysaml2's `parse_authn_request_response`."""
    return sp.parse_authn_request_response(
        post.saml_response, BINDING_HTTP_POST, outstanding=outstanding
    )


def status_of(post: Posted) -> list[str]:
    """The status codes of an error Response, outermost first."""
    from saml2 import samlp

    response = samlp.response_from_string(post.xml)
    codes = []
    code = response.status.status_code
    while code is not None:
        codes.append(code.value)
        code = code.status_code
    return codes
