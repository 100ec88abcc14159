"""`manage.py groups …`: groups and their members from the command line, for automation.

    groups create NAME [--parent NAME] [--description TEXT] [--json]
    groups add NAME USERNAME... [--json]
    groups remove NAME USERNAME... [--json]
    groups import FILE.csv [--json]     # rows group,username[,parent]; FILE "-" reads stdin

Every change goes through the group services of `accounts.services` (audited). With
`--actor ADMIN` (before the action) the change is ADMIN's and the group rule of
accounts/permissions.py applies to them; without it the change is the operator's own.
Bad input (an unknown group or user, a group put inside itself, a malformed CSV row) exits
non-zero with a one-line reason and changes nothing.

`import` is additive: it creates the groups it names, puts a group inside the parent its rows
give (a parent must exist or be a group of the file) and adds the users; it removes nobody and
leaves a group whose rows give no parent where it is. A header row `group,username,parent`
is optional. A row with an empty username only creates or moves its group.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from accounts import services
from accounts.groups import ancestor_ids, parent_map
from accounts.models import User

HEADER = ["group", "username", "parent"]


def _one_line(error: ValidationError | PermissionDenied) -> str:
    messages = error.messages if isinstance(error, ValidationError) else [str(error)]
    return " ".join(" ".join(str(message).split()) for message in messages)


def find_group(name: str, *, flag: str = "") -> Group:
    """The group of that name: exactly, else the one whose name differs only in case."""
    exact = Group.objects.filter(name=name).first()
    if exact is not None:
        return exact
    alike = list(Group.objects.filter(name__iexact=name)[:2])
    if len(alike) != 1:
        raise CommandError(f"No group named {name!r}{flag}.")
    return alike[0]


def find_users(usernames: list[str]) -> list[User]:
    """The users of these usernames, in that order; all of them or a CommandError."""
    wanted = list(dict.fromkeys(usernames))
    found = {user.username: user for user in User.objects.filter(username__in=wanted)}
    unknown = [name for name in wanted if name not in found]
    if unknown:
        raise CommandError(f"No user named: {', '.join(unknown)}.")
    return [found[name] for name in wanted]


@dataclass
class ImportPlan:
    """What an import file asks for, checked as a whole before anything is written."""

    new_groups: list[str] = field(default_factory=list)
    # Group name → (parent name, line), in an order where each parent comes first.
    parents: dict[str, tuple[str, int]] = field(default_factory=dict)
    # Group name → usernames, in file order.
    members: dict[str, list[str]] = field(default_factory=dict)
    rows: int = 0


def read_import(text: str) -> ImportPlan:
    """Parse and check an import file against the database. CommandError on the first bad
    row (with its line number): nothing is written before the whole file has passed."""
    plan = ImportPlan()
    existing = {name.lower(): name for name in Group.objects.values_list("name", flat=True)}
    names: dict[str, str] = {}  # lower-cased → the name the file (or the database) spells
    parent_lines: dict[str, tuple[str, int]] = {}
    usernames: dict[str, int] = {}
    for line, row in enumerate(csv.reader(io.StringIO(text), strict=True), start=1):
        cells = [cell.strip() for cell in row]
        if not any(cells):
            continue
        if [cell.lower() for cell in cells[:3]] in (HEADER, HEADER[:2]) and not plan.rows:
            continue
        if len(cells) == 3 and not cells[2]:
            cells = cells[:2]
        if len(cells) not in (2, 3):
            raise CommandError(
                f"line {line}: expected group,username[,parent], got {len(cells)} column(s)."
            )
        plan.rows += 1
        group, username = cells[0], cells[1]
        if not group:
            raise CommandError(f"line {line}: the group column is empty.")
        group = names.setdefault(group.lower(), existing.get(group.lower(), group))
        if group.lower() not in existing and group not in plan.new_groups:
            try:
                services.clean_group_name(name=group)
            except ValidationError as exc:
                raise CommandError(f"line {line}: {_one_line(exc)}") from exc
            plan.new_groups.append(group)
        if username:
            plan.members.setdefault(group, [])
            if username not in plan.members[group]:
                plan.members[group].append(username)
            usernames.setdefault(username, line)
        if len(cells) == 3:
            parent = names.setdefault(cells[2].lower(), existing.get(cells[2].lower(), cells[2]))
            given = parent_lines.get(group)
            if given is not None and given[0] != parent:
                raise CommandError(
                    f"line {line}: {group} is given two parents, {given[0]} (line {given[1]}) "
                    f"and {parent}."
                )
            parent_lines[group] = (parent, line)
    for group, (parent, line) in parent_lines.items():
        if parent.lower() not in existing and parent not in plan.new_groups:
            raise CommandError(f"line {line}: no group named {parent!r} (parent of {group}).")
    known = set(
        User.objects.filter(username__in=list(usernames)).values_list("username", flat=True)
    )
    for username, line in usernames.items():
        if username not in known:
            raise CommandError(f"line {line}: no user named {username!r}.")
    plan.parents = _ordered_parents(parent_lines)
    return plan


def _ordered_parents(parent_lines: dict[str, tuple[str, int]]) -> dict[str, tuple[str, int]]:
    """The file's nesting on top of the stored one, refused if it closes a loop, ordered so
    that each group is moved after every group above it: each move is then checked against
    the nesting above it as it will end up, and no move closes a loop on the way."""
    ids = dict(Group.objects.values_list("name", "pk"))
    names = {pk: name for name, pk in ids.items()}
    # The file's new groups get negative stand-in ids until they exist.
    for index, name in enumerate(
        sorted({n for pair in parent_lines.items() for n in (pair[0], pair[1][0])} - ids.keys())
    ):
        ids[name] = -1 - index
        names[-1 - index] = name
    final = parent_map()
    for group, (parent, _line) in parent_lines.items():
        final[ids[group]] = ids[parent]
    for group, (parent, line) in parent_lines.items():
        if ids[group] == ids[parent] or ids[group] in ancestor_ids(ids[parent], parents=final):
            raise CommandError(
                f"line {line}: {group} cannot be put inside {parent}: {parent} is {group} "
                "itself or one of its subgroups."
            )
    return dict(
        sorted(
            parent_lines.items(),
            key=lambda item: len(ancestor_ids(ids[item[0]], parents=final)),
        )
    )


class Command(BaseCommand):
    help = "Create groups, nest them and add or remove members (audited); import from CSV."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--actor",
            help="Username of the acting administrator: recorded in the audit log, and the "
            "group rule is applied to them. Without it the change is the operator's.",
        )
        sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
        create = sub.add_parser("create", help="Create a group.")
        create.add_argument("name")
        create.add_argument("--parent", help="The group this one sits in.")
        create.add_argument("--description", default="")
        add = sub.add_parser("add", help="Add users to a group.")
        remove = sub.add_parser("remove", help="Remove users from a group.")
        for members in (add, remove):
            members.add_argument("name")
            members.add_argument("usernames", nargs="+", metavar="USERNAME")
        importing = sub.add_parser(
            "import", help="Create groups, nest them and add members from a CSV file."
        )
        importing.add_argument("file", help="CSV rows group,username[,parent]; - for stdin.")
        for action in (create, add, remove, importing):
            action.add_argument("--json", action="store_true", help="Print the result as JSON.")

    def _actor(self, username: str | None) -> Any:
        if not username:
            return None
        try:
            return User.objects.get_by_natural_key(username)
        except User.DoesNotExist as exc:
            raise CommandError(f"No user named {username!r} (--actor).") from exc

    def _emit(self, options: dict[str, Any], data: dict[str, Any], text: str) -> None:
        if options.get("json"):
            self.stdout.write(json.dumps(data, indent=2, sort_keys=True))
        else:
            self.stdout.write(text)

    def handle(self, *args: Any, **options: Any) -> None:
        actor = self._actor(options.get("actor"))
        try:
            getattr(self, f"do_{options['action']}")(actor, options)
        except ValidationError as exc:
            raise CommandError(f"Refused: {_one_line(exc)}") from exc
        except PermissionDenied as exc:
            raise CommandError(f"Refused: {_one_line(exc)}") from exc

    def do_create(self, actor: Any, options: dict[str, Any]) -> None:
        parent = find_group(options["parent"], flag=" (--parent)") if options["parent"] else None
        group = services.create_group(
            name=options["name"], parent=parent, description=options["description"], actor=actor
        )
        self._emit(
            options,
            {
                "id": group.pk,
                "name": group.name,
                "parent": parent.name if parent else None,
                "description": options["description"].strip(),
            },
            f"Group {group.name} created" + (f" inside {parent.name}." if parent else "."),
        )

    def do_add(self, actor: Any, options: dict[str, Any]) -> None:
        group = find_group(options["name"])
        users = find_users(options["usernames"])
        added = {
            user.username for user in services.add_members(group=group, users=users, actor=actor)
        }
        self._emit(
            options,
            {
                "group": group.name,
                "added": [user.username for user in users if user.username in added],
                "already_members": [user.username for user in users if user.username not in added],
            },
            f"{len(added)} added to {group.name}; {len(users) - len(added)} already members.",
        )

    def do_remove(self, actor: Any, options: dict[str, Any]) -> None:
        group = find_group(options["name"])
        users = find_users(options["usernames"])
        removed = {
            user.username for user in services.remove_members(group=group, users=users, actor=actor)
        }
        self._emit(
            options,
            {
                "group": group.name,
                "removed": [user.username for user in users if user.username in removed],
                "not_members": [user.username for user in users if user.username not in removed],
            },
            f"{len(removed)} removed from {group.name}; {len(users) - len(removed)} were not "
            "members.",
        )

    def do_import(self, actor: Any, options: dict[str, Any]) -> None:
        try:
            if options["file"] == "-":
                text = sys.stdin.read()
            else:
                with open(options["file"], encoding="utf-8-sig", newline="") as fh:
                    text = fh.read()
        except OSError as exc:
            raise CommandError(f"Cannot read {options['file']}: {exc.strerror}.") from exc
        except UnicodeDecodeError as exc:
            raise CommandError(f"{options['file']} is not UTF-8 text.") from exc
        try:
            plan = read_import(text)
        except csv.Error as exc:
            raise CommandError(f"{options['file']} is not valid CSV: {exc}.") from exc
        moved: list[dict[str, str]] = []
        added: dict[str, list[str]] = {}
        with transaction.atomic():
            for name in plan.new_groups:
                services.create_group(name=name, actor=actor)
            groups = {group.name: group for group in Group.objects.filter(name__in=_named(plan))}
            for name, (parent, _line) in plan.parents.items():
                if services.set_group_parent(
                    group=groups[name], parent=groups[parent], actor=actor
                ):
                    moved.append({"group": name, "parent": parent})
            for name, usernames in plan.members.items():
                users = find_users(usernames)
                joined = services.add_members(group=groups[name], users=users, actor=actor)
                if joined:
                    added[name] = [user.username for user in joined]
        members_added = sum(len(usernames) for usernames in added.values())
        self._emit(
            options,
            {
                "rows": plan.rows,
                "groups_created": plan.new_groups,
                "groups_moved": moved,
                "members_added": added,
            },
            f"{plan.rows} rows: {len(plan.new_groups)} groups created, {len(moved)} moved, "
            f"{members_added} memberships added.",
        )


def _named(plan: ImportPlan) -> set[str]:
    return {
        *plan.new_groups,
        *plan.members,
        *plan.parents,
        *(parent for parent, _line in plan.parents.values()),
    }
