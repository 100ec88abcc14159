"""WCAG 2.2 AA on every page a person can reach (tests/browser/pages.py): axe-core reports no
violation of any impact, on a desktop (1280 px) and a phone (390 px) screen, and every page but
Django's admin carries the house layout."""

from __future__ import annotations

import pytest

from tests.browser.pages import PAGES, Page, State, prepare, reach

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# axe-core's rules for WCAG 2.0, 2.1 and 2.2 at levels A and AA (axe's own tag names).
WCAG_AA_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
WIDTHS = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}


def accessibility_violations(page, *, excused: dict[str, str] | None = None) -> list[str]:
    """Every WCAG A/AA violation axe-core finds on the page as it is now, one line each, but
    for the rules `excused` names."""
    from axe_playwright_python.sync_playwright import Axe

    options: dict = {
        "runOnly": {"type": "tag", "values": WCAG_AA_TAGS},
        # Only violations are read: axe then skips the details of passed and incomplete rules
        # (axe-playwright-python's own default, which options given here replace).
        "resultTypes": ["violations"],
    }
    if excused:
        options["rules"] = {rule: {"enabled": False} for rule in excused}
    results = Axe().run(page, options=options)
    return [
        f"{violation['id']} ({violation['impact']}): {violation['help']} — "
        + "; ".join(" ".join(node["target"]) for node in violation["nodes"][:5])
        for violation in results.response["violations"]
    ]


@pytest.mark.parametrize("entry", PAGES, ids=[entry.name for entry in PAGES])
def test_every_page_has_no_wcag_violation_on_a_desktop_or_a_phone(
    live_server, browser_page, password, settings, entry: Page
):
    settings.IDP_STAFF_MFA_REQUIRED = entry.state in (State.STAFF_ENROL, State.STAFF_GATE)
    page = browser_page
    visit = prepare(page, state=entry.state, site=live_server.url, password=password)
    response = reach(page, entry, visit)
    assert response is not None
    assert response.status == entry.status, (entry.name, response.status, page.url)
    if not entry.admin:
        assert page.locator("body[data-house-layout]").count() == 1, (entry.name, page.url)

    found = {}
    for width, size in WIDTHS.items():
        page.set_viewport_size(size)
        found[width] = accessibility_violations(page, excused=entry.excused)
    assert found == {"desktop": [], "phone": []}, (entry.name, page.url)


def test_the_check_finds_a_violation(live_server, browser_page):
    """The check itself can fail: an image without a text alternative and an unlabelled field."""
    page = browser_page
    page.goto(f"{live_server.url}/accounts/login/")
    page.evaluate(
        """() => document.querySelector('main').insertAdjacentHTML(
          'beforeend', '<img src="/static/idp/favicon.svg"><input type="text" name="x">')"""
    )
    found = " ".join(accessibility_violations(page))
    assert "image-alt" in found
    assert "label (critical)" in found
