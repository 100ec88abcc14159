"""`manage.py ldap_sync` against a real slapd (directory/services.py `sync_directory`):
people and groups created, updated and deactivated in batches through accounts' services,
one DirectorySync row per run."""

from __future__ import annotations

from io import StringIO

import ldap
import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.core.management.base import CommandError

from accounts.groups import effective_group_ids
from accounts.models import AuditEvent, GroupProfile
from directory.models import DirectoryAccount, DirectoryGroup, DirectorySync
from directory.services import sync_directory
from tests.conftest import with_password
from tests.directory.conftest import (
    ALICE_GROUPS,
    ALICE_PASSWORD,
    add_person,
    configure,
    delete_person,
    lock_person,
    unlock_person,
)
from tests.directory.slapd import group_dn, user_dn

pytestmark = pytest.mark.django_db
User = get_user_model()


def names(group_ids) -> set[str]:
    return set(Group.objects.filter(pk__in=group_ids).values_list("name", flat=True))


def people_in(server) -> int:
    connection = server.connect()
    found = connection.search_s("ou=people,dc=example,dc=com", ldap.SCOPE_ONELEVEL, "(uid=*)")
    connection.unbind_s()
    return len(found)


def test_the_sync_mirrors_people_groups_and_nesting(directory, settings):
    settings.IDP_LDAP_PAGE_SIZE = 2  # several pages and several batches

    run = sync_directory(trigger="test")

    assert run.status == DirectorySync.Status.SUCCEEDED, run.errors
    assert run.users_seen == people_in(directory)
    assert run.users_created == run.users_seen
    alice = User.objects.get(username="alice")
    assert (alice.employee_id, alice.department) == ("E-1001", "Finance")
    assert names(effective_group_ids(user_id=alice.pk)) == ALICE_GROUPS
    # The directory's nesting is the groups' nesting here (GroupClosure kept by the services).
    finance_team = Group.objects.get(name="finance-team")
    assert GroupProfile.objects.get(group=finance_team).parent.name == "auditors"
    assert GroupProfile.objects.get(group__name="finance").parent.name == "everyone"
    assert DirectoryGroup.objects.get(group=finance_team).dn == group_dn("finance-team")
    # bob is locked in the directory: mirrored, but not active.
    bob = User.objects.get(username="bob")
    assert not bob.is_active
    assert DirectoryAccount.objects.get(user=bob).deactivated_by_directory
    assert run.groups_created == 5
    assert AuditEvent.objects.filter(
        type=AuditEvent.Type.GROUP_MEMBER_ADDED, subject=alice
    ).exists()

    again = sync_directory(trigger="test")

    assert again.status == DirectorySync.Status.SUCCEEDED
    assert (again.users_created, again.users_updated, again.groups_created) == (0, 0, 0)
    assert (again.memberships_added, again.memberships_removed, again.users_deactivated) == (
        0,
        0,
        0,
    )


def test_a_local_account_of_a_directory_name_is_reported_never_linked(directory, password_hash):
    local = with_password(
        User.objects.create_user("admin", "root@example.com", None), password_hash
    )

    run = sync_directory(trigger="test")

    assert run.status == DirectorySync.Status.PARTIAL
    assert any("a local account is named admin" in error for error in run.errors)
    assert not DirectoryAccount.objects.filter(user=local).exists()
    local.refresh_from_db()
    assert local.is_active
    assert local.has_usable_password()


def test_disabled_and_removed_people_are_deactivated_with_their_sessions(client, directory):
    add_person(directory, "fred", "fred directory password", "vpn-users")
    add_person(directory, "gina", "gina directory password")
    for uid in ("fred", "gina"):
        other = client.__class__()
        assert (
            other.post(
                "/accounts/login/", {"login": uid, "password": f"{uid} directory password"}
            ).status_code
            == 302
        )
    fred, gina = User.objects.get(username="fred"), User.objects.get(username="gina")
    sync_directory(trigger="test")  # everyone else as the directory has them
    lock_person(directory, "fred")
    delete_person(directory, "gina")
    try:
        run = sync_directory(trigger="test")
    finally:
        unlock_person(directory, "fred")

    assert run.users_deactivated == 2
    for user, reason in ((fred, "disabled_in_directory"), (gina, "removed_from_directory")):
        user.refresh_from_db()
        assert not user.is_active
        deactivated = AuditEvent.objects.get(type=AuditEvent.Type.USER_DEACTIVATED, subject=user)
        assert deactivated.actor is None
        assert deactivated.extra["sessions_ended"] == 1
        assert AuditEvent.objects.filter(
            type=AuditEvent.Type.USER_CHANGED, subject=user, extra__reason=reason
        ).exists()

    # fred enabled again in the directory: the next sync activates him again.
    again = sync_directory(trigger="test")

    fred.refresh_from_db()
    assert fred.is_active
    assert again.users_activated == 1
    assert not DirectoryAccount.objects.get(user=fred).deactivated_by_directory


def test_someone_an_administrator_deactivated_stays_deactivated(directory, admin_user):
    from accounts.services import deactivate_user

    sync_directory(trigger="test")
    carol = User.objects.get(username="carol")
    deactivate_user(user=carol, actor=admin_user)

    sync_directory(trigger="test")

    carol.refresh_from_db()
    assert not carol.is_active


def test_leaving_a_directory_group_ends_the_membership_here(directory):
    add_person(directory, "hank", "hank directory password", "vpn-users")
    sync_directory(trigger="test")
    hank = User.objects.get(username="hank")
    assert names(effective_group_ids(user_id=hank.pk)) == {"vpn-users"}
    connection = directory.connect()
    connection.modify_s(
        group_dn("vpn-users"), [(ldap.MOD_DELETE, "member", [user_dn("hank").encode()])]
    )
    connection.unbind_s()

    run = sync_directory(trigger="test")

    assert run.memberships_removed == 1
    assert names(effective_group_ids(user_id=hank.pk)) == set()
    assert AuditEvent.objects.filter(
        type=AuditEvent.Type.GROUP_MEMBER_REMOVED, subject=hank
    ).exists()


def test_a_group_deleted_in_the_directory_loses_its_members_here(directory):
    add_person(directory, "jack", "jack directory password")
    connection = directory.connect()
    connection.add_s(
        group_dn("pilot-team"),
        [
            ("objectClass", [b"groupOfNames"]),
            ("cn", [b"pilot-team"]),
            ("member", [user_dn("jack").encode()]),
        ],
    )
    sync_directory(trigger="test")
    jack = User.objects.get(username="jack")
    assert names(effective_group_ids(user_id=jack.pk)) == {"pilot-team"}
    connection.delete_s(group_dn("pilot-team"))
    connection.unbind_s()

    run = sync_directory(trigger="test")

    assert run.memberships_removed == 1
    assert names(effective_group_ids(user_id=jack.pk)) == set()


def test_a_directory_that_cannot_be_read_changes_nothing(directory, settings, slapd):
    sync_directory(trigger="test")
    active = set(User.objects.filter(is_active=True).values_list("pk", flat=True))
    settings.IDP_LDAP_URL = "ldap://127.0.0.1:1/"

    run = sync_directory(trigger="test")

    assert run.status == DirectorySync.Status.FAILED
    assert "could not be read" in run.errors[0]
    assert set(User.objects.filter(is_active=True).values_list("pk", flat=True)) == active


def test_a_directory_that_lists_nobody_deactivates_nobody(directory, settings):
    sync_directory(trigger="test")
    settings.IDP_LDAP_USER_FILTER = "(uid=%(user)s-nobody-has-this)"

    run = sync_directory(trigger="test")

    assert run.status == DirectorySync.Status.FAILED
    assert User.objects.get(username="alice").is_active


def test_the_command_runs_the_sync_and_reports_its_counts(directory):
    out = StringIO()

    call_command("ldap_sync", stdout=out)

    assert "Directory sync succeeded" in out.getvalue()
    assert DirectorySync.objects.get().trigger == "command"


def test_the_command_hands_the_sync_to_the_worker(directory, settings):
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}

    call_command("ldap_sync", "--enqueue", stdout=StringIO())

    assert DirectorySync.objects.get().status == DirectorySync.Status.SUCCEEDED


def test_the_command_refuses_when_no_directory_is_configured(settings):
    settings.IDP_LDAP_URL = ""

    with pytest.raises(CommandError, match="IDP_LDAP_URL"):
        call_command("ldap_sync", stdout=StringIO())


def test_the_command_fails_loudly_when_the_directory_is_down(settings, slapd):
    configure(settings, slapd, IDP_LDAP_URL="ldap://127.0.0.1:1/")

    with pytest.raises(CommandError, match="failed"):
        call_command("ldap_sync", stdout=StringIO(), stderr=StringIO())
    assert DirectorySync.objects.get().status == DirectorySync.Status.FAILED


def test_a_signed_in_directory_user_and_the_sync_agree(client, directory):
    assert (
        client.post("/accounts/login/", {"login": "alice", "password": ALICE_PASSWORD}).status_code
        == 302
    )

    alice = User.objects.get(username="alice")
    memberships = AuditEvent.objects.filter(
        subject=alice,
        type__in=[AuditEvent.Type.GROUP_MEMBER_ADDED, AuditEvent.Type.GROUP_MEMBER_REMOVED],
    )
    at_sign_in = memberships.count()

    run = sync_directory(trigger="test")

    assert run.status == DirectorySync.Status.SUCCEEDED
    assert memberships.count() == at_sign_in, "the sign-in already set alice's groups"
    assert names(effective_group_ids(user_id=alice.pk)) == ALICE_GROUPS
    assert User.objects.filter(username__iexact="alice").count() == 1
