"""People moved in from another identity provider with their password hashes, no resets:
`import_users(path=..., file_format=..., dry_run=..., strict=...)`, behind
`manage.py import_users`.

The files are read as streams (CSV, JSON Lines; a JSON array or a Keycloak realm export is one
document, read whole) and written in batches of `BATCH` rows, so memory grows with the number
of rows only by the keys that find duplicates (one short string per username and address).
One transaction for the whole import: a dry run, or a strict run that skipped a row, rolls it
all back and reports the same as a real run would have. Idempotent: a row that matches its user
changes nothing and is reported "unchanged".

What a row may do:
- create a user (its password hash stored as Django's encoded hash, accounts.hash_formats;
  no hash → an unusable password, the person resets it), with its address recorded as verified
  (as for an account an administrator makes, accounts.emails);
- update an existing user of exactly that username: names, address, the directory attributes,
  active or not (deactivation through `services.deactivate_user`: sessions and tokens end);
  a password hash only when the user has no usable password (an import never overwrites a
  password someone may have changed or that was re-hashed at a sign-in);
- add the user to groups, creating the groups (`services.create_group`; Keycloak's
  "/parent/child" paths nest). An import never removes a membership and never grants staff or
  superuser status.

A row is skipped, with its reason, when its username is invalid or already used in the file or
in the database by a name that differs only by letter case or by Unicode compatibility forms
(NFKC + casefold, e.g. "JOHN", or "john" in fullwidth letters, for "john"), when its address
is already another person's, when its password hash is malformed or unknown, or when a value
is invalid.

Audit: one `users.imported` event per import (counts, file, format) plus one `user.created`
event per new person (bulk-inserted, with the groups the person was put in) or `user.changed`
per updated one (with the group services' own events for memberships added to an existing
account). 10,000 new people cost 10,000 audit rows and log lines, about a third of the import.
"""

from __future__ import annotations

import csv
import functools
import json
import re
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from allauth.account.models import EmailAddress
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction

from accounts import services
from accounts.audit import build_event, publish_event, record_event
from accounts.emails import record_trusted_email
from accounts.groups import Membership
from accounts.hash_formats import HashFormatError, keycloak_to_django_hash, to_django_hash
from accounts.models import AuditEvent, User

BATCH = 500
FORMATS = ("csv", "json", "keycloak")
# CSV columns and JSON members (all but `username` optional). `groups`: names separated by ";"
# in CSV, a list in JSON; "/parent/child" nests.
COLUMNS = (
    "username",
    "email",
    "first_name",
    "last_name",
    "is_active",
    "password_hash",
    "groups",
    "employee_id",
    "department",
    "job_title",
)
# Profile fields a row may set, compared to decide "updated" or "unchanged".
PROFILE_FIELDS = ("first_name", "last_name", "employee_id", "department", "job_title")
_TRUE = {"true", "1", "yes", "y", "t"}
_FALSE = {"false", "0", "no", "n", "f"}

CREATED, UPDATED, UNCHANGED, SKIPPED = "created", "updated", "unchanged", "skipped"


class ImportRefused(Exception):
    """The file cannot be imported at all (unreadable, unknown columns, wrong shape)."""


@dataclass(frozen=True)
class RowOutcome:
    """What happened to one row: `line` is the CSV line or the record's position (from 1)."""

    line: int
    username: str
    action: str
    reason: str = ""
    fields: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"line": self.line, "username": self.username, "action": self.action}
        if self.reason:
            data["reason"] = self.reason
        if self.fields:
            data["fields"] = list(self.fields)
        return data


@dataclass
class ImportReport:
    counts: dict[str, int] = field(
        default_factory=lambda: {CREATED: 0, UPDATED: 0, UNCHANGED: 0, SKIPPED: 0}
    )
    groups_created: list[str] = field(default_factory=list)
    dry_run: bool = False
    strict: bool = False
    committed: bool = False

    def summary(self) -> dict[str, Any]:
        return {
            **self.counts,
            "groups_created": self.groups_created,
            "dry_run": self.dry_run,
            "strict": self.strict,
            "committed": self.committed,
        }


def username_key(username: str) -> str:
    """The key two usernames collide on: Unicode compatibility forms folded (NFKC, as Django
    normalises usernames) and letter case folded (casefold, so "ß" meets "ss")."""
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", username).casefold())


# --- Reading the files ----------------------------------------------------------------------------


RawRow = tuple[int, dict[str, Any]]


def detect_format(path: Path) -> str:
    """csv for .csv; for JSON, keycloak when the document is an object (a realm export),
    json otherwise (an array, or JSON Lines)."""
    if path.suffix.lower() == ".csv":
        return "csv"
    with path.open("rb") as fh:
        head = fh.read(4096).lstrip()
    if path.suffix.lower() in (".jsonl", ".ndjson") or head.startswith(b"["):
        return "json"
    # A realm export names its members `realm` and `users`; a JSON Lines row has neither key.
    if head.startswith(b"{") and re.search(rb'"(users|realm)"\s*:', head):
        return "keycloak"
    return "json"


def read_csv(stream: IO[str]) -> Iterator[RawRow]:
    reader = csv.DictReader(stream, strict=True)
    header = [name.strip().lower() for name in (reader.fieldnames or [])]
    if "username" not in header:
        raise ImportRefused("the CSV file has no header row with a username column")
    unknown = [name for name in header if name not in COLUMNS]
    if unknown:
        raise ImportRefused(
            f"unknown column(s): {', '.join(unknown)} (known: {', '.join(COLUMNS)})"
        )
    reader.fieldnames = header
    try:
        for record in reader:
            if None in record:
                raise ImportRefused(f"line {reader.line_num}: more cells than columns")
            row = {key: value for key, value in record.items() if value is not None}
            if "groups" in row:
                row["groups"] = [name for name in row["groups"].split(";") if name.strip()]
            yield reader.line_num, row
    except csv.Error as error:
        raise ImportRefused(f"line {reader.line_num}: {error}") from error


def _checked_object(position: int, record: Any) -> RawRow:
    if not isinstance(record, dict):
        raise ImportRefused(f"record {position}: not a JSON object")
    unknown = [key for key in record if key not in COLUMNS]
    if unknown:
        raise ImportRefused(f"record {position}: unknown member(s): {', '.join(map(str, unknown))}")
    return position, record


def read_json(stream: IO[str]) -> Iterator[RawRow]:
    """A JSON array of user objects (read whole), or JSON Lines: one object per line (streamed)."""
    first = stream.read(1)
    while first and first.isspace():
        first = stream.read(1)
    if first == "[":
        try:
            records = json.loads(first + stream.read())
        except ValueError as error:
            raise ImportRefused(f"not valid JSON: {error}") from error
        for position, record in enumerate(records, start=1):
            yield _checked_object(position, record)
        return
    for line_number, line in enumerate(_prepend(first, stream), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as error:
            raise ImportRefused(f"line {line_number}: not valid JSON: {error}") from error
        yield _checked_object(line_number, record)


def _prepend(first: str, stream: IO[str]) -> Iterator[str]:
    lines = iter(stream)
    yield first + next(lines, "")
    yield from lines


def read_keycloak(stream: IO[str]) -> Iterator[RawRow]:
    """Keycloak's realm export (`kc.sh export`, or one of its users files): `users[]` with
    `username`, `email`, `firstName`, `lastName`, `enabled`, `groups` (paths) and
    `credentials[]` (the "password" one: `secretData`, `credentialData`)."""
    try:
        document = json.load(stream)
    except ValueError as error:
        raise ImportRefused(f"not valid JSON: {error}") from error
    if not isinstance(document, dict) or not isinstance(document.get("users"), list):
        raise ImportRefused("not a Keycloak realm export: no users list")
    for position, user in enumerate(document["users"], start=1):
        if not isinstance(user, dict):
            raise ImportRefused(f"user {position}: not a JSON object")
        row: dict[str, Any] = {"username": user.get("username", "")}
        for ours, theirs in (("email", "email"), ("first_name", "firstName")):
            if theirs in user:
                row[ours] = user[theirs]
        if "lastName" in user:
            row["last_name"] = user["lastName"]
        if "enabled" in user:
            row["is_active"] = user["enabled"]
        if "groups" in user:
            row["groups"] = user["groups"]
        passwords = [
            credential
            for credential in user.get("credentials") or []
            if isinstance(credential, dict) and credential.get("type") == "password"
        ]
        if passwords:
            row["keycloak_credential"] = passwords[0]
        yield position, row


READERS: dict[str, Callable[[IO[str]], Iterator[RawRow]]] = {
    "csv": read_csv,
    "json": read_json,
    "keycloak": read_keycloak,
}


def read_rows(path: Path, file_format: str | None) -> Iterator[RawRow]:
    with path.open(encoding="utf-8-sig", newline="") as stream:
        yield from READERS[file_format or detect_format(path)](stream)


# --- One row checked ------------------------------------------------------------------------------


@dataclass
class Row:
    line: int
    username: str  # as Django stores it (NFKC)
    given: str  # as the file spells it
    key: str
    values: dict[str, Any]  # profile fields present in the row, cleaned
    email: str | None
    is_active: bool | None
    password: str | None  # Django-encoded hash
    password_format: str
    groups: list[list[str]]  # each a path of names, top group first


class RowSkipped(Exception):
    pass


@functools.cache
def _max_lengths() -> dict[str, int]:
    return {
        name: getattr(User._meta.get_field(name), "max_length", None) or 150
        for name in ("username", *PROFILE_FIELDS)
    }


def _text(row: dict[str, Any], key: str, *, max_length: int) -> str:
    value = row[key]
    if value is None:
        return ""
    if not isinstance(value, str):
        raise RowSkipped(f"{key} must be text")
    value = value.strip()
    if len(value) > max_length:
        raise RowSkipped(f"{key} has more than {max_length} characters")
    return value


def _flag(value: Any, key: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise RowSkipped(f"{key} must be true or false")


def _group_paths(value: Any) -> list[list[str]]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise RowSkipped("groups must be a list of names")
    paths = []
    for item in value:
        names = [name.strip() for name in item.strip().strip("/").split("/") if name.strip()]
        if names:
            paths.append(names)
    return paths


def check_row(line: int, raw: dict[str, Any]) -> Row:
    """The row cleaned, or RowSkipped with the reason (nothing here reads the database)."""
    username_value = raw.get("username")
    if not isinstance(username_value, str) or not username_value.strip():
        raise RowSkipped("no username")
    username = User.normalize_username(username_value.strip())
    lengths = _max_lengths()
    if len(username) > lengths["username"]:
        raise RowSkipped(f"invalid username: more than {lengths['username']} characters")
    try:
        User.username_validator(username)
    except ValidationError as error:
        raise RowSkipped(f"invalid username: {' '.join(error.messages)}") from error
    # An empty cell (or a JSON null or "") leaves the stored value as it is: CSV cannot tell
    # an empty value from a missing one, and a partial export must not wipe names.
    values: dict[str, Any] = {}
    for name in PROFILE_FIELDS:
        if raw.get(name):
            values[name] = _text(raw, name, max_length=lengths[name])
    email = None
    if raw.get("email"):
        email = _text(raw, "email", max_length=254).lower()
        if email:
            try:
                validate_email(email)
            except ValidationError as error:
                raise RowSkipped("invalid email address") from error
    is_active = None if raw.get("is_active") in (None, "") else _flag(raw["is_active"], "is_active")
    password, password_format = None, ""
    try:
        if raw.get("keycloak_credential"):
            credential = raw["keycloak_credential"]
            password = keycloak_to_django_hash(
                secret_data=credential.get("secretData"),
                credential_data=credential.get("credentialData"),
            )
        elif raw.get("password_hash"):
            if not isinstance(raw["password_hash"], str):
                raise RowSkipped("password_hash must be text")
            password = to_django_hash(raw["password_hash"])
    except HashFormatError as error:
        raise RowSkipped(f"password hash refused: {error}") from error
    if password is not None:
        password_format = password.split("$", 1)[0]
    groups = _group_paths(raw["groups"]) if raw.get("groups") else []
    return Row(
        line=line,
        username=username,
        given=username_value.strip(),
        key=username_key(username),
        values=values,
        email=email,
        is_active=is_active,
        password=password,
        password_format=password_format,
        groups=groups,
    )


# --- The import ---------------------------------------------------------------------------------


class _Rollback(Exception):
    pass


class _Importer:
    def __init__(self, *, emit: Callable[[RowOutcome], None], report: ImportReport) -> None:
        self.emit = emit
        self.report = report
        # username key → username of every user there is (the clashes to find).
        self.existing: dict[str, str] = {
            username_key(username): username
            for username in User.objects.values_list("username", flat=True).iterator()
        }
        self.seen: dict[str, int] = {}
        self.seen_emails: dict[str, int] = {}
        self.groups: dict[str, Group] = {group.name.lower(): group for group in Group.objects.all()}
        self.unusable_password = make_password(None)
        self.pending: list[RowOutcome] = []

    def outcome(self, row_line: int, username: str, action: str, **more: Any) -> None:
        self.report.counts[action] += 1
        self.pending.append(RowOutcome(line=row_line, username=username, action=action, **more))

    def flush(self) -> None:
        """The batch's outcomes, in the file's order."""
        for outcome in sorted(self.pending, key=lambda outcome: outcome.line):
            self.emit(outcome)
        self.pending = []

    def run(self, rows: Iterator[RawRow]) -> None:
        batch: list[Row] = []
        for line, raw in rows:
            try:
                row = check_row(line, raw)
            except RowSkipped as error:
                self.outcome(line, str(raw.get("username") or ""), SKIPPED, reason=str(error))
                continue
            batch.append(row)
            if len(batch) >= BATCH:
                self.write(batch)
                self.flush()
                batch = []
        self.write(batch)
        self.flush()

    def _clash(self, row: Row, exact: dict[str, int]) -> str:
        earlier = self.seen.get(row.key)
        if earlier is not None:
            return f"duplicate of line {earlier} (usernames equal ignoring case and look-alikes)"
        existing = self.existing.get(row.key)
        # The exact name of an existing user is that user; a name that only folds to it (other
        # letter case, compatibility forms such as fullwidth letters) is someone else's.
        if existing is not None and (row.username not in exact or row.given != row.username):
            return (
                f"username differs only by case or look-alike characters from the existing "
                f"user {existing!r}"
            )
        if row.email:
            earlier = self.seen_emails.get(row.email)
            if earlier is not None:
                return f"email address already used on line {earlier}"
        return ""

    def write(self, batch: list[Row]) -> None:
        exact = dict(
            User.objects.filter(username__in=[row.username for row in batch]).values_list(
                "username", "pk"
            )
        )
        accepted: list[Row] = []
        for row in batch:
            reason = self._clash(row, exact)
            self.seen.setdefault(row.key, row.line)
            if reason:
                self.outcome(row.line, row.username, SKIPPED, reason=reason)
                continue
            if row.email:
                self.seen_emails[row.email] = row.line
            accepted.append(row)
        existing_ids = {
            row.username: exact[row.username] for row in accepted if row.username in exact
        }
        users = User.objects.in_bulk(list(existing_ids.values()))
        emails = {row.email for row in accepted if row.email}
        owners = dict(
            EmailAddress.objects.filter(email__in=emails, verified=True).values_list(
                "email", "user_id"
            )
        )
        owners.update(
            {
                email.lower(): pk
                for email, pk in User.objects.filter(email__in=emails).values_list("email", "pk")
            }
        )
        to_create: list[Row] = []
        for row in accepted:
            user_id = existing_ids.get(row.username)
            owner = owners.get(row.email) if row.email else None
            if owner is not None and owner != user_id:
                self.outcome(
                    row.line, row.username, SKIPPED, reason="email address belongs to another user"
                )
                continue
            try:
                self._resolve_groups(row)
            except ValidationError as error:
                self.outcome(
                    row.line, row.username, SKIPPED, reason=f"group: {' '.join(error.messages)}"
                )
                continue
            if user_id is None:
                to_create.append(row)
            else:
                self._update(row, users[user_id])
        self._create(to_create)

    def _resolve_groups(self, row: Row) -> None:
        for path in row.groups:
            parent = None
            for name in path:
                group = self.groups.get(name.lower())
                if group is None:
                    group = services.create_group(name=name, parent=parent, actor=None)
                    self.groups[name.lower()] = group
                    self.report.groups_created.append(group.name)
                parent = group

    def _leaf_groups(self, row: Row) -> list[Group]:
        return [self.groups[path[-1].lower()] for path in row.groups]

    def _create(self, rows: list[Row]) -> None:
        if not rows:
            return
        users = [
            User(
                username=row.username,
                email=row.email or "",
                is_active=True if row.is_active is None else row.is_active,
                password=row.password or self.unusable_password,
                **row.values,
            )
            for row in rows
        ]
        User.objects.bulk_create(users, batch_size=BATCH)
        EmailAddress.objects.bulk_create(
            [
                EmailAddress(user=user, email=user.email, verified=True, primary=True)
                for user in users
                if user.email
            ],
            batch_size=BATCH,
        )
        pairs = list(zip(rows, users, strict=True))
        # A new account's groups are written here, not through `services.add_members`: that
        # service writes one `group.member_added` event per person, and for 10,000 new people
        # that doubled the import's time for facts the `user.created` event below already
        # holds (its `groups`). Nobody loses access by an addition, so nothing else is due.
        Membership.objects.bulk_create(
            [
                Membership(user_id=user.pk, group_id=group.pk)
                for row, user in pairs
                for group in {group.pk: group for group in self._leaf_groups(row)}.values()
            ],
            batch_size=BATCH,
        )
        events = [
            build_event(
                type=AuditEvent.Type.USER_CREATED,
                subject=user,
                imported=True,
                password_set=row.password is not None,
                password_format=row.password_format,
                groups=sorted({group.name for group in self._leaf_groups(row)}),
                is_staff=False,
                is_superuser=False,
            )
            for row, user in pairs
        ]
        AuditEvent.objects.bulk_create(events, batch_size=BATCH)
        for event in events:
            publish_event(event)
        for row, _user in pairs:
            self.outcome(row.line, row.username, CREATED)

    def _update(self, row: Row, user: User) -> None:
        changed = [name for name, value in row.values.items() if getattr(user, name) != value]
        previous_email = user.email
        if row.email is not None and row.email != (user.email or "").lower():
            changed.append("email")
        password_set = row.password is not None and not user.has_usable_password()
        if password_set:
            changed.append("password")
        if changed:
            for name in changed:
                if name in row.values:
                    setattr(user, name, row.values[name])
            if "email" in changed:
                user.email = row.email or ""
            if password_set:
                user.password = row.password or ""
            user.save(update_fields=[*changed, "updated_at"])
            if "email" in changed:
                record_trusted_email(user=user, previous_email=previous_email)
            record_event(
                type=AuditEvent.Type.USER_CHANGED,
                subject=user,
                imported=True,
                fields=sorted(changed),
            )
        if row.is_active is not None and row.is_active != user.is_active:
            if row.is_active:
                services.activate_user(user=user, actor=None)
            else:
                services.deactivate_user(user=user, actor=None)
            changed.append("is_active")
        wanted = {group.pk for group in self._leaf_groups(row)}
        if wanted:
            have = set(
                Membership.objects.filter(user_id=user.pk, group_id__in=wanted).values_list(
                    "group_id", flat=True
                )
            )
            for group in self._leaf_groups(row):
                if group.pk not in have:
                    services.add_members(group=group, users=[user], actor=None)
            if wanted - have:
                changed.append("groups")
        if changed:
            self.outcome(row.line, row.username, UPDATED, fields=tuple(sorted(changed)))
        else:
            self.outcome(row.line, row.username, UNCHANGED)


def import_users(
    *,
    path: Path,
    file_format: str | None = None,
    dry_run: bool = False,
    strict: bool = False,
    emit: Callable[[RowOutcome], None] = lambda outcome: None,
) -> ImportReport:
    """Import the file in one transaction (see the module docstring). `emit` hears each row's
    outcome as it is decided (the command prints them); a dry run, or a strict run with a
    skipped row, then rolls everything back. ImportRefused when the file cannot be read at all
    (nothing is written)."""
    if file_format is not None and file_format not in FORMATS:
        raise ImportRefused(f"unknown format {file_format!r}")
    report = ImportReport(dry_run=dry_run, strict=strict)
    try:
        with transaction.atomic():
            importer = _Importer(emit=emit, report=report)
            importer.run(read_rows(path, file_format))
            record_event(
                type=AuditEvent.Type.USERS_IMPORTED,
                file=path.name,
                format=file_format or detect_format(path),
                **{k: report.counts[k] for k in (CREATED, UPDATED, UNCHANGED, SKIPPED)},
                groups_created=len(report.groups_created),
            )
            if dry_run or (strict and report.counts[SKIPPED]):
                raise _Rollback
    except _Rollback:
        report.committed = False
    except UnicodeDecodeError as error:
        raise ImportRefused(f"not UTF-8 text: {error}") from error
    else:
        report.committed = True
    return report
