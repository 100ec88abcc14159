"""Back-channel logout delivery: the database queue and its worker, retries, the delivery log,
and safe outgoing requests (OpenID Connect Back-Channel Logout 1.0 §2.5, §2.8).

The first tests run the real django-tasks-db backend and its worker loop for a bounded time: a
sign-out returns at once while an app answering 500 and an app that never answers in time are
retried with backoff and then marked failed, and a healthy app is told all the same.
"""

from __future__ import annotations

import datetime as dt
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from http import HTTPStatus
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from django.core.management import call_command
from django.test import Client as HttpClient
from django_tasks_db.models import DBTaskResult

from accounts import services as account_services
from oauth_clients import uri_rules
from oauth_clients.models import BackchannelDelivery
from oauth_clients.models import Client as OAuthClient
from oauth_clients.oidc import backchannel
from tests.accounts.conftest import LOGOUT_URL, OVERVIEW_URL, sign_in, userinfo_status
from tests.oidc.backchannel_helpers import (
    DATABASE_TASKS,
    IMMEDIATE_TASKS,
    SPEC,
    Receiver,
    assert_logout_token_for_session,
    register_app,
    run_worker_until,
    sign_in_to_app,
    unverified_claims,
    verify_logout_token,
)

Status = BackchannelDelivery.Status


@pytest.fixture
def receivers() -> Iterator[Callable[..., Receiver]]:
    started: list[Receiver] = []

    def start(**behaviour: Any) -> Receiver:
        receiver = Receiver(**behaviour)
        started.append(receiver)
        return receiver

    yield start
    for receiver in started:
        receiver.close()


def signed_in_browser(password: str) -> HttpClient:
    browser = HttpClient()
    assert sign_in(browser, "alice", password).status_code == HTTPStatus.FOUND
    assert browser.get(OVERVIEW_URL).status_code == HTTPStatus.OK
    return browser


# --------------------------------------------------------------------------- the real worker


@pytest.mark.spec(SPEC, "2.5")
@pytest.mark.spec(SPEC, "2.8")
@pytest.mark.django_db(transaction=True)
def test_failing_and_slow_apps_are_retried_then_failed_while_sign_out_is_immediate(
    user, password, receivers, settings
):
    settings.TASKS = DATABASE_TASKS
    settings.IDP_BACKCHANNEL_TIMEOUT_SECONDS = 0.5
    settings.IDP_BACKCHANNEL_RETRY_SECONDS = [0.3, 0.6]  # three attempts
    healthy, broken, slow = receivers(), receivers(status=500), receivers(delay=3.0)
    apps = {
        "healthy": register_app("Healthy", healthy),
        "broken": register_app("Broken", broken),
        "slow": register_app("Slow", slow),
    }
    laptop = signed_in_browser(password)
    tokens = {name: sign_in_to_app(laptop, app) for name, app in apps.items()}

    started = time.monotonic()
    response = laptop.post(LOGOUT_URL)
    sign_out_seconds = time.monotonic() - started

    # The user is signed out at once: the request only queued three deliveries.
    assert response.status_code == HTTPStatus.FOUND
    assert sign_out_seconds < 1.0, sign_out_seconds  # the slow app takes 3 s to answer
    assert set(BackchannelDelivery.objects.values_list("status", flat=True)) == {Status.QUEUED}
    assert DBTaskResult.objects.count() == 3
    for name in apps:
        assert userinfo_status(tokens[name]["access_token"]) == HTTPStatus.UNAUTHORIZED

    ran = run_worker_until(
        lambda: (len(healthy.received), len(broken.received), len(slow.received)) == (1, 3, 3),
        timeout=30,
    )

    assert ran < 25
    # The healthy app was told once, without waiting for the others' retries.
    (received,) = healthy.received
    assert_logout_token_for_session(
        received, apps["healthy"], id_token=tokens["healthy"]["id_token"]
    )
    sent = BackchannelDelivery.objects.get(client=apps["healthy"])
    assert (sent.status, sent.attempts, sent.last_status_code) == (Status.SENT, 1, 200)
    # The broken app: three attempts, each with a fresh token, then failed with its status.
    assert len(broken.received) == 3
    jtis = {verify_logout_token(r.logout_token, apps["broken"])[1]["jti"] for r in broken.received}
    assert len(jtis) == 3
    failed = BackchannelDelivery.objects.get(client=apps["broken"])
    assert (failed.status, failed.attempts, failed.last_status_code) == (Status.FAILED, 3, 500)
    assert failed.finished_at is not None
    assert failed.next_attempt_at is None
    gaps = [b.at - a.at for a, b in zip(broken.received, broken.received[1:], strict=False)]
    assert gaps[0] >= 0.3, gaps  # exponential backoff: 0.3 s, then 0.6 s
    assert gaps[1] >= 0.6, gaps
    # The slow app: each attempt gave up after the timeout, then failed.
    timed_out = BackchannelDelivery.objects.get(client=apps["slow"])
    assert (timed_out.status, timed_out.attempts) == (Status.FAILED, 3)
    assert timed_out.last_status_code is None
    assert "timed out" in timed_out.last_error or "no complete answer" in timed_out.last_error
    assert len(slow.received) == 3


@pytest.mark.django_db(transaction=True)
def test_the_worker_command_delivers_queued_logouts(user, password, receivers, settings):
    """`manage.py db_worker --batch` (what compose and Kubernetes run, minus the loop)."""
    settings.TASKS = DATABASE_TASKS
    receiver = receivers()
    app = register_app("Mail", receiver)
    laptop = signed_in_browser(password)
    tokens = sign_in_to_app(laptop, app)
    laptop.post(LOGOUT_URL)
    assert receiver.received == []

    call_command("db_worker", "--batch", "--no-reload", "--no-startup-delay", verbosity=0)

    (received,) = receiver.wait_for(1)
    assert_logout_token_for_session(received, app, id_token=tokens["id_token"])
    assert BackchannelDelivery.objects.get().status == Status.SENT


# --------------------------------------------------------------------------- retries, the log


@pytest.mark.django_db
def test_each_failure_schedules_the_next_attempt_later_until_the_last(
    user, password, receivers, settings, django_capture_on_commit_callbacks
):
    settings.TASKS = DATABASE_TASKS
    broken = receivers(status=503)
    app = register_app("Broken", broken)
    laptop = signed_in_browser(password)
    sign_in_to_app(laptop, app)
    with django_capture_on_commit_callbacks(execute=True):
        laptop.post(LOGOUT_URL)
    delivery = BackchannelDelivery.objects.get()
    delays = settings.IDP_BACKCHANNEL_RETRY_SECONDS
    assert sum(delays) <= 11 * 60, "retries stop after about ten minutes"

    for attempt, delay in enumerate(delays, start=1):
        assert backchannel.attempt_delivery(delivery_id=delivery.pk) == Status.RETRYING
        delivery.refresh_from_db()
        assert delivery.attempts == attempt
        assert delivery.last_status_code == 503
        assert delivery.next_attempt_at - delivery.last_attempt_at == dt.timedelta(seconds=delay)
        task = DBTaskResult.objects.order_by("-enqueued_at").first()
        assert task.run_after == delivery.next_attempt_at
        assert task.args_kwargs["args"] == [delivery.pk]

    assert backchannel.attempt_delivery(delivery_id=delivery.pk) == Status.FAILED
    delivery.refresh_from_db()
    assert delivery.attempts == len(delays) + 1 == len(broken.received)
    # A late duplicate task for a finished delivery sends nothing more.
    assert backchannel.attempt_delivery(delivery_id=delivery.pk) == Status.FAILED
    assert len(broken.received) == len(delays) + 1


@pytest.mark.django_db
def test_a_failing_app_does_not_stop_the_others_of_the_session(
    user, password, receivers, settings, django_capture_on_commit_callbacks
):
    settings.TASKS = IMMEDIATE_TASKS
    broken, healthy = receivers(status=500), receivers()
    failing_app, app = register_app("Broken", broken), register_app("Mail", healthy)
    laptop = signed_in_browser(password)
    sign_in_to_app(laptop, failing_app)
    tokens = sign_in_to_app(laptop, app)

    with django_capture_on_commit_callbacks(execute=True):
        laptop.post(LOGOUT_URL)

    (received,) = healthy.received
    assert_logout_token_for_session(received, app, id_token=tokens["id_token"])
    assert len(broken.received) == 1
    # The immediate backend cannot defer a retry: the log says so rather than hiding it.
    failed = BackchannelDelivery.objects.get(client=failing_app)
    assert (failed.status, failed.last_status_code) == (Status.FAILED, 500)


@pytest.mark.django_db
def test_a_session_ended_twice_is_announced_once(
    user, password, receivers, settings, django_capture_on_commit_callbacks
):
    settings.TASKS = IMMEDIATE_TASKS
    receiver = receivers()
    app = register_app("Mail", receiver)
    laptop = signed_in_browser(password)
    tokens = sign_in_to_app(laptop, app)
    sid = unverified_claims(tokens["id_token"])["sid"]

    with django_capture_on_commit_callbacks(execute=True):
        assert backchannel.queue_session_logout(sid=sid, user=user) == 1
        assert backchannel.queue_session_logout(sid=sid, user=user) == 0
        account_services.deactivate_user(user=user, actor=None)

    assert len(receiver.received) == 1
    assert BackchannelDelivery.objects.count() == 1


@pytest.mark.spec(SPEC, "2.4")
@pytest.mark.django_db
def test_deactivation_also_tells_apps_of_sessions_that_already_expired(
    user, password, receivers, settings, django_capture_on_commit_callbacks
):
    """A browser session can expire while the app keeps a refresh token: deactivation still
    tells that app (the token rows remember the session)."""
    settings.TASKS = IMMEDIATE_TASKS
    receiver = receivers()
    app = register_app("Mail", receiver)
    laptop = signed_in_browser(password)
    tokens = sign_in_to_app(laptop, app)
    laptop.session.flush()  # the IdP session is gone; the app's refresh token is not
    from allauth.usersessions.models import UserSession

    UserSession.objects.all().delete()

    with django_capture_on_commit_callbacks(execute=True):
        account_services.deactivate_user(user=user, actor=None)

    (received,) = receiver.received
    claims = assert_logout_token_for_session(received, app, id_token=tokens["id_token"])
    assert claims["sub"] == str(user.pk)
    assert BackchannelDelivery.objects.get().reason == "user_signed_out"


@pytest.mark.django_db
def test_sub_only_token_for_tokens_without_a_session_unless_the_app_needs_a_sid(
    user, receivers, settings, django_capture_on_commit_callbacks
):
    """§2.4: without a sid, `sub` alone asks the app to end all of the user's sessions; an app
    registered with backchannel_logout_session_required gets no token it could not use."""
    settings.TASKS = IMMEDIATE_TASKS
    flexible_rp, strict_rp = receivers(), receivers()
    flexible = register_app("Flexible", flexible_rp, backchannel_logout_session_required=False)
    strict = register_app("Strict", strict_rp)
    from oauth_clients.models import AccessToken

    for app in (flexible, strict):
        AccessToken.objects.create(
            user=user,
            application=app,
            token=f"legacy-{app.pk}",
            token_checksum=f"{app.pk:064d}",
            expires=dt.datetime.now(tz=dt.UTC) + dt.timedelta(hours=1),
            scope="openid",
            sid="",
        )

    with django_capture_on_commit_callbacks(execute=True):
        account_services.revoke_all_user_tokens(user=user, actor=None)

    (received,) = flexible_rp.received
    _header, claims = verify_logout_token(received.logout_token, flexible)
    assert claims["sub"] == str(user.pk)
    assert "sid" not in claims
    assert strict_rp.received == []


@pytest.mark.django_db
def test_apps_without_a_back_channel_uri_or_disabled_are_not_called(
    user, password, receivers, settings, django_capture_on_commit_callbacks
):
    settings.TASKS = IMMEDIATE_TASKS
    disabled_rp = receivers()
    disabled = register_app("Disabled", disabled_rp)
    plain = register_app("Plain", disabled_rp, backchannel_logout_uri="")
    laptop = signed_in_browser(password)
    sign_in_to_app(laptop, disabled)
    sign_in_to_app(laptop, plain)
    OAuthClient.objects.filter(pk=disabled.pk).update(is_active=False)

    with django_capture_on_commit_callbacks(execute=True):
        laptop.post(LOGOUT_URL)

    assert disabled_rp.received == []
    assert not BackchannelDelivery.objects.exists()


@pytest.mark.django_db
def test_an_app_disabled_before_its_delivery_is_not_called(user, receivers, settings):
    receiver = receivers()
    app = register_app("Mail", receiver)
    delivery = BackchannelDelivery.objects.create(client=app, sub=str(user.pk), sid="s" * 43)
    OAuthClient.objects.filter(pk=app.pk).update(is_active=False)

    assert backchannel.attempt_delivery(delivery_id=delivery.pk) == Status.FAILED

    assert receiver.received == []
    delivery.refresh_from_db()
    assert "disabled" in delivery.last_error


# --------------------------------------------------------------------------- the logout token


@pytest.mark.spec(SPEC, "2.4")
@pytest.mark.django_db
def test_logout_token_is_signed_with_the_id_token_key_and_never_has_a_nonce(receivers):
    app = register_app("Mail", receivers())
    token = backchannel.build_logout_token(
        audience=app.client_id, sub="42", sid="the-session", jti="abc"
    )
    header, claims = verify_logout_token(token, app)
    assert header == {"typ": "logout+jwt", "alg": "RS256", "kid": header["kid"]}
    from oauth_clients.key_store import published_pems
    from oauth_clients.keys import key_id

    assert header["kid"] == key_id(published_pems()[0])
    assert claims["events"] == {"http://schemas.openid.net/event/backchannel-logout": {}}
    assert "nonce" not in claims
    with pytest.raises(ValueError, match="subject, a session or both"):
        backchannel.build_logout_token(audience=app.client_id, sub="", sid="", jti="x")


# --------------------------------------------------------------------------- safe requests


def resolves_to(*addresses: str) -> Callable[[str], list[str]]:
    return lambda host: list(addresses)


@pytest.mark.parametrize("address", ["127.0.0.1", "10.1.2.3", "169.254.169.254", "::1"])
def test_a_name_that_now_resolves_to_an_internal_address_is_refused_at_send_time(
    receivers, address
):
    """Registered when the name was public; DNS changed since. Nothing is sent."""
    receiver = receivers(host_name="rp.example.test")
    public = uri_rules.validate_logout_uri(
        "https://rp.example.test/bcl", backchannel=True, resolver=resolves_to("93.184.215.14")
    )
    assert public  # accepted at registration

    outcome = backchannel.send_logout_token(
        uri=receiver.url.replace("http://", "https://"),
        token="a.b.c",
        allow_private_network=False,
        resolver=resolves_to(address),
    )

    assert not outcome.delivered
    assert not outcome.retryable
    assert "refused" in outcome.error
    assert address in outcome.error
    assert receiver.received == []


@pytest.mark.django_db
def test_private_address_refused_at_send_time_is_logged_failed_without_retry(
    user, receivers, monkeypatch
):
    receiver = receivers(host_name="rp.example.test")
    app = register_app(
        "Mail",
        receiver,
        backchannel_logout_uri=f"https://rp.example.test:{receiver.port}/bcl",
        allow_private_network=False,
    )
    monkeypatch.setattr(uri_rules, "resolve_host", resolves_to("127.0.0.1"))
    delivery = BackchannelDelivery.objects.create(client=app, sub=str(user.pk), sid="s" * 43)

    assert backchannel.attempt_delivery(delivery_id=delivery.pk) == Status.FAILED

    delivery.refresh_from_db()
    assert delivery.attempts == 1
    assert "refused" in delivery.last_error
    assert receiver.received == []


def test_a_loopback_uri_is_refused_at_send_time_unless_the_app_may_use_the_private_network(
    receivers,
):
    receiver = receivers()
    refused = backchannel.send_logout_token(
        uri=receiver.url, token="a.b.c", allow_private_network=False
    )
    assert not refused.delivered
    assert "refused" in refused.error
    assert receiver.received == []
    allowed = backchannel.send_logout_token(
        uri=receiver.url, token="a.b.c", allow_private_network=True
    )
    assert allowed.delivered
    assert len(receiver.received) == 1


def test_redirects_are_not_followed(receivers):
    target = receivers()
    redirecting = receivers(status=302, location=target.url)
    outcome = backchannel.send_logout_token(
        uri=redirecting.url, token="a.b.c", allow_private_network=True
    )
    assert not outcome.delivered
    assert not outcome.retryable
    assert outcome.status_code == 302
    assert len(redirecting.received) == 1
    assert target.received == []


def test_an_endless_answer_is_read_only_up_to_the_cap(receivers):
    endless = receivers(endless_body=True)
    started = time.monotonic()
    outcome = backchannel.send_logout_token(
        uri=endless.url, token="a.b.c", allow_private_network=True, timeout=2
    )
    assert outcome.delivered  # 200 is all that counts; the body is not read past 64 kB
    assert time.monotonic() - started < 2


class DripServer:
    """Answers one byte of a status line every 0.1 s, forever: each read succeeds in time."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.stop = threading.Event()
        threading.Thread(target=self.serve, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.listener.getsockname()[1]}/bcl"

    def serve(self) -> None:
        conn, _ = self.listener.accept()
        with conn:
            for byte in (b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 10_000) * 10:
                if self.stop.is_set():
                    return
                try:
                    conn.sendall(bytes([byte]))
                except OSError:
                    return
                time.sleep(0.1)

    def close(self) -> None:
        self.stop.set()
        self.listener.close()


def test_a_drip_fed_answer_is_cut_off_at_the_deadline():
    drip = DripServer()
    try:
        started = time.monotonic()
        outcome = backchannel.send_logout_token(
            uri=drip.url, token="a.b.c", allow_private_network=True, timeout=0.5
        )
        elapsed = time.monotonic() - started
    finally:
        drip.close()
    assert not outcome.delivered
    assert outcome.retryable
    assert elapsed < 3, elapsed  # a per-read timeout alone would wait for ever
    assert "no complete answer within 1 s" in outcome.error


def test_proxies_from_the_environment_are_ignored(receivers, monkeypatch):
    receiver = receivers()
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.setenv(name, "http://10.255.255.1:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    outcome = backchannel.send_logout_token(
        uri=receiver.url, token="a.b.c", allow_private_network=True, timeout=2
    )
    assert outcome.delivered
    assert len(receiver.received) == 1


def test_an_unresolvable_name_is_retried_later():
    outcome = backchannel.send_logout_token(
        uri="https://nowhere.example.invalid/bcl",
        token="a.b.c",
        allow_private_network=False,
        resolver=resolves_to(),
    )
    assert not outcome.delivered
    assert outcome.retryable
    assert "does not resolve" in outcome.error


# --- TLS: the certificate must name the registered host, though we connect to an address


def _certificate_authority(tmp_path: Path, *, server_name: str) -> tuple[Path, ssl.SSLContext]:
    """A throwaway CA (its certificate file) and a server context for `server_name`."""
    now = dt.datetime.now(tz=dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, server_name)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(server_name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_file, cert_file, key_file = tmp_path / "ca.pem", tmp_path / "cert.pem", tmp_path / "key.pem"
    ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    return ca_file, context


@pytest.mark.parametrize(
    ("certificate_name", "delivered"),
    [("rp.example.test", True), ("someone-else.example.test", False)],
)
def test_tls_is_verified_against_the_registered_host_name(
    tmp_path, receivers, monkeypatch, certificate_name, delivered
):
    """We connect to the address the check approved (127.0.0.1 here, by our resolver); the
    name is never looked up again, and it is the Host header, the SNI name and the name the
    certificate must carry."""
    ca_file, context = _certificate_authority(tmp_path, server_name=certificate_name)
    receiver = receivers(tls=context, host_name="rp.example.test")
    assert receiver.url.startswith("https://rp.example.test:")
    real_getaddrinfo = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        assert host != "rp.example.test", "the name was resolved again after the check"
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)

    outcome = backchannel.send_logout_token(
        uri=receiver.url,
        token="a.b.c",
        allow_private_network=True,
        resolver=resolves_to("127.0.0.1"),
        verify=str(ca_file),
        timeout=3,
    )

    assert outcome.delivered is delivered, outcome
    assert len(receiver.received) == (1 if delivered else 0)
    if delivered:
        (received,) = receiver.received
        assert received.headers["host"] == f"rp.example.test:{receiver.port}"
        assert received.form == {"logout_token": ["a.b.c"]}
    if not delivered:
        assert outcome.retryable
        assert "certificate" in outcome.error.lower() or "hostname" in outcome.error.lower()


# --------------------------------------------------------------------------- registration


@pytest.mark.spec(SPEC, "2.2")
@pytest.mark.django_db
@pytest.mark.parametrize(
    "uri",
    [
        "https://10.0.0.5/backchannel-logout",
        "https://192.168.1.20/bcl",
        "https://169.254.169.254/latest/meta-data",
        "http://127.0.0.1:8080/bcl",
        "https://localhost/bcl",
        "https://[fd00::1]/bcl",
    ],
)
def test_a_private_back_channel_uri_is_refused_at_registration(admin_user, uri):
    from django.core.exceptions import ValidationError

    from oauth_clients import services

    arguments: dict[str, Any] = {
        "actor": admin_user,
        "kind": "web",
        "name": "Intranet",
        "redirect_uris": "https://intranet.example.com/cb",
        "backchannel_logout_uri": uri,
    }
    with pytest.raises(ValidationError) as refused:
        services.register_client(**arguments)
    assert "internal" in " ".join(refused.value.message_dict["backchannel_logout_uri"])
    # An internal app may be allowed explicitly.
    client, _secret = services.register_client(**arguments, allow_private_network=True)
    assert client.backchannel_logout_uri == uri


@pytest.mark.django_db
def test_the_register_form_and_the_cli_take_the_back_channel_settings(admin_user, password):
    from django.core.management.base import CommandError

    admin = HttpClient()
    sign_in(admin, "root", password, next="/admin/")
    data = {
        "kind": "web",
        "name": "Payroll",
        "redirect_uris": "https://payroll.example.com/cb",
        "scopes": ["openid"],
        "backchannel_logout_uri": "https://10.0.0.7/bcl",
        "backchannel_logout_session_required": "on",
    }
    page = admin.post("/admin/oauth_clients/client/register/", data)
    assert page.status_code == HTTPStatus.OK
    assert "internal network address" in page.content.decode()
    assert not OAuthClient.objects.filter(name="Payroll").exists()

    data["allow_private_network"] = "on"
    assert admin.post("/admin/oauth_clients/client/register/", data).status_code == 302
    payroll = OAuthClient.objects.get(name="Payroll")
    assert payroll.backchannel_logout_uri == "https://10.0.0.7/bcl"
    assert payroll.backchannel_logout_session_required
    assert payroll.allow_private_network

    with pytest.raises(CommandError, match="internal"):
        call_command(
            "clients", "create", "--kind", "web", "--name", "HR",
            "--redirect-uri", "https://hr.example.com/cb",
            "--backchannel-logout-uri", "http://127.0.0.1:9000/bcl",
        )  # fmt: skip
    call_command(
        "clients", "create", "--kind", "web", "--name", "HR",
        "--redirect-uri", "https://hr.example.com/cb",
        "--backchannel-logout-uri", "http://127.0.0.1:9000/bcl",
        "--backchannel-logout-session-required", "--allow-private-network", "--json",
    )  # fmt: skip
    hr = OAuthClient.objects.get(name="HR")
    assert (hr.backchannel_logout_uri, hr.backchannel_logout_session_required) == (
        "http://127.0.0.1:9000/bcl",
        True,
    )


# --------------------------------------------------------------------------- the admin's view


@pytest.mark.django_db
def test_admins_read_the_delivery_log_on_the_client_page_and_cannot_edit_it(
    admin_user, password, receivers
):
    app = register_app("Mail", receivers())
    BackchannelDelivery.objects.create(
        client=app,
        sub="7",
        sid="s" * 43,
        status=Status.FAILED,
        attempts=8,
        last_status_code=500,
        last_error="HTTP 500: boom",
        reason="session_ended",
    )
    admin = HttpClient()
    sign_in(admin, "root", password, next="/admin/")

    page = admin.get(f"/admin/oauth_clients/client/{app.pk}/change/").content.decode()
    assert "recent back-channel logouts" in page.lower()
    assert "HTTP 500: boom" in page
    listing = admin.get("/admin/oauth_clients/backchanneldelivery/")
    assert listing.status_code == HTTPStatus.OK
    assert "HTTP 500: boom" in listing.content.decode()
    delivery = BackchannelDelivery.objects.get()
    assert admin.get("/admin/oauth_clients/backchanneldelivery/add/").status_code == 403
    detail = admin.get(f"/admin/oauth_clients/backchanneldelivery/{delivery.pk}/change/")
    assert detail.status_code == HTTPStatus.OK
    assert 'name="_save"' not in detail.content.decode()
    deleted = admin.post(f"/admin/oauth_clients/backchanneldelivery/{delivery.pk}/delete/")
    assert deleted.status_code == 403
    assert BackchannelDelivery.objects.filter(pk=delivery.pk).exists()


# --------------------------------------------------------------------------- deployment


def test_compose_and_kubernetes_run_the_worker_with_the_signing_keys():
    from django.core.management import get_commands

    from tests.deploy.test_manifests import DEPLOY, RENDERED, containers, load_yaml, one

    # The project's worker command: django-tasks-db's, starting the schedules (idp/periodic.py).
    assert get_commands()["db_worker"] == "idp"
    (compose,) = load_yaml(DEPLOY / "compose.yaml")
    worker = compose["services"]["worker"]
    assert worker["entrypoint"][:4] == ["python", "manage.py", "db_worker", "--no-reload"]
    assert worker["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert "./signing-keys:/run/secrets/idp-signing-keys:ro" in worker["volumes"]
    for variant in ("base", "production"):
        deployment = one(RENDERED[variant], "Deployment", "idp-worker")
        (container,) = containers(deployment)
        assert container["command"][:4] == ["python", "manage.py", "db_worker", "--no-reload"]
        assert "ports" not in container
        mounts = {mount["mountPath"] for mount in container["volumeMounts"]}
        assert "/etc/idp/signing-keys" in mounts
        env = {item["name"] for item in container["env"]}
        assert {"DJANGO_SECRET_KEY", "DATABASE_URL"} <= env
