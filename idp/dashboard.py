"""The admin home page's figures: a few aggregate counts, each linking to the list it counts.

One query per figure at most (sign-ins and failed sign-ins share one), and only for the lists
the administrator may view: a card is shown only when its list is (the model admin's own view
permission), so the dashboard never tells a staff member more than the admin would.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from urllib.parse import urlencode

from django.contrib.admin import AdminSite
from django.db.models import Count, Model, Q
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from accounts.models import AuditEvent, User
from oauth_clients.models import BackchannelDelivery, Client


@dataclass(frozen=True)
class Card:
    key: str
    label: str | Promise
    count: int
    url: str
    # A non-zero count someone should look at (shown highlighted).
    attention: bool


def _may_view(request: HttpRequest, admin_site: AdminSite, model: type[Model]) -> bool:
    return admin_site.is_registered(model) and admin_site.get_model_admin(
        model
    ).has_view_permission(request)


def _list_url(admin_site: AdminSite, model: type[Model], **filters: str) -> str:
    meta = model._meta
    url = reverse(
        f"admin:{meta.app_label}_{meta.model_name}_changelist", current_app=admin_site.name
    )
    return f"{url}?{urlencode(filters)}" if filters else url


def dashboard_cards(*, request: HttpRequest, admin_site: AdminSite) -> list[Card]:
    """The cards of the admin home page this administrator may see, in display order."""
    now = timezone.now()
    cards: list[Card] = []

    if _may_view(request, admin_site, AuditEvent):
        # "Today" as the audit list's own date filter has it (Django's DateFieldListFilter:
        # local midnight to the next), so the link opens that filter selected.
        today = timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)
        tomorrow = today + datetime.timedelta(days=1)
        figures = AuditEvent.objects.filter(
            created_at__gte=today,
            type__in=(AuditEvent.Type.LOGIN_SUCCEEDED, AuditEvent.Type.LOGIN_FAILED),
        ).aggregate(
            succeeded=Count("pk", filter=Q(type=AuditEvent.Type.LOGIN_SUCCEEDED)),
            failed=Count("pk", filter=Q(type=AuditEvent.Type.LOGIN_FAILED)),
        )
        for key, event_type, label, count in (
            ("signins", AuditEvent.Type.LOGIN_SUCCEEDED, _("Sign-ins today"), figures["succeeded"]),
            (
                "failed-signins",
                AuditEvent.Type.LOGIN_FAILED,
                _("Failed sign-ins today"),
                figures["failed"],
            ),
        ):
            url = _list_url(
                admin_site,
                AuditEvent,
                type__exact=event_type.value,
                created_at__gte=str(today),
                created_at__lt=str(tomorrow),
            )
            cards.append(Card(key, label, count, url, attention=key != "signins" and count > 0))

    if _may_view(request, admin_site, User):
        locked = User.objects.filter(locked_until__gt=now).count()
        # accounts/admin.py LockedFilter: "Locked now".
        url = _list_url(admin_site, User, locked="yes")
        cards.append(Card("locked", _("Accounts locked now"), locked, url, attention=locked > 0))

    if _may_view(request, admin_site, Client):
        # Clients have no secret expiry; after a rotation the previous secret keeps working
        # until previous_secret_expires_at (oauth_clients/oidc/token_policy.py), and those apps
        # still have to switch to the new one.
        in_grace = Client.objects.filter(previous_secret_expires_at__gt=now).count()
        url = _list_url(
            admin_site,
            Client,
            previous_secret_expires_at__gt=now.replace(microsecond=0).isoformat(),
        )
        cards.append(
            Card(
                "secret-grace",
                _("Apps whose previous secret still works"),
                in_grace,
                url,
                attention=in_grace > 0,
            )
        )

    if _may_view(request, admin_site, BackchannelDelivery):
        failed = BackchannelDelivery.objects.filter(
            status=BackchannelDelivery.Status.FAILED
        ).count()
        url = _list_url(
            admin_site, BackchannelDelivery, status__exact=BackchannelDelivery.Status.FAILED.value
        )
        cards.append(
            Card(
                "failed-deliveries",
                _("Failed logout deliveries"),
                failed,
                url,
                attention=failed > 0,
            )
        )

    return cards
