"""A sweep of hostile queries over every list and object page of the admin console
(tests/hostile.py): each registered model's list with its own filters, search, ordering and
paging given values no column holds, and object pages for ids that name nothing. None answers a
500 (a superuser may type any address; a list filters by whatever its query string says)."""

from __future__ import annotations

import random
from http import HTTPStatus

from django.contrib import admin
from django.urls import reverse

from tests.hostile import Sweep

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


def test_hostile_admin_queries_never_get_a_500(admin_client):
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
    sweep.assert_clean()
