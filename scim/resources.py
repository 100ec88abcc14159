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
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.auth.models import Group

from accounts.models import User
from scim.schemas import EnterpriseUser
from scim.schemas import Group as ScimGroupResource
from scim.schemas import User as ScimUserResource

UserResource = ScimUserResource[EnterpriseUser]
GroupResource = ScimGroupResource
USER_SCHEMA = str(ScimUserResource.__schema__)
GROUP_SCHEMA = str(ScimGroupResource.__schema__)
ENTERPRISE_SCHEMA = str(EnterpriseUser.__schema__)


def _time(moment: datetime) -> str:
    """RFC 7643 §2.3.5 dateTime, as scim2-models writes it."""
    return moment.isoformat().replace("+00:00", "Z")


def _finish(document: dict[str, Any], *, kind: str, created: datetime, modified: datetime) -> dict:
    """The document with its `meta`: a weak ETag (RFC 7644 §3.14) of everything it says but
    its `meta`, so any change, through SCIM or not (the admin, a group's membership), gives a
    new version."""
    body = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    document["meta"] = {
        "resourceType": kind,
        "created": _time(created),
        "lastModified": _time(modified),
        "version": 'W/"' + hashlib.sha256(body.encode()).hexdigest()[:32] + '"',
    }
    return document


def _prune(document: dict[str, Any]) -> dict[str, Any]:
    """Without the attributes that have no value (RFC 7643 §2.5: unassigned, not sent)."""
    return {key: value for key, value in document.items() if value not in (None, "", [], {})}


def user_document(user: User) -> dict[str, Any]:
    """A user as SCIM JSON (references relative to the SCIM root, no `meta.location`: the
    service adds them). The one mapping of a user: `user_resource` validates this document
    into scim2-models' resource, and a list of users is sent from these documents directly
    (`scim.handler`). Reads `user.scim` and the user's groups: fetch users with
    `scim.storage.users_for_scim()` so a page of them costs two queries."""
    record = user.scim if _has_record(user) else None  # type: ignore[attr-defined]
    email_type = (record.email_type if record else "") or None
    enterprise = _prune(
        {
            "employeeNumber": user.employee_id,
            "department": user.department,
            "manager": {"value": record.manager_ref} if record and record.manager_ref else None,
        }
    )
    document = _prune(
        {
            "schemas": [USER_SCHEMA, ENTERPRISE_SCHEMA] if enterprise else [USER_SCHEMA],
            "id": str(user.pk),
            "externalId": record.external_id if record else None,
            "userName": user.username,
            "name": _prune({"familyName": user.last_name, "givenName": user.first_name}),
            "displayName": user.get_full_name() or user.username,
            "title": user.job_title,
            "active": user.is_active,
            "emails": [_prune({"value": user.email, "type": email_type})] if user.email else None,
            "groups": [
                {"value": str(group.pk), "$ref": f"Groups/{group.pk}", "display": group.name}
                for group in _groups(user)
            ],
            ENTERPRISE_SCHEMA: enterprise,
        }
    )
    return _finish(document, kind="User", created=user.date_joined, modified=user.updated_at)


# Where `scim.storage.users_for_scim()` puts each user's groups (a list, not a related manager:
# building one per user was a fifth of a page of users).
GROUPS_ATTRIBUTE = "scim_groups"


def _groups(user: User) -> list[Group]:
    prefetched = getattr(user, GROUPS_ATTRIBUTE, None)
    return prefetched if prefetched is not None else list(user.groups.order_by("pk"))


def user_resource(user: User) -> UserResource:
    """A user as scim2-models' resource (reads, and the stored side of a PATCH or a PUT)."""
    return UserResource.model_validate(user_document(user))


def _has_record(user: User) -> bool:
    try:
        user.scim  # type: ignore[attr-defined]  # noqa: B018 (the reverse one-to-one, if any)
    except User.scim.RelatedObjectDoesNotExist:  # type: ignore[attr-defined]
        return False
    return True


def group_document(group: Group) -> dict[str, Any]:
    """A group as SCIM JSON, its direct members (`group.user_set`, prefetched by
    `scim.storage.groups_for_scim()`) in id order."""
    record = group.scim  # type: ignore[attr-defined]
    members = sorted(member.pk for member in group.user_set.all())
    document = _prune(
        {
            "schemas": [GROUP_SCHEMA],
            "id": str(group.pk),
            "externalId": record.external_id,
            "displayName": group.name,
            "members": [{"value": str(pk), "$ref": f"Users/{pk}"} for pk in members],
        }
    )
    return _finish(document, kind="Group", created=record.created_at, modified=record.updated_at)


def group_resource(group: Group) -> GroupResource:
    return GroupResource.model_validate(group_document(group))


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
    user with a PATCH applied). One email; missing values are empty."""
    name = resource.name
    emails = resource.emails or []
    # The work address when there is one: Entra ID writes `emails[type eq "work"].value`, which
    # adds a work entry beside an address that has no type yet (an account made in the admin).
    email = next((item for item in emails if item.type == "work"), emails[0] if emails else None)
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
