"""Losing an app ends it at once: its refresh tokens fail on their next use and the app is told
through back-channel logout, per session; the user's IdP session and their other apps go on.

Three apps, each with a back-channel receiver on loopback, and one user signed in to all three
in one IdP session through the real code flow: `wiki` assigned to the Engineering group (the
user is a member), `crm` assigned to the user directly, `mail` open to everyone. Here the
registry's changes (unassign, a switch to `assigned`); the group changes are in
tests/accounts/test_groups_revocation.py, which uses the helpers below.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.db import transaction
from django.test import Client as HttpClient

from accounts import services as accounts_services
from accounts.models import AuditEvent
from oauth_clients import services
from oauth_clients.models import BackchannelDelivery, Client
from tests.accounts.conftest import introspect_active, is_signed_in, userinfo_status
from tests.oidc.backchannel_helpers import (
    IMMEDIATE_TASKS,
    SPEC,
    Receiver,
    assert_logout_token_for_session,
    register_app,
    sign_in_to_app,
    unverified_claims,
)
from tests.oidc.conftest import basic_auth, post_form

pytestmark = pytest.mark.django_db


# --- Helpers shared with tests/accounts/test_groups_revocation.py -------------------------------


@dataclass
class SignedInApp:
    """A registered app, its back-channel receiver and the tokens the user got from it."""

    client: Client
    receiver: Receiver
    tokens: dict[str, Any]

    @property
    def sid(self) -> str:
        return str(unverified_claims(self.tokens["id_token"])["sid"])


def refresh(app: SignedInApp) -> Any:
    """The app uses its refresh token at the token endpoint (RFC 6749 §6); a new pair replaces
    the app's tokens when it works."""
    response = post_form(
        HttpClient(),
        "/o/token/",
        {"grant_type": "refresh_token", "refresh_token": app.tokens["refresh_token"]},
        HTTP_AUTHORIZATION=basic_auth(app.client.client_id, app.client.test_secret),
    )
    if response.status_code == HTTPStatus.OK:
        app.tokens = {**app.tokens, **response.json()}
    return response


def assert_app_ended(app: SignedInApp, user: Any, *, reason: str) -> None:
    """The app got one logout token for the user's session (sub, sid, aud, events; verified
    against our JWKS); its tokens are dead; the audit row says why."""
    (received,) = app.receiver.received
    claims = assert_logout_token_for_session(received, app.client, id_token=app.tokens["id_token"])
    assert (claims["sub"], claims["sid"], claims["aud"]) == (
        str(user.pk),
        app.sid,
        app.client.client_id,
    )
    delivery = BackchannelDelivery.objects.get(client=app.client)
    assert (delivery.sid, delivery.sub, delivery.reason) == (app.sid, str(user.pk), reason)
    assert delivery.status == BackchannelDelivery.Status.SENT
    assert userinfo_status(app.tokens["access_token"]) == HTTPStatus.UNAUTHORIZED
    assert not introspect_active(app.client, app.tokens["refresh_token"])
    response = refresh(app)
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json()["error"] == "invalid_grant"
    event = AuditEvent.objects.get(type=AuditEvent.Type.TOKEN_REVOKED, client=app.client)
    assert event.subject == user
    assert event.extra["reason"] == reason
    assert event.extra["refresh_tokens_revoked"] == 1
    assert event.extra["access_tokens_deleted"] == 1
    assert event.extra["backchannel_logouts_queued"] == 1


def assert_app_goes_on(app: SignedInApp) -> None:
    """Nothing was sent to the app and its tokens work (the refresh token too)."""
    assert app.receiver.received == []
    assert not BackchannelDelivery.objects.filter(client=app.client).exists()
    assert not AuditEvent.objects.filter(
        type=AuditEvent.Type.TOKEN_REVOKED, client=app.client
    ).exists()
    assert userinfo_status(app.tokens["access_token"]) == HTTPStatus.OK
    assert refresh(app).status_code == HTTPStatus.OK


@pytest.fixture(autouse=True)
def _immediate_tasks(settings):
    settings.TASKS = IMMEDIATE_TASKS


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


@pytest.fixture
def engineering(admin_user) -> Group:
    return accounts_services.create_group(name="Engineering", actor=admin_user)


@pytest.fixture
def browser(user) -> HttpClient:
    """The user's IdP session (Django's `user_logged_in` gives it its sid)."""
    browser = HttpClient()
    browser.force_login(user)
    return browser


@pytest.fixture
def make_app(receivers, admin_user) -> Callable[..., Client]:
    """An app with a back-channel receiver, assigned to `groups` and `users` (then limited to
    them) or, with neither, open to everyone."""

    def make(name: str, *, groups=(), users=(), **fields: Any) -> Client:
        receiver = receivers()
        client = register_app(name, receiver, **fields)
        client.test_receiver = receiver
        for group in groups:
            services.assign(client=client, group=group, actor=admin_user)
        for person in users:
            services.assign(client=client, user=person, actor=admin_user)
        if groups or users:
            services.set_access_policy(
                client=client, policy=Client.AccessPolicy.ASSIGNED, actor=admin_user
            )
        return client

    return make


def signed_in(browser: HttpClient, client: Client) -> SignedInApp:
    return SignedInApp(
        client=client, receiver=client.test_receiver, tokens=sign_in_to_app(browser, client)
    )


@pytest.fixture
def apps(user, admin_user, engineering, browser, make_app) -> dict[str, SignedInApp]:
    """wiki (assigned to Engineering, the user a member), crm (assigned to the user), mail
    (open): the user signed in to each in one IdP session; every token works."""
    accounts_services.add_members(group=engineering, users=[user], actor=admin_user)
    clients = {
        "wiki": make_app("Wiki", groups=[engineering]),
        "crm": make_app("CRM", users=[user]),
        "mail": make_app("Mail"),
    }
    signed = {name: signed_in(browser, client) for name, client in clients.items()}
    assert len({app.sid for app in signed.values()}) == 1
    for app in signed.values():
        assert userinfo_status(app.tokens["access_token"]) == HTTPStatus.OK
    return signed


# --- The registry's changes ---------------------------------------------------------------------


@pytest.mark.spec(SPEC, "2.7")
def test_unassigning_a_user_ends_that_app_only(
    apps, user, admin_user, browser, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        change = services.unassign(client=apps["crm"].client, user=user, actor=admin_user)

    assert change.users_losing_access == [user.pk]
    assert_app_ended(apps["crm"], user, reason="unassigned")
    assert AuditEvent.objects.get(type=AuditEvent.Type.TOKEN_REVOKED).actor == admin_user
    assert_app_goes_on(apps["wiki"])
    assert_app_goes_on(apps["mail"])
    assert is_signed_in(browser)  # they lose one app, not their account


@pytest.mark.spec(SPEC, "2.7")
def test_limiting_an_open_app_to_its_assignments_ends_it_for_everyone_else(
    apps, user, admin_user, browser, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        change = services.set_access_policy(
            client=apps["mail"].client, policy=Client.AccessPolicy.ASSIGNED, actor=admin_user
        )

    assert change.users_losing_access == [user.pk]
    assert_app_ended(apps["mail"], user, reason="access_policy")
    assert_app_goes_on(apps["wiki"])
    assert_app_goes_on(apps["crm"])
    assert is_signed_in(browser)


def test_unassigning_a_group_leaves_a_user_assigned_directly_signed_in(
    apps, user, admin_user, engineering, django_capture_on_commit_callbacks
):
    services.assign(client=apps["wiki"].client, user=user, actor=admin_user)
    with django_capture_on_commit_callbacks(execute=True):
        services.unassign(client=apps["wiki"].client, group=engineering, actor=admin_user)

    for app in apps.values():
        assert_app_goes_on(app)


def test_access_taken_and_given_back_in_one_transaction_ends_nothing(
    apps, user, admin_user, engineering, django_capture_on_commit_callbacks
):
    """What counts is the state the transaction commits (a registry import takes an assignment
    away and gives another in one transaction)."""
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        services.unassign(client=apps["crm"].client, user=user, actor=admin_user)
        services.assign(client=apps["crm"].client, group=engineering, actor=admin_user)

    assert_app_goes_on(apps["crm"])


def test_an_app_without_a_back_channel_uri_loses_its_tokens_and_is_sent_nothing(
    user, admin_user, browser, make_app, django_capture_on_commit_callbacks
):
    client = make_app("Intranet", users=[user])
    Client.objects.filter(pk=client.pk).update(backchannel_logout_uri="")
    client.refresh_from_db()
    app = signed_in(browser, client)

    with django_capture_on_commit_callbacks(execute=True):
        services.unassign(client=client, user=user, actor=admin_user)

    assert refresh(app).json()["error"] == "invalid_grant"
    assert not BackchannelDelivery.objects.exists()
    event = AuditEvent.objects.get(type=AuditEvent.Type.TOKEN_REVOKED, client=client)
    assert event.extra["backchannel_logouts_queued"] == 0


@pytest.mark.spec(SPEC, "2.4")
def test_losing_an_app_again_in_the_same_session_is_told_by_subject(
    user, admin_user, browser, make_app, django_capture_on_commit_callbacks
):
    """The app heard about this IdP session's sid once already (one delivery per app and
    session): the second time it gets a logout token naming the user only, all their sessions
    at the app (§2.4)."""
    client = make_app("Tracker", users=[user], backchannel_logout_session_required=False)
    first = signed_in(browser, client)
    with django_capture_on_commit_callbacks(execute=True):
        services.unassign(client=client, user=user, actor=admin_user)
    services.assign(client=client, user=user, actor=admin_user)
    second = signed_in(browser, client)
    assert second.sid == first.sid

    with django_capture_on_commit_callbacks(execute=True):
        services.unassign(client=client, user=user, actor=admin_user)

    told = list(BackchannelDelivery.objects.filter(client=client).order_by("pk"))
    assert [(d.sub, d.sid) for d in told] == [(str(user.pk), first.sid), (str(user.pk), "")]
    last = unverified_claims(first.receiver.received[-1].logout_token)
    assert last["sub"] == str(user.pk)
    assert "sid" not in last
    assert refresh(second).json()["error"] == "invalid_grant"
