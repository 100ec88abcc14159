"""Who may administer whom: the one rule every entry point applies (admin, CLI, later APIs).

The rule (OWASP ASVS 5.0 V8.2.1/V8.2.2; CWE-269 improper privilege management):
- a superuser may act on anyone;
- anyone else with the user permissions (a help-desk staff member) may act only on people below
  staff level: never on a superuser, never on another staff member, and not on themselves from
  the administration (their own password, factors and sessions are managed on their own
  security pages, behind re-authentication);
- staff and superuser status are handed out and taken away by superusers only, so nobody is
  ever raised to their own level or above by someone who is not a superuser.

Groups follow the same rule. Creating, changing and deleting groups takes Django's group
permissions (`auth.add_group`, `auth.change_group`, `auth.delete_group`) or superuser status;
adding someone to a group or removing them is acting on that person (`may_administer`), and
only a superuser changes the members or permissions of a group that carries administration
permissions (membership of it hands them out).

`accounts.services` checks every administrative change with `ensure_may_administer` /
`ensure_may_set_privileges`; the admin and the `users` command ask `may_administer` first to
show a clear message instead of an error. An action without an acting person (`actor=None`: a
migration, a directory sync run by the operator) is the system's and is allowed.

A service client acting through the admin API (`accounts.actors.ServiceActor`) is held to the
same two levels by its token's scopes: with `admin:users` it acts like a help-desk staff member
(people below staff level, groups without administration permissions); with `admin:superusers`
as well, like a superuser (anyone, staff and superuser status, privileged groups).

Nobody removes the last active superuser (deactivation, deletion, superuser status revoked):
`ensure_not_last_superuser` refuses it with `LastSuperuserError`, so the administration can
never be left without anyone who may administer everyone.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.utils.translation import gettext as _

from accounts.actors import SUPERUSERS_SCOPE, USERS_SCOPE, ServiceActor


class LastSuperuserError(PermissionDenied):
    """The change would leave no active superuser."""


def _is_person(actor: Any) -> bool:
    return actor is not None and getattr(actor, "is_authenticated", False)


def may_administer(*, actor: Any, subject: Any) -> bool:
    """Whether `actor` may change, reset, deactivate or otherwise act on `subject`'s account."""
    if isinstance(actor, ServiceActor):
        if not actor.has_scope(USERS_SCOPE):
            return False
        return actor.has_scope(SUPERUSERS_SCOPE) or not (subject.is_staff or subject.is_superuser)
    if not _is_person(actor):
        return actor is None
    if not actor.is_active or not actor.is_staff:
        return False
    if actor.is_superuser:
        return True
    if subject.pk is not None and subject.pk == actor.pk:
        return False
    return not (subject.is_staff or subject.is_superuser)


def may_set_privileges(*, actor: Any) -> bool:
    """Whether `actor` may grant or revoke staff or superuser status (superusers only)."""
    if isinstance(actor, ServiceActor):
        return actor.has_scope(USERS_SCOPE) and actor.has_scope(SUPERUSERS_SCOPE)
    if not _is_person(actor):
        return actor is None
    return bool(actor.is_active and actor.is_superuser)


def ensure_may_administer(*, actor: Any, subject: Any) -> None:
    if not may_administer(actor=actor, subject=subject):
        raise PermissionDenied(
            _("Only a superuser may act on %(user)s.") % {"user": subject.get_username()}
        )


def ensure_may_set_privileges(*, actor: Any) -> None:
    if not may_set_privileges(actor=actor):
        raise PermissionDenied(_("Only a superuser may grant or revoke staff or superuser status."))


GROUP_ACTIONS = ("add", "change", "delete")


def may_manage_groups(*, actor: Any, action: str = "change") -> bool:
    """Whether `actor` may create ("add"), rename, nest or change the members of ("change"),
    or delete ("delete") groups."""
    if action not in GROUP_ACTIONS:
        raise ValueError(f"unknown group action {action!r}")
    if isinstance(actor, ServiceActor):
        return actor.has_scope(USERS_SCOPE)
    if not _is_person(actor):
        return actor is None
    if not actor.is_active or not actor.is_staff:
        return False
    return bool(actor.is_superuser or actor.has_perm(f"auth.{action}_group"))


def ensure_may_manage_groups(*, actor: Any, action: str = "change") -> None:
    if not may_manage_groups(actor=actor, action=action):
        raise PermissionDenied(_("You are not allowed to manage groups."))


def ensure_may_change_members(*, actor: Any, group: Any, users: Any) -> None:
    """Adding `users` to `group` or removing them: the group rule, the rule for each person,
    and superusers only for a group that carries administration permissions."""
    ensure_may_manage_groups(actor=actor)
    if group.permissions.exists() and not may_set_privileges(actor=actor):
        raise PermissionDenied(
            _(
                "Only a superuser may change the members of %(group)s: "
                "it carries administration permissions."
            )
            % {"group": group.name}
        )
    for user in users:
        ensure_may_administer(actor=actor, subject=user)


def ensure_not_last_superuser(*, user: Any) -> None:
    """LastSuperuserError when `user` is an active superuser and no other active one exists.
    Called inside the caller's transaction; the other superusers' rows are locked so two
    removals at once cannot each see the other as the one who stays."""
    if not (user.is_superuser and user.is_active):
        return
    others = list(
        type(user)
        ._default_manager.select_for_update()
        .filter(is_superuser=True, is_active=True)
        .exclude(pk=user.pk)
        .values_list("pk", flat=True)[:1]
    )
    if not others:
        raise LastSuperuserError(
            _("%(user)s is the last active superuser: make someone else a superuser first.")
            % {"user": user.get_username()}
        )
