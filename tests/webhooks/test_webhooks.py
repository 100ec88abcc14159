"""Events out by webhook (webhooks/): signed with the Standard Webhooks scheme, verified here with
its reference library (`standardwebhooks`), delivered by the background worker through the
SSRF-safe sender, retried with backoff, logged and replayed."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from http import HTTPStatus
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.test import Client as HttpClient
from django.urls import reverse
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from accounts import audit
from accounts.models import AuditEvent
from oauth_clients import services as client_services
from tests.accounts.conftest import CHANGE_URL, sign_in
from tests.oidc.backchannel_helpers import (
    DATABASE_TASKS,
    IMMEDIATE_TASKS,
    Receiver,
    run_worker_until,
)
from tests.oidc.conftest import make_client
from webhooks import services
from webhooks.events import EVENT_TYPES, PUBLIC_TYPES
from webhooks.models import Delivery, Subscriber
from webhooks.secrets import decrypt_secret

NEW_PASSWORD = "a brand new passphrase 42"
ACCEPTANCE_EVENTS = [
    "user.signed_in",
    "user.sign_in_failed",
    "user.locked",
    "user.password_changed",
    "client.changed",
]


@pytest.fixture
def receivers() -> Iterator[Callable[..., Receiver]]:
    started: list[Receiver] = []

    def start(**behaviour: Any) -> Receiver:
        receiver = Receiver(path="/hooks", **behaviour)
        started.append(receiver)
        return receiver

    yield start
    for receiver in started:
        receiver.close()


def subscribe(receiver: Receiver, events: list[str], **fields: Any) -> tuple[Subscriber, str]:
    return services.create_subscriber(
        name="SIEM",
        url=receiver.url,
        event_types=events,
        allow_private_network=True,  # the receiver listens on loopback
        actor=None,
        **fields,
    )


def verified(received: Any, secret: str) -> dict[str, Any]:
    """The payload, once the reference library has verified the signature."""
    return dict(Webhook(secret).verify(received.body, received.headers))


# --- Acceptance ----------------------------------------------------------------------------


@pytest.mark.spec("Standard Webhooks", "Signature scheme")
@pytest.mark.django_db
def test_a_receiver_gets_signed_events_for_sign_in_failure_lock_password_and_client_changes(
    user, password, receivers, settings, django_capture_on_commit_callbacks
):
    settings.TASKS = IMMEDIATE_TASKS  # each delivery sent as it is queued, after commit
    settings.IDP_LOCKOUT_THRESHOLD = 2
    receiver = receivers()
    _subscriber, secret = subscribe(receiver, ACCEPTANCE_EVENTS)
    assert secret.startswith("whsec_")
    browser = HttpClient()

    with django_capture_on_commit_callbacks(execute=True):
        assert sign_in(browser, "alice", password).status_code == HTTPStatus.FOUND
    with django_capture_on_commit_callbacks(execute=True):
        response = browser.post(
            CHANGE_URL,
            {"oldpassword": password, "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
        )
        assert response.status_code == HTTPStatus.FOUND
    with django_capture_on_commit_callbacks(execute=True):
        sign_in(HttpClient(), "alice", "wrong password 1")
    with django_capture_on_commit_callbacks(execute=True):
        sign_in(HttpClient(), "alice", "wrong password 2")  # the second one locks
    app = make_client(name="Wiki", client_id="wiki", redirect_uris="https://wiki.example.com/cb")
    with django_capture_on_commit_callbacks(execute=True):
        client_services.update_client(client=app, actor=None, changes={"name": "Company wiki"})

    received = receiver.wait_for(6)
    payloads = [verified(message, secret) for message in received]
    types = [payload["type"] for payload in payloads]
    assert types == [
        "user.signed_in",
        "user.password_changed",
        "user.sign_in_failed",
        "user.sign_in_failed",
        "user.locked",
        "client.changed",
    ]
    for payload in payloads:
        assert payload["version"] == 1
        assert set(payload) == {"type", "version", "timestamp", "data"}
    signed_in = payloads[0]["data"]
    assert signed_in["subject"] == {"id": user.pk, "username": "alice"}
    assert signed_in["audit_type"] == "login.succeeded"
    assert payloads[5]["data"]["client"] == {"client_id": "wiki"}
    assert payloads[5]["data"]["details"]["fields"] == ["name"]
    # Each message has its own id; the log says every one was sent.
    assert len({message.headers["webhook-id"] for message in received}) == 6
    assert received[0].headers["content-type"] == "application/json"
    assert set(Delivery.objects.values_list("status", flat=True)) == {Delivery.Status.SENT}
    # The password never travels, nor does anything like it.
    assert NEW_PASSWORD not in b"".join(message.body for message in received).decode()


@pytest.mark.django_db
def test_a_signature_made_with_another_secret_or_a_changed_body_does_not_verify(
    user, password, receivers, settings, django_capture_on_commit_callbacks
):
    settings.TASKS = IMMEDIATE_TASKS
    receiver = receivers()
    _subscriber, secret = subscribe(receiver, ["user.signed_in"])
    with django_capture_on_commit_callbacks(execute=True):
        sign_in(HttpClient(), "alice", password)
    (message,) = receiver.wait_for(1)
    assert verified(message, secret)["type"] == "user.signed_in"

    other_secret = services.create_subscriber(
        name="other",
        url=receiver.url,
        event_types=["user.locked"],
        allow_private_network=True,
        actor=None,
    )[1]
    with pytest.raises(WebhookVerificationError):
        Webhook(other_secret).verify(message.body, message.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(message.body.replace(b"alice", b"mallo"), message.headers)


@pytest.mark.django_db
def test_events_a_subscriber_did_not_ask_for_are_not_sent_and_cost_no_query(
    user, receivers, django_assert_num_queries
):
    subscribe(receivers(), ["client.changed"])
    audit.record_event(type=AuditEvent.Type.LOGIN_SUCCEEDED, subject=user)  # reads the table

    with django_assert_num_queries(1):  # the audit row only
        audit.record_event(type=AuditEvent.Type.LOGIN_SUCCEEDED, subject=user)

    assert not Delivery.objects.exists()


# --- Retries, the log and replay -------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_failing_receiver_is_retried_with_backoff_then_failed_and_a_replay_is_sent_again(
    user, receivers, settings, admin_user
):
    settings.TASKS = DATABASE_TASKS
    settings.IDP_WEBHOOK_RETRY_SECONDS = [0.2, 0.4]  # three attempts
    healthy, broken = receivers(), receivers(status=HTTPStatus.INTERNAL_SERVER_ERROR)
    _, _healthy_secret = subscribe(healthy, ["user.locked"])
    _, broken_secret = subscribe(broken, ["user.locked"])

    audit.record_event(type=AuditEvent.Type.ACCOUNT_LOCKED, subject=user)
    run_worker_until(lambda: len(healthy.received) == 1 and len(broken.received) == 3, timeout=20)

    assert len(healthy.received) == 1
    assert len(broken.received) == 3
    gaps = [b.at - a.at for a, b in zip(broken.received, broken.received[1:], strict=False)]
    assert gaps[0] >= 0.2, gaps
    assert gaps[1] >= 0.4, gaps
    # Every attempt is signed afresh for the same message.
    ids = {message.headers["webhook-id"] for message in broken.received}
    assert len(ids) == 1
    for message in broken.received:
        verified(message, broken_secret)
    failed = Delivery.objects.get(subscriber__url=broken.url, replay_of=None)
    assert (failed.status, failed.attempts, failed.last_status_code) == (
        Delivery.Status.FAILED,
        3,
        500,
    )

    # The receiver is fixed; an administrator replays the message from the delivery log.
    broken.status = HTTPStatus.NO_CONTENT
    admin = HttpClient()
    admin.force_login(admin_user)
    log = admin.get(
        reverse("admin:webhooks_delivery_changelist")
        + f"?subscriber__id__exact={failed.subscriber_id}"
    )
    assert log.status_code == HTTPStatus.OK
    assert "user.locked" in log.content.decode()
    response = admin.post(
        reverse("admin:webhooks_delivery_changelist"),
        {"action": "replay", "_selected_action": [failed.pk]},
    )
    assert response.status_code == HTTPStatus.FOUND
    run_worker_until(lambda: len(broken.received) == 4, timeout=10)

    replay = Delivery.objects.get(replay_of=failed)
    assert (replay.status, replay.message_id, replay.replayed_by) == (
        Delivery.Status.SENT,
        failed.message_id,
        admin_user,
    )
    assert verified(broken.received[3], broken_secret)["type"] == "user.locked"
    assert broken.received[3].headers["webhook-id"] == failed.message_id
    event = AuditEvent.objects.get(type=AuditEvent.Type.WEBHOOK_REPLAYED)
    assert (event.actor, event.extra["delivery_id"]) == (admin_user, failed.pk)


# --- SSRF: private addresses and redirects -----------------------------------------------------


@pytest.mark.django_db
def test_a_subscriber_on_a_private_address_is_refused_unless_allowed(receivers):
    receiver = receivers()
    subscriber, _ = subscribe(receiver, ["user.locked"])  # allowed: the positive path
    assert subscriber.allow_private_network

    for url in (receiver.url, "http://10.0.0.8/hooks", "https://169.254.169.254/latest"):
        with pytest.raises(ValidationError) as refused:
            services.create_subscriber(name="x", url=url, event_types=["user.locked"], actor=None)
        assert "internal network address" in str(refused.value) or "https" in str(refused.value)
    assert Subscriber.objects.count() == 1


@pytest.mark.django_db
def test_a_delivery_to_an_address_that_became_private_is_refused_at_send_time(
    user, receivers, settings, django_capture_on_commit_callbacks
):
    settings.TASKS = IMMEDIATE_TASKS
    receiver = receivers()
    subscriber, _ = subscribe(receiver, ["user.locked"])
    # As if its name now resolved to a private address: the sender checks again when it sends.
    Subscriber.objects.filter(pk=subscriber.pk).update(allow_private_network=False)

    with django_capture_on_commit_callbacks(execute=True):
        audit.record_event(type=AuditEvent.Type.ACCOUNT_LOCKED, subject=user)

    delivery = Delivery.objects.get()
    assert delivery.status == Delivery.Status.FAILED
    assert "refused" in delivery.last_error
    assert receiver.received == []


@pytest.mark.django_db(transaction=True)
def test_a_receiver_answering_with_a_redirect_is_not_followed_nor_retried(
    user, receivers, settings
):
    settings.TASKS = DATABASE_TASKS  # the real queue, which could retry
    target = receivers()
    redirecting = receivers(status=HTTPStatus.TEMPORARY_REDIRECT, location=target.url)
    subscribe(redirecting, ["user.locked"])

    audit.record_event(type=AuditEvent.Type.ACCOUNT_LOCKED, subject=user)
    run_worker_until(lambda: Delivery.objects.filter(status="failed").exists(), timeout=10)

    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == (
        Delivery.Status.FAILED,
        1,
        307,
    )
    assert "redirect" in delivery.last_error
    assert len(redirecting.received) == 1
    assert target.received == []


# --- Subscribers: the command, the secret, the audit ---------------------------------------


@pytest.mark.django_db
def test_the_command_creates_a_subscriber_and_prints_its_secret_once(receivers):
    receiver = receivers()
    out = io.StringIO()

    call_command(
        "webhooks",
        "create",
        "--url",
        receiver.url,
        "--event",
        "user.signed_in",
        "--event",
        "client.changed",
        "--allow-private",
        "--json",
        stdout=out,
    )

    created = json.loads(out.getvalue())
    subscriber = Subscriber.objects.get(pk=created["id"])
    assert created["secret"].startswith("whsec_")
    assert created["event_types"] == ["client.changed", "user.signed_in"]
    # Stored encrypted, and only that.
    assert created["secret"] not in subscriber.secret_encrypted
    assert decrypt_secret(subscriber.secret_encrypted) == created["secret"]
    listing = io.StringIO()
    call_command("webhooks", "list", "--json", stdout=listing)
    assert created["secret"] not in listing.getvalue()
    event = AuditEvent.objects.get(type=AuditEvent.Type.WEBHOOK_CREATED)
    assert created["secret"] not in json.dumps(event.extra)
    assert event.extra["url"] == receiver.url


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("arguments", "reason"),
    [
        (["--url", "https://10.1.2.3/hooks", "--event", "user.locked"], "internal network"),
        (["--url", "http://example.com/hooks", "--event", "user.locked"], "https"),
        (
            ["--url", "http://127.0.0.1:9/hooks", "--allow-private", "--event", "user.teleported"],
            "Unknown event",
        ),
    ],
    ids=["private address", "plain http", "unknown event type"],
)
def test_the_command_refuses_a_bad_subscriber(arguments, reason):
    with pytest.raises(CommandError, match=reason):
        call_command("webhooks", "create", *arguments, stdout=io.StringIO())
    assert not Subscriber.objects.exists()


@pytest.mark.django_db
def test_a_disabled_subscriber_gets_nothing(
    user, receivers, settings, django_capture_on_commit_callbacks
):
    settings.TASKS = IMMEDIATE_TASKS
    receiver = receivers()
    subscriber, _ = subscribe(receiver, ["user.locked"])
    call_command("webhooks", "disable", str(subscriber.pk), stdout=io.StringIO())

    with django_capture_on_commit_callbacks(execute=True):
        audit.record_event(type=AuditEvent.Type.ACCOUNT_LOCKED, subject=user)

    assert not Delivery.objects.exists()
    assert AuditEvent.objects.filter(
        type=AuditEvent.Type.WEBHOOK_CHANGED, extra__fields=["is_active"]
    ).exists()


def test_every_audit_event_type_has_a_public_name_documented_in_the_guide(settings):
    from pathlib import Path

    assert set(EVENT_TYPES) == {str(value) for value in AuditEvent.Type}
    guide = (Path(settings.BASE_DIR) / "docs" / "guides" / "webhooks.md").read_text()
    missing = [name for name in PUBLIC_TYPES if f"`{name}`" not in guide]
    assert not missing, missing


@pytest.mark.django_db
def test_an_administrator_changes_a_subscribers_event_types_through_the_service(
    admin_user, receivers
):
    subscriber, secret = subscribe(receivers(), ["user.locked"])
    admin = HttpClient()
    admin.force_login(admin_user)
    url = reverse("admin:webhooks_subscriber_change", args=[subscriber.pk])

    page = admin.get(url)
    assert page.status_code == HTTPStatus.OK
    assert secret not in page.content.decode()
    assert subscriber.secret_encrypted not in page.content.decode()
    response = admin.post(
        url,
        {"name": "SIEM", "event_types": ["user.locked", "user.signed_in"], "is_active": "on"},
    )

    assert response.status_code == HTTPStatus.FOUND
    subscriber.refresh_from_db()
    assert subscriber.event_types == ["user.locked", "user.signed_in"]
    event = AuditEvent.objects.get(type=AuditEvent.Type.WEBHOOK_CHANGED)
    assert (event.actor, event.extra["fields"]) == (admin_user, ["event_types"])
    # Subscribers are made on the command line (the secret shown once) and never deleted.
    assert admin.get(reverse("admin:webhooks_subscriber_add")).status_code == HTTPStatus.FORBIDDEN


@pytest.mark.django_db
def test_staff_without_the_webhook_permission_cannot_replay(user, receivers, settings):
    from django.contrib.auth.models import Permission

    settings.TASKS = IMMEDIATE_TASKS
    subscriber, _ = subscribe(receivers(), ["user.locked"])
    delivery = Delivery.objects.create(
        subscriber=subscriber, message_id="msg_1", event_type="user.locked", payload="{}"
    )
    user.is_staff = True
    user.save()
    user.user_permissions.add(Permission.objects.get(codename="view_delivery"))
    staff = HttpClient()
    staff.force_login(user)

    assert staff.get(reverse("admin:webhooks_delivery_changelist")).status_code == HTTPStatus.OK
    response = staff.post(
        reverse("admin:webhooks_delivery_changelist"),
        {"action": "replay", "_selected_action": [delivery.pk]},
    )

    assert response.status_code in (HTTPStatus.OK, HTTPStatus.FOUND)
    assert not Delivery.objects.filter(replay_of=delivery).exists()
    assert not AuditEvent.objects.filter(type=AuditEvent.Type.WEBHOOK_REPLAYED).exists()
