"""scim2-server's storage on the directory: reads people and groups with the ORM, writes them
through `scim.services` (audited, on the accounts services).

scim2-server does the protocol (routing, validating bodies, applying a PATCH or a replacement to
the stored resource, `If-Match`, paging bounds, error bodies) and calls this class between its
steps; one instance per request, holding the request for the audit rows.
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any

from django.contrib.auth.models import Group
from django.db import transaction
from django.db.models import Prefetch, QuerySet
from django.http import HttpRequest
from scim2_models import (
    NotFoundException,
    NotImplementedException,
    PreconditionFailedException,
    Resource,
    ResourceType,
    ResponseParameters,
    SearchRequest,
)
from scim2_server.storage import ScimStorage, SearchPage

from accounts.models import User
from scim import services
from scim.filters import GROUP_COLUMNS, USER_COLUMNS, filter_q
from scim.models import ScimGroup
from scim.resources import (
    GROUPS_ATTRIBUTE,
    group_document,
    group_resource,
    group_values,
    user_document,
    user_resource,
    user_values,
)


def users_for_scim() -> QuerySet[User]:
    """People as SCIM reads them: their SCIM record and manager joined, their groups in one
    more query per page."""
    return (
        User.objects.filter(services.visible_users())
        .select_related("scim")
        .prefetch_related(
            Prefetch(
                "groups",
                queryset=Group.objects.only("pk", "name").order_by("pk"),
                to_attr=GROUPS_ATTRIBUTE,
            )
        )
    )


def groups_for_scim() -> QuerySet[Group]:
    """Groups as SCIM reads them: their SCIM record joined, their members in one more query."""
    return Group.objects.select_related("scim").prefetch_related(
        Prefetch(
            "user_set",
            queryset=User.objects.filter(services.visible_users()).only("pk", "username"),
        )
    )


def _ensure_group_records(groups: list[Group]) -> None:
    """Groups made outside SCIM (the admin, the groups command) get their SCIM record, with
    their timestamps, the first time SCIM reads them."""
    missing = [group for group in groups if not hasattr(group, "scim")]
    if not missing:
        return
    ScimGroup.objects.bulk_create(
        [ScimGroup(group=group) for group in missing], ignore_conflicts=True
    )
    records = ScimGroup.objects.in_bulk([group.pk for group in missing])
    for group in missing:
        group.scim = records[group.pk]  # type: ignore[attr-defined]


_LARGEST_OFFSET = 2**63 - 1  # PostgreSQL's OFFSET and LIMIT are bigints


def _pk(resource_id: str | None, kind: str) -> int:
    if resource_id and resource_id.isdigit() and len(resource_id) < 19:
        return int(resource_id)
    raise NotFoundException(detail=f"{kind} {resource_id!r} not found")


class DirectoryStorage(ScimStorage):
    def __init__(self, *, request: HttpRequest) -> None:
        self.request = request

    def operation(self) -> Any:
        """A write in one transaction (the services' rows, the audit rows, the re-read);
        a read in none."""
        if self.request.method in ("GET", "HEAD"):
            return nullcontext()
        return transaction.atomic()

    # --- Reads ----------------------------------------------------------------------------------

    def _user(self, resource_id: str | None) -> User:
        user = users_for_scim().filter(pk=_pk(resource_id, "User")).first()
        if user is None:
            raise NotFoundException(detail=f"User {resource_id!r} not found")
        return user

    def _group(self, resource_id: str | None) -> Group:
        group = groups_for_scim().filter(pk=_pk(resource_id, "Group")).first()
        if group is None:
            raise NotFoundException(detail=f"Group {resource_id!r} not found")
        _ensure_group_records([group])
        return group

    def get(
        self,
        resource_type: ResourceType,
        resource_id: str,
        *,
        response_parameters: ResponseParameters[Any] | None = None,
    ) -> Resource[Any]:
        if resource_type.name == "User":
            return user_resource(self._user(resource_id))
        return group_resource(self._group(resource_id))

    def _rows(
        self, resource_types: list[ResourceType], search_request: SearchRequest[Any]
    ) -> tuple[bool, int, list[Any]]:
        """Whether Users are searched, how many match, and the rows of the page asked for."""
        if len(resource_types) != 1:
            raise NotImplementedException(detail="Search at the root is not supported")
        is_user = resource_types[0].name == "User"
        queryset: QuerySet[Any] = users_for_scim() if is_user else groups_for_scim()
        if search_request.filter is not None:
            columns = USER_COLUMNS if is_user else GROUP_COLUMNS
            condition, joins_many = filter_q(columns, search_request.filter.ast)
            queryset = queryset.filter(condition)
            if joins_many:
                queryset = queryset.distinct()  # a join through memberships repeats rows
        queryset = queryset.order_by("pk")
        start = search_request.start_index_0 or 0
        count = search_request.count if search_request.count is not None else 0
        # RFC 7644 §3.4.2.4: a startIndex past the last match is an empty page. One past what a
        # bigint holds would overflow PostgreSQL's OFFSET (a 500), so it is not asked for.
        past_any_table = start + count > _LARGEST_OFFSET
        rows = list(queryset[start : start + count]) if count and not past_any_table else []
        # The total without a second query when this one page holds every match.
        total = len(rows) if start == 0 and len(rows) < count else queryset.count()
        if not is_user:
            _ensure_group_records(rows)
        return is_user, total, rows

    def search_documents(
        self, resource_types: list[ResourceType], search_request: SearchRequest[Any]
    ) -> tuple[int, list[dict[str, Any]]]:
        """How many match, and the page as SCIM JSON (`scim.handler`'s list)."""
        is_user, total, rows = self._rows(resource_types, search_request)
        document = user_document if is_user else group_document
        return total, [document(row) for row in rows]

    def search(
        self,
        resource_types: list[ResourceType],
        search_request: SearchRequest[Any],
        *,
        position: Any = None,
    ) -> SearchPage:
        is_user, total, rows = self._rows(resource_types, search_request)
        resource = user_resource if is_user else group_resource
        return SearchPage(total, [resource(row) for row in rows])

    # --- Writes ---------------------------------------------------------------------------------

    def create(self, resource_type: ResourceType, resource: Resource[Any]) -> Resource[Any]:
        if resource_type.name == "User":
            user = services.create_user(values=user_values(resource), request=self.request)
            return user_resource(self._user(str(user.pk)))
        group = services.create_group(values=group_values(resource), request=self.request)
        return group_resource(self._group(str(group.pk)))

    @staticmethod
    def _check_version(current: Resource[Any], expected_version: str | None) -> None:
        if (
            expected_version is not None
            and current.meta
            and current.meta.version != expected_version
        ):
            raise PreconditionFailedException(detail="The resource has changed")

    def update(
        self,
        resource_type: ResourceType,
        resource: Resource[Any],
        *,
        expected_version: str | None = None,
    ) -> Resource[Any]:
        if resource_type.name == "User":
            user = self._user(resource.id)
            self._check_version(user_resource(user), expected_version)
            services.update_user(user=user, values=user_values(resource), request=self.request)
            return user_resource(self._user(resource.id))
        group = self._group(resource.id)
        self._check_version(group_resource(group), expected_version)
        services.update_group(group=group, values=group_values(resource), request=self.request)
        return group_resource(self._group(resource.id))

    def delete(
        self,
        resource_type: ResourceType,
        resource_id: str,
        *,
        expected_version: str | None = None,
    ) -> None:
        if resource_type.name == "User":
            user = self._user(resource_id)
            self._check_version(user_resource(user), expected_version)
            services.delete_user(user=user, request=self.request)
            return
        group = self._group(resource_id)
        self._check_version(group_resource(group), expected_version)
        services.delete_group(group=group, request=self.request)
