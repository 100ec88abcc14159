"""Single logout (SAML 2.0 Profiles §4.4): an app's LogoutRequest over both bindings ends the IdP
session and fans out (back-channel logout to the OIDC app, a LogoutRequest to the other SAML
app), sign-out here tells every SAML app through the browser, an administrator's sign-out over
SOAP; every message read back by pysaml2's own SP, and every bad request refused."""

from __future__ import annotations

import base64
import html
import re
import shutil
import threading
import time
import zlib
from collections.abc import Iterator
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.cache import cache
from django.test import Client as HttpClient
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT, BINDING_SOAP, samlp
from saml2.client import Saml2Client
from saml2.config import SPConfig
from saml2.pack import make_soap_enveloped_saml_thingy
from saml2.s_utils import deflate_and_base64_encode
from saml2.saml import NameID
from saml2.sigver import verify_redirect_signature
from saml2.soap import (
    parse_soap_enveloped_saml_logout_request,
    parse_soap_enveloped_saml_logout_response,
)
from saml2.time_util import instant
from saml2.xmldsig import DIGEST_SHA256, SIG_RSA_SHA256

from accounts import services
from oauth_clients.models import BackchannelDelivery
from oauth_clients.saml import state
from oauth_clients.saml.errors import UNKNOWN_PRINCIPAL
from oauth_clients.saml.logout_request import check_logout_request
from tests.accounts.conftest import LOGOUT_URL, OVERVIEW_URL, is_signed_in, sign_in
from tests.oidc.backchannel_helpers import (
    IMMEDIATE_TASKS,
    Receiver,
    assert_logout_token_for_session,
    register_app,
    sign_in_to_app,
)
from tests.saml.conftest import (
    FORM_FIELD,
    NameIdFormat,
    idp_metadata,
    idp_url,
    make_key_pair,
    register_sp,
)

PROFILES = "SAML 2.0 Profiles"
BINDINGS = "SAML 2.0 Bindings"
SLO_REDIRECT = "/saml/slo/redirect/"
SLO_POST = "/saml/slo/post/"
IDP_ENTITY = "/saml/metadata/"
Channel = BackchannelDelivery.Channel
Status = BackchannelDelivery.Status
FRAME = re.compile(r'<iframe src="(?P<src>[^"]*)" hidden sandbox="(?P<sandbox>[^"]*)"')
POST_FORM = re.compile(r'<form method="post" action="(?P<action>[^"]*)" data-saml-post>')

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _immediate_tasks(settings):
    settings.TASKS = IMMEDIATE_TASKS


@pytest.fixture(autouse=True)
def _fresh_rate_limits(settings):
    """Every test here signs in for real: allauth's sign-in rate-limit counters (in the cache)
    start empty and are left empty for the tests after these (the in-process cache only)."""
    local = settings.CACHES["default"]["BACKEND"].endswith("LocMemCache")
    if local:
        cache.clear()
    yield
    if local:
        cache.clear()


class App:
    """A registered SAML app and pysaml2's SP playing it (with a single logout endpoint)."""

    def __init__(self, *, name: str, slo_url: str, slo_binding: str, keys, metadata: str, **kw):
        slug = name.lower()
        self.entity_id = f"https://{slug}.example.com/saml/metadata"
        self.acs_url = f"https://{slug}.example.com/saml/acs"
        self.slo_url, self.slo_binding = slo_url, slo_binding
        self.row = register_sp(
            name=name,
            client_id=f"saml-{slug}",
            entity_id=self.entity_id,
            acs_url=self.acs_url,
            certificates=keys.cert_pem,
            slo_url=slo_url,
            slo_binding=slo_binding,
            **kw,
        )
        config = SPConfig()
        config.load(
            {
                "entityid": self.entity_id,
                "xmlsec_binary": shutil.which("xmlsec1"),
                "key_file": keys.key_file,
                "cert_file": keys.cert_file,
                "metadata": {"inline": [metadata]},
                "allow_unknown_attributes": True,
                "accepted_time_diff": 60,
                "service": {
                    "sp": {
                        "endpoints": {
                            "assertion_consumer_service": [(self.acs_url, BINDING_HTTP_POST)],
                            "single_logout_service": [(slo_url, slo_binding)],
                        },
                        "want_response_signed": False,
                        "want_assertions_signed": True,
                        "allow_unsolicited": True,
                        "only_use_keys_in_metadata": True,
                    }
                },
            }
        )
        self.sp = Saml2Client(config=config)
        self.name_id: NameID | None = None
        self.session_index = ""

    def sign_in(self, browser: HttpClient) -> None:
        """IdP-initiated sign-in in `browser`'s session; the SP validates the assertion."""
        page = browser.get(f"/saml/sso/idp-initiated/{self.row.client.client_id}/")
        assert page.status_code == HTTPStatus.OK, page.content[:300]
        fields = form_fields(page)
        result = self.sp.parse_authn_request_response(fields["SAMLResponse"], BINDING_HTTP_POST)
        self.name_id = result.name_id
        self.session_index = result.assertion.authn_statement[0].session_index

    def logout_request(self, *, binding: str, sign: bool = True, **overrides: Any) -> Any:
        """This SP's LogoutRequest to our endpoint of `binding`: (request id, what to send)."""
        destination = idp_url(SLO_REDIRECT if binding == BINDING_HTTP_REDIRECT else SLO_POST)
        name_id = overrides.pop("name_id", self.name_id)
        request_id, request = self.sp.create_logout_request(
            destination=destination,
            issuer_entity_id=idp_url(IDP_ENTITY),
            name_id=name_id,
            session_indexes=[self.session_index],
            sign=sign and binding == BINDING_HTTP_POST,
            sign_alg=SIG_RSA_SHA256,
            digest_alg=DIGEST_SHA256,
            **overrides,
        )
        return request_id, str(request)

    def send(self, browser: HttpClient, xml: str, *, binding: str, sign: bool = True, relay="rs-1"):
        if binding == BINDING_HTTP_REDIRECT:
            if sign:
                info = self.sp.apply_binding(
                    BINDING_HTTP_REDIRECT,
                    xml,
                    idp_url(SLO_REDIRECT),
                    relay,
                    sign=True,
                    sigalg=SIG_RSA_SHA256,
                )
                query = urlsplit(dict(info["headers"])["Location"]).query
                return browser.get(f"{SLO_REDIRECT}?{query}")
            return browser.get(
                SLO_REDIRECT, {"SAMLRequest": deflate_and_base64_encode(xml), "RelayState": relay}
            )
        data = {"SAMLRequest": base64.b64encode(xml.encode()).decode(), "RelayState": relay}
        response = browser.post(SLO_POST, data)
        if response.status_code == HTTPStatus.SEE_OTHER:
            response = browser.get(response["Location"])
        return response

    def read_request(self, message: dict[str, str], *, binding: str) -> Any:
        """pysaml2's SP reads our LogoutRequest (the XML signature checked for POST and SOAP,
        the query signature for Redirect against our metadata's certificate)."""
        if binding == BINDING_HTTP_REDIRECT:
            assert_redirect_signed(self.sp, message, "SAMLRequest")
            return self.sp.parse_logout_request(message["SAMLRequest"], BINDING_HTTP_REDIRECT)
        parsed = self.sp.parse_logout_request(message["SAMLRequest"], binding)
        assert parsed.message.signature is not None
        return parsed

    def assert_names_this_session(self, parsed: Any) -> None:
        assert parsed.message.name_id.text == self.name_id.text
        assert parsed.message.name_id.format == self.name_id.format
        assert [si.text for si in parsed.message.session_index] == [self.session_index]
        assert parsed.message.issuer.text == idp_url(IDP_ENTITY)
        assert parsed.message.destination == self.slo_url


def form_fields(page) -> dict[str, str]:
    body = page.content.decode()
    return {m["name"]: html.unescape(m["value"]) for m in FORM_FIELD.finditer(body)}


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def assert_redirect_signed(sp: Saml2Client, message: dict[str, str], field: str) -> None:
    certs = sp.metadata.certs(idp_url(IDP_ENTITY), "idpsso", "signing")
    assert message["SigAlg"] == SIG_RSA_SHA256
    signed = {k: message[k] for k in (field, "RelayState", "SigAlg", "Signature") if k in message}
    assert any(verify_redirect_signature(signed, sp.sec.sec_backend, c) for _n, c in certs)


def status_code(xml: str) -> str:
    return samlp.logout_response_from_string(xml).status.status_code.value


def inner_status(xml: str) -> str | None:
    code = samlp.logout_response_from_string(xml).status.status_code.status_code
    return code.value if code is not None else None


def answer_xml(response) -> tuple[str, str]:
    """(binding, XML) of a LogoutResponse page: a Redirect to the app or the posting page."""
    if response.status_code == HTTPStatus.FOUND:
        message = query_of(response["Location"])
        raw = base64.b64decode(message["SAMLResponse"])
        return BINDING_HTTP_REDIRECT, zlib.decompress(raw, -15).decode()
    fields = form_fields(response)
    return BINDING_HTTP_POST, base64.b64decode(fields["SAMLResponse"]).decode()


# --- the session: two SAML apps and one OIDC app ---------------------------------------------


@pytest.fixture
def keys(tmp_path_factory):
    return {
        name: make_key_pair(tmp_path_factory.mktemp(f"{name}-keys"), name)
        for name in ("wiki", "crm", "hr")
    }


@pytest.fixture
def receivers() -> Iterator[list[Receiver]]:
    started: list[Receiver] = []
    yield started
    for receiver in started:
        receiver.close()


@pytest.fixture
def browser(user, password) -> HttpClient:
    browser = HttpClient()
    assert sign_in(browser, "alice", password).status_code == HTTPStatus.FOUND
    assert browser.get(OVERVIEW_URL).status_code == HTTPStatus.OK  # tracked by usersessions
    return browser


def make_apps(browser, keys, receivers, *, wiki_binding=BINDING_HTTP_REDIRECT):
    metadata = idp_metadata(HttpClient())
    wiki = App(
        name="Wiki",
        slo_url="https://wiki.example.com/saml/slo",
        slo_binding=wiki_binding,
        keys=keys["wiki"],
        metadata=metadata,
    )
    crm = App(
        name="CRM",
        slo_url="https://crm.example.com/saml/slo",
        slo_binding=BINDING_HTTP_POST,
        keys=keys["crm"],
        metadata=metadata,
    )
    receiver = Receiver()
    receivers.append(receiver)
    mail = register_app("Mail", receiver)
    tokens = sign_in_to_app(browser, mail)
    wiki.sign_in(browser)
    crm.sign_in(browser)
    return wiki, crm, (mail, receiver, tokens)


def frames_of(page) -> list[dict[str, str]]:
    assert page.status_code == HTTPStatus.OK
    return [
        {"src": html.unescape(m["src"]), "sandbox": m["sandbox"]}
        for m in FRAME.finditer(page.content.decode())
    ]


def assert_crm_told_in_a_frame(frame: dict[str, str], crm: App) -> None:
    """CRM registered HTTP-POST: our own frame posts the signed request to its logout URL."""
    assert frame["src"].startswith("/saml/slo/frame/?k=")
    assert frame["sandbox"] == "allow-same-origin allow-scripts allow-forms"
    framed = HttpClient().get(frame["src"])
    assert framed.status_code == HTTPStatus.OK
    assert framed["X-Frame-Options"] == "SAMEORIGIN"
    assert POST_FORM.search(framed.content.decode())["action"] == crm.slo_url
    crm.assert_names_this_session(crm.read_request(form_fields(framed), binding=BINDING_HTTP_POST))


# --- SP-initiated -----------------------------------------------------------------------------


@pytest.mark.spec(PROFILES, "4.4.3.1")
@pytest.mark.spec(PROFILES, "4.4.3.3")
@pytest.mark.spec(PROFILES, "4.4.4.1")
@pytest.mark.spec(PROFILES, "4.4.4.2")
@pytest.mark.parametrize("binding", [BINDING_HTTP_REDIRECT, BINDING_HTTP_POST])
def test_an_apps_logout_request_ends_the_session_and_tells_every_other_app(
    browser, keys, receivers, binding, django_capture_on_commit_callbacks
):
    wiki, crm, (mail, receiver, tokens) = make_apps(browser, keys, receivers, wiki_binding=binding)
    sid = browser.session["idp_sid"]
    _request_id, xml = wiki.logout_request(binding=binding)

    with django_capture_on_commit_callbacks(execute=True):
        response = wiki.send(browser, xml, binding=binding)

    # The IdP session ended through the one path: the OIDC app got its back-channel logout.
    assert response.status_code == HTTPStatus.FOUND
    assert not is_signed_in(browser)
    (received,) = receiver.wait_for(1, timeout=5)
    assert_logout_token_for_session(received, mail, id_token=tokens["id_token"])
    # The other SAML app's LogoutRequest is framed by the signed-out page.
    page = browser.get(response["Location"])
    (frame,) = frames_of(page)
    assert_crm_told_in_a_frame(frame, crm)
    # Then on to the answer: a signed LogoutResponse (Success) the requesting app accepts.
    next_url = re.search(r'href="([^"]*)" data-continue-when-signed-out', page.content.decode())
    answer = browser.get(html.unescape(next_url[1]))
    answer_binding, xml_answer = answer_xml(answer)
    assert answer_binding == binding
    if binding == BINDING_HTTP_REDIRECT:
        assert answer["Location"].startswith(wiki.slo_url + "?")
        message = query_of(answer["Location"])
        assert message["RelayState"] == "rs-1"
        # The query is signed (Bindings §3.4.4.1), so the XML is not.
        assert_redirect_signed(wiki.sp, message, "SAMLResponse")
        parsed_response = samlp.logout_response_from_string(xml_answer)
    else:
        fields = form_fields(answer)
        assert POST_FORM.search(answer.content.decode())["action"] == wiki.slo_url
        assert fields["RelayState"] == "rs-1"
        parsed = wiki.sp.parse_logout_request_response(fields["SAMLResponse"], binding)
        parsed_response = parsed.response
        assert parsed_response.signature is not None
    assert parsed_response.status.status_code.value == samlp.STATUS_SUCCESS
    assert parsed_response.in_response_to == _request_id
    assert parsed_response.destination == wiki.slo_url
    # The delivery log: the requesting app answered, the other told in the browser.
    rows = {row.client_id: row for row in BackchannelDelivery.objects.filter(sid=sid)}
    assert rows[wiki.row.client_id].channel == Channel.SAML_BROWSER
    assert rows[wiki.row.client_id].status == Status.SENT
    assert rows[crm.row.client_id].channel == Channel.SAML_BROWSER
    assert rows[crm.row.client_id].status == Status.SENT
    assert rows[mail.pk].channel == Channel.BACKCHANNEL
    assert rows[mail.pk].status == Status.SENT


# --- IdP-initiated ----------------------------------------------------------------------------


@pytest.mark.spec(PROFILES, "4.4.3.3")
def test_signing_out_here_sends_every_saml_app_its_logout_request_in_the_browser(
    browser, keys, receivers, django_capture_on_commit_callbacks
):
    wiki, crm, (_mail, receiver, _tokens) = make_apps(browser, keys, receivers)

    with django_capture_on_commit_callbacks(execute=True):
        response = browser.post(LOGOUT_URL)

    assert response.status_code == HTTPStatus.FOUND
    assert not is_signed_in(browser)
    page = browser.get(response["Location"])
    frames = frames_of(page)
    assert len(frames) == 2
    (wiki_frame,) = [f for f in frames if f["src"].startswith(wiki.slo_url)]
    assert wiki_frame["sandbox"] == "allow-same-origin allow-scripts"
    wiki.assert_names_this_session(
        wiki.read_request(query_of(wiki_frame["src"]), binding=BINDING_HTTP_REDIRECT)
    )
    (crm_frame,) = [f for f in frames if f is not wiki_frame]
    assert_crm_told_in_a_frame(crm_frame, crm)
    # This page may frame both apps (and our own frame and the apps' answers).
    policy = page["Content-Security-Policy"]
    frame_src = next(d for d in policy.split(";") if d.strip().startswith("frame-src")).split()
    assert {"https://wiki.example.com", "https://crm.example.com"} <= set(frame_src)
    assert receiver.wait_for(1, timeout=5)


class SoapApp:
    """An app's SOAP single logout endpoint on 127.0.0.1 answering Success."""

    def __init__(self) -> None:
        self.received: list[str] = []
        app = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                app.received.append(body)
                request = samlp.logout_request_from_string(
                    parse_soap_enveloped_saml_logout_request(body)
                )
                answer = samlp.LogoutResponse(
                    id="_answer1",
                    version="2.0",
                    issue_instant=instant(),
                    in_response_to=request.id,
                    status=samlp.Status(status_code=samlp.StatusCode(value=samlp.STATUS_SUCCESS)),
                )
                payload = make_soap_enveloped_saml_thingy(answer)
                payload = payload if isinstance(payload, bytes) else payload.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/xml")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/saml/slo-soap"

    def app(self, keys) -> App:
        """The HR app, registered with this endpoint as its SOAP single logout service."""
        return App(
            name="HR",
            slo_url=self.url,
            slo_binding=BINDING_SOAP,
            keys=keys["hr"],
            metadata=idp_metadata(HttpClient()),
            client_fields={"allow_private_network": True},
        )

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.spec(BINDINGS, "3.2")
@pytest.mark.spec(PROFILES, "4.4.3.3")
def test_an_administrators_sign_out_tells_a_soap_app_and_records_the_app_it_cannot_tell(
    browser, keys, receivers, user, admin_user, django_capture_on_commit_callbacks
):
    soap = SoapApp()
    try:
        wiki, _crm, _mail = make_apps(browser, keys, receivers)
        hr = soap.app(keys)
        hr.sign_in(browser)
        sid = browser.session["idp_sid"]

        with django_capture_on_commit_callbacks(execute=True):
            assert services.sign_out_everywhere(user=user, actor=admin_user) == 1

        assert not is_signed_in(browser)
        (envelope,) = soap.received
        hr.assert_names_this_session(
            hr.read_request({"SAMLRequest": envelope}, binding=BINDING_SOAP)
        )
        rows = {row.client_id: row for row in BackchannelDelivery.objects.filter(sid=sid)}
        assert (rows[hr.row.client_id].channel, rows[hr.row.client_id].status) == (
            Channel.SAML_SOAP,
            Status.SENT,
        )
        wiki_row = rows[wiki.row.client_id]
        assert (wiki_row.channel, wiki_row.status) == (Channel.SAML_NONE, Status.FAILED)
        assert "no browser" in wiki_row.last_error
    finally:
        soap.close()


# --- bad input --------------------------------------------------------------------------------


@pytest.fixture
def wiki_and_crm(browser, keys, receivers):
    wiki, crm, _mail = make_apps(browser, keys, receivers)
    return wiki, crm


def assert_refused_with_status(response, wiki: App, browser, *, inner: str | None = None):
    binding, xml = answer_xml(response)
    assert binding == BINDING_HTTP_REDIRECT
    assert response["Location"].startswith(wiki.slo_url + "?")
    assert status_code(xml) == samlp.STATUS_REQUESTER
    if inner is not None:
        assert inner_status(xml) == inner
    assert is_signed_in(browser)
    assert not BackchannelDelivery.objects.exists()


def check_passes(wiki: App, binding: str = BINDING_HTTP_REDIRECT) -> None:
    """The positive path at the check: a good request of the same app passes."""
    _id, xml = wiki.logout_request(binding=binding)
    encoded = (
        deflate_and_base64_encode(xml)
        if binding == BINDING_HTTP_REDIRECT
        else (base64.b64encode(xml.encode()).decode())
    )
    if binding == BINDING_HTTP_REDIRECT:
        info = wiki.sp.apply_binding(
            binding, xml, idp_url(SLO_REDIRECT), "", sign=True, sigalg=SIG_RSA_SHA256
        )
        query = urlsplit(dict(info["headers"])["Location"]).query
        encoded = query_of("?" + query)["SAMLRequest"]
        assert check_logout_request(
            binding=binding, saml_request=encoded, relay_state="", query_string=query
        )
    else:
        assert check_logout_request(binding=binding, saml_request=encoded, relay_state="")


@pytest.mark.spec(PROFILES, "4.4.4.1")
def test_an_unsigned_logout_request_is_refused_with_a_status(browser, wiki_and_crm):
    wiki, _crm = wiki_and_crm
    check_passes(wiki)
    _id, xml = wiki.logout_request(binding=BINDING_HTTP_REDIRECT)
    response = wiki.send(browser, xml, binding=BINDING_HTTP_REDIRECT, sign=False)
    assert_refused_with_status(response, wiki, browser)


@pytest.mark.spec(PROFILES, "4.4.4.1")
def test_an_app_without_a_certificate_cannot_sign_anyone_out(browser, wiki_and_crm):
    """Without a registered certificate nothing could verify a request, so none is accepted:
    otherwise a link naming someone's address would sign them out."""
    wiki, _crm = wiki_and_crm
    check_passes(wiki)
    type(wiki.row).objects.filter(pk=wiki.row.pk).update(certificates="")
    _id, xml = wiki.logout_request(binding=BINDING_HTTP_REDIRECT)
    response = wiki.send(browser, xml, binding=BINDING_HTTP_REDIRECT, sign=False)
    assert_refused_with_status(response, wiki, browser)


@pytest.mark.spec(PROFILES, "4.4.4.1")
def test_a_logout_request_for_another_name_id_keeps_the_session(browser, wiki_and_crm):
    wiki, _crm = wiki_and_crm
    check_passes(wiki)
    stranger = NameID(format=NameIdFormat.EMAIL, text="mallory@example.com")
    _id, xml = wiki.logout_request(binding=BINDING_HTTP_REDIRECT, name_id=stranger)
    response = wiki.send(browser, xml, binding=BINDING_HTTP_REDIRECT)
    assert_refused_with_status(response, wiki, browser, inner=UNKNOWN_PRINCIPAL)


@pytest.mark.spec(PROFILES, "4.4.4.1")
def test_a_replayed_logout_request_is_refused(browser, wiki_and_crm):
    wiki, _crm = wiki_and_crm
    _id, xml = wiki.logout_request(binding=BINDING_HTTP_REDIRECT)
    info = wiki.sp.apply_binding(
        BINDING_HTTP_REDIRECT, xml, idp_url(SLO_REDIRECT), "", sign=True, sigalg=SIG_RSA_SHA256
    )
    query = urlsplit(dict(info["headers"])["Location"]).query
    message = query_of("?" + query)["SAMLRequest"]
    assert check_logout_request(  # the first time: accepted
        binding=BINDING_HTTP_REDIRECT, saml_request=message, relay_state="", query_string=query
    )
    response = browser.get(f"{SLO_REDIRECT}?{query}")
    assert_refused_with_status(response, wiki, browser)


@pytest.mark.spec(PROFILES, "4.4.4.1")
def test_a_stale_logout_request_is_refused(browser, wiki_and_crm, monkeypatch):
    wiki, _crm = wiki_and_crm
    check_passes(wiki)
    _id, xml = wiki.logout_request(binding=BINDING_HTTP_REDIRECT)
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() + 600)
    response = wiki.send(browser, xml, binding=BINDING_HTTP_REDIRECT)
    monkeypatch.setattr(time, "time", real_time)
    assert_refused_with_status(response, wiki, browser)


@pytest.mark.spec(PROFILES, "4.4.4.1")
def test_an_unknown_or_disabled_app_gets_the_branded_page(browser, wiki_and_crm):
    _wiki, crm = wiki_and_crm
    check_passes(crm, BINDING_HTTP_POST)
    crm.row.client.is_active = False
    crm.row.client.save()
    _id, xml = crm.logout_request(binding=BINDING_HTTP_POST)
    disabled = crm.send(browser, xml, binding=BINDING_HTTP_POST)
    assert disabled.status_code == HTTPStatus.BAD_REQUEST
    assert "not registered here, or it has been disabled" in disabled.content.decode()

    unknown = xml.replace(crm.entity_id, "https://unknown.example.com/saml/metadata")
    response = crm.send(browser, unknown, binding=BINDING_HTTP_POST, sign=False)
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert is_signed_in(browser)
    assert not BackchannelDelivery.objects.exists()


@pytest.mark.spec(BINDINGS, "3.4.4.1")
def test_an_oversized_or_deflate_bomb_logout_request_gets_the_branded_page(browser, wiki_and_crm):
    wiki, _crm = wiki_and_crm
    check_passes(wiki)
    bomb = zlib.compressobj(9, zlib.DEFLATED, -15)
    raw = bomb.compress(b"<" + b"a" * (10 * 1024 * 1024)) + bomb.flush()
    for value in (base64.b64encode(raw).decode(), "A" * (200 * 1024)):
        response = browser.get(SLO_REDIRECT, {"SAMLRequest": value})
        assert response.status_code == HTTPStatus.BAD_REQUEST
        assert "too large" in response.content.decode()
    assert is_signed_in(browser)


def test_an_app_without_a_logout_url_gets_the_branded_page_never_a_redirect(browser, keys):
    app = App(
        name="Wiki",
        slo_url="https://wiki.example.com/saml/slo",
        slo_binding=BINDING_HTTP_REDIRECT,
        keys=keys["wiki"],
        metadata=idp_metadata(HttpClient()),
    )
    app.sign_in(browser)
    check_passes(app)
    app.row.slo_url, app.row.slo_binding = "", ""
    app.row.save()
    _id, xml = app.logout_request(binding=BINDING_HTTP_REDIRECT)
    response = app.send(browser, xml, binding=BINDING_HTTP_REDIRECT)
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert "registered no address" in response.content.decode()
    assert is_signed_in(browser)
    assert state.SESSIONS_KEY in browser.session


# --- SP-initiated over SOAP (Bindings §3.2) ---------------------------------------------------

SLO_SOAP = "/saml/slo/soap/"


class Transport:
    """pysaml2's HTTP sender (`HTTPBase.send`) for an SP whose server posts to ours: the same
    request through Django's test client, the answer as pysaml2 reads a `requests` response."""

    def __init__(self) -> None:
        self.client = HttpClient()
        self.responses: list[Any] = []

    def __call__(self, url: str, method: str = "GET", **kwargs: Any) -> Any:
        assert method == "POST"
        headers = dict(kwargs.get("headers") or [])
        response = self.client.generic(
            "POST",
            urlsplit(url).path,
            kwargs["data"],
            content_type=headers.get("Content-Type", "text/xml"),
            headers={"SOAPAction": headers.get("SOAPAction", "")},
        )
        response.text = response.content.decode()
        self.responses.append(response)
        return response


def soap_request(app: App, *, sign: bool = True, **overrides: Any) -> tuple[str, str]:
    """(request ID, SOAP envelope) of the app's LogoutRequest to our SOAP endpoint, built by
    pysaml2 as `do_logout` builds it."""
    name_id = overrides.pop("name_id", app.name_id)
    request_id, request = app.sp.create_logout_request(
        destination=idp_url(SLO_SOAP),
        issuer_entity_id=idp_url(IDP_ENTITY),
        name_id=name_id,
        session_indexes=overrides.pop("session_indexes", [app.session_index]),
        sign=sign,
        sign_alg=SIG_RSA_SHA256,
        digest_alg=DIGEST_SHA256,
        **overrides,
    )
    info = app.sp.apply_binding(BINDING_SOAP, str(request), idp_url(SLO_SOAP))
    return request_id, info["data"]


def post_soap(body: str | bytes) -> Any:
    return HttpClient().post(SLO_SOAP, data=body, content_type="text/xml")


def soap_answer(app: App, response) -> Any:
    """Our LogoutResponse read by the app's pysaml2 (signature checked against our metadata)."""
    assert response.status_code == HTTPStatus.OK
    assert response["Content-Type"].startswith("text/xml")
    parsed = app.sp.parse_logout_request_response(response.content.decode(), BINDING_SOAP)
    assert parsed.response.signature is not None
    return parsed.response


def assert_fault(response, *, status: int = HTTPStatus.BAD_REQUEST) -> str:
    assert response.status_code == status
    assert response["Content-Type"].startswith("text/xml")
    body = response.content.decode()
    assert "<SOAP-ENV:Fault>" in body
    assert "<faultcode>SOAP-ENV:Client</faultcode>" in body
    return body


@pytest.mark.spec(BINDINGS, "3.2")
@pytest.mark.spec(PROFILES, "4.4.3.1")
@pytest.mark.spec(PROFILES, "4.4.3.3")
@pytest.mark.spec(PROFILES, "4.4.4.2")
def test_an_apps_soap_logout_request_ends_the_session_and_tells_every_other_app(
    browser, keys, receivers, user, django_capture_on_commit_callbacks
):
    soap = SoapApp()
    try:
        wiki, crm, (mail, receiver, tokens) = make_apps(browser, keys, receivers)
        hr = soap.app(keys)
        hr.sign_in(browser)
        sid = browser.session["idp_sid"]
        # Our metadata publishes the SOAP endpoint; pysaml2's SP logs out through it, over
        # its own HTTP sender (here Django's test client), no browser involved.
        slo = wiki.sp.metadata.single_logout_service(idp_url(IDP_ENTITY), BINDING_SOAP, "idpsso")
        assert [s["location"] for s in slo] == [idp_url(SLO_SOAP)]
        transport = Transport()
        wiki.sp.send = transport

        with django_capture_on_commit_callbacks(execute=True):
            answers = wiki.sp.do_logout(
                wiki.name_id,
                [idp_url(IDP_ENTITY)],
                reason="",
                expire=None,
                sign=True,
                expected_binding=BINDING_SOAP,
                sign_alg=SIG_RSA_SHA256,
                digest_alg=DIGEST_SHA256,
            )

        answer = answers[idp_url(IDP_ENTITY)]
        assert answer.status_ok()
        assert soap_answer(wiki, transport.responses[0]).issuer.text == idp_url(IDP_ENTITY)
        # The IdP session ended without its browser, through the one path.
        assert not is_signed_in(browser)
        (received,) = receiver.wait_for(1, timeout=5)
        assert_logout_token_for_session(received, mail, id_token=tokens["id_token"])
        (envelope,) = soap.received
        hr.assert_names_this_session(
            hr.read_request({"SAMLRequest": envelope}, binding=BINDING_SOAP)
        )
        rows = {row.client_id: row for row in BackchannelDelivery.objects.filter(sid=sid)}
        assert (rows[wiki.row.client_id].channel, rows[wiki.row.client_id].status) == (
            Channel.SAML_SOAP,
            Status.SENT,
        )
        assert rows[wiki.row.client_id].reason == "saml_sp_initiated_logout"
        assert rows[hr.row.client_id].status == Status.SENT
        # CRM registered only HTTP-POST: without a browser it cannot be told, and says so.
        assert (rows[crm.row.client_id].channel, rows[crm.row.client_id].status) == (
            Channel.SAML_NONE,
            Status.FAILED,
        )
        assert rows[mail.pk].status == Status.SENT
        logout = user.audit_events_as_subject.filter(type="logout").latest("pk")
        assert logout.client_id == wiki.row.client_id
    finally:
        soap.close()


@pytest.fixture
def soap_wiki(browser, keys, receivers):
    wiki, _crm, _mail = make_apps(browser, keys, receivers)
    return wiki


def assert_soap_positive_path(wiki: App) -> None:
    """The same app's good request passes the check (positive path first)."""
    _id, envelope = soap_request(wiki)
    inner = parse_soap_enveloped_saml_logout_request(envelope)
    assert (
        check_logout_request(
            binding=BINDING_SOAP, saml_request=inner.decode(), relay_state=""
        ).name_id
        == wiki.name_id.text
    )


def assert_soap_refused(wiki: App, browser, response, *, inner: str | None = None) -> None:
    """A LogoutResponse with a non-success status, signed (checked by the app's pysaml2 against
    our metadata), in the SOAP envelope of an HTTP 200."""
    assert response.status_code == HTTPStatus.OK
    xml = parse_soap_enveloped_saml_logout_response(response.content.decode())
    answer = wiki.sp.sec.correctly_signed_logout_response(xml, must=True)
    assert answer.issuer.text == idp_url(IDP_ENTITY)
    assert answer.status.status_code.value == samlp.STATUS_REQUESTER
    if inner is not None:
        assert answer.status.status_code.status_code.value == inner
    assert is_signed_in(browser)
    assert not BackchannelDelivery.objects.exists()


@pytest.mark.spec(PROFILES, "4.4.4.2")
def test_an_unsigned_soap_logout_request_gets_a_refusing_logout_response(browser, soap_wiki):
    assert_soap_positive_path(soap_wiki)
    _id, envelope = soap_request(soap_wiki, sign=False)
    assert_soap_refused(soap_wiki, browser, post_soap(envelope))


@pytest.mark.spec(PROFILES, "4.4.4.2")
def test_a_soap_logout_request_for_another_name_id_keeps_the_session(browser, soap_wiki):
    assert_soap_positive_path(soap_wiki)
    for overrides in (
        {"name_id": NameID(format=NameIdFormat.EMAIL, text="mallory@example.com")},
        {"session_indexes": ["_not-a-session-index-of-ours"]},
    ):
        _id, envelope = soap_request(soap_wiki, **overrides)
        assert_soap_refused(soap_wiki, browser, post_soap(envelope), inner=UNKNOWN_PRINCIPAL)


@pytest.mark.spec(PROFILES, "4.4.4.2")
def test_a_replayed_soap_logout_request_is_refused(browser, soap_wiki):
    _id, envelope = soap_request(soap_wiki)
    inner = parse_soap_enveloped_saml_logout_request(envelope)
    assert check_logout_request(binding=BINDING_SOAP, saml_request=inner.decode(), relay_state="")
    assert_soap_refused(soap_wiki, browser, post_soap(envelope))


@pytest.mark.spec(BINDINGS, "3.2.3.3")
def test_an_unknown_issuer_gets_a_soap_fault(browser, soap_wiki):
    assert_soap_positive_path(soap_wiki)
    _id, envelope = soap_request(soap_wiki, sign=False)
    stranger = envelope.replace(soap_wiki.entity_id, "https://unknown.example.com/saml/metadata")
    assert "not a registered" in assert_fault(post_soap(stranger))
    soap_wiki.row.client.is_active = False
    soap_wiki.row.client.save()
    _id, envelope = soap_request(soap_wiki)
    assert "not a registered" in assert_fault(post_soap(envelope))
    assert is_signed_in(browser)


BILLION_LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
    '<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>'
)
XXE = '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'


@pytest.mark.spec(BINDINGS, "3.2.3.3")
def test_what_is_not_a_soap_logout_request_gets_a_soap_fault(browser, soap_wiki):
    assert_soap_positive_path(soap_wiki)
    _id, envelope = soap_request(soap_wiki)
    inner = parse_soap_enveloped_saml_logout_request(envelope).decode()
    assert envelope.startswith("<ns0:Envelope")  # no declaration: a DOCTYPE may go first
    not_soap = [
        inner,  # the bare LogoutRequest, no envelope
        "SAMLRequest=" + base64.b64encode(inner.encode()).decode(),  # a form post
        "<not-closed",
        envelope.replace("LogoutRequest", "AuthnRequest"),  # another message
        BILLION_LAUGHS + envelope.replace(soap_wiki.entity_id, "&lol3;"),
        XXE + envelope.replace(soap_wiki.entity_id, "&xxe;"),
        b"\xff\xfe<not utf-8>",
    ]
    for value in not_soap:
        assert_fault(post_soap(value))
    end = envelope.rindex("</")  # padding inside the envelope, before its end tag
    oversized = envelope[:end] + "<!--" + "x" * (70 * 1024) + "-->" + envelope[end:]
    too_large = post_soap(oversized)
    assert "larger" in assert_fault(too_large, status=HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
    assert HttpClient().get(SLO_SOAP).status_code == HTTPStatus.METHOD_NOT_ALLOWED
    assert is_signed_in(browser)
    assert not BackchannelDelivery.objects.exists()
