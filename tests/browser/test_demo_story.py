"""The whole "Sign in with Company" story in Debian's chromium.

`make demo`'s own script (deploy/demo-app/run-demo.sh) starts the IdP and the demo relying party
on free loopback ports with temporary data directories, registering the demo client and user with
`register_demo_client`. Then: the demo's button → IdP login → consent → back in the demo showing
the user's name and email → refresh tokens → sign out (RP-initiated logout) → the IdP session is
gone; then, signed in again, a sign-out at the IdP reaches the demo by back-channel logout.
Sign-in and consent pass axe-core (no serious or critical violation) and fit a 375 px phone.
Screenshots of the login, consent and signed-in pages go to tests/artifacts/.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.deploy.servers import migrated_sqlite

pytestmark = [pytest.mark.browser]

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts"
SCRIPT = ROOT / "deploy" / "demo-app" / "run-demo.sh"
PHONE = {"width": 375, "height": 740}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class DemoSetup:
    idp: str
    demo: str
    username: str
    password: str
    log: Path

    def logs(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


def _wait_for(url: str, process: subprocess.Popen, log: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, f"run-demo.sh exited:\n{log.read_text()[-4000:]}"
        with contextlib.suppress(requests.RequestException):
            if requests.get(url, timeout=2).status_code < 500:
                return
        time.sleep(0.3)
    raise AssertionError(f"{url} did not answer:\n{log.read_text()[-4000:]}")


@pytest.fixture(scope="module")
def demo_setup(tmp_path_factory) -> Iterator[DemoSetup]:
    tmp = tmp_path_factory.mktemp("demo")
    idp_port, demo_port = free_port(), free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        # A fresh embedded setup: SQLite and local-memory cache in the temporary directories.
        if key not in {"DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE", "IDP_ISSUER"}
    }
    env.update(
        {
            "HOST": "127.0.0.1",
            "IDP_PORT": str(idp_port),
            "DEMO_PORT": str(demo_port),
            "IDP_DATA_DIR": str(tmp / "idp"),
            "DEMO_DATA_DIR": str(tmp / "demo"),
            "DEMO_USER": "demo",
            "PYTHON": str(ROOT / ".venv" / "bin" / "python"),
            "IDP_LOG_FORMAT": "text",
        }
    )
    # The script's `migrate` finds the database migrated (tests/deploy/servers.py).
    migrated_sqlite(tmp / "idp" / "idp.sqlite3")
    log = tmp / "run-demo.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            ["bash", str(SCRIPT)],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: both servers stop with it
        )
    try:
        idp, demo = f"http://127.0.0.1:{idp_port}", f"http://127.0.0.1:{demo_port}"
        _wait_for(f"{idp}/healthz", process, log)
        _wait_for(f"{demo}/", process, log)
        match = re.search(r"Created user demo with password: (\S+)", log.read_text())
        assert match, log.read_text()[-4000:]
        credentials = (tmp / "demo" / "client.json").stat()
        assert credentials.st_mode & 0o077 == 0, "the demo's client secret is private"
        yield DemoSetup(idp, demo, "demo", match.group(1), log)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def _watch(page) -> list[str]:
    """Console errors, CSP violations and failed responses of every page on the way."""
    problems: list[str] = []
    page.on(
        "console",
        lambda message: (
            problems.append(message.text)
            if message.type == "error" or "Content Security Policy" in message.text
            else None
        ),
    )
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on(
        "response",
        lambda response: (
            problems.append(f"{response.status} {response.url}") if response.status >= 400 else None
        ),
    )
    return problems


def _serious_accessibility_violations(page) -> list[str]:
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    return [
        f"{violation['id']} ({violation['impact']}): {violation['help']}"
        for violation in results.response["violations"]
        if violation["impact"] in {"serious", "critical"}
    ]


def _fits_a_phone(page, *fields: str) -> None:
    """At 375 px: no sideways scrolling and every named field fully inside the screen."""
    page.set_viewport_size(PHONE)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), page.url
    for name in fields:
        box = page.get_by_label(name).bounding_box()
        assert box is not None, name
        assert box["x"] >= 0, name
        assert box["x"] + box["width"] <= PHONE["width"], name


def _shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"demo-{name}.png"), full_page=True)


def test_sign_in_with_company_from_button_to_sign_out(demo_setup, chromium_browser):
    context = chromium_browser.new_context()
    page = context.new_page()
    page.set_default_timeout(20_000)
    problems = _watch(page)
    demo, idp = demo_setup.demo, demo_setup.idp

    # The demo app shows the IdP's button (its CSS and logo served by the IdP).
    page.goto(f"{demo}/")
    button = page.get_by_role("button", name="Sign in with Company")
    assert button.is_visible()
    logo = button.locator("img")
    assert logo.get_attribute("src") == f"{idp}/static/idp/button/logo-light.svg"
    assert page.evaluate("document.querySelector('img').naturalWidth") > 0, "logo loaded"
    button.click()

    # IdP login page: accessible, fits a phone.
    page.wait_for_url(re.compile(re.escape(idp) + r"/accounts/login/\?next="))
    assert page.get_by_role("heading", name="Sign in to Company").is_visible()
    assert _serious_accessibility_violations(page) == []
    _fits_a_phone(page, "Email or username", "Password")
    _shot(page, "login")
    page.set_viewport_size({"width": 1280, "height": 800})
    page.get_by_label("Email or username").fill(demo_setup.username)
    page.get_by_label("Password").fill(demo_setup.password)
    page.get_by_role("button", name="Sign in", exact=True).click()

    # Consent page: names the app and what it asks for; accessible, fits a phone.
    heading = page.get_by_role("heading", name="Demo app wants to use your Company account")
    heading.wait_for()
    assert page.url.startswith(f"{idp}/o/authorize/")
    assert _serious_accessibility_violations(page) == []
    page.set_viewport_size(PHONE)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    for name in ("Allow", "Deny"):
        box = page.get_by_role("button", name=name).bounding_box()
        assert box is not None
        assert box["x"] >= 0
        assert box["x"] + box["width"] <= PHONE["width"]
    _shot(page, "consent")
    page.set_viewport_size({"width": 1280, "height": 800})
    page.get_by_role("button", name="Allow").click()

    # Back in the demo app with the user's name and email and the verified claims.
    page.wait_for_url(f"{demo}/")
    assert page.get_by_role("heading", name="Signed in as Demo User").is_visible()
    assert page.get_by_text("demo@example.com", exact=True).is_visible()
    claims = page.locator("#id-token-claims").inner_text()
    assert f'"iss": "{idp}"' in claims
    assert '"aud": "demo-app"' in claims
    assert '"sid": "' in claims
    _shot(page, "signed-in")

    # Refresh: a new access token from the rotated refresh token.
    page.get_by_role("button", name="Refresh tokens").click()
    assert page.get_by_text("Tokens refreshed").is_visible()

    # Sign out: here, then at the IdP (id_token_hint names this session: no prompt), and back.
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile(re.escape(demo) + r"/\?state="))
    assert page.get_by_text("You are signed out here and at the company IdP.").is_visible()
    assert page.get_by_role("button", name="Sign in with Company").is_visible()

    # The IdP session is gone: its account page asks to sign in again.
    page.goto(f"{idp}/account/")
    assert "/accounts/login/" in page.url

    # Back-channel logout: sign in again (consent is remembered), then sign out at the IdP
    # itself; the IdP's worker POSTs a logout token to the demo, which ends its own session.
    page.goto(f"{demo}/")
    page.get_by_role("button", name="Sign in with Company").click()
    page.get_by_label("Email or username").fill(demo_setup.username)
    page.get_by_label("Password").fill(demo_setup.password)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.wait_for_url(f"{demo}/")
    assert page.get_by_role("heading", name="Signed in as Demo User").is_visible()
    page.goto(f"{idp}/accounts/logout/")
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_load_state()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        page.goto(f"{demo}/")
        if page.get_by_role("button", name="Sign in with Company").is_visible():
            break
        time.sleep(0.5)
    else:
        raise AssertionError(f"the demo session outlived the IdP's:\n{demo_setup.logs()}")
    assert problems == [], problems
    context.close()
