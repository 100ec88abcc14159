"""People and groups as SCIM resources (RFC 7643 §4) and back: the one mapping between the
directory's columns and the scim2-models resources, both ways.

User: `userName` = username, `name.givenName`/`familyName` = first/last name, one work email
(`emails`), `active` = is_active, `title` = job title, `groups` (read-only: the direct groups),
`externalId` and the enterprise extension's `manager` kept in `scim.models.ScimUser`,
`employeeNumber` = employee ID, `department` = department (the directory attributes on the user).
Group: `displayName` = the group's name, `members` = its direct members (people only), `externalId`
in `scim.models.ScimGroup`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.auth.models import Group
from scim2_models import Context, Meta

from accounts.models import User
from scim.schemas import Email, EnterpriseUser, GroupMember, GroupMembership, Manager, Name
from scim.schemas import Group as ScimGroupResource
from scim.schemas import User as ScimUserResource

UserResource = ScimUserResource[EnterpriseUser]
GroupResource = ScimGroupResource


def resource_version(resource: Any) -> str:
    """A weak ETag (RFC 7644 §3.14) of everything the resource says but its `meta`: any change
    of it, through SCIM or not (the admin, a group's membership), gives a new version."""
    body = resource.model_dump_json(scim_ctx=Context.RESOURCE_QUERY_RESPONSE, exclude={"meta"})
    return 'W/"' + hashlib.sha256(body.encode()).hexdigest()[:32] + '"'


def _finish(resource: Any, *, kind: str, created: datetime, modified: datetime) -> Any:
    resource.meta = Meta(
        resource_type=kind,
        created=created,
        last_modified=modified,
        version=resource_version(resource),
    )
    return resource


def user_resource(user: User) -> UserResource:
    """A user as SCIM shows them. Reads `user.scim` and `user.groups.all()`: fetch users with
    `scim.storage.users_for_scim()` so a page of them costs two queries."""
    record = user.scim if _has_record(user) else None  # type: ignore[attr-defined]
    resource = UserResource(
        id=str(user.pk),
        external_id=(record.external_id or None) if record else None,
        user_name=user.username,
        name=Name(given_name=user.first_name or None, family_name=user.last_name or None),
        display_name=user.get_full_name() or user.username,
        emails=[Email(value=user.email, type=(record.email_type or None) if record else None)]
        if user.email
        else None,
        active=user.is_active,
        title=user.job_title or None,
        groups=[
            GroupMembership(value=str(group.pk), display=group.name, ref=f"Groups/{group.pk}")
            for group in user.groups.all()
        ]
        or None,
    )
    manager = record.manager_ref if record is not None else ""
    enterprise = EnterpriseUser(
        employee_number=user.employee_id or None,
        department=user.department or None,
        manager=Manager(value=manager) if manager else None,
    )
    if enterprise.employee_number or enterprise.department or enterprise.manager:
        resource[EnterpriseUser] = enterprise
    return _finish(resource, kind="User", created=user.date_joined, modified=user.updated_at)


def _has_record(user: User) -> bool:
    try:
        user.scim  # type: ignore[attr-defined]  # noqa: B018 (the reverse one-to-one, if any)
    except User.scim.RelatedObjectDoesNotExist:  # type: ignore[attr-defined]
        return False
    return True


def group_resource(group: Group) -> GroupResource:
    """A group as SCIM shows it, its direct members (`group.user_set`, prefetched by
    `groups_for_scim()`) in id order."""
    record = group.scim  # type: ignore[attr-defined]
    members = sorted(group.user_set.all(), key=lambda member: member.pk)
    resource = GroupResource(
        id=str(group.pk),
        external_id=record.external_id or None,
        display_name=group.name,
        members=[
            GroupMember(
                value=str(member.pk), ref=f"Users/{member.pk}", type="User", display=member.username
            )
            for member in members
        ]
        or None,
    )
    return _finish(resource, kind="Group", created=record.created_at, modified=record.updated_at)


@dataclass(frozen=True)
class UserValues:
    """What a SCIM client wrote about a person, as the directory's columns."""

    username: str
    first_name: str
    last_name: str
    email: str
    email_type: str
    is_active: bool
    job_title: str
    employee_id: str
    department: str
    external_id: str
    manager_ref: str
    password: str | None


def user_values(resource: Any) -> UserValues:
    """The directory's values of a validated SCIM user (a creation, a replacement, or a stored
    user with a PATCH applied). The first email; missing values are empty."""
    name = resource.name
    emails = resource.emails or []
    email = emails[0] if emails else None
    enterprise = resource[EnterpriseUser]
    manager = enterprise.manager if enterprise is not None else None
    return UserValues(
        username=resource.user_name or "",
        first_name=(name.given_name or "") if name else "",
        last_name=(name.family_name or "") if name else "",
        email=(email.value or "") if email is not None else "",
        email_type=(email.type or "") if email is not None else "",
        # RFC 7643 §4.1.1: a client that leaves `active` out means an active account.
        is_active=resource.active is not False,
        job_title=resource.title or "",
        employee_id=(enterprise.employee_number or "") if enterprise is not None else "",
        department=(enterprise.department or "") if enterprise is not None else "",
        external_id=resource.external_id or "",
        manager_ref=(manager.value or "") if manager is not None else "",
        password=resource.password or None,
    )


@dataclass(frozen=True)
class GroupValues:
    """What a SCIM client wrote about a group."""

    name: str
    external_id: str
    member_ids: tuple[str, ...]


def group_values(resource: Any) -> GroupValues:
    return GroupValues(
        name=resource.display_name or "",
        external_id=resource.external_id or "",
        member_ids=tuple(dict.fromkeys(str(member.value) for member in resource.members or [])),
    )
