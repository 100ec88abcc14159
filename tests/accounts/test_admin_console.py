"""The identity admin console: branded header, dashboard home page, grouped app list, one
breadcrumb trail on client-app pages (idp/admin_site.py, idp/dashboard.py, templates/admin/)."""

from __future__ import annotations

import datetime as dt
import html
import re
from http import HTTPStatus

import pytest
from django.contrib import admin
from django.contrib.auth.models import Permission
from django.test import Client as Browser
from django.test import RequestFactory
from django.urls import reverse
from django.utils import timezone

from accounts import branding
from accounts.models import AuditEvent, User
from idp.dashboard import dashboard_cards
from oauth_clients import services as client_services
from oauth_clients.models import BackchannelDelivery, Client
from tests.accounts.conftest import sign_in
from tests.conftest import with_password

INDEX_URL = "/admin/"
WEB_REDIRECT = "https://wiki.example.com/oidc/callback"

ALL_CARDS = ["signins", "failed-signins", "locked", "secret-grace", "failed-deliveries"]


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


@pytest.fixture
def wiki(db, admin_user):
    app, _secret = client_services.register_client(
        actor=admin_user,
        kind=Client.Kind.WEB,
        name="Wiki",
        redirect_uris=[WEB_REDIRECT],
        scopes=["openid", "profile"],
    )
    return app


@pytest.fixture
def helpdesk(db, password_hash):
    """A staff member who may view users and nothing else."""
    staff = User.objects.create_user("helpdesk", "helpdesk@example.com", None, is_staff=True)
    staff.user_permissions.add(
        Permission.objects.get(content_type__app_label="accounts", codename="view_user")
    )
    return with_password(staff, password_hash)


def cards_by_key(response) -> dict:
    return {card.key: card for card in response.context["dashboard_cards"]}


def section_models(app_list: list[dict]) -> dict[str, list[str]]:
    """Section name → the "app_label.model" of each entry, in display order."""
    return {
        str(section["name"]): [
            f"{model['model']._meta.app_label}.{model['model']._meta.model_name}"
            for model in section["models"]
        ]
        for section in app_list
    }


def trails(page: str) -> list[str]:
    """The breadcrumb trails of a page, as text."""
    found = re.findall(r'<div class="breadcrumbs">(.*?)</div>', page, re.S)
    return [
        re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", "", trail))).strip() for trail in found
    ]


# --- Branded header


def test_header_and_title_name_the_company_from_branding(admin_client, admin_user):
    branding.update_branding(actor=admin_user, company_name="Acme Corp")

    page = admin_client.get(INDEX_URL).content.decode()

    assert '<div id="site-name"><a href="/admin/">Acme Corp identity admin</a></div>' in page
    assert "<title>Dashboard | Acme Corp identity admin</title>" in page
    assert "Django administration" not in page
    assert "Django site admin" not in page


def test_header_follows_a_branding_change_on_the_next_page(admin_client, admin_user):
    branding.update_branding(actor=admin_user, company_name="Acme Corp")
    assert "Acme Corp identity admin" in admin_client.get(INDEX_URL).content.decode()

    branding.update_branding(actor=admin_user, company_name="Globex")

    page = admin_client.get(reverse("admin:accounts_user_changelist")).content.decode()
    assert "Globex identity admin" in page
    assert "Acme Corp" not in page


def test_header_falls_back_to_company_without_branding(admin_client, settings):
    settings.IDP_COMPANY_NAME = "Company"

    page = admin_client.get(INDEX_URL).content.decode()

    assert '<div id="site-name"><a href="/admin/">Company identity admin</a></div>' in page


# --- Dashboard


def test_dashboard_counts_the_rows_behind_each_card(admin_client, admin_user, user, wiki, settings):
    settings.IDP_LOCKOUT_THRESHOLD = 1
    before = cards_by_key(admin_client.get(INDEX_URL))
    assert list(before) == ALL_CARDS
    assert [before[key].count for key in ALL_CARDS[1:]] == [0, 0, 0, 0]
    # One wrong password: a failed sign-in that locks alice (threshold 1).
    assert sign_in(Browser(), "alice", "not her password").status_code == HTTPStatus.OK
    client_services.rotate_client_secret(client=wiki, actor=admin_user, grace_seconds=3600)
    BackchannelDelivery.objects.create(
        client=wiki, sid="s-1", sub="1", status=BackchannelDelivery.Status.FAILED, attempts=5
    )
    BackchannelDelivery.objects.create(
        client=wiki, sid="s-2", sub="1", status=BackchannelDelivery.Status.SENT, attempts=1
    )

    response = admin_client.get(INDEX_URL)

    cards = cards_by_key(response)
    assert cards["signins"].count == before["signins"].count
    assert cards["failed-signins"].count == 1
    assert cards["locked"].count == 1
    assert cards["secret-grace"].count == 1
    assert cards["failed-deliveries"].count == 1
    assert [cards[key].attention for key in ALL_CARDS] == [False, True, True, True, True]
    page = response.content.decode()
    assert '<li class="dashboard-card attention" id="card-locked">' in page
    # Each card opens the admin list it counts, filtered to exactly those rows.
    expected_rows = {
        "failed-signins": 1,
        "locked": 1,
        "secret-grace": 1,
        "failed-deliveries": 1,
    }
    for key, rows in expected_rows.items():
        listing = admin_client.get(cards[key].url)
        assert listing.status_code == HTTPStatus.OK, key
        assert listing.context["cl"].result_count == rows, key
    assert admin_client.get(cards["signins"].url).context["cl"].result_count == (
        cards["signins"].count
    )


def test_sign_ins_today_start_at_local_midnight(admin_client, admin_user, settings):
    settings.TIME_ZONE = "Pacific/Auckland"
    midnight = timezone.localtime(timezone.now()).replace(hour=0, minute=0, second=0, microsecond=0)
    AuditEvent.objects.create(type=AuditEvent.Type.LOGIN_FAILED, created_at=midnight)
    counted = cards_by_key(admin_client.get(INDEX_URL))["failed-signins"].count
    assert counted == 1

    AuditEvent.objects.create(
        type=AuditEvent.Type.LOGIN_FAILED, created_at=midnight - dt.timedelta(minutes=1)
    )

    assert cards_by_key(admin_client.get(INDEX_URL))["failed-signins"].count == 1


def test_an_expired_grace_period_and_an_ended_lock_are_not_counted(
    admin_client, admin_user, user, wiki
):
    client_services.rotate_client_secret(client=wiki, actor=admin_user, grace_seconds=3600)
    User.objects.filter(pk=user.pk).update(locked_until=timezone.now() + dt.timedelta(minutes=5))
    cards = cards_by_key(admin_client.get(INDEX_URL))
    assert (cards["secret-grace"].count, cards["locked"].count) == (1, 1)

    past = timezone.now() - dt.timedelta(seconds=1)
    Client.objects.filter(pk=wiki.pk).update(previous_secret_expires_at=past)
    User.objects.filter(pk=user.pk).update(locked_until=past)

    cards = cards_by_key(admin_client.get(INDEX_URL))
    assert (cards["secret-grace"].count, cards["locked"].count) == (0, 0)


def test_dashboard_figures_take_a_handful_of_queries(
    admin_user, user, wiki, django_assert_max_num_queries
):
    AuditEvent.objects.create(type=AuditEvent.Type.LOGIN_SUCCEEDED)
    AuditEvent.objects.create(type=AuditEvent.Type.LOGIN_FAILED)
    request = RequestFactory().get(INDEX_URL)
    request.user = admin_user

    # Sign-ins and failures share one aggregate; one count each for the other three cards.
    with django_assert_max_num_queries(4):
        cards = dashboard_cards(request=request, admin_site=admin.site)

    assert [card.key for card in cards] == ALL_CARDS
    assert (cards[0].count, cards[1].count) == (1, 1)


def test_staff_see_only_the_cards_of_lists_they_may_view(client, admin_client, helpdesk):
    assert list(cards_by_key(admin_client.get(INDEX_URL))) == ALL_CARDS
    client.force_login(helpdesk)

    response = client.get(INDEX_URL)

    assert response.status_code == HTTPStatus.OK
    assert list(cards_by_key(response)) == ["locked"]
    page = response.content.decode()
    assert "Accounts locked now" in page
    for hidden in (
        "Sign-ins today",
        "Failed sign-ins today",
        "previous secret",
        "Failed logout deliveries",
    ):
        assert hidden not in page


def test_staff_without_permissions_see_no_dashboard(client, helpdesk):
    helpdesk.user_permissions.clear()
    client.force_login(helpdesk)

    response = client.get(INDEX_URL)

    assert response.status_code == HTTPStatus.OK
    assert response.context["dashboard_cards"] == []
    assert "identity-dashboard" not in response.content.decode()


# --- App list: Identity first, then Settings, libraries under Advanced


def test_identity_section_comes_first_with_users_groups_client_apps_and_audit_events(
    admin_client,
):
    response = admin_client.get(INDEX_URL)

    sections = section_models(response.context["app_list"])
    assert list(sections) == ["Identity", "Settings", "Advanced"]
    assert sections["Identity"][:4] == [
        "accounts.user",
        "auth.group",
        "oauth_clients.client",
        "accounts.auditevent",
    ]
    assert sections["Settings"] == ["accounts.branding", "federation.upstreamprovider"]
    # The sidebar of every other admin page shows the same grouping.
    sidebar = admin_client.get(reverse("admin:accounts_user_changelist")).context["available_apps"]
    assert section_models(sidebar) == sections


def test_library_tables_appear_only_under_advanced(admin_client):
    response = admin_client.get(INDEX_URL)

    sections = section_models(response.context["app_list"])
    library_tables = {
        "oauth_clients.accesstoken",
        "oauth_clients.refreshtoken",
        "oauth_clients.idtoken",
        "oauth_clients.grant",
        "mfa.authenticator",
        "usersessions.usersession",
        "account.emailaddress",
        "django_tasks_database.dbtaskresult",
    }
    assert library_tables <= set(sections["Advanced"])
    assert not library_tables & set(sections["Identity"] + sections["Settings"])
    # Every registered model is listed exactly once.
    listed = [model for models in sections.values() for model in models]
    assert len(listed) == len(set(listed))
    # One section for the people: no "Accounts" beside "Company accounts".
    page = response.content.decode()
    assert "Company accounts" not in page
    assert ">Accounts</a>" not in page


def test_one_apps_own_page_still_lists_that_app(admin_client):
    response = admin_client.get(reverse("admin:app_list", args=["oauth_clients"]))

    assert response.status_code == HTTPStatus.OK
    assert [str(app["name"]) for app in response.context["app_list"]] == ["Client apps"]


# --- Client-app pages: one breadcrumb trail


def test_client_app_pages_have_one_breadcrumb_trail(admin_client, wiki):
    pages = {
        reverse("admin:oauth_clients_client_changelist"): "Home › Client apps",
        reverse("admin:oauth_clients_client_register"): "Home › Client apps › Register an app",
        reverse("admin:oauth_clients_client_change", args=[wiki.pk]): "Home › Client apps › Wiki",
        reverse("admin:oauth_clients_client_setup", args=[wiki.pk]): (
            "Home › Client apps › Wiki › Connect Wiki"
        ),
        reverse("admin:oauth_clients_client_disable", args=[wiki.pk]): (
            "Home › Client apps › Wiki › Disable Wiki"
        ),
        reverse("admin:oauth_clients_client_history", args=[wiki.pk]): (
            "Home › Client apps › Wiki › History"
        ),
    }
    for url, trail in pages.items():
        response = admin_client.get(url)
        assert response.status_code == HTTPStatus.OK, url
        assert trails(response.content.decode()) == [trail], url


@pytest.mark.parametrize(
    ("path", "query"),
    [
        ("/admin/oauth_clients/client/", {"kind": "web\x00"}),
        ("/admin/oauth_clients/backchanneldelivery/", {"reason\x00": "x"}),
        ("/admin/accounts/user/", {"q": "ali\x00ce"}),
        ("/admin/oauth_clients/refreshtoken/", {"application__exact": "9" * 20}),
        ("/admin/provisioning/provisioningdelivery/", {"target__gte": "-" + "9" * 5000}),
    ],
)
def test_a_list_query_no_column_can_hold_is_the_branded_400_not_a_500(
    admin_client, wiki, path, query
):
    """A NUL character (PostgreSQL refuses it) or an integer past 64 bits (SQLite's driver
    cannot bind it) in an admin list's query is refused before the list asks the database
    (idp/input_limits.py): the same answer on both databases."""
    assert admin_client.get(path, {"q": "wiki"}).status_code == HTTPStatus.OK
    assert admin_client.get(path, {"o": "1", "p": "1"}).status_code == HTTPStatus.OK
    response = admin_client.get(path, query)
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert "We could not understand that request" in response.content.decode()
    assert admin_client.get(path).status_code == HTTPStatus.OK


def test_a_long_run_of_digits_in_the_search_box_is_searched_for(admin_client, wiki):
    """Only filters refuse an integer no column holds; a search term is text (a numeric
    external id, a subject), searched for like any other."""
    digits = "1" * 25
    response = admin_client.get("/admin/accounts/user/", {"q": digits})
    assert response.status_code == HTTPStatus.OK
    assert digits in response.content.decode()


def test_a_form_choice_no_column_can_hold_is_never_a_500(admin_client, admin_user):
    """A crafted POST choosing a group by an id past 64 bits: PostgreSQL finds no such group
    (the form says so), SQLite's driver cannot bind it (the branded 400); nothing changes."""
    url = f"/admin/accounts/user/{admin_user.pk}/change/"
    assert admin_client.get(url).status_code == HTTPStatus.OK
    response = admin_client.post(url, {"username": "renamed", "groups": "9" * 30})
    assert response.status_code in (HTTPStatus.OK, HTTPStatus.BAD_REQUEST)
    admin_user.refresh_from_db()
    assert admin_user.username != "renamed"
