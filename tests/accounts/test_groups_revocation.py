"""A group change that takes an app away ends it at once: a member removed, the group deleted,
a subgroup moved out from under the assigned group. The app's refresh token fails on its next
use and the app gets a back-channel logout for the session; the IdP session and the user's
other apps go on. The world (three apps, one signed-in user) is tests/clients'
`test_access_revocation.py`.
"""

from __future__ import annotations

import pytest

from accounts import services
from accounts.models import AuditEvent
from oauth_clients import services as client_services
from oauth_clients.models import BackchannelDelivery
from provisioning.receivers import flush as provisioning_flush
from tests.accounts.conftest import is_signed_in
from tests.clients import test_access_revocation as world
from tests.clients.test_access_revocation import assert_app_ended, assert_app_goes_on, signed_in
from tests.oidc.backchannel_helpers import SPEC

pytestmark = pytest.mark.django_db

# The world's fixtures, used here as they are.
_immediate_tasks = world._immediate_tasks
receivers = world.receivers
engineering = world.engineering
browser = world.browser
make_app = world.make_app
apps = world.apps


@pytest.mark.spec(SPEC, "2.7")
def test_removing_a_member_from_the_assigned_group_ends_that_app_only(
    apps, user, admin_user, engineering, browser, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        services.remove_members(group=engineering, users=[user], actor=admin_user)

    assert_app_ended(apps["wiki"], user, reason="removed_from_group")
    event = AuditEvent.objects.get(type=AuditEvent.Type.TOKEN_REVOKED)
    assert (event.actor, event.client) == (admin_user, apps["wiki"].client)
    assert AuditEvent.objects.filter(
        type=AuditEvent.Type.GROUP_MEMBER_REMOVED, subject=user
    ).exists()
    assert_app_goes_on(apps["crm"])
    assert_app_goes_on(apps["mail"])
    assert is_signed_in(browser)


@pytest.mark.spec(SPEC, "2.7")
def test_deleting_the_assigned_group_ends_that_app(
    apps, user, admin_user, engineering, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        services.delete_group(group=engineering, actor=admin_user)

    assert_app_ended(apps["wiki"], user, reason="group_deleted")
    assert_app_goes_on(apps["crm"])
    assert_app_goes_on(apps["mail"])


@pytest.mark.spec(SPEC, "2.7")
def test_moving_a_subgroup_out_from_under_the_assigned_group_ends_that_app(
    user, admin_user, engineering, browser, make_app, django_capture_on_commit_callbacks
):
    backend = services.create_group(name="Backend", parent=engineering, actor=admin_user)
    services.add_members(group=backend, users=[user], actor=admin_user)
    wiki = signed_in(browser, make_app("Wiki", groups=[engineering]))
    mail = signed_in(browser, make_app("Mail"))

    with django_capture_on_commit_callbacks(execute=True):
        services.set_group_parent(group=backend, parent=None, actor=admin_user)

    assert_app_ended(wiki, user, reason="group_moved")
    assert_app_goes_on(mail)
    assert is_signed_in(browser)


def test_moving_a_subgroup_deeper_inside_the_assigned_group_keeps_the_app(
    user, admin_user, engineering, browser, make_app, django_capture_on_commit_callbacks
):
    backend = services.create_group(name="Backend", parent=engineering, actor=admin_user)
    platform = services.create_group(name="Platform", parent=engineering, actor=admin_user)
    services.add_members(group=backend, users=[user], actor=admin_user)
    wiki = signed_in(browser, make_app("Wiki", groups=[engineering]))

    with django_capture_on_commit_callbacks(execute=True):
        services.set_group_parent(group=backend, parent=platform, actor=admin_user)

    assert_app_goes_on(wiki)


def test_a_member_still_in_another_assigned_group_keeps_the_app(
    user, admin_user, engineering, browser, make_app, django_capture_on_commit_callbacks
):
    sales = services.create_group(name="Sales", actor=admin_user)
    services.add_members(group=engineering, users=[user], actor=admin_user)
    services.add_members(group=sales, users=[user], actor=admin_user)
    wiki = signed_in(browser, make_app("Wiki", groups=[engineering, sales]))

    with django_capture_on_commit_callbacks(execute=True):
        services.remove_members(group=engineering, users=[user], actor=admin_user)

    assert_app_goes_on(wiki)


def test_moving_a_user_between_two_assigned_groups_in_one_change_keeps_the_app(
    user, admin_user, engineering, browser, make_app, django_capture_on_commit_callbacks
):
    """The user admin's group field removes then adds, in one transaction: what counts is the
    state it commits."""
    sales = services.create_group(name="Sales", actor=admin_user)
    services.add_members(group=engineering, users=[user], actor=admin_user)
    wiki = signed_in(browser, make_app("Wiki", groups=[engineering, sales]))

    with django_capture_on_commit_callbacks(execute=True):
        services.set_user_groups(user=user, groups=[sales], actor=admin_user)

    assert_app_goes_on(wiki)


def test_leaving_a_group_no_app_is_assigned_to_ends_nothing(
    apps, user, admin_user, django_capture_on_commit_callbacks
):
    social = services.create_group(name="Social club", actor=admin_user)
    services.add_members(group=social, users=[user], actor=admin_user)

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        services.remove_members(group=social, users=[user], actor=admin_user)

    # Outbound provisioning hears of every membership change through the audit feed
    # (provisioning/receivers.py) and finds nothing to do; nothing else is scheduled.
    assert [callback for callback in callbacks if callback is not provisioning_flush] == []
    assert not BackchannelDelivery.objects.exists()


def test_a_user_removed_from_a_group_after_the_app_was_opened_keeps_it(
    apps, user, admin_user, engineering, django_capture_on_commit_callbacks
):
    client_services.set_access_policy(client=apps["wiki"].client, policy="open", actor=admin_user)
    with django_capture_on_commit_callbacks(execute=True):
        services.remove_members(group=engineering, users=[user], actor=admin_user)

    assert_app_goes_on(apps["wiki"])
