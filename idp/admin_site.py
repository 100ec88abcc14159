"""The identity admin console: Django's admin site, branded, grouped, with a dashboard home page.

Installed as the default admin site (idp/apps.py, Django's "Overriding the default admin site"),
so every `admin.site.register(...)` and `@admin.register` in the apps keeps working unchanged.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar, cast

from django.contrib import admin
from django.contrib.admin.views.main import SEARCH_VAR
from django.core.exceptions import BadRequest
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts.branding import get_branding
from idp import dashboard
from idp.input_limits import query_holds_nul, query_past_64_bits

_View = TypeVar("_View", bound=Callable[..., Any])

# The people and apps an administrator manages day to day, in this order: the first section.
IDENTITY_MODELS = (
    "accounts.user",
    "auth.group",
    "oauth_clients.client",
    "accounts.auditevent",
    "oauth_clients.backchanneldelivery",
    "scim.scimtoken",
    "provisioning.scimtarget",
    "provisioning.provisioningdelivery",
)
# This deployment's own settings: the second section.
SETTINGS_MODELS = ("accounts.branding", "federation.upstreamprovider")
# Every other registered model (the libraries' tables: tokens, grants, task results, e-mail
# addresses, authenticators, browser sessions, ...) is listed under "Advanced", last.


def _section(name: str, label: str, index_url: str, models: list[dict[str, Any]]) -> dict:
    """One group of the home page and the sidebar, in the shape Django's admin/app_list.html
    reads for an app. The caption links to its place on the home page: a section is no app, so
    there is no app index page to link to (and an anchor never matches the current path, so
    the sidebar highlights only the current model)."""
    return {
        "name": name,
        "app_label": label,
        "app_url": f"{index_url}#{label}",
        "has_module_perms": True,
        "models": models,
    }


class IdentityAdminSite(admin.AdminSite):
    index_title = gettext_lazy("Dashboard")

    def admin_view(self, view: _View, cacheable: bool = False) -> _View:
        """Every admin page (Django wraps each model admin's views here too) answers input no
        column can take with the branded 400 page, never a 500 (idp/input_limits.py): a list
        filters by what its query string says, so a NUL character (PostgreSQL refuses it) or,
        outside the search box, an integer past 64 bits (SQLite's driver cannot bind it) is
        refused first; a form's choice of such an integer (a crafted POST) is refused when
        SQLite's driver raises on it (PostgreSQL finds no such row: the form says so)."""
        wrapped = super().admin_view(view, cacheable)

        @functools.wraps(wrapped)
        def checked(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            query = request.GET
            if query_holds_nul(query) or query_past_64_bits(query, text=(SEARCH_VAR,)):
                raise BadRequest("A query value no column can hold")
            try:
                return wrapped(request, *args, **kwargs)
            except OverflowError as error:
                raise BadRequest("A number no column can hold") from error

        return cast("_View", checked)

    def each_context(self, request: HttpRequest) -> dict[str, Any]:
        context = super().each_context(request)
        # Read on every page (cached, never failing: accounts/branding.py), so a new company
        # name shows at once, like on the sign-in pages.
        company = get_branding().company_name.strip() or _("Company")
        context["site_header"] = context["site_title"] = _("%(company)s identity admin") % {
            "company": company
        }
        return context

    def get_app_list(
        self, request: HttpRequest, app_label: str | None = None
    ) -> list[dict[str, Any]]:
        apps = super().get_app_list(request, app_label)
        if app_label is not None:
            # One app's own page (/admin/<app_label>/) lists that app's models as Django does.
            return apps
        models = {
            model["model"]._meta.label_lower: model for app in apps for model in app["models"]
        }
        index_url = reverse("admin:index", current_app=self.name)
        identity = [models.pop(key) for key in IDENTITY_MODELS if key in models]
        site_settings = [models.pop(key) for key in SETTINGS_MODELS if key in models]
        advanced = sorted(models.values(), key=lambda model: str(model["name"]).lower())
        sections = [
            (_("Identity"), "identity", identity),
            (_("Settings"), "settings", site_settings),
            (_("Advanced"), "advanced", advanced),
        ]
        return [
            _section(str(name), label, index_url, section_models)
            for name, label, section_models in sections
            if section_models
        ]

    def index(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> TemplateResponse:
        # The home page is a dashboard (templates/admin/index.html) above the sections.
        extra_context = {
            "dashboard_cards": dashboard.dashboard_cards(request=request, admin_site=self),
            **(extra_context or {}),
        }
        return super().index(request, extra_context)
