"""The employee's app launcher (/account/my-apps/): the apps a person may open, their launch
links (OIDC Core §4 third-party-initiated login), the search, and what the page costs."""

from __future__ import annotations

from http import HTTPStatus
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.urls import reverse

from accounts.models import GroupProfile
from accounts.services import rebuild_group_closure
from oauth_clients import services
from oauth_clients.models import Assignment, Client
from tests.clients.conftest import WEB_REDIRECT
from tests.clients.test_admin import change_form_data, register_form

MY_APPS_URL = "/account/my-apps/"
REGISTER_URL = "/admin/oauth_clients/client/register/"
WIKI_START = "https://wiki.example.com/oidc/start"


def register(admin_user, name: str, **fields) -> Client:
    client, _secret = services.register_client(
        actor=admin_user,
        kind=fields.pop("kind", Client.Kind.WEB),
        name=name,
        redirect_uris=fields.pop("redirect_uris", [WEB_REDIRECT]),
        **fields,
    )
    return client


def assigned_to(admin_user, client: Client, *, group: Group | None = None, user=None) -> Client:
    services.assign(client=client, group=group, user=user, actor=admin_user)
    services.set_access_policy(client=client, policy="assigned", actor=admin_user)
    return client


@pytest.fixture
def signed_in(client, user):
    client.force_login(user)
    return client


def shown(response) -> list[str]:
    assert response.status_code == HTTPStatus.OK
    return [tile.client.name for tile in response.context["tiles"]]


def test_the_url_is_the_launchers_and_the_account_navigation_links_it(signed_in):
    assert reverse("account_my_apps") == MY_APPS_URL
    html = signed_in.get("/account/").content.decode()
    assert f'href="{MY_APPS_URL}"' in html
    page = signed_in.get(MY_APPS_URL).content.decode()
    assert f'href="{MY_APPS_URL}" aria-current="page"' in page


# --- Which apps a person sees


def test_an_open_app_is_shown_to_every_employee(signed_in, admin_user):
    register(admin_user, "Wiki", initiate_login_uri=WIKI_START)
    assert shown(signed_in.get(MY_APPS_URL)) == ["Wiki"]

    other = get_user_model().objects.create_user("bob")
    signed_in.force_login(other)
    assert shown(signed_in.get(MY_APPS_URL)) == ["Wiki"]


def test_an_assigned_app_is_shown_to_its_members_only(signed_in, user, admin_user):
    payroll = Group.objects.create(name="payroll")
    user.groups.add(payroll)
    assigned_to(admin_user, register(admin_user, "Payroll"), group=payroll)
    register(admin_user, "Wiki")
    assert shown(signed_in.get(MY_APPS_URL)) == ["Payroll", "Wiki"]

    outsider = get_user_model().objects.create_user("bob")
    signed_in.force_login(outsider)
    assert shown(signed_in.get(MY_APPS_URL)) == ["Wiki"]


def test_an_app_assigned_to_a_parent_group_is_shown_to_a_subgroups_member(
    signed_in, user, admin_user
):
    company = Group.objects.create(name="company")
    engineering = Group.objects.create(name="engineering")
    platform = Group.objects.create(name="platform")
    GroupProfile.objects.create(group=engineering, parent=company)
    GroupProfile.objects.create(group=platform, parent=engineering)
    rebuild_group_closure()  # nesting written without the group services
    user.groups.add(platform)
    assigned_to(admin_user, register(admin_user, "Handbook"), group=company)
    assert shown(signed_in.get(MY_APPS_URL)) == ["Handbook"]

    # A member of the parent is not a member of its subgroups.
    assigned_to(admin_user, register(admin_user, "Deploys"), group=platform)
    manager = get_user_model().objects.create_user("carol")
    manager.groups.add(company)
    signed_in.force_login(manager)
    assert shown(signed_in.get(MY_APPS_URL)) == ["Handbook"]


def test_an_app_assigned_to_the_user_alone_is_shown_to_that_user(signed_in, user, admin_user):
    assigned_to(admin_user, register(admin_user, "Expenses"), user=user)
    assert shown(signed_in.get(MY_APPS_URL)) == ["Expenses"]

    signed_in.force_login(get_user_model().objects.create_user("bob"))
    assert shown(signed_in.get(MY_APPS_URL)) == []


def test_a_disabled_app_and_a_machine_service_are_hidden(signed_in, admin_user):
    wiki = register(admin_user, "Wiki")
    register(admin_user, "Nightly export", kind=Client.Kind.SERVICE, redirect_uris=[], scopes=[])
    assert shown(signed_in.get(MY_APPS_URL)) == ["Wiki"]

    services.disable_client(client=wiki, actor=admin_user)
    response = signed_in.get(MY_APPS_URL)
    assert shown(response) == []
    assert "No app is available to you yet." in response.content.decode()


def test_apps_are_listed_by_name(signed_in, admin_user):
    for name in ("Wiki", "Atlas", "Mail"):
        register(admin_user, name)
    assert shown(signed_in.get(MY_APPS_URL)) == ["Atlas", "Mail", "Wiki"]


# --- Launch links


@pytest.mark.spec("OIDC Core", "4")
def test_the_launch_link_is_the_registered_initiate_login_uri_with_the_issuer(
    signed_in, admin_user
):
    register(admin_user, "Wiki", initiate_login_uri=WIKI_START)
    register(admin_user, "Tracker", initiate_login_uri="https://tracker.example.com/login?sso=1")
    response = signed_in.get(MY_APPS_URL)
    links = {tile.client.name: tile.url for tile in response.context["tiles"]}

    assert links["Wiki"] == f"{WIKI_START}?{urlencode({'iss': settings.IDP_ISSUER})}"
    # The app's own query is kept; `iss` is added to it.
    tracker = urlsplit(links["Tracker"])
    assert tracker._replace(query="").geturl() == "https://tracker.example.com/login"
    assert parse_qs(tracker.query) == {"sso": ["1"], "iss": [settings.IDP_ISSUER]}
    html = response.content.decode()
    assert f'href="{WIKI_START}?iss=' in html
    assert 'href="https://tracker.example.com/login?sso=1&amp;iss=' in html


def test_an_app_without_a_start_url_opens_its_home_page_or_from_the_app_itself(
    signed_in, admin_user
):
    register(admin_user, "Wiki", client_uri="https://wiki.example.com/")
    register(admin_user, "Mobile", kind=Client.Kind.NATIVE, redirect_uris=["http://127.0.0.1/cb"])
    response = signed_in.get(MY_APPS_URL)
    links = {tile.client.name: tile.url for tile in response.context["tiles"]}
    assert links == {"Mobile": "", "Wiki": "https://wiki.example.com/"}
    html = response.content.decode()
    assert 'href="https://wiki.example.com/"' in html
    assert html.count("Opens from the app itself") == 1


def test_an_app_shows_its_logo_or_its_initial(signed_in, admin_user):
    register(admin_user, "Wiki", logo_uri="https://wiki.example.com/logo.png")
    register(admin_user, "atlas")
    html = signed_in.get(MY_APPS_URL).content.decode()
    assert '<img class="app-logo" src="https://wiki.example.com/logo.png" alt=""' in html
    assert '<span class="app-logo app-initial" aria-hidden="true">A</span>' in html


def test_the_launch_link_escapes_what_the_app_registered(signed_in, admin_user):
    register(admin_user, "<b>Wiki</b>", initiate_login_uri="https://wiki.example.com/start?a=1")
    html = signed_in.get(MY_APPS_URL).content.decode()
    assert "<b>Wiki</b>" not in html
    assert "&lt;b&gt;Wiki&lt;/b&gt;" in html


# --- The search


def test_q_narrows_the_list_by_part_of_the_name_in_either_case(signed_in, admin_user):
    for name in ("Wiki", "Team wiki", "Mail"):
        register(admin_user, name)
    response = signed_in.get(MY_APPS_URL, {"q": "  WIKI "})
    assert shown(response) == ["Team wiki", "Wiki"]
    html = response.content.decode()
    assert 'value="WIKI"' in html
    assert "Apps shown: 2 of 3" in html
    assert f'href="{MY_APPS_URL}">Show all apps' in html

    response = signed_in.get(MY_APPS_URL, {"q": "payroll"})
    assert shown(response) == []
    assert "No app matches your search." in response.content.decode()


def test_q_searches_only_the_apps_the_person_may_open(signed_in, admin_user):
    register(admin_user, "Wiki")
    assigned_to(admin_user, register(admin_user, "Wiki admin"), group=Group.objects.create())
    assert shown(signed_in.get(MY_APPS_URL, {"q": "wiki"})) == ["Wiki"]


def test_a_very_long_q_is_cut_and_finds_nothing(signed_in, admin_user):
    register(admin_user, "Wiki")
    response = signed_in.get(MY_APPS_URL, {"q": "wiki" + "x" * 5000})
    assert shown(response) == []
    assert response.context["query"] == ("wiki" + "x" * 5000)[:100]


# --- Who may see the page


def test_anonymous_is_sent_to_sign_in_and_back(client, db):
    response = client.get(MY_APPS_URL)
    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"] == f"/accounts/login/?next={MY_APPS_URL}"


def test_signed_in_sees_the_page_anonymous_is_redirected(signed_in, client):
    assert signed_in.get(MY_APPS_URL).status_code == HTTPStatus.OK
    signed_in.logout()
    assert signed_in.get(MY_APPS_URL).status_code == HTTPStatus.FOUND


# --- What it costs

APPS = 200
GROUPS = 200


def test_the_page_costs_a_fixed_number_of_queries_with_200_apps_and_200_groups(
    signed_in, user, django_assert_num_queries
):
    """Session, user, then the one query of `access.apps_for`, whatever the number of apps,
    groups and assignments: 200 apps, half open and half assigned, each of those to two of 200
    groups (a company, 9 departments, 190 teams), the person in 100 teams."""
    groups = Group.objects.bulk_create(Group(name=f"group-{i:03d}") for i in range(GROUPS))
    GroupProfile.objects.bulk_create(
        GroupProfile(group=group, parent=groups[0] if i < 10 else groups[1 + i % 9])
        for i, group in enumerate(groups)
        if i
    )
    rebuild_group_closure()
    user.groups.add(*groups[100:])  # so also in the company and every department (0-9)
    Client.objects.bulk_create(
        Client(
            name=f"App {i:03d}",
            client_id=f"app-{i:03d}",
            kind=Client.Kind.WEB,
            redirect_uris=WEB_REDIRECT,
            client_type=Client.CLIENT_CONFIDENTIAL,
            authorization_grant_type=Client.GRANT_AUTHORIZATION_CODE,
            access_policy=Client.AccessPolicy.OPEN if i % 2 else Client.AccessPolicy.ASSIGNED,
            initiate_login_uri=f"https://app-{i:03d}.example.com/start",
            logo_uri=f"https://app-{i:03d}.example.com/logo.png" if i % 3 else "",
        )
        for i in range(APPS)
    )
    assigned = Client.objects.filter(access_policy=Client.AccessPolicy.ASSIGNED).order_by("name")
    Assignment.objects.bulk_create(
        Assignment(client=app, group=groups[2 * k + offset])
        for k, app in enumerate(assigned)
        for offset in (0, 1)
    )
    assert Assignment.objects.values("group").distinct().count() == GROUPS
    signed_in.get(MY_APPS_URL)  # the session's first request writes what it writes once

    with django_assert_num_queries(3):
        response = signed_in.get(MY_APPS_URL)
    # 100 open apps; of the assigned, those of groups 0-9 (5 apps) and 100-199 (50 apps).
    names = shown(response)
    assert len(names) == 155
    assert names == sorted(names)
    assert "App 010" not in names  # assigned to groups 10 and 11, teams the person is not in

    with django_assert_num_queries(3):
        response = signed_in.get(MY_APPS_URL, {"q": "app 19"})
    assert shown(response) == [f"App 19{i}" for i in range(10)]


# --- Registering the start URL


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("http://wiki.example.com/start", "must use https"),
        ("javascript:alert(1)", "javascript"),
        ("https://wiki.example.com/start#top", "fragment"),
        ("https://u:p@wiki.example.com/start", "user name"),
        ("com.example.app:/start", "https"),
    ],
)
def test_an_unsafe_start_url_is_refused_with_a_form_error(client, admin_user, uri, message):
    client.force_login(admin_user)
    response = client.post(REGISTER_URL, register_form(initiate_login_uri="https://ok.example/"))
    assert response.status_code == HTTPStatus.FOUND, response.content.decode()[:2000]
    wiki = Client.objects.get(name="Expenses")
    assert wiki.initiate_login_uri == "https://ok.example/"
    change = f"/admin/oauth_clients/client/{wiki.pk}/change/"

    data = change_form_data(client, wiki) | {"initiate_login_uri": uri}
    response = client.post(change, data)
    assert response.status_code == HTTPStatus.OK
    errors = response.context["adminform"].form.errors
    assert message.lower() in " ".join(errors["initiate_login_uri"]).lower()
    wiki.refresh_from_db()
    assert wiki.initiate_login_uri == "https://ok.example/"


def test_a_start_url_on_loopback_may_use_http(admin_user):
    dev = register(admin_user, "Dev", initiate_login_uri="http://127.0.0.1:8001/start")
    assert dev.initiate_login_uri == "http://127.0.0.1:8001/start"


def test_a_machine_service_may_not_have_a_start_url(admin_user, db):
    from django.core.exceptions import ValidationError

    register(admin_user, "Export", kind=Client.Kind.SERVICE, redirect_uris=[], scopes=[])
    with pytest.raises(ValidationError) as refused:
        register(
            admin_user,
            "Import",
            kind=Client.Kind.SERVICE,
            redirect_uris=[],
            scopes=[],
            initiate_login_uri="https://import.example.com/start",
        )
    assert "initiate_login_uri" in refused.value.message_dict


def test_the_start_url_travels_with_the_registry_export_and_import(admin_user):
    from oauth_clients import selectors

    wiki = register(admin_user, "Wiki", initiate_login_uri=WIKI_START)
    entry = selectors.registry_entry(wiki)
    assert entry["initiate_login_uri"] == WIKI_START

    entry["initiate_login_uri"] = "https://wiki.example.com/sso"
    services.import_registry(document={"version": 1, "clients": [entry]}, actor=admin_user)
    wiki.refresh_from_db()
    assert wiki.initiate_login_uri == "https://wiki.example.com/sso"

    entry["initiate_login_uri"] = "http://wiki.example.com/sso"
    with pytest.raises(services.RegistryImportError, match="must use https"):
        services.import_registry(document={"version": 1, "clients": [entry]}, actor=admin_user)


def test_the_clients_command_registers_a_start_url(admin_user):
    import json
    from io import StringIO

    from django.core.management import CommandError, call_command

    out = StringIO()
    call_command(
        "clients",
        "create",
        "--kind=web",
        "--name=Wiki",
        f"--redirect-uri={WEB_REDIRECT}",
        f"--initiate-login-uri={WIKI_START}",
        "--json",
        stdout=out,
        actor="root",
    )
    data = json.loads(out.getvalue())
    assert data["initiate_login_uri"] == WIKI_START
    assert Client.objects.get(client_id=data["client_id"]).initiate_login_uri == WIKI_START

    with pytest.raises(CommandError, match="must use https"):
        call_command(
            "clients",
            "create",
            "--kind=web",
            "--name=Tracker",
            f"--redirect-uri={WEB_REDIRECT}",
            "--initiate-login-uri=http://tracker.example.com/start",
            stdout=StringIO(),
            stderr=StringIO(),
        )
    assert not Client.objects.filter(name="Tracker").exists()
