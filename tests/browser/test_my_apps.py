"""The My apps page in a real browser (chromium via Playwright): the search box filters the list
as one types, with the keyboard alone, and axe-core finds nothing to fault, filtered or not."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from oauth_clients import services
from oauth_clients.models import Client
from tests.browser.pages import sign_in
from tests.browser.test_accessibility import WIDTHS, accessibility_violations

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

MY_APPS_PATH = "/account/my-apps/"


@pytest.fixture
def apps(password):
    """alice may open Wiki, Team wiki (through her group) and Mail; Payroll is another team's."""
    users = get_user_model().objects
    alice = users.create_user("alice", "alice@example.com", password)
    root = users.create_superuser("root", "root@example.com", None)
    writers, payroll = Group.objects.create(name="writers"), Group.objects.create(name="payroll")
    alice.groups.add(writers)

    def register(name: str, group: Group | None = None, **fields) -> Client:
        client, _secret = services.register_client(
            actor=root,
            kind=Client.Kind.WEB,
            name=name,
            redirect_uris=[f"https://{name.lower().replace(' ', '-')}.example.com/cb"],
            **fields,
        )
        if group is not None:
            services.assign(client=client, group=group, actor=root)
            services.set_access_policy(client=client, policy="assigned", actor=root)
        return client

    register("Wiki", initiate_login_uri="https://wiki.example.com/start")
    register("Team wiki", writers, logo_uri="https://team-wiki.example.com/logo.png")
    register("Mail", client_uri="https://mail.example.com/")
    register("Payroll", payroll, initiate_login_uri="https://payroll.example.com/start")
    return alice


def visible_apps(page) -> list[str]:
    return page.locator("#app-list li.app:visible .app-name").all_inner_texts()


def test_typing_in_the_search_box_filters_the_list_at_once(live_server, browser_page, apps):
    page = browser_page
    site = live_server.url
    sign_in(page, site, "alice", "correct horse battery staple")
    page.get_by_role("link", name="My apps").click()
    page.wait_for_url(f"{site}{MY_APPS_PATH}")
    assert visible_apps(page) == ["Mail", "Team wiki", "Wiki"]
    wiki = page.get_by_role("link", name="Wiki", exact=True)
    wiki_href = "https://wiki.example.com/start?" + urlencode({"iss": settings.IDP_ISSUER})
    assert wiki.get_attribute("href") == wiki_href

    search = page.get_by_label("Search apps")
    search.press_sequentially("WIK")
    assert visible_apps(page) == ["Team wiki", "Wiki"]
    assert page.locator("#app-count").inner_text() == "Apps shown: 2 of 3"
    assert page.url == f"{site}{MY_APPS_PATH}", "filtered without asking the server"

    # The keyboard alone: from the box past the button to the first app shown that opens from
    # here (Team wiki opens from the app itself: no link), hidden apps skipped.
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    focused = page.evaluate("document.activeElement.getAttribute('href')")
    assert focused == wiki_href

    search.fill("")
    search.press_sequentially("nothing")
    assert visible_apps(page) == []
    assert page.get_by_text("No app matches your search.").is_visible()
    assert page.locator("#app-count").inner_text() == "Apps shown: 0 of 3"

    search.fill("")
    search.press_sequentially("mail")
    assert visible_apps(page) == ["Mail"]
    assert not page.get_by_text("No app matches your search.").is_visible()


def test_without_the_script_the_search_asks_the_server(live_server, browser_page, apps):
    page = browser_page
    site = live_server.url
    page.route("**/idp/my-apps.js", lambda route: route.abort())
    sign_in(page, site, "alice", "correct horse battery staple")
    page.goto(f"{site}{MY_APPS_PATH}")
    search = page.get_by_label("Search apps")
    search.fill("wiki")
    assert visible_apps(page) == ["Mail", "Team wiki", "Wiki"]
    search.press("Enter")
    page.wait_for_url(f"{site}{MY_APPS_PATH}?q=wiki")
    assert visible_apps(page) == ["Team wiki", "Wiki"]
    assert page.get_by_role("link", name="Show all apps").is_visible()


def test_the_page_has_no_wcag_violation_listed_or_filtered(live_server, browser_page, apps):
    page = browser_page
    site = live_server.url
    sign_in(page, site, "alice", "correct horse battery staple")
    page.goto(f"{site}{MY_APPS_PATH}")
    found = {}
    for width, size in WIDTHS.items():
        page.set_viewport_size(size)
        found[width] = accessibility_violations(page)
        page.get_by_label("Search apps").fill("")
        page.get_by_label("Search apps").press_sequentially("zz")
        found[f"{width}, nothing found"] = accessibility_violations(page)
        page.get_by_label("Search apps").fill("")
        page.get_by_label("Search apps").press_sequentially("w")
    assert all(not violations for violations in found.values()), found
