"""Acceptance: joiners, movers and leavers of an app reach its SCIM server.

The app's SCIM server is the python-scim reference server on 127.0.0.1; the IdP's changes go
through the real database queue and one run of its real worker each time; the assertions read
back what the app's server stores.
"""

from __future__ import annotations

from http import HTTPStatus
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth import get_user_model
from django.test import Client as HttpClient
from django.test import RequestFactory
from django.urls import reverse

from accounts import services as account_services
from accounts.models import AuditEvent
from oauth_clients import services as client_services
from oauth_clients.models import Client
from provisioning.models import ProvisionedUser, ProvisioningDelivery
from scim.services import issue_token
from tests.accounts.conftest import OVERVIEW_URL, sign_in
from tests.oidc.backchannel_helpers import DATABASE_TASKS, IMMEDIATE_TASKS
from tests.oidc.conftest import basic_auth, pkce_pair, post_form
from tests.provisioning.conftest import (
    assigned_group,
    make_target,
    register_app,
    run_worker_once,
)
from tests.scim.conftest import ScimClient, new_user

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
Status = ProvisioningDelivery.Status
REDIRECT_URI = "https://wiki.example.com/oidc/callback"
FIRST_PASSWORD = "first day " + "tulip lantern orbit"


def admin_request(admin_user):
    request = RequestFactory().post("/admin/accounts/user/")
    request.user = admin_user
    return request


@pytest.mark.spec("RFC 7644", "3.3")
@pytest.mark.spec("RFC 7644", "3.5.1")
@pytest.mark.spec("RFC 7644", "3.5.2")
@pytest.mark.django_db(transaction=True)
def test_joiner_mover_and_leavers_reach_the_apps_scim_server_within_one_worker_run(
    settings, admin_user, user, scim_server
):
    settings.TASKS = DATABASE_TASKS
    app = register_app(admin_user)
    group = assigned_group(admin_user, app)
    target = make_target(admin_user, app, scim_server.base_url)
    bob = get_user_model().objects.create_user("bob", "bob@example.com", None, first_name="Bob")
    account_services.add_members(group=group, users=[bob], actor=admin_user)
    run_worker_once()  # the first sync of the new target: bob, already a member
    assert set(scim_server.users()) == {"bob"}

    # Joiner: alice is put into the group assigned to the app.
    account_services.add_members(group=group, users=[user], actor=admin_user)
    run_worker_once()
    alice = scim_server.users()["alice"]
    assert alice["active"] is True
    assert alice["externalId"] == str(user.pk)
    assert alice["name"] == {
        "givenName": "Alice",
        "familyName": "Liddell",
        "formatted": "Alice Liddell",
    }
    assert alice["emails"] == [{"value": "alice@example.com", "type": "work", "primary": True}]
    row = ProvisionedUser.objects.get(target=target, user=user)
    assert row.remote_id == alice["id"]

    # Mover: an administrator changes her department.
    user.department = "Research"
    account_services.save_admin_changes(
        user=user,
        changed_fields=["department"],
        actor=admin_user,
        request=admin_request(admin_user),
    )
    run_worker_once()
    alice = scim_server.users()["alice"]
    assert alice[ENTERPRISE]["department"] == "Research"
    assert alice["id"] == row.remote_id  # the same account, replaced (PUT), not a second one

    # Leaver: removed from the group, her last assigned one.
    account_services.remove_members(group=group, users=[user], actor=admin_user)
    run_worker_once()
    assert scim_server.users()["alice"]["active"] is False
    assert scim_server.users()["bob"]["active"] is True

    # Leaver: an administrator deactivates bob.
    account_services.deactivate_user(user=bob, actor=admin_user, request=None)
    run_worker_once()
    assert scim_server.users()["bob"]["active"] is False

    actions = list(
        ProvisioningDelivery.objects.filter(status=Status.SENT)
        .order_by("pk")
        .values_list("user_repr", "action", "last_status_code")
    )
    assert actions == [
        ("bob", "create", HTTPStatus.CREATED),
        ("alice", "create", HTTPStatus.CREATED),
        ("alice", "update", HTTPStatus.OK),
        ("alice", "deactivate", HTTPStatus.NO_CONTENT),
        ("bob", "deactivate", HTTPStatus.NO_CONTENT),
    ]
    sent = AuditEvent.objects.filter(type=AuditEvent.Type.PROVISIONING_SENT, client=app)
    assert sorted(sent.values_list("subject__username", "extra__action")) == sorted(
        (who, action) for who, action, _status in actions
    )
    assert not AuditEvent.objects.filter(type=AuditEvent.Type.PROVISIONING_FAILED).exists()


def test_a_direct_assignment_and_unassignment_and_a_reactivation_reach_the_app(
    settings, django_capture_on_commit_callbacks, admin_user, user, scim_server
):
    """The app-wide path: an assignment change reconciles the whole app (who may use it)."""
    settings.TASKS = IMMEDIATE_TASKS
    app = register_app(admin_user)
    with django_capture_on_commit_callbacks(execute=True):
        make_target(admin_user, app, scim_server.base_url)
    with django_capture_on_commit_callbacks(execute=True):
        client_services.assign(client=app, user=user, actor=admin_user)
    assert scim_server.users()["alice"]["active"] is True

    with django_capture_on_commit_callbacks(execute=True):
        client_services.unassign(client=app, user=user, actor=admin_user)
    assert scim_server.users()["alice"]["active"] is False

    with django_capture_on_commit_callbacks(execute=True):
        client_services.assign(client=app, user=user, actor=admin_user)
    with django_capture_on_commit_callbacks(execute=True):
        account_services.deactivate_user(user=user, actor=admin_user)
    assert scim_server.users()["alice"]["active"] is False
    with django_capture_on_commit_callbacks(execute=True):
        account_services.activate_user(user=user, actor=admin_user)
    stored = scim_server.users()
    assert list(stored) == ["alice"]  # one account throughout, re-activated in place
    assert stored["alice"]["active"] is True


def test_leaving_one_of_two_assigned_groups_keeps_the_account_and_leaving_the_last_ends_it(
    settings, django_capture_on_commit_callbacks, admin_user, user, scim_server
):
    settings.TASKS = IMMEDIATE_TASKS
    app = register_app(admin_user)
    with django_capture_on_commit_callbacks(execute=True):
        first = assigned_group(admin_user, app, "wiki-editors")
        second = assigned_group(admin_user, app, "wiki-readers")
        make_target(admin_user, app, scim_server.base_url)
    with django_capture_on_commit_callbacks(execute=True):
        account_services.add_members(group=first, users=[user], actor=admin_user)
        account_services.add_members(group=second, users=[user], actor=admin_user)
    assert scim_server.users()["alice"]["active"] is True

    with django_capture_on_commit_callbacks(execute=True):
        account_services.remove_members(group=first, users=[user], actor=admin_user)
    assert scim_server.users()["alice"]["active"] is True  # still assigned through the other
    assert not ProvisioningDelivery.objects.filter(action="deactivate").exists()

    with django_capture_on_commit_callbacks(execute=True):
        account_services.remove_members(group=second, users=[user], actor=admin_user)
    assert scim_server.users()["alice"]["active"] is False


@pytest.mark.spec("RFC 7644", "3.3")
@pytest.mark.spec("RFC 7644", "3.5.2")
@pytest.mark.django_db(transaction=True)
def test_a_person_the_directory_onboards_signs_in_to_the_app_and_offboarding_reaches_everywhere(
    settings, admin_user, scim_server
):
    """The provisioning story end to end: the company directory (a SCIM client of the IdP) creates a
    person and puts them in the group assigned to an app; they sign in to the app with the
    code flow; the directory deactivates them; their session and tokens end at once and the
    app's own SCIM server (the reference server) holds the deactivation."""
    settings.TASKS = DATABASE_TASKS
    app, secret = client_services.register_client(
        actor=admin_user,
        kind=Client.Kind.WEB,
        name="Wiki",
        redirect_uris=[REDIRECT_URI],
        scopes=["openid", "profile", "email"],
        allow_private_network=True,  # its SCIM server is on 127.0.0.1
    )
    client_services.set_access_policy(client=app, policy="assigned", actor=admin_user)
    group = assigned_group(admin_user, app)
    make_target(admin_user, app, scim_server.base_url)
    _token, plain = issue_token(name="Okta")
    directory = ScimClient(HttpClient(), plain)

    # Joiner: the directory creates the person, with a first password, and adds them to the group.
    created = directory.post("Users", new_user("bjensen", password=FIRST_PASSWORD))
    assert created.status_code == HTTPStatus.CREATED, created.content
    person_id = created.json()["id"]
    added = directory.patch(
        f"Groups/{group.pk}", [{"op": "add", "path": "members", "value": [{"value": person_id}]}]
    )
    assert added.status_code in (HTTPStatus.OK, HTTPStatus.NO_CONTENT), added.content
    run_worker_once()
    assert scim_server.users()["bjensen"]["active"] is True

    # They sign in and the app gets its tokens (code flow with PKCE, consent given).
    browser = HttpClient()
    assert sign_in(browser, "bjensen", FIRST_PASSWORD).status_code == HTTPStatus.FOUND
    verifier, challenge = pkce_pair()
    params = {
        "response_type": "code",
        "client_id": app.client_id,
        "redirect_uri": REDIRECT_URI,
        "scope": "openid profile email",
        "state": "s-1",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    authorize = reverse("oauth2_provider:authorize")
    answer = browser.get(authorize, params)
    if answer.status_code == HTTPStatus.OK:  # the consent screen
        answer = browser.post(authorize, {**params, "allow": "Allow"})
    assert answer.status_code == HTTPStatus.FOUND, answer.content[:300]
    code = parse_qs(urlsplit(answer["Location"]).query)["code"][0]
    app_side = HttpClient()
    issued = post_form(
        app_side,
        reverse("oauth2_provider:token"),
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "code_verifier": verifier,
        },
        HTTP_AUTHORIZATION=basic_auth(app.client_id, secret),
    )
    assert issued.status_code == HTTPStatus.OK, issued.content
    tokens = issued.json()
    userinfo = reverse("oauth2_provider:user-info")
    bearer = {"HTTP_AUTHORIZATION": f"Bearer {tokens['access_token']}"}
    assert app_side.get(userinfo, **bearer).json()["preferred_username"] == "bjensen"
    assert browser.get(OVERVIEW_URL).status_code == HTTPStatus.OK

    # Leaver: the directory deactivates them.
    ended = directory.patch(f"Users/{person_id}", [{"op": "replace", "value": {"active": False}}])
    assert ended.status_code in (HTTPStatus.OK, HTTPStatus.NO_CONTENT), ended.content

    assert browser.get(OVERVIEW_URL).status_code == HTTPStatus.FOUND  # the session ended
    assert app_side.get(userinfo, **bearer).status_code == HTTPStatus.UNAUTHORIZED
    refreshed = post_form(
        app_side,
        reverse("oauth2_provider:token"),
        {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        HTTP_AUTHORIZATION=basic_auth(app.client_id, secret),
    )
    assert refreshed.status_code == HTTPStatus.BAD_REQUEST
    assert refreshed.json()["error"] == "invalid_grant"
    run_worker_once()
    assert scim_server.users()["bjensen"]["active"] is False
    person = get_user_model().objects.get(pk=person_id)
    assert AuditEvent.objects.get(
        type=AuditEvent.Type.USER_DEACTIVATED, subject=person
    ).actor_repr == ("scim:Okta")
    assert list(
        ProvisioningDelivery.objects.filter(user_repr="bjensen")
        .order_by("pk")
        .values_list("action", "status")
    ) == [("create", Status.SENT), ("deactivate", Status.SENT)]


@pytest.mark.parametrize("deprovision", ["deactivate", "delete"])
def test_a_person_deleted_here_is_deactivated_or_deleted_at_the_app(
    settings, django_capture_on_commit_callbacks, admin_user, user, scim_server, deprovision
):
    """Deleting a person takes their links to the apps' accounts with them: the departure is
    queued inside the deletion, carrying the app's account id."""
    settings.TASKS = IMMEDIATE_TASKS
    app = register_app(admin_user)
    with django_capture_on_commit_callbacks(execute=True):
        group = assigned_group(admin_user, app)
        make_target(admin_user, app, scim_server.base_url, deprovision=deprovision)
    with django_capture_on_commit_callbacks(execute=True):
        account_services.add_members(group=group, users=[user], actor=admin_user)
    remote_id = scim_server.users()["alice"]["id"]  # positive path: provisioned first

    with django_capture_on_commit_callbacks(execute=True):
        account_services.delete_user(user=user, actor=admin_user)

    stored = scim_server.users()
    if deprovision == "delete":
        assert "alice" not in stored
    else:
        assert stored["alice"]["active"] is False
        assert stored["alice"]["id"] == remote_id
    departure = ProvisioningDelivery.objects.get(reason="user_deleted")
    assert (departure.user, departure.user_repr, departure.remote_id) == (None, "alice", remote_id)
    assert (departure.action, departure.status) == (deprovision, Status.SENT)
    assert AuditEvent.objects.filter(
        type=AuditEvent.Type.PROVISIONING_SENT, extra__action=deprovision, client=app
    ).exists()
