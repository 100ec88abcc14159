"""The administrator's side: the token kept secret, the dry run, sync now, the command, and
deprovisioning by DELETE."""

from __future__ import annotations

import json
from http import HTTPStatus
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client as HttpClient

from accounts import services as account_services
from accounts.models import AuditEvent
from provisioning import crypto
from provisioning.models import ProvisioningDelivery, ScimTarget
from provisioning.planning import plan_target
from tests.oidc.backchannel_helpers import IMMEDIATE_TASKS
from tests.provisioning.conftest import (
    SERVER_TOKEN,
    assigned_group,
    make_target,
    register_app,
)

ADD_URL = "/admin/provisioning/scimtarget/add/"


@pytest.fixture
def committed(settings, django_capture_on_commit_callbacks):
    settings.TASKS = IMMEDIATE_TASKS
    return lambda: django_capture_on_commit_callbacks(execute=True)


@pytest.fixture
def browser(admin_user):
    browser = HttpClient()
    browser.force_login(admin_user)
    return browser


def form(app, base_url, **overrides):
    return {
        "client": app.pk,
        "base_url": base_url,
        "token": SERVER_TOKEN,
        "enabled": "on",
        "user_attributes": ["name", "emails"],
        "deprovision": "deactivate",
        **overrides,
    }


def test_the_token_is_stored_encrypted_and_never_shown_again_after_saving(
    admin_user, browser, scim_server
):
    app = register_app(admin_user)
    response = browser.post(ADD_URL, form(app, scim_server.base_url))
    assert response.status_code == HTTPStatus.FOUND, response.content.decode()[:2000]

    target = ScimTarget.objects.get(client=app)
    assert SERVER_TOKEN not in target.token_encrypted
    assert crypto.decrypt_token(target.token_encrypted) == SERVER_TOKEN
    page = browser.get(f"/admin/provisioning/scimtarget/{target.pk}/change/")
    assert page.status_code == HTTPStatus.OK
    assert SERVER_TOKEN not in page.content.decode()
    assert "set (hidden)" in page.content.decode()
    assert SERVER_TOKEN not in browser.get("/admin/provisioning/scimtarget/").content.decode()
    configured = AuditEvent.objects.get(type=AuditEvent.Type.PROVISIONING_CONFIGURED)
    assert configured.extra["token_changed"] is True
    assert SERVER_TOKEN not in json.dumps(configured.extra)

    # Saved again without a token: the stored one is kept (still never shown).
    response = browser.post(
        f"/admin/provisioning/scimtarget/{target.pk}/change/",
        {k: v for k, v in form(app, scim_server.base_url, token="").items() if k != "client"},
    )
    assert response.status_code == HTTPStatus.FOUND
    target.refresh_from_db()
    assert crypto.decrypt_token(target.token_encrypted) == SERVER_TOKEN


def test_a_target_without_a_token_or_with_a_private_url_is_a_form_error(
    admin_user, browser, public_dns
):
    app = register_app(admin_user, private=False)
    assert browser.post(ADD_URL, form(app, "https://scim.example.com/v2")).status_code == (
        HTTPStatus.FOUND
    )
    other = register_app(admin_user, name="Chat", private=False)
    for bad in (
        form(other, "https://scim.example.com/v2", token=""),
        form(other, "https://192.168.1.20/scim/v2"),
        form(other, "javascript:alert(1)"),
    ):
        response = browser.post(ADD_URL, bad)
        assert response.status_code == HTTPStatus.OK
        assert response.context["adminform"].form.errors
    assert not ScimTarget.objects.filter(client=other).exists()

    # Editing a saved target: the same rules, a form error (never a 500), nothing changed.
    target = ScimTarget.objects.get(client=app)
    edit = {k: v for k, v in form(app, "https://10.0.0.7/scim/v2").items() if k != "client"}
    response = browser.post(f"/admin/provisioning/scimtarget/{target.pk}/change/", edit)
    assert response.status_code == HTTPStatus.OK
    assert "base_url" in response.context["adminform"].form.errors
    target.refresh_from_db()
    assert target.base_url == "https://scim.example.com/v2"


def test_the_dry_run_shows_what_would_change_and_sends_nothing_until_sync_now(
    admin_user, user, browser, scim_server, committed
):
    app = register_app(admin_user)
    group = assigned_group(admin_user, app)
    account_services.add_members(group=group, users=[user], actor=admin_user)
    target = make_target(admin_user, app, scim_server.base_url)  # its sync never committed

    page = browser.get(f"/admin/provisioning/scimtarget/{target.pk}/dry-run/")
    assert page.status_code == HTTPStatus.OK
    assert [(c.user.username, c.action) for c in page.context["changes"]] == [("alice", "create")]
    out = StringIO()
    call_command("provision", "sync", app.client_id, "--dry-run", stdout=out)
    assert "create\talice\t-" in out.getvalue()
    assert scim_server.users() == {}
    assert not ProvisioningDelivery.objects.exists()

    with committed():
        response = browser.post(f"/admin/provisioning/scimtarget/{target.pk}/dry-run/")
    assert response.status_code == HTTPStatus.FOUND
    assert browser.get(response["Location"]).context["changes"] == []
    assert scim_server.users()["alice"]["active"] is True

    # The command (and the list's "sync now" action) reconcile too: nothing left to change.
    out = StringIO()
    call_command("provision", "sync", "Wiki", stdout=out)
    assert out.getvalue().startswith("0 ")
    listing = browser.post(
        "/admin/provisioning/scimtarget/",
        {"action": "sync_now", "_selected_action": [target.pk]},
    )
    assert listing.status_code == HTTPStatus.FOUND


def test_a_target_configured_to_delete_deletes_leavers(admin_user, user, scim_server, committed):
    app = register_app(admin_user)
    with committed():
        group = assigned_group(admin_user, app)
        make_target(admin_user, app, scim_server.base_url, deprovision="delete")
    with committed():
        account_services.add_members(group=group, users=[user], actor=admin_user)
    assert "alice" in scim_server.users()

    with committed():
        account_services.remove_members(group=group, users=[user], actor=admin_user)

    assert scim_server.users() == {}
    delivery = ProvisioningDelivery.objects.filter(user=user).order_by("-pk").first()
    assert delivery is not None
    assert (delivery.action, delivery.status, delivery.last_status_code) == (
        "delete",
        "sent",
        HTTPStatus.NO_CONTENT,
    )


def test_an_unreadable_token_fails_the_delivery_and_nothing_is_sent(
    admin_user, user, scim_server, committed, settings
):
    app = register_app(admin_user)
    with committed():
        group = assigned_group(admin_user, app)
        make_target(admin_user, app, scim_server.base_url)
    # Positive path: the token reads with the key it was stored under.
    settings.SECRET_KEY_FALLBACKS = [settings.SECRET_KEY]
    settings.SECRET_KEY = "a-rotated-secret-key-" + "x" * 40
    target = ScimTarget.objects.get()
    assert crypto.decrypt_token(target.token_encrypted) == SERVER_TOKEN  # via the fallback
    settings.IDP_PROVISIONING_KEYS = ["hWk2s8bbc1YfzP1aZJ7u0zvqXy2Jb0hKcGqZ0f1y3sI="]
    with pytest.raises(crypto.TokenUnreadable):
        crypto.decrypt_token(target.token_encrypted)

    with committed():
        account_services.add_members(group=group, users=[user], actor=admin_user)

    delivery = ProvisioningDelivery.objects.get(user=user)
    assert delivery.status == "failed"
    assert "cannot be read" in delivery.last_error
    assert scim_server.users() == {}


def test_the_dry_run_reads_who_may_use_the_app_once_whatever_their_number(
    admin_user, scim_server, django_assert_max_num_queries
):
    app = register_app(admin_user)
    group = assigned_group(admin_user, app)
    people = get_user_model().objects.bulk_create(
        get_user_model()(username=f"person{i:03}", email=f"p{i}@example.com") for i in range(60)
    )
    account_services.add_members(group=group, users=people, actor=admin_user)
    target = make_target(admin_user, app, scim_server.base_url)

    with django_assert_max_num_queries(10):
        changes = plan_target(target=target)

    assert [change.action for change in changes] == ["create"] * 60
