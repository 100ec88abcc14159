"""/api/v1/users/ and /api/v1/groups/: people and groups, through accounts.services (the same
functions the admin and `manage.py users`/`groups` call: each checks the permission rule with
the service client as actor, and writes the audit row)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from http import HTTPStatus
from typing import Any

from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, Prefetch, Q, QuerySet
from django.http import HttpRequest
from ninja import Query, Router, Status

from accounts import services
from accounts.models import User
from adminapi import cursor
from adminapi.auth import ServiceClientAuth
from adminapi.forms import change_form, creation_form, form_errors
from adminapi.problems import Problem, from_validation_error
from adminapi.schemas import (
    CountOut,
    GroupCreate,
    GroupOut,
    GroupPage,
    GroupUpdate,
    MembersIn,
    MembersOut,
    ProblemOut,
    RevokedOut,
    UserCreate,
    UserOut,
    UserPage,
    UserUpdate,
)

router = Router(auth=ServiceClientAuth("users"), tags=["users"])
groups_router = Router(auth=ServiceClientAuth("users"), tags=["groups"])

# Every answer an operation may give besides its success (the OpenAPI document lists them).
ERRORS: dict[int, Any] = dict.fromkeys((400, 401, 403, 404, 405, 409, 413, 415, 429), ProblemOut)


def _actor(request: HttpRequest) -> Any:
    return request.auth  # type: ignore[attr-defined]


def _users() -> QuerySet[User]:
    return User.objects.prefetch_related(
        Prefetch("groups", queryset=Group.objects.order_by("name").only("name"))
    )


def user_out(user: User) -> dict[str, Any]:
    return {
        **{field: getattr(user, field) for field in UserOut.model_fields if field != "groups"},
        "groups": [group.name for group in user.groups.all()],
    }


def _user(user_id: int) -> User:
    user = _users().filter(pk=user_id).first()
    if user is None:
        raise Problem(HTTPStatus.NOT_FOUND, f"No user with id {user_id}.", code="not-found")
    return user


@contextmanager
def _refusal_recorded(request: HttpRequest, user: User, action: str) -> Iterator[None]:
    """A change the permission rule refuses leaves an `admin.refused` row on the person's
    history (as the `users` command does), then answers 403 (or 409 for the last superuser)."""
    try:
        yield
    except PermissionDenied:
        services.record_admin_refusal(
            users=[user], actor=_actor(request), request=request, action=action
        )
        raise


def _invalid(errors: dict[str, list[str]]) -> Problem:
    return Problem(
        HTTPStatus.BAD_REQUEST,
        "; ".join(
            f"{field}: {message}" for field, messages in errors.items() for message in messages
        ),
        code="invalid-request",
        title="The request is not valid",
        errors=[
            {"field": field, "message": message}
            for field, messages in errors.items()
            for message in messages
        ],
    )


@router.get("/", response={200: UserPage, **ERRORS}, summary="List users")
def list_users(
    request: HttpRequest,
    q: str | None = None,
    username: str | None = None,
    is_active: bool | None = None,
    is_staff: bool | None = None,
    is_superuser: bool | None = None,
    group: str | None = None,
    cursor_: str | None = Query(None, alias="cursor"),
    limit: int = cursor.DEFAULT_LIMIT,
) -> Any:
    """Newest accounts first; `q` searches username, email and name."""
    users = _users()
    if q:
        users = users.filter(
            Q(username__icontains=q)
            | Q(email__icontains=q)
            | Q(first_name__icontains=q)
            | Q(last_name__icontains=q)
        )
    if username is not None:
        users = users.filter(username__iexact=username)
    for field, value in (
        ("is_active", is_active),
        ("is_staff", is_staff),
        ("is_superuser", is_superuser),
    ):
        if value is not None:
            users = users.filter(**{field: value})
    if group:
        users = users.filter(groups__name=group)
    rows, next_cursor = cursor.page(
        users,
        listing="users",
        fields=("pk",),
        cursor=cursor_,
        limit=limit,
        key_of=lambda user: [user.pk],
        parse_key=lambda key: [int(key[0])],
    )
    return {"items": [user_out(user) for user in rows], "next_cursor": next_cursor}


@router.post("/", response={201: UserOut, **ERRORS}, summary="Create a user")
def create_user(request: HttpRequest, payload: UserCreate) -> Any:
    """With `password` the person can sign in at once; without, they are emailed a link to
    choose one. Staff or superuser status at creation needs `admin:superusers`."""
    values = payload.model_dump()
    form = creation_form(values)
    if not form.is_valid():
        raise _invalid(form_errors(form))
    user = form.save(commit=False)
    for field in ("employee_id", "department", "job_title", "is_staff", "is_superuser"):
        setattr(user, field, values[field])
    if user.is_superuser:
        user.is_staff = True
    services.register_user(
        user=user, password=form.chosen_password(), actor=_actor(request), request=request
    )
    return Status(HTTPStatus.CREATED, user_out(_user(user.pk)))


@router.get("/{user_id}", response={200: UserOut, **ERRORS}, summary="Read a user")
def read_user(request: HttpRequest, user_id: int) -> Any:
    return user_out(_user(user_id))


@router.patch("/{user_id}", response={200: UserOut, **ERRORS}, summary="Change a user")
def update_user(request: HttpRequest, user_id: int, payload: UserUpdate) -> Any:
    """Only the fields sent change. `is_active: false` deactivates (sessions and tokens end);
    `is_staff` and `is_superuser` need `admin:superusers`; the last active superuser cannot be
    removed (409)."""
    user = _user(user_id)
    changes = payload.model_dump(exclude_unset=True)
    if changes.get("is_superuser"):
        changes["is_staff"] = True  # a superuser is also staff (accounts.services.set_superuser)
    form = change_form(user, changes)
    if not form.is_valid():
        raise _invalid(form_errors(form))
    changed = list(form.changed_data)
    if changed:
        with _refusal_recorded(request, user, "change"):
            services.save_admin_changes(
                user=form.save(commit=False),
                changed_fields=changed,
                actor=_actor(request),
                request=request,
            )
    return user_out(_user(user_id))


def _action(path: str, summary: str) -> Any:
    return router.post(path, response={200: UserOut, **ERRORS}, summary=summary)


@_action("/{user_id}/deactivate", "Deactivate a user")
def deactivate_user(request: HttpRequest, user_id: int) -> Any:
    """The person can no longer sign in; their sessions end and their tokens die now."""
    user = _user(user_id)
    with _refusal_recorded(request, user, "deactivate"):
        services.deactivate_user(user=user, actor=_actor(request), request=request)
    return user_out(_user(user_id))


@_action("/{user_id}/activate", "Activate a user")
def activate_user(request: HttpRequest, user_id: int) -> Any:
    user = _user(user_id)
    with _refusal_recorded(request, user, "activate"):
        services.activate_user(user=user, actor=_actor(request), request=request)
    return user_out(_user(user_id))


@router.post(
    "/{user_id}/reset-factors",
    response={200: CountOut, **ERRORS},
    summary="Remove every second factor of a user",
)
def reset_factors(request: HttpRequest, user_id: int) -> Any:
    user = _user(user_id)
    with _refusal_recorded(request, user, "reset-factors"):
        removed = services.reset_user_factors(user=user, actor=_actor(request), request=request)
    return {"count": removed}


@router.post(
    "/{user_id}/end-sessions",
    response={200: CountOut, **ERRORS},
    summary="End every browser session of a user",
)
def end_sessions(request: HttpRequest, user_id: int) -> Any:
    user = _user(user_id)
    with _refusal_recorded(request, user, "end-sessions"):
        ended = services.sign_out_everywhere(user=user, actor=_actor(request), request=request)
    return {"count": ended}


@router.post(
    "/{user_id}/revoke-tokens",
    response={200: RevokedOut, **ERRORS},
    summary="Revoke every token of a user",
)
def revoke_tokens(request: HttpRequest, user_id: int) -> Any:
    user = _user(user_id)
    with _refusal_recorded(request, user, "revoke-tokens"):
        revoked = services.revoke_all_user_tokens(user=user, actor=_actor(request), request=request)
    return {"revoked": revoked}


# --- Groups


def _groups() -> QuerySet[Group]:
    return Group.objects.select_related("profile__parent").annotate(
        member_count=Count("user", distinct=True)
    )


def group_out(group: Any) -> dict[str, Any]:
    profile = getattr(group, "profile", None)
    parent = profile.parent if profile is not None else None
    return {
        "id": group.pk,
        "name": group.name,
        "description": profile.description if profile is not None else "",
        "parent": parent.name if parent is not None else None,
        "member_count": group.member_count,
    }


def _group(group_id: int) -> Any:
    group = _groups().filter(pk=group_id).first()
    if group is None:
        raise Problem(HTTPStatus.NOT_FOUND, f"No group with id {group_id}.", code="not-found")
    return group


def _group_named(name: str, *, field: str) -> Group:
    group = Group.objects.filter(name=name).first()
    if group is None:
        raise _invalid({field: [f"No group named {name}."]})
    return group


def _users_named(usernames: list[str]) -> list[User]:
    found = {user.username: user for user in User.objects.filter(username__in=usernames)}
    missing = sorted(set(usernames) - set(found))
    if missing:
        raise _invalid({"usernames": [f"No user named {name}." for name in missing]})
    return [found[name] for name in dict.fromkeys(usernames)]


@groups_router.get("/", response={200: GroupPage, **ERRORS}, summary="List groups")
def list_groups(
    request: HttpRequest,
    q: str | None = None,
    cursor_: str | None = Query(None, alias="cursor"),
    limit: int = cursor.DEFAULT_LIMIT,
) -> Any:
    groups = _groups()
    if q:
        groups = groups.filter(name__icontains=q)
    rows, next_cursor = cursor.page(
        groups,
        listing="groups",
        fields=("pk",),
        cursor=cursor_,
        limit=limit,
        key_of=lambda group: [group.pk],
        parse_key=lambda key: [int(key[0])],
    )
    return {"items": [group_out(group) for group in rows], "next_cursor": next_cursor}


@groups_router.post("/", response={201: GroupOut, **ERRORS}, summary="Create a group")
def create_group(request: HttpRequest, payload: GroupCreate) -> Any:
    parent = _group_named(payload.parent, field="parent") if payload.parent else None
    try:
        group = services.create_group(
            name=payload.name,
            parent=parent,
            description=payload.description,
            actor=_actor(request),
            request=request,
        )
    except ValidationError as exc:
        raise from_validation_error(exc, default_field="name") from exc
    return Status(HTTPStatus.CREATED, group_out(_group(group.pk)))


@groups_router.get("/{group_id}", response={200: GroupOut, **ERRORS}, summary="Read a group")
def read_group(request: HttpRequest, group_id: int) -> Any:
    return group_out(_group(group_id))


@groups_router.patch(
    "/{group_id}", response={200: GroupOut, **ERRORS}, summary="Rename, move or describe"
)
def update_group(request: HttpRequest, group_id: int, payload: GroupUpdate) -> Any:
    """`parent: null` makes the group top-level; a group cannot go inside itself or one of its
    subgroups (400)."""
    group = _group(group_id)
    changes = payload.model_dump(exclude_unset=True)
    actor = _actor(request)
    try:
        if changes.get("name") is not None:
            services.rename_group(group=group, name=changes["name"], actor=actor, request=request)
        if "parent" in changes:
            parent = _group_named(changes["parent"], field="parent") if changes["parent"] else None
            services.set_group_parent(group=group, parent=parent, actor=actor, request=request)
        if changes.get("description") is not None:
            services.set_group_description(
                group=group, description=changes["description"], actor=actor, request=request
            )
    except ValidationError as exc:
        raise from_validation_error(exc) from exc
    return group_out(_group(group_id))


@groups_router.delete("/{group_id}", response={204: None, **ERRORS}, summary="Delete a group")
def delete_group(request: HttpRequest, group_id: int) -> Any:
    services.delete_group(group=_group(group_id), actor=_actor(request), request=request)
    return Status(HTTPStatus.NO_CONTENT, None)


@groups_router.get(
    "/{group_id}/members", response={200: MembersOut, **ERRORS}, summary="Direct members"
)
def list_members(request: HttpRequest, group_id: int) -> Any:
    group = _group(group_id)
    names = User.objects.filter(groups=group).order_by("username")
    return {"usernames": list(names.values_list("username", flat=True))}


@groups_router.post(
    "/{group_id}/members", response={200: MembersOut, **ERRORS}, summary="Add members"
)
def add_members(request: HttpRequest, group_id: int, payload: MembersIn) -> Any:
    """Returns those who were not members yet (each gets an audit row)."""
    added = services.add_members(
        group=_group(group_id),
        users=_users_named(payload.usernames),
        actor=_actor(request),
        request=request,
    )
    return {"usernames": [user.username for user in added]}


@groups_router.delete(
    "/{group_id}/members/{username}",
    response={204: None, **ERRORS},
    summary="Remove a member",
)
def remove_member(request: HttpRequest, group_id: int, username: str) -> Any:
    group = _group(group_id)
    user = User.objects.filter(username=username).first()
    if user is None or not user.groups.filter(pk=group.pk).exists():
        raise Problem(
            HTTPStatus.NOT_FOUND, f"{username} is not a member of {group.name}.", code="not-found"
        )
    services.remove_members(group=group, users=[user], actor=_actor(request), request=request)
    return Status(HTTPStatus.NO_CONTENT, None)
