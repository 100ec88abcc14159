"""The directory in the admin: each user's source, the record of each sync, "Test connection"
and "Sync now" (superusers only, by POST)."""

from __future__ import annotations

from http import HTTPStatus

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from directory.models import DirectorySync
from directory.services import sync_directory
from tests.directory.conftest import configure

pytestmark = pytest.mark.django_db
User = get_user_model()
SYNCS_URL = "/admin/directory/directorysync/"


@pytest.fixture
def admin_client(admin_user) -> Client:
    client = Client()
    client.force_login(admin_user)
    return client


def messages_of(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def test_the_user_list_shows_each_users_source(admin_client, directory, admin_user):
    sync_directory(trigger="test")

    page = admin_client.get("/admin/accounts/user/?source=directory")
    assert page.status_code == HTTPStatus.OK
    listed = {user.username for user in page.context["cl"].result_list}
    assert "alice" in listed
    assert admin_user.username not in listed
    assert "Company directory" in page.content.decode()

    local = admin_client.get("/admin/accounts/user/?source=local")
    assert {user.username for user in local.context["cl"].result_list} == {admin_user.username}

    alice = User.objects.get(username="alice")
    change = admin_client.get(f"/admin/accounts/user/{alice.pk}/change/").content.decode()
    assert "uid=alice,ou=people,dc=example,dc=com at ldap://127.0.0.1" in change


def test_the_last_sync_is_listed_with_its_counts_and_errors(admin_client, directory):
    run = sync_directory(trigger="test")

    page = admin_client.get(SYNCS_URL)
    assert page.status_code == HTTPStatus.OK
    assert list(page.context["cl"].result_list) == [run]
    detail = admin_client.get(f"{SYNCS_URL}{run.pk}/change/")
    assert detail.status_code == HTTPStatus.OK
    assert str(run.users_created) in detail.content.decode()


def test_test_connection_says_whether_the_directory_answers(admin_client, directory, settings):
    ok = admin_client.post(f"{SYNCS_URL}test-connection/", follow=True)
    assert messages_of(ok) == [
        f"Connected to {directory.url.rstrip('/')} as the service account; people found."
    ]

    settings.IDP_LDAP_BIND_PASSWORD = "not the service password"
    refused = admin_client.post(f"{SYNCS_URL}test-connection/", follow=True)
    (message,) = messages_of(refused)
    assert "did not answer as expected: Invalid credentials" in message
    assert "not the service password" not in refused.content.decode()


def test_test_connection_reports_a_stopped_directory(admin_client, settings, slapd):
    configure(settings, slapd, IDP_LDAP_URL="ldap://127.0.0.1:1/")

    (message,) = messages_of(admin_client.post(f"{SYNCS_URL}test-connection/", follow=True))

    assert "Can't contact LDAP server" in message


def test_sync_now_queues_a_run(admin_client, directory, settings):
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}

    response = admin_client.post(f"{SYNCS_URL}sync-now/", follow=True)

    assert response.status_code == HTTPStatus.OK
    assert DirectorySync.objects.get().trigger == "admin"


def test_only_a_superuser_acts_and_only_by_post(client, directory, admin_client, password_hash):
    staff = User.objects.create_user("helpdesk", "hd@example.com", None, is_staff=True)
    from django.contrib.auth.models import Permission

    staff.user_permissions.add(Permission.objects.get(codename="view_directorysync"))
    client.force_login(staff)

    refused = client.post(f"{SYNCS_URL}sync-now/", follow=True)
    assert messages_of(refused) == ["Only a superuser may start a directory sync."]
    by_get = admin_client.get(f"{SYNCS_URL}test-connection/", follow=True)
    assert messages_of(by_get) == ["Only a superuser may test the directory connection."]
    assert not DirectorySync.objects.exists()
