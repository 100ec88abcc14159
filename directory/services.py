"""State changes the company directory makes here: its people and groups mirrored (created,
updated, deactivated and activated again) through accounts' services, so every change is
audited and a deactivation ends sessions and tokens and tells the apps. Used by the sign-in
backend (one person) and by the sync (everyone, in batches)."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import ldap
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts import services as account_services
from accounts.audit import record_event
from accounts.emails import record_trusted_email
from accounts.groups import Membership
from accounts.models import AuditEvent, GroupProfile, User
from directory.config import DirectorySettings, directory_settings, open_connection
from directory.models import DirectoryAccount, DirectoryGroup, DirectorySync
from directory.reader import DirectoryUser, GroupGraph, read_groups, read_users

logger = logging.getLogger(__name__)

# The user fields the directory fills (besides the username), each capped at its column.
PROFILE_FIELDS = ("first_name", "last_name", "email", "employee_id", "department", "job_title")


class DirectoryConflict(Exception):
    """A directory entry that cannot be mirrored (no username, or a local account's name)."""


@dataclass
class SyncCounts:
    users_seen: int = 0
    users_created: int = 0
    users_updated: int = 0
    users_deactivated: int = 0
    users_activated: int = 0
    groups_created: int = 0
    groups_updated: int = 0
    memberships_added: int = 0
    memberships_removed: int = 0
    errors: list[str] = field(default_factory=list)


def _capped(name: str, value: str) -> str:
    max_length = getattr(User._meta.get_field(name), "max_length", None) or len(value)
    return value[:max_length]


# --- People --------------------------------------------------------------------------------


@transaction.atomic
def upsert_directory_user(
    *, entry: DirectoryUser, source: str, request: HttpRequest | None = None
) -> tuple[User, str]:
    """The local user of a directory entry, created or brought up to date: "created",
    "updated" or "unchanged". Never takes over a local account of the same name
    (DirectoryConflict): an administrator links them by hand, if ever."""
    key = entry.key
    username = _capped("username", entry.username)
    if not username:
        raise DirectoryConflict(f"{entry.dn}: no username attribute")
    account = DirectoryAccount.objects.select_related("user").filter(dn=key).first()
    if account is None:
        named = User.objects.filter(username__iexact=username).first()
        if named is not None:
            account = DirectoryAccount.objects.filter(user=named).first()
            if account is None:
                raise DirectoryConflict(f"{entry.dn}: a local account is named {username}")
            # The same person moved in the directory (a new DN, the same name).
            account.dn = key
    values = {name: _capped(name, entry.values.get(name, "")) for name in PROFILE_FIELDS}
    now = timezone.now()
    if account is None:
        user = User(username=username, **values)
        user.set_unusable_password()
        user.save()
        record_trusted_email(user=user)
        DirectoryAccount.objects.create(user=user, dn=key, source=source, last_seen_at=now)
        record_event(
            type=AuditEvent.Type.USER_CREATED,
            request=request,
            subject=user,
            source="directory",
            dn=key,
        )
        return user, "created"
    user = account.user
    changed = [name for name, value in values.items() if getattr(user, name) != value]
    if (
        user.username != username
        and not User.objects.filter(username__iexact=username).exclude(pk=user.pk).exists()
    ):
        changed.append("username")
    previous_email = user.email
    if changed:
        for name in changed:
            setattr(user, name, username if name == "username" else values[name])
        user.save(update_fields=[*changed, "updated_at"])
        if "email" in changed:
            record_trusted_email(user=user, previous_email=previous_email)
        record_event(
            type=AuditEvent.Type.USER_CHANGED,
            request=request,
            subject=user,
            fields=changed,
            source="directory",
        )
    if account.pk is None or account.dn != key:
        account.source, account.last_seen_at = source, now
        account.save()
    else:
        DirectoryAccount.objects.filter(pk=account.pk).update(source=source, last_seen_at=now)
    return user, "updated" if changed else "unchanged"


@transaction.atomic
def deactivate_directory_user(
    *, user: User, reason: str, request: HttpRequest | None = None
) -> bool:
    """The directory disabled or removed this person: deactivated through accounts' service
    (sessions and tokens end, the apps are told). Returns whether they were active."""
    if not user.is_active:
        return False
    account_services.deactivate_user(user=user, actor=None, request=request)
    DirectoryAccount.objects.filter(user=user).update(deactivated_by_directory=True)
    record_event(
        type=AuditEvent.Type.USER_CHANGED,
        request=request,
        subject=user,
        fields=["is_active"],
        source="directory",
        reason=reason,
    )
    return True


@transaction.atomic
def activate_directory_user(*, user: User) -> bool:
    """The directory enabled again someone it had disabled here (never someone an
    administrator deactivated). Returns whether they were activated."""
    account = DirectoryAccount.objects.filter(user=user, deactivated_by_directory=True).first()
    if account is None or user.is_active:
        return False
    account_services.activate_user(user=user, actor=None)
    account.deactivated_by_directory = False
    account.save(update_fields=["deactivated_by_directory"])
    return True


# --- Groups --------------------------------------------------------------------------------


def _depth(graph: GroupGraph, key: str) -> int:
    return len(graph.tree_ancestors(key))


@transaction.atomic
def mirror_groups(*, graph: GroupGraph, counts: SyncCounts, touch: bool = True) -> dict[str, Group]:
    """Each directory group as a group here (created or renamed through the group services),
    nested under its directory parent (`GroupGraph.parent`). Returns them by DN key. `touch`:
    record that the directory still lists them (the sync; a sign-in sees only some groups)."""
    now = timezone.now()
    linked = {
        link.dn: link
        for link in DirectoryGroup.objects.select_related("group").filter(dn__in=list(graph.names))
    }
    groups: dict[str, Group] = {}
    for key in sorted(graph.names):
        name = graph.names[key]
        link = linked.get(key)
        try:
            if link is None:
                group = account_services.create_group(name=name, actor=None)
                DirectoryGroup.objects.create(group=group, dn=key, last_seen_at=now)
                counts.groups_created += 1
            else:
                group = link.group
                if group.name != name and account_services.rename_group(
                    group=group, name=name, actor=None
                ):
                    counts.groups_updated += 1
                if touch:
                    DirectoryGroup.objects.filter(pk=link.pk).update(last_seen_at=now)
        except ValidationError as error:
            counts.errors.append(f"{graph.dns[key]}: {'; '.join(error.messages)}")
            continue
        groups[key] = group
    parents = dict(
        GroupProfile.objects.filter(group__in=groups.values()).values_list("group_id", "parent_id")
    )
    # Top-down in the directory's tree: a group's new parent has its final place already, so
    # no move can close a loop with a group not yet moved.
    for key in sorted(groups, key=lambda item: (_depth(graph, item), item)):
        parent_key = graph.parent(key)
        parent = groups.get(parent_key) if parent_key else None
        group = groups[key]
        if parents.get(group.pk) == (parent.pk if parent is not None else None):
            continue
        try:
            if account_services.set_group_parent(group=group, parent=parent, actor=None):
                counts.groups_updated += 1
        except ValidationError as error:
            counts.errors.append(f"{graph.dns[key]}: {'; '.join(error.messages)}")
    return groups


def _apply_memberships(
    *,
    wanted: dict[int, set[int]],
    users: Sequence[User],
    directory_group_ids: Iterable[int],
    counts: SyncCounts,
    request: HttpRequest | None = None,
) -> None:
    """`users`' direct memberships of directory groups made `wanted` (user id -> group ids),
    one add and one removal per group through the group services (audited; lost app access
    ended). Memberships of local groups are never touched."""
    by_id = {user.pk: user for user in users}
    current: dict[int, set[int]] = defaultdict(set)
    for user_id, group_id in Membership.objects.filter(
        user_id__in=list(by_id), group_id__in=list(directory_group_ids)
    ).values_list("user_id", "group_id"):
        current[user_id].add(group_id)
    to_add: dict[int, list[User]] = defaultdict(list)
    to_remove: dict[int, list[User]] = defaultdict(list)
    for user_id, user in by_id.items():
        for group_id in wanted.get(user_id, set()) - current[user_id]:
            to_add[group_id].append(user)
        for group_id in current[user_id] - wanted.get(user_id, set()):
            to_remove[group_id].append(user)
    groups = Group.objects.in_bulk(list(to_add.keys() | to_remove.keys()))
    for group_id, members in sorted(to_remove.items()):
        removed = account_services.remove_members(
            group=groups[group_id], users=members, actor=None, request=request
        )
        counts.memberships_removed += len(removed)
    for group_id, members in sorted(to_add.items()):
        added = account_services.add_members(
            group=groups[group_id], users=members, actor=None, request=request
        )
        counts.memberships_added += len(added)


# --- Sign-in -------------------------------------------------------------------------------


@transaction.atomic
def record_directory_sign_in(
    *, entry: DirectoryUser, graph: GroupGraph, source: str, request: HttpRequest | None
) -> User:
    """A person the directory just authenticated: their user, profile and groups as the
    directory says now (apps get the fresh claims in this very sign-in)."""
    user, _status = upsert_directory_user(entry=entry, source=source, request=request)
    counts = SyncCounts()
    groups = mirror_groups(graph=graph, counts=counts, touch=False)
    wanted = {user.pk: {groups[key].pk for key in graph.direct_groups(entry.key) if key in groups}}
    _apply_memberships(
        wanted=wanted,
        users=[user],
        directory_group_ids=DirectoryGroup.objects.values_list("group_id", flat=True),
        counts=counts,
        request=request,
    )
    for error in counts.errors:
        logger.warning("directory sign-in of %s: %s", user.username, error)
    return user


# --- The sync ------------------------------------------------------------------------------


def _batches(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _sync_users(
    *,
    entries: list[DirectoryUser],
    graph: GroupGraph,
    groups: dict[str, Group],
    config: DirectorySettings,
    counts: SyncCounts,
) -> set[int]:
    """Create, update, deactivate and activate again, one transaction per batch. Returns the
    ids of the users the directory still lists."""
    seen: set[int] = set()
    # Every group that came from the directory, those it no longer lists too: their members
    # leave them.
    directory_group_ids = list(DirectoryGroup.objects.values_list("group_id", flat=True))
    for batch in _batches(entries, config.page_size):
        with transaction.atomic():
            users: list[User] = []
            wanted: dict[int, set[int]] = {}
            for entry in batch:
                try:
                    with transaction.atomic():
                        user, status = upsert_directory_user(entry=entry, source=config.source)
                except DirectoryConflict as error:
                    counts.errors.append(str(error))
                    continue
                seen.add(user.pk)
                if status == "created":
                    counts.users_created += 1
                elif status == "updated":
                    counts.users_updated += 1
                if entry.disabled:
                    if deactivate_directory_user(user=user, reason="disabled_in_directory"):
                        counts.users_deactivated += 1
                    continue
                if activate_directory_user(user=user):
                    counts.users_activated += 1
                users.append(user)
                wanted[user.pk] = {
                    groups[key].pk for key in graph.direct_groups(entry.key) if key in groups
                }
            _apply_memberships(
                wanted=wanted,
                users=users,
                directory_group_ids=directory_group_ids,
                counts=counts,
            )
    return seen


def _deactivate_missing(*, seen: set[int], config: DirectorySettings, counts: SyncCounts) -> None:
    gone = list(
        User.objects.filter(directory_account__isnull=False, is_active=True)
        .exclude(pk__in=seen)
        .order_by("pk")
    )
    for batch in _batches(gone, config.page_size):
        with transaction.atomic():
            for user in batch:
                if deactivate_directory_user(user=user, reason="removed_from_directory"):
                    counts.users_deactivated += 1


def sync_directory(*, trigger: str) -> DirectorySync:
    """Mirror the whole directory: groups first, then people in batches, then deactivate the
    directory's people it no longer lists. A run that could not read the directory changes
    nothing; a directory that answers with nobody while people came from it is refused (a
    wrong base or filter must not deactivate everyone). One DirectorySync row per run."""
    config = directory_settings()
    run = DirectorySync.objects.create(trigger=trigger)
    counts = SyncCounts()
    try:
        connection = open_connection(config)
        try:
            entries = read_users(connection, config)
            graph = read_groups(connection, config)
        finally:
            connection.unbind_s()
    except ldap.LDAPError as error:
        counts.errors.append(
            _("The directory could not be read: %(error)s") % {"error": describe_ldap_error(error)}
        )
        return _finish(run, counts, status=DirectorySync.Status.FAILED)
    counts.users_seen = len(entries)
    if not entries and DirectoryAccount.objects.exists():
        counts.errors.append(
            _(
                "The directory listed nobody: no one was deactivated (check the user base "
                "and filter)."
            )
        )
        return _finish(run, counts, status=DirectorySync.Status.FAILED)
    groups = mirror_groups(graph=graph, counts=counts)
    seen = _sync_users(entries=entries, graph=graph, groups=groups, config=config, counts=counts)
    _deactivate_missing(seen=seen, config=config, counts=counts)
    status = DirectorySync.Status.PARTIAL if counts.errors else DirectorySync.Status.SUCCEEDED
    return _finish(run, counts, status=status)


def _finish(run: DirectorySync, counts: SyncCounts, *, status: str) -> DirectorySync:
    for name in (
        "users_seen",
        "users_created",
        "users_updated",
        "users_deactivated",
        "users_activated",
        "groups_created",
        "groups_updated",
        "memberships_added",
        "memberships_removed",
    ):
        setattr(run, name, getattr(counts, name))
    # At most 100 errors kept: a misconfigured directory could name every entry.
    run.errors = counts.errors[:100]
    run.status = status
    run.finished_at = timezone.now()
    run.save()
    logger.info(
        "directory sync %s: %s", run.status, {"errors": len(counts.errors), "seen": run.users_seen}
    )
    return run


# --- Checks --------------------------------------------------------------------------------


def describe_ldap_error(error: ldap.LDAPError) -> str:
    """python-ldap's description of an error, never its whole argument (no secrets there,
    but long server diagnostics)."""
    details = error.args[0] if error.args and isinstance(error.args[0], dict) else {}
    description = str(details.get("desc", type(error).__name__))
    info = str(details.get("info", "") or "")
    return f"{description} ({info})" if info else description


def check_connection() -> tuple[bool, str]:
    """The admin's "test connection": the service account binds and the user base answers."""
    config = directory_settings()
    if not config.url:
        return False, _("No directory is configured (IDP_LDAP_URL is empty).")
    try:
        connection = open_connection(config)
        try:
            found = connection.search_ext_s(
                config.user_base,
                ldap.SCOPE_SUBTREE,
                config.all_users_filter,
                ["1.1"],
                sizelimit=1,
            )
        except ldap.SIZELIMIT_EXCEEDED:
            found = [("", {})]
        finally:
            connection.unbind_s()
    except ldap.LDAPError as error:
        return False, _("The directory at %(url)s did not answer as expected: %(error)s") % {
            "url": config.source,
            "error": describe_ldap_error(error),
        }
    if not found:
        return False, _("Connected to %(url)s, but the user base and filter find nobody.") % {
            "url": config.source
        }
    return True, _("Connected to %(url)s as the service account; people found.") % {
        "url": config.source
    }
