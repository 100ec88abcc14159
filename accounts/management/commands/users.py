"""`manage.py users …`: act on people's accounts from the command line, as a named administrator.

    users --actor ADMIN list [--staff]
    users --actor ADMIN show USERNAME
    users --actor ADMIN deactivate | activate | unlock | reset-factors USERNAME
    users --actor ADMIN sign-out | revoke-tokens USERNAME
    users --actor ADMIN grant-staff | revoke-staff | grant-superuser | revoke-superuser USERNAME

Every change goes through `accounts.services` with ADMIN as the actor: the same rule as the admin
(accounts/permissions.py: only a superuser acts on staff and superusers or hands out either
status) and the same audit rows. A refused change exits non-zero and is audited.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.core.exceptions import PermissionDenied
from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts import services
from accounts.models import User

# Subcommand → (service call, what it did). Each call takes the user and the actor.
CHANGES: dict[str, tuple[Callable[..., Any], str]] = {
    "deactivate": (services.deactivate_user, "deactivated (sessions and tokens ended)"),
    "activate": (services.activate_user, "activated"),
    "unlock": (services.unlock_user, "unlocked"),
    "reset-factors": (services.reset_user_factors, "has no second factor now"),
    "sign-out": (services.sign_out_everywhere, "signed out of every session"),
    "revoke-tokens": (services.revoke_all_user_tokens, "signed out of every app"),
    "grant-staff": (
        lambda **kw: services.set_staff(is_staff=True, **kw),
        "is staff now",
    ),
    "revoke-staff": (
        lambda **kw: services.set_staff(is_staff=False, **kw),
        "is no longer staff",
    ),
    "grant-superuser": (
        lambda **kw: services.set_superuser(is_superuser=True, **kw),
        "is a superuser now",
    ),
    "revoke-superuser": (
        lambda **kw: services.set_superuser(is_superuser=False, **kw),
        "is no longer a superuser",
    ),
}


class Command(BaseCommand):
    help = "List, show and administer user accounts as a named administrator (audited)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--actor",
            required=True,
            help="Username of the acting administrator: recorded in the audit log, and the "
            "staff/superuser rule is applied to them.",
        )
        sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
        listing = sub.add_parser("list", help="Every account, one a line.")
        listing.add_argument("--staff", action="store_true", help="Staff and superusers only.")
        sub.add_parser("show", help="One account.").add_argument("username")
        for name in CHANGES:
            sub.add_parser(name, help=f"The user {CHANGES[name][1]}.").add_argument("username")

    @staticmethod
    def _user(username: str, *, flag: str = "") -> User:
        try:
            return User.objects.get(username=username)
        except User.DoesNotExist as exc:
            raise CommandError(f"No user named {username!r}{flag}.") from exc

    def handle(self, *args: Any, **options: Any) -> None:
        actor = self._user(options["actor"], flag=" (--actor)")
        if not (actor.is_active and actor.is_staff):
            raise CommandError(f"{actor.get_username()} is not an active administrator.")
        action = options["action"]
        if action == "list":
            users = User.objects.order_by("username")
            if options["staff"]:
                users = users.filter(is_staff=True)
            for user in users:
                self.stdout.write(_describe(user))
            return
        user = self._user(options["username"])
        if action == "show":
            self.stdout.write(_describe(user))
            return
        service, outcome = CHANGES[action]
        try:
            service(user=user, actor=actor, request=None)
        except PermissionDenied as exc:
            services.record_admin_refusal(users=[user], actor=actor, request=None, action=action)
            raise CommandError(f"Refused: {exc}") from exc
        self.stdout.write(f"{user.get_username()} {outcome}.")


def _describe(user: User) -> str:
    level = "superuser" if user.is_superuser else "staff" if user.is_staff else "user"
    state = "active" if user.is_active else "inactive"
    if user.is_locked():
        state += ", locked"
    return f"{user.get_username()}\t{user.email}\t{level}\t{state}"
