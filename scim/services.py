"""State changes SCIM makes: its tokens, and people and groups written by a SCIM client.

Every change to people and groups goes through the services of `accounts.services` (audited,
ending sessions and tokens, keeping the group nesting right), called with no acting person:
the token is the authority, and the view names its client on every audit row
(`accounts.audit.acting_client`). A refusal is the SCIM error the client reads
(scim2-models' exceptions, answered by `scim.views`).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import Group
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.http import HttpRequest
from django.utils import timezone
from scim2_models import ForbiddenException, InvalidValueException, UniquenessException

from accounts import services as accounts_services
from accounts.audit import record_event
from accounts.models import AuditEvent, User
from scim.models import ScimGroup, ScimToken, ScimUser
from scim.resources import GroupValues, UserValues
from scim.tokens import generate_token, hash_token

# --- Tokens -------------------------------------------------------------------------------------


@transaction.atomic
def issue_token(
    *,
    name: str,
    read_only: bool = False,
    users: bool = True,
    groups: bool = True,
    expires_in_days: int | None = None,
    actor: Any = None,
    request: HttpRequest | None = None,
) -> tuple[ScimToken, str]:
    """A new SCIM client token. Returns the row and the token, which is stored only hashed:
    the caller shows it once."""
    if not users and not groups:
        raise ValidationError("A SCIM token must cover users, groups or both.", code="scope")
    plain = generate_token()
    token = ScimToken.objects.create(
        name=name.strip(),
        prefix=plain[:12],
        token_hash=hash_token(plain),
        read_only=read_only,
        may_manage_users=users,
        may_manage_groups=groups,
        expires_at=(timezone.now() + timedelta(days=expires_in_days) if expires_in_days else None),
        created_by=actor if getattr(actor, "pk", None) else None,
    )
    record_event(
        type=AuditEvent.Type.TOKENS_ISSUED,
        request=request,
        actor=actor,
        kind="scim_token",
        scim_token=token.name,
        scim_token_id=token.pk,
        read_only=read_only,
        users=users,
        groups=groups,
        expires_at=token.expires_at.isoformat() if token.expires_at else None,
    )
    return token, plain


@transaction.atomic
def revoke_token(
    *, token: ScimToken, actor: Any = None, request: HttpRequest | None = None
) -> bool:
    """The token stops working now. Returns whether it was still live."""
    revoked = ScimToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )
    if revoked:
        token.refresh_from_db(fields=["revoked_at"])
        record_event(
            type=AuditEvent.Type.TOKEN_REVOKED,
            request=request,
            actor=actor,
            reason="scim_token_revoked",
            scim_token=token.name,
            scim_token_id=token.pk,
        )
    return bool(revoked)


# --- People -------------------------------------------------------------------------------------


def visible_users() -> Q:
    """The people SCIM shows: all but those a SCIM client deleted (RFC 7644 §3.6)."""
    return Q(scim__isnull=True) | Q(scim__deleted_at__isnull=True)


def _ensure_username_free(*, username: str, user: User | None = None) -> None:
    # userName is unique and, like sign-in, case-insensitive (RFC 7643 §4.1.1: caseExact false).
    taken = User.objects.filter(username__iexact=username)
    if user is not None:
        taken = taken.exclude(pk=user.pk)
    if taken.exists():
        raise UniquenessException(detail=f"userName {username!r} is already taken")


def _ensure_not_last_superuser(*, user: User) -> None:
    """Refuse to take away the last active superuser's access (nobody could administer after)."""
    if not (user.is_active and user.is_superuser):
        return
    others = User.objects.filter(is_active=True, is_superuser=True).exclude(pk=user.pk)
    if not others.exists():
        raise InvalidValueException(
            detail="The last active superuser cannot be deactivated or deleted through SCIM"
        )


# What signs an account in, or receives its reset link: a SCIM client may not change these on
# an account with administration access (a leaked SCIM token would otherwise point a
# superuser's email at its holder and reset the password). Deactivating one stays allowed.
_SIGN_IN_FIELDS = ("username", "email")


def _ensure_no_takeover(*, user: User, values: UserValues) -> None:
    if not (user.is_staff or user.is_superuser):
        return
    changed = [field for field in _SIGN_IN_FIELDS if getattr(user, field) != getattr(values, field)]
    if changed or values.password is not None:
        raise ForbiddenException(
            detail="The sign-in name, email and password of an account with administration "
            "access are changed in the admin, not through SCIM"
        )


def _check_password(password: str | None, user: User) -> None:
    if password is None:
        return
    try:
        validate_password(password, user)
    except ValidationError as error:
        raise InvalidValueException(detail=" ".join(error.messages)) from None


# Each value a SCIM client writes about a person or a group: the column that keeps it, and the
# attribute it came in (userName and displayName are checked with their own rules).
_USER_COLUMNS = {
    "first_name": (User, "first_name", "name.givenName"),
    "last_name": (User, "last_name", "name.familyName"),
    "email": (User, "email", "emails.value"),
    "job_title": (User, "job_title", "title"),
    "employee_id": (User, "employee_id", "employeeNumber"),
    "department": (User, "department", "department"),
    "external_id": (ScimUser, "external_id", "externalId"),
    "manager_ref": (ScimUser, "manager_ref", "manager.value"),
    "email_type": (ScimUser, "email_type", "emails.type"),
}
_GROUP_COLUMNS = {"external_id": (ScimGroup, "external_id", "externalId")}


def _check_lengths(values: UserValues | GroupValues, columns: dict[str, tuple]) -> None:
    """A value longer than its column is the client's error (400 invalidValue, naming the
    attribute), never the database's: PostgreSQL refuses it with an error (a 500)."""
    for name, (model, column, attribute) in columns.items():
        limit = model._meta.get_field(column).max_length
        if limit is not None and len(getattr(values, name)) > limit:
            raise InvalidValueException(detail=f"{attribute} is longer than {limit} characters")


def _check_username(username: str) -> None:
    field = User._meta.get_field("username")
    try:
        field.clean(username, None)
    except ValidationError as error:
        raise InvalidValueException(detail=" ".join(error.messages)) from None


@transaction.atomic
def create_user(*, values: UserValues, request: HttpRequest) -> User:
    """A person a SCIM client provisions. Without a password they are emailed a link to choose
    one (accounts.services.register_user). An account the client deleted (`delete_user`) is
    restored instead of refused."""
    _check_username(values.username)
    _check_lengths(values, _USER_COLUMNS)
    deleted = User.objects.filter(
        username__iexact=values.username, scim__deleted_at__isnull=False
    ).first()
    if deleted is not None:
        # A client creating again someone it deleted (Entra ID when a leaver is assigned again):
        # the deactivated account comes back, as the admin's "activate" brings it back.
        ScimUser.objects.filter(user=deleted).update(deleted_at=None)
        update_user(user=deleted, values=values, request=request)
        return deleted
    _ensure_username_free(username=values.username)
    user = User(
        username=values.username,
        first_name=values.first_name,
        last_name=values.last_name,
        email=values.email,
        job_title=values.job_title,
        employee_id=values.employee_id,
        department=values.department,
        is_active=True,
    )
    _check_password(values.password, user)
    accounts_services.register_user(
        user=user, password=values.password, actor=None, request=request
    )
    ScimUser.objects.create(
        user=user,
        external_id=values.external_id,
        manager_ref=values.manager_ref,
        email_type=values.email_type,
    )
    if not values.is_active:
        accounts_services.deactivate_user(user=user, actor=None, request=request)
    return user


_DIRECTORY_FIELDS = (
    "username",
    "first_name",
    "last_name",
    "email",
    "job_title",
    "employee_id",
    "department",
)


@transaction.atomic
def update_user(*, user: User, values: UserValues, request: HttpRequest) -> None:
    """A SCIM replacement or PATCH of a person: each change through its service (a rename,
    the profile, deactivation ending sessions and tokens), the SCIM-only values on the side."""
    _check_lengths(values, _USER_COLUMNS)
    user = User.objects.select_for_update().get(pk=user.pk)
    if values.username != user.username:
        _check_username(values.username)
        _ensure_username_free(username=values.username, user=user)
    if not values.is_active:
        _ensure_not_last_superuser(user=user)
    _ensure_no_takeover(user=user, values=values)
    _check_password(values.password, user)
    changed = [
        field for field in _DIRECTORY_FIELDS if getattr(user, field) != getattr(values, field)
    ]
    if user.is_active != values.is_active:
        changed.append("is_active")
    for field in _DIRECTORY_FIELDS:
        setattr(user, field, getattr(values, field))
    user.is_active = values.is_active
    if changed:
        accounts_services.save_admin_changes(
            user=user, changed_fields=changed, actor=None, request=request
        )
    record, _created = ScimUser.objects.get_or_create(user=user)
    scim_fields = {
        "externalId": ("external_id", values.external_id),
        "manager": ("manager_ref", values.manager_ref),
        "emails.type": ("email_type", values.email_type),
    }
    record_changed = [
        name for name, (field, value) in scim_fields.items() if getattr(record, field) != value
    ]
    if record_changed:
        for field, value in scim_fields.values():
            setattr(record, field, value)
        record.save(update_fields=[field for field, _value in scim_fields.values()])
        record_event(
            type=AuditEvent.Type.USER_CHANGED, request=request, subject=user, fields=record_changed
        )
    if values.password is not None:
        user.set_password(values.password)
        User.objects.filter(pk=user.pk).update(password=user.password)
        ended = accounts_services.end_user_sessions(user=user)
        record_event(
            type=AuditEvent.Type.PASSWORD_CHANGED,
            request=request,
            subject=user,
            by_admin=True,
            sessions_ended=ended,
        )
    if changed or record_changed or values.password is not None:
        # meta.lastModified (RFC 7643 §3.1) is the user's `updated_at`; deactivation and the
        # SCIM-only values do not save the user row, so it is stamped here.
        User.objects.filter(pk=user.pk).update(updated_at=timezone.now())


@transaction.atomic
def delete_user(*, user: User, request: HttpRequest) -> None:
    """RFC 7644 §3.6. The account is deactivated (sessions and tokens end) and answers 404 to
    SCIM from now on; with IDP_SCIM_HARD_DELETE it is deleted instead."""
    _ensure_not_last_superuser(user=user)
    if settings.IDP_SCIM_HARD_DELETE:
        accounts_services.delete_user(user=user, actor=None, request=request)
        return
    if user.is_active:
        accounts_services.deactivate_user(user=user, actor=None, request=request)
    ScimUser.objects.update_or_create(user=user, defaults={"deleted_at": timezone.now()})
    User.objects.filter(pk=user.pk).update(updated_at=timezone.now())


# --- Groups -------------------------------------------------------------------------------------


def _members(member_ids: tuple[str, ...]) -> list[User]:
    ids = [int(value) for value in member_ids if value.isdigit() and len(value) < 19]
    found = list(User.objects.filter(visible_users(), pk__in=ids))
    if len(ids) != len(member_ids) or len(found) != len(ids):
        known = {str(user.pk) for user in found}
        unknown = [value for value in member_ids if value not in known]
        raise InvalidValueException(detail=f"members {unknown!r} are no users")
    return found


def _group_errors(error: ValidationError) -> Exception:
    if getattr(error, "code", None) == "unique":
        return UniquenessException(detail=" ".join(error.messages))
    return InvalidValueException(detail=" ".join(error.messages))


@transaction.atomic
def create_group(*, values: GroupValues, request: HttpRequest) -> Group:
    """A group a SCIM client creates (top-level), with its members."""
    _check_lengths(values, _GROUP_COLUMNS)
    members = _members(values.member_ids)
    try:
        group = accounts_services.create_group(name=values.name, actor=None, request=request)
    except ValidationError as error:
        raise _group_errors(error) from None
    ScimGroup.objects.create(group=group, external_id=values.external_id)
    if members:
        accounts_services.add_members(group=group, users=members, actor=None, request=request)
    return group


@transaction.atomic
def update_group(*, group: Group, values: GroupValues, request: HttpRequest) -> None:
    """A SCIM replacement or PATCH of a group: a rename, members added and removed (each
    audited; whoever leaves loses the apps assigned through the group)."""
    _check_lengths(values, _GROUP_COLUMNS)
    members = _members(values.member_ids)
    try:
        renamed = accounts_services.rename_group(
            group=group, name=values.name, actor=None, request=request
        )
    except ValidationError as error:
        raise _group_errors(error) from None
    wanted = {user.pk: user for user in members}
    current = {user.pk: user for user in group.user_set.filter(visible_users())}
    removed = [current[pk] for pk in sorted(current.keys() - wanted.keys())]
    added = [wanted[pk] for pk in sorted(wanted.keys() - current.keys())]
    if removed:
        accounts_services.remove_members(group=group, users=removed, actor=None, request=request)
    if added:
        accounts_services.add_members(group=group, users=added, actor=None, request=request)
    record, _created = ScimGroup.objects.get_or_create(group=group)
    changed = renamed or removed or added or record.external_id != values.external_id
    if record.external_id != values.external_id:
        record_event(
            type=AuditEvent.Type.GROUP_CHANGED,
            request=request,
            fields=["externalId"],
            group=group.name,
            group_id=group.pk,
        )
    if changed:
        record.external_id = values.external_id
        record.updated_at = timezone.now()
        record.save(update_fields=["external_id", "updated_at"])


@transaction.atomic
def delete_group(*, group: Group, request: HttpRequest) -> None:
    """Delete the group; its members leave it first (each audited)."""
    try:
        accounts_services.delete_group(group=group, actor=None, request=request)
    except ValidationError as error:
        raise _group_errors(error) from None
