"""Sending to an app's SCIM server: a user it already has (409), a server failing or answering
garbage (retried, then failed), a redirect and a private address (refused, nothing sent).

Positive paths first: the same target and person provisioned on the reference SCIM server.
"""

from __future__ import annotations

from http import HTTPStatus

import pytest
from django.core.exceptions import ValidationError
from django.test import Client as HttpClient

from accounts import services as account_services
from accounts.models import AuditEvent
from oauth_clients.models import Client
from provisioning import resources
from provisioning.models import ProvisionedUser, ProvisioningDelivery, ScimTarget
from provisioning.services import save_target
from tests.oidc.backchannel_helpers import DATABASE_TASKS, IMMEDIATE_TASKS, run_worker_until
from tests.provisioning.conftest import (
    SERVER_TOKEN,
    assigned_group,
    make_target,
    register_app,
    scim_error,
)

Status = ProvisioningDelivery.Status


@pytest.fixture
def immediate(settings, django_capture_on_commit_callbacks):
    """Tasks run as they are enqueued, after the (captured) commit: one attempt, no retries."""
    settings.TASKS = IMMEDIATE_TASKS
    return lambda: django_capture_on_commit_callbacks(execute=True)


def join(admin_user, user, app, committed):
    with committed():
        group = assigned_group(admin_user, app)
    with committed():
        account_services.add_members(group=group, users=[user], actor=admin_user)
    return group


# --- 409 on create: the app has that userName already


@pytest.mark.spec("RFC 7644", "3.3")
@pytest.mark.spec("RFC 7644", "3.4.2.2")
def test_a_user_the_app_already_has_is_looked_up_by_user_name_and_linked(
    admin_user, user, scim_server, immediate
):
    app = register_app(admin_user)
    with immediate():
        make_target(admin_user, app, scim_server.base_url)
    existing = scim_server.post_user(
        {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "ALICE",  # RFC 7643 §4.1.1: userName is case-insensitive
            "displayName": "Old name",
        }
    )

    join(admin_user, user, app, immediate)

    delivery = ProvisioningDelivery.objects.get(user=user)
    assert (delivery.status, delivery.action) == (Status.SENT, "link")
    stored = scim_server.users()
    assert list(stored) == ["alice"]  # replaced with the IdP's values, no second account
    assert stored["alice"]["id"] == existing["id"]
    assert stored["alice"]["displayName"] == "Alice Liddell"
    assert ProvisionedUser.objects.get(user=user).remote_id == existing["id"]


def test_a_409_for_a_user_the_app_cannot_find_fails_without_retrying(
    admin_user, user, bad_apps, immediate
):
    conflict = bad_apps(status=409, body=scim_error(409, "uniqueness", "taken"))
    app = register_app(admin_user)
    with immediate():
        make_target(admin_user, app, conflict.base_url)
    # The search finds nobody: the same server answers 409 to the GET too, which is an error.
    join(admin_user, user, app, immediate)

    delivery = ProvisioningDelivery.objects.get(user=user)
    assert (delivery.status, delivery.action, delivery.attempts) == (Status.FAILED, "link", 1)
    assert [seen.method for seen in conflict.received] == ["POST", "GET"]
    assert conflict.received[1].path.startswith("/scim/v2/Users?filter=userName+eq+%22alice%22")
    assert not ProvisionedUser.objects.exists()


# --- A failing or garbled app: retried with backoff, then failed; the admin still answers


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (500, b'{"detail": "database down"}', "HTTP 500: database down"),
        (200, b"<html>hello</html>", "the answer is not JSON"),
        (201, b'{"hello": "world"}', "not a SCIM User"),
    ],
    ids=["server-error", "not-json", "not-scim"],
)
@pytest.mark.django_db(transaction=True)
def test_an_app_failing_or_answering_garbage_is_retried_then_recorded_as_failed(
    admin_user, user, bad_apps, settings, status, body, error
):
    settings.TASKS = DATABASE_TASKS
    settings.IDP_PROVISIONING_RETRY_SECONDS = [0.1, 0.2]  # three attempts
    broken = bad_apps(status=status, body=body)
    app = register_app(admin_user)
    group = assigned_group(admin_user, app)
    make_target(admin_user, app, broken.base_url)

    account_services.add_members(group=group, users=[user], actor=admin_user)
    run_worker_until(
        lambda: ProvisioningDelivery.objects.filter(status=Status.FAILED).exists(), timeout=15
    )

    delivery = ProvisioningDelivery.objects.get(user=user)
    assert (delivery.status, delivery.action, delivery.attempts) == (Status.FAILED, "create", 3)
    assert error in delivery.last_error
    assert [seen.method for seen in broken.received] == ["POST"] * 3
    assert broken.received[0].headers["authorization"] == f"Bearer {SERVER_TOKEN}"
    failures = AuditEvent.objects.filter(type=AuditEvent.Type.PROVISIONING_FAILED, subject=user)
    assert [event.extra["final"] for event in failures.order_by("pk")] == [False, False, True]
    # The administrator reads the failure in the delivery log; no page fails.
    browser = HttpClient()
    browser.force_login(admin_user)
    log = browser.get("/admin/provisioning/provisioningdelivery/")
    assert log.status_code == HTTPStatus.OK
    assert error.split(":")[0] in log.content.decode()
    target = ScimTarget.objects.get()
    for page in (
        f"/admin/provisioning/scimtarget/{target.pk}/change/",
        f"/admin/provisioning/scimtarget/{target.pk}/dry-run/",
    ):
        assert browser.get(page).status_code == HTTPStatus.OK


# --- Refused as for back-channel logout URIs: redirects, private addresses


def test_a_redirect_from_the_app_is_never_followed_nor_retried(
    admin_user, user, bad_apps, scim_server, immediate
):
    # Positive path: the same app on the reference server.
    app = register_app(admin_user)
    with immediate():
        target = make_target(admin_user, app, scim_server.base_url)
    join(admin_user, user, app, immediate)
    assert ProvisioningDelivery.objects.get(user=user).status == Status.SENT

    elsewhere = bad_apps(status=201)
    redirecting = bad_apps(status=307, location=elsewhere.base_url + "/Users")
    target.base_url = redirecting.base_url
    ProvisionedUser.objects.all().delete()  # alice must be created anew
    with immediate():
        save_target(target=target, token=None, actor=admin_user)

    delivery = ProvisioningDelivery.objects.filter(user=user).first()
    assert delivery is not None
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == (
        Status.FAILED,
        1,
        307,
    )
    assert "redirect" in delivery.last_error
    assert len(redirecting.received) == 1
    assert elsewhere.received == []


def test_a_private_address_is_refused_unless_the_app_may_call_private_networks(
    admin_user, user, scim_server, immediate
):
    # Positive path: an app allowed private addresses may use a loopback SCIM server.
    allowed = register_app(admin_user, name="Internal")
    with immediate():
        make_target(admin_user, allowed, scim_server.base_url)
    # An app that is not: its private or loopback SCIM URL is refused, as for logout URIs.
    public = register_app(admin_user, name="Public", private=False)
    for url in (scim_server.base_url, "https://10.1.2.3/scim/v2", "http://scim.example.com/v2"):
        with pytest.raises(ValidationError) as refused:
            save_target(target=ScimTarget(client=public, base_url=url), token="t", actor=admin_user)
        assert "base_url" in refused.value.message_dict
    assert not ScimTarget.objects.filter(client=public).exists()

    # Allowed once, not any more: the sender refuses at send time and nothing reaches the app.
    Client.objects.filter(pk=allowed.pk).update(allow_private_network=False)
    join(admin_user, user, allowed, immediate)
    delivery = ProvisioningDelivery.objects.get(user=user)
    assert delivery.status == Status.FAILED
    assert "refused" in delivery.last_error
    assert "private" in delivery.last_error
    assert delivery.last_status_code is None
    assert scim_server.users() == {}
    assert AuditEvent.objects.filter(
        type=AuditEvent.Type.PROVISIONING_FAILED, subject=user, client=allowed
    ).exists()


@pytest.mark.spec("RFC 7643", "3.3")
def test_an_answer_carrying_extensions_is_read_for_its_id_and_garbage_still_refused():
    """Apps echo the enterprise extension they were sent or add one of their own; only the
    core's id and userName are read from an answer, so neither fails the delivery."""
    enterprise = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
    own = "urn:example:params:scim:schemas:extension:wiki:2.0:User"
    answer = {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", enterprise, own],
        "id": "remote-7",
        "userName": "bjensen",
        enterprise: {"department": "Tour Operations"},
        own: {"editor": True},
    }
    assert resources.created_id(answer) == "remote-7"
    listing = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
        "totalResults": 1,
        "Resources": [answer],
    }
    assert resources.found_id(listing, user_name="BJensen") == "remote-7"

    for garbage in ({**answer, "id": None}, {"userName": 7}, ["not", "a", "user"], "<html>"):
        with pytest.raises(resources.Unreadable):
            resources.created_id(garbage)
