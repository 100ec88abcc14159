"""Sweeps of hostile requests (tests/hostile.py) over the admin console and every other page a
person reaches: each registered model's list with its own filters, search, ordering and paging
given values no column holds, object pages for ids that name nothing, and every page of the site
outside the protocols GET and POSTed random form fields while signed in. None answers a 500 (a
superuser may type any address; a list filters by whatever its query string says) or sends the
browser to another site."""

from __future__ import annotations

import contextlib
import random
import re
from http import HTTPStatus

from django.contrib import admin
from django.urls import NoReverseMatch, URLResolver, get_resolver, reverse

from tests.hostile import HOSTILE_TEXT, HOSTILE_URLS, Sweep
from tests.oidc.conftest import web_client  # noqa: F401 (a fixture)

QUERIES_PER_LIST = 10
VALUES = (
    "",
    "x",
    "-1",
    "0",
    "1e3",
    "true",
    "None",
    "é",
    "[",
    "1,2",
    "2026-99-99",
    "9" * 30,
    "\x00",
    "%00",
    "x" * 3000,
)
OBJECT_IDS = ("0", "-1", "x", "9" * 30, "\x00", "%2F..%2F")
POSTS_PER_FORM = 10
FORM_VALUES = (*HOSTILE_TEXT, *HOSTILE_URLS, "1", "0", "on", "9" * 30)


def query_names(model_admin) -> list[str]:
    """The list's own parameters: search, ordering, paging, and each filter's lookups."""
    names = ["q", "o", "p", "e", "all", "_to_field", "_popup"]
    for list_filter in model_admin.list_filter:
        if isinstance(list_filter, str):
            lookups = ("", "__exact", "__id__exact", "__gte", "__isnull", "__in")
            names += [list_filter + lookup for lookup in lookups]
        else:
            names.append(getattr(list_filter, "parameter_name", None) or "x")
    return names


def test_hostile_admin_queries_and_forms_never_get_a_500(
    admin_client,
    user,
    web_client,  # noqa: F811 (the fixture: a client app, so its change form is swept too)
):
    sweep = Sweep("admin console")
    for model, model_admin in admin.site._registry.items():
        opts = model._meta
        changelist = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
        # The list itself answers (Branding, a single row, sends its list to the one form).
        assert admin_client.get(changelist).status_code in (HTTPStatus.OK, HTTPStatus.FOUND)
        r = random.Random(f"admin {opts.label}")
        names = query_names(model_admin)
        for _ in range(QUERIES_PER_LIST):
            query = {r.choice(names): r.choice(VALUES) for _ in range(r.randint(1, 3))}
            sent = (changelist, query)
            response = sweep.send(sent, admin_client.get, changelist, query)
            if sweep.check_status(sent, response):
                sweep.check_redirect(sent, response, hosts=set())
        for object_id in OBJECT_IDS:
            page = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[object_id])
            response = sweep.send(page, admin_client.get, page)
            sweep.check_status(page, response)
        for form_page in form_pages(model):
            fields = form_fields(admin_client, form_page)
            for _ in range(POSTS_PER_FORM):
                names = r.sample(fields, k=min(len(fields), r.randint(0, 8)))
                data = {name: r.choice(FORM_VALUES) for name in names}
                sent = (form_page, data)
                response = sweep.send(sent, admin_client.post, form_page, data)
                if sweep.check_status(sent, response):
                    sweep.check_redirect(sent, response, hosts=set())
    sweep.assert_clean()


def form_pages(model) -> list[str]:
    """The model's add page (when it has one) and its first row's change page."""
    opts = model._meta
    pages = []
    with contextlib.suppress(NoReverseMatch):  # a model the admin never adds to
        pages.append(reverse(f"admin:{opts.app_label}_{opts.model_name}_add"))
    row = model._default_manager.first()
    if row is not None:
        pages.append(reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[row.pk]))
    return pages


def form_fields(admin_client, page: str) -> list[str]:
    """The names of the fields the page's form offers (none when it shows no form)."""
    response = admin_client.get(page)
    context = getattr(response, "context_data", None) or {}
    form = context.get("adminform")
    return sorted(form.form.fields) if form is not None else []


# Covered by their protocol's sweep (tests/oidc, tests/saml, tests/scim, tests/adminapi) or above.
SWEPT_ELSEWHERE = ("admin/", "api/", "scim/", "saml/", "o/", ".well-known/", "device")
PAGE_PARAMETERS = [
    "next",
    "action",
    "email",
    "password",
    "password1",
    "password2",
    "oldpassword",
    "code",
    "first_name",
    "last_name",
    "language",
    "remember",
    "credential",
    "name",
    "state",
    "error",
    "process",
    "logout_other_sessions",
    "action_remove",
    "action_primary",
    "action_send",
    "key",
    "confirm",
    "login",
]


def site_paths() -> list[str]:
    """Every path() route of the site outside the protocols, its ids filled in (1, and one that
    no row has): the account pages, allauth's, the security centre's, the public documents."""
    paths: list[str] = []

    def walk(patterns, prefix: str) -> None:
        for pattern in patterns:
            route = getattr(pattern.pattern, "_route", None)
            if route is None:  # a regular expression (allauth's key links): left to their tests
                continue
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, prefix + route)
                continue
            full = prefix + route
            if full.startswith(SWEPT_ELSEWHERE):
                continue
            for filled in (
                re.sub(r"<(\w+:)?\w+>", "1", full),
                re.sub(r"<(\w+:)?\w+>", "9" * 25, full),
            ):
                if "/" + filled not in paths:
                    paths.append("/" + filled)

    walk(get_resolver().url_patterns, "")
    return paths


def test_hostile_requests_at_every_page_never_get_a_500(client, user):
    """Signed in (the pages that need it act), each page GET and POSTed random form fields:
    never a 500, never a redirect to another site (a hostile `next` included)."""
    client.force_login(user)
    assert client.get("/account/").status_code == HTTPStatus.OK
    sweep = Sweep("pages")
    r = random.Random("pages")
    for page in site_paths():
        for _ in range(6):
            fields = {}
            for _ in range(r.randint(0, 4)):
                name = r.choice(PAGE_PARAMETERS)
                hostile = r.choice(HOSTILE_URLS) if name == "next" else r.choice(HOSTILE_TEXT)
                fields[name] = hostile
            method = r.choice(["get", "post", "post"])
            sent = (method.upper(), page, fields)
            response = sweep.send(sent, getattr(client, method), page, fields)
            if sweep.check_status(sent, response):
                sweep.check_redirect(sent, response, hosts=set())
            if "_auth_user_id" not in client.session:  # a sign-out page did its work
                client.force_login(user)
    sweep.assert_clean()
