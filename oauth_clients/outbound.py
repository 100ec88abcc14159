"""Safe outgoing HTTP calls to URLs an app registered: the one SSRF-safe sender.

Used by the engine's back-channel logout (`oauth_clients.oidc.backchannel`) and by the registry
to fetch SAML metadata (`oauth_clients.saml_metadata`); it sits on the registry's floor so both
can use it. The destination's host is resolved once and every address checked against private,
loopback and link-local networks (unless the app is allowed them, `Client.allow_private_network`)
with `uri_rules.host_is_internal`, the same check as at registration; the connection then goes to
that very address (no DNS rebinding between check and connect), TLS verified against the
registered host name, no redirects, no proxies from the environment, a connect/read timeout and a
hard deadline for the whole exchange, and at most `max_bytes` of the answer read. Libraries that
send through a `requests.Session` (allauth's upstream sign-in, `federation`) get one whose every
request takes the same path: `safe_session`.
"""

from __future__ import annotations

import contextlib
import io
import ipaddress
import socket
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.response import HTTPResponse

from oauth_clients import uri_rules

# An error text kept in a delivery log or shown to an administrator is cut to this length.
MAX_ERROR_LENGTH = 500

_current = threading.local()


class _Deadline:
    """A hard limit on one whole HTTP exchange: when it passes, the sockets are shut down, so no
    slow handshake, header or body can hold the worker longer (per-read timeouts alone could)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def __enter__(self) -> _Deadline:
        _current.deadline = self
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()
        _current.deadline = None

    def track(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.append(sock)
            if self.expired:
                _shutdown(sock)

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for sock in self._sockets:
                _shutdown(sock)


def _shutdown(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already closed
        sock.shutdown(socket.SHUT_RDWR)


def _track(sock: socket.socket) -> socket.socket:
    deadline = getattr(_current, "deadline", None)
    if deadline is not None:
        deadline.track(sock)
    return sock


class _TrackedHTTPConnection(HTTPConnection):
    def _new_conn(self) -> socket.socket:
        return _track(super()._new_conn())


class _TrackedHTTPSConnection(HTTPSConnection):
    def _new_conn(self) -> socket.socket:
        # The raw socket, before the TLS handshake: the deadline covers the handshake too.
        return _track(super()._new_conn())


class _TrackedHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = _TrackedHTTPConnection


class _TrackedHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = _TrackedHTTPSConnection


class PinnedAddressAdapter(HTTPAdapter):
    """Connects to one address checked beforehand, whatever DNS says by then.

    The URL's host name stays the Host header, the TLS server name (SNI) and the name the
    certificate must match; only the TCP connection goes to `address`.
    """

    def __init__(self, address: str) -> None:
        self.address = address
        super().__init__(pool_connections=1, pool_maxsize=1, max_retries=0)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": _TrackedHTTPConnectionPool,
            "https": _TrackedHTTPSConnectionPool,
        }

    def build_connection_pool_key_attributes(
        self, request: requests.PreparedRequest, verify: Any, cert: Any = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(
            request, verify, cert
        )
        hostname = host_params["host"]
        host_params["host"] = self.address
        if host_params["scheme"] == "https":
            pool_kwargs["server_hostname"] = hostname
            pool_kwargs["assert_hostname"] = hostname
        return host_params, pool_kwargs


def clean_text(text: str) -> str:
    """One printable line, cut to MAX_ERROR_LENGTH (what a log row or a message may hold)."""
    printable = "".join(ch if ch.isprintable() else " " for ch in text)
    return " ".join(printable.split())[:MAX_ERROR_LENGTH]


def check_destination(
    uri: str, *, allow_private_network: bool, resolver: uri_rules.Resolver | None = None
) -> tuple[str | None, str, bool]:
    """(address to connect to, refusal, retryable) for `uri`, at send time.

    The host is resolved once, and every address it resolves to must be public unless the app
    may call private ones (`uri_rules.host_is_internal`, the same check as at registration).
    The caller applies its URI rules first (scheme, form).
    """
    host = (urlsplit(uri).hostname or "").strip("[]")
    try:
        addresses = [str(ipaddress.ip_address(host))]
    except ValueError:
        addresses = (resolver or uri_rules.resolve_host)(host)
    if not addresses:
        return None, clean_text(f"{host} does not resolve"), True
    if not allow_private_network:
        internal, why = uri_rules.host_is_internal(host, resolver=lambda _host: addresses)
        if internal:
            return (
                None,
                clean_text(f"refused: {why} (the client may not call private addresses)"),
                False,
            )
    return addresses[0], "", False


@dataclass(frozen=True)
class Answer:
    """What one exchange gave: the status and at most `max_bytes` of the body, or an error
    (no complete answer: network failure, timeout, deadline)."""

    status_code: int | None = None
    body: bytes = b""
    error: str = ""
    # More than `max_bytes` were on offer (the rest was never read).
    truncated: bool = False


def send_pinned(
    *,
    method: str,
    uri: str,
    address: str,
    timeout: float,
    max_bytes: int,
    headers: Mapping[str, str] | None = None,
    data: Mapping[str, str] | bytes | None = None,
    verify: bool | str = True,
) -> Answer:
    """One request to `uri`, connected to `address` (from `check_destination`), never redirected.

    The whole exchange ends after twice `timeout` whatever the peer does; the body is read up
    to `max_bytes` (`truncated` when there was more).
    """
    parts = urlsplit(uri)
    session = requests.Session()
    session.trust_env = False  # no proxy, netrc or CA bundle from the environment
    adapter = PinnedAddressAdapter(address)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    deadline = _Deadline(timeout * 2)
    truncated = False
    try:
        with deadline:
            response = session.request(
                method,
                uri,
                data=data,
                headers={"Host": parts.netloc, **(headers or {})},
                timeout=(timeout, timeout),
                allow_redirects=False,
                stream=True,
                verify=verify,
            )
            try:
                body = b""
                for chunk in response.iter_content(chunk_size=8192):
                    body += chunk
                    if len(body) > max_bytes:
                        truncated = True
                        body = body[:max_bytes]
                        break
            finally:
                response.close()
    except requests.RequestException as error:
        if deadline.expired:
            return Answer(error=f"no complete answer within {deadline.seconds:g} s")
        kind = "timed out" if isinstance(error, requests.Timeout) else "connection failed"
        return Answer(error=clean_text(f"{kind}: {error}"))
    finally:
        session.close()
    return Answer(status_code=response.status_code, body=body, truncated=truncated)


class SafeAdapter(HTTPAdapter):
    """A requests transport for libraries that send through a `requests.Session` of their own
    making (allauth's `get_requests_session`): each request is checked (`check_destination`)
    and sent to the checked address (`PinnedAddressAdapter`), bounded by a hard deadline and
    `max_bytes`, like `send_pinned`.

    `allow_private_network(url)` says whether this URL may be on a private or loopback address
    (the caller's per-destination rule). The answer handed back holds the body already read.
    """

    def __init__(
        self, *, allow_private_network: Callable[[str], bool], timeout: float, max_bytes: int
    ) -> None:
        self.allow_private_network = allow_private_network
        self.timeout = timeout
        self.max_bytes = max_bytes
        super().__init__(max_retries=0)

    def send(  # type: ignore[override]
        self, request: requests.PreparedRequest, **kwargs: Any
    ) -> requests.Response:
        uri = request.url or ""
        address, refusal, _retryable = check_destination(
            uri, allow_private_network=self.allow_private_network(uri)
        )
        if address is None:
            raise requests.ConnectionError(refusal, request=request)
        request.headers["Host"] = urlsplit(uri).netloc
        pinned = PinnedAddressAdapter(address)
        deadline = _Deadline(self.timeout * 2)
        try:
            with deadline:
                response = pinned.send(
                    request,
                    stream=True,
                    timeout=(self.timeout, self.timeout),
                    verify=kwargs.get("verify", True),
                    proxies={},
                )
                try:
                    body = b""
                    for chunk in response.iter_content(chunk_size=8192):
                        body += chunk
                        if len(body) > self.max_bytes:
                            raise requests.ConnectionError(
                                f"answer larger than {self.max_bytes} bytes", request=request
                            )
                finally:
                    response.close()
        except requests.RequestException:
            if deadline.expired:
                raise requests.Timeout(
                    f"no complete answer within {deadline.seconds:g} s", request=request
                ) from None
            raise
        finally:
            pinned.close()
        # The body was decoded while it was read: the answer handed on says so.
        headers = {
            name: value
            for name, value in response.headers.items()
            if name.lower() not in {"content-encoding", "transfer-encoding", "content-length"}
        }
        raw = HTTPResponse(
            body=io.BytesIO(body),
            headers=headers,
            status=response.status_code,
            reason=response.reason,
            preload_content=False,
            decode_content=False,
        )
        answer = self.build_response(request, raw)
        answer.content  # noqa: B018 (read now, while the body is in memory)
        return answer


def safe_session(
    *, allow_private_network: Callable[[str], bool], timeout: float, max_bytes: int
) -> requests.Session:
    """A `requests.Session` whose every request goes through `SafeAdapter`: no proxy or CA
    bundle from the environment, and no redirect followed (a redirect is an error)."""
    session = requests.Session()
    session.trust_env = False
    session.max_redirects = 0
    adapter = SafeAdapter(
        allow_private_network=allow_private_network, timeout=timeout, max_bytes=max_bytes
    )
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session
