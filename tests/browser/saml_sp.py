"""A SAML service provider for the browser tests: pysaml2's `Saml2Client` (a SAML library other
than the IdP's engine code) behind a tiny WSGI app on a loopback port, in a thread.

It has its own key and certificate, reads the IdP's metadata over HTTP from the live server's
`/saml/metadata/` when it starts (pysaml2's "remote" metadata source, as a deployed SP would) and
trusts only the keys found there. Its pages:

- `/protected`: the person's NameID and attributes when this browser has a session here;
  otherwise a signed AuthnRequest over HTTP-Redirect to the IdP (SP-initiated);
- `/acs` (POST): the Response, validated by pysaml2 (signature against the IdP's metadata,
  audience, recipient, times, InResponseTo one of the requests this SP sent, or unsolicited
  from IdP-initiated sign-in), then a session here and a redirect to the RelayState;
- `/logout`: single logout started here (SAML 2.0 Profiles §4.4): pysaml2's signed
  LogoutRequest over HTTP-Redirect for the session's NameID;
- `/slo`: the IdP's LogoutResponse, validated by pysaml2; the session here ends on Success;
- `/metadata`: this SP's own metadata (what the IdP registers).

Every POST to the ACS is kept in `received`, so a test can also prove the SP got nothing.
"""

from __future__ import annotations

import html
import secrets
import shutil
import threading
import warnings
from dataclasses import dataclass, field
from http import HTTPStatus
from http.cookies import SimpleCookie
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Any
from urllib.parse import parse_qs, urlsplit
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from tests.saml.conftest import KeyPair, make_key_pair

with warnings.catch_warnings():
    # pysaml2 imports cryptography's CFB mode, deprecated there: a library's warning, not ours.
    warnings.simplefilter("ignore")
    from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
    from saml2.client import Saml2Client
    from saml2.config import SPConfig
    from saml2.metadata import entity_descriptor
    from saml2.saml import NAMEID_FORMAT_UNSPECIFIED
    from saml2.xmldsig import DIGEST_SHA256, SIG_RSA_SHA256

PROTECTED_PATH = "/protected"
COOKIE = "sp_session"


@dataclass
class Received:
    """One POST to the ACS and what the SP made of it."""

    fields: dict[str, str]
    name_id: str = ""
    subject: Any = None  # pysaml2's NameID, for single logout
    attributes: dict[str, list[str]] = field(default_factory=dict)
    error: str = ""


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass  # the test's output is the IdP's log, not the SP's access lines


def _page(title: str, body: str, status: HTTPStatus = HTTPStatus.OK) -> tuple[str, list, bytes]:
    document = (
        f"<!doctype html><html lang=en><meta charset=utf-8><title>{html.escape(title)}</title>"
        f"<h1>{html.escape(title)}</h1>{body}</html>"
    )
    return (
        f"{status.value} {status.phrase}",
        [("Content-Type", "text/html; charset=utf-8")],
        document.encode(),
    )


class ServiceProvider:
    """The SP, serving on 127.0.0.1 until `stop()`."""

    def __init__(self, *, idp_metadata_url: str, key_directory: Path) -> None:
        self.keys: KeyPair = make_key_pair(key_directory, "browser-sp")
        self._server = make_server(
            "127.0.0.1", 0, self._app, server_class=_ThreadingServer, handler_class=_QuietHandler
        )
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self.entity_id = f"{self.url}/metadata"
        self.acs_url = f"{self.url}/acs"
        self.protected_url = f"{self.url}{PROTECTED_PATH}"
        self.idp_metadata_url = idp_metadata_url
        self.outstanding: dict[str, str] = {}  # request ID -> where to return
        self.received: list[Received] = []
        self.sessions: dict[str, Received] = {}
        self.logout_statuses: list[str] = []
        self._lock = threading.Lock()
        self.config = self._config()
        # Loads the IdP's metadata over HTTP now, as a deployed SP does when it starts.
        self.client = Saml2Client(config=self.config)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def _config(self) -> SPConfig:
        config = SPConfig()
        config.load(
            {
                "entityid": self.entity_id,
                "xmlsec_binary": shutil.which("xmlsec1"),
                "key_file": self.keys.key_file,
                "cert_file": self.keys.cert_file,
                "metadata": {"remote": [{"url": self.idp_metadata_url}]},
                "allow_unknown_attributes": True,
                "accepted_time_diff": 60,
                "signing_algorithm": SIG_RSA_SHA256,
                "digest_algorithm": DIGEST_SHA256,
                "service": {
                    "sp": {
                        "endpoints": {
                            "assertion_consumer_service": [(self.acs_url, BINDING_HTTP_POST)],
                            "single_logout_service": [(f"{self.url}/slo", BINDING_HTTP_REDIRECT)],
                        },
                        "logout_requests_signed": True,
                        "name_id_format": [NAMEID_FORMAT_UNSPECIFIED],
                        "authn_requests_signed": True,
                        "want_assertions_signed": True,
                        "want_response_signed": False,
                        "allow_unsolicited": True,  # IdP-initiated sign-in
                        "only_use_keys_in_metadata": True,
                    }
                },
            }
        )
        return config

    def metadata_xml(self) -> str:
        return str(entity_descriptor(self.config))

    def idp_entity_id(self) -> str:
        (entity,) = self.client.metadata.identity_providers()
        return str(entity)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    # ------------------------------------------------------------------------------ the app

    def _app(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        try:
            status, headers, body = self._route(environ)
        except Exception as exc:  # a failure shows on the page and in the test's assertion
            status, headers, body = _page("SP error", html.escape(repr(exc)), HTTPStatus(500))
        start_response(status, headers)
        return [body]

    def _route(self, environ: dict[str, Any]) -> tuple[str, list, bytes]:
        path, method = environ["PATH_INFO"], environ["REQUEST_METHOD"]
        if path == PROTECTED_PATH and method == "GET":
            return self._protected(environ)
        if path == "/acs" and method == "POST":
            length = int(environ.get("CONTENT_LENGTH") or 0)
            form = parse_qs(environ["wsgi.input"].read(length).decode("ascii"))
            return self._acs({name: values[0] for name, values in form.items()})
        if path == "/logout" and method == "GET":
            return self._logout(environ)
        if path == "/slo" and method == "GET":
            query = parse_qs(environ.get("QUERY_STRING", ""))
            return self._logout_response(query.get("SAMLResponse", [""])[0])
        if path == "/metadata":
            body = self.metadata_xml().encode()
            return "200 OK", [("Content-Type", "application/samlmetadata+xml")], body
        return _page("Not found", "", HTTPStatus.NOT_FOUND)

    def _session(self, environ: dict[str, Any]) -> Received | None:
        cookie = SimpleCookie(environ.get("HTTP_COOKIE", ""))
        return self.sessions.get(cookie[COOKIE].value) if COOKIE in cookie else None

    def _logout(self, environ: dict[str, Any]) -> tuple[str, list, bytes]:
        session = self._session(environ)
        if session is None:
            return _page("Not signed in at the SP", "", HTTPStatus.BAD_REQUEST)
        # The browser's binding, asked for by name: pysaml2 otherwise tries SOAP first, which
        # the IdP's metadata also offers (tests/saml/test_slo.py runs that back-channel path).
        sent = self.client.do_logout(
            session.subject,
            self.client.users.issuers_of_info(session.subject),
            reason="",
            expire=None,
            sign=True,
            expected_binding=BINDING_HTTP_REDIRECT,
            sign_alg=SIG_RSA_SHA256,
        )
        ((binding, http_info),) = sent.values()
        assert binding == BINDING_HTTP_REDIRECT, binding
        return "302 Found", [("Location", dict(http_info["headers"])["Location"])], b""

    def _logout_response(self, saml_response: str) -> tuple[str, list, bytes]:
        response = self.client.parse_logout_request_response(saml_response, BINDING_HTTP_REDIRECT)
        status = str(response.response.status.status_code.value)
        self.logout_statuses.append(status)
        self.sessions.clear()
        return _page("Signed out at the SP", f'<p id="status">{html.escape(status)}</p>')

    def _protected(self, environ: dict[str, Any]) -> tuple[str, list, bytes]:
        session = self._session(environ)
        if session is not None:
            items = "".join(
                f'<li data-attribute="{html.escape(name)}">{html.escape(name)}: '
                f"{html.escape(', '.join(sorted(values)))}</li>"
                for name, values in sorted(session.attributes.items())
            )
            body = f'<p>NameID: <span id="name-id">{html.escape(session.name_id)}</span></p>'
            return _page("Signed in at the SP", f"{body}<ul id=attributes>{items}</ul>")
        request_id, info = self.client.prepare_for_authenticate(
            entityid=self.idp_entity_id(),
            relay_state=PROTECTED_PATH,
            binding=BINDING_HTTP_REDIRECT,
            sign=True,
            sigalg=SIG_RSA_SHA256,
            digest_alg=DIGEST_SHA256,
        )
        with self._lock:
            self.outstanding[request_id] = PROTECTED_PATH
        location = dict(info["headers"])["Location"]
        return "302 Found", [("Location", location)], b""

    def _acs(self, fields: dict[str, str]) -> tuple[str, list, bytes]:
        received = Received(fields=fields)
        with self._lock:
            self.received.append(received)
            outstanding = dict(self.outstanding)
        try:
            response = self.client.parse_authn_request_response(
                fields.get("SAMLResponse", ""), BINDING_HTTP_POST, outstanding=outstanding
            )
            if response is None:
                raise ValueError("no Response")
            received.name_id = str(response.name_id.text)
            received.subject = response.name_id
            received.attributes = {
                name: [str(v) for v in values] for name, values in response.get_identity().items()
            }
        except Exception as exc:
            received.error = f"{type(exc).__name__}: {exc}"
            return _page("SP refused the response", html.escape(received.error))
        with self._lock:
            self.outstanding.pop(str(response.in_response_to or ""), None)
        key = secrets.token_urlsafe(16)
        self.sessions[key] = received
        relay = fields.get("RelayState") or PROTECTED_PATH
        target = relay if urlsplit(relay).path == relay and relay.startswith("/") else "/"
        cookie = f"{COOKIE}={key}; Path=/; HttpOnly; SameSite=Lax"
        return "303 See Other", [("Location", target), ("Set-Cookie", cookie)], b""
