"""Shared fixtures: users, clients, and the real-browser harness."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

PASSWORD = "correct horse battery staple"

# Tests that need the machine's services (PostgreSQL and Redis) run only where the marker
# expression names them (the Makefile's PostgreSQL phase, `-m "... or scaleout or redis"`), and
# there they fail loudly when a service does not answer; an ordinary run does not collect them.
SERVICE_MARKERS = ("scaleout", "redis")


# The suites whose tests take seconds each (real browsers, servers in subprocesses, peers from
# other libraries): run first, so pytest-xdist spreads them over its processes with its first
# batch and the run ends on quick tests instead of one process finishing a slow one alone.
SLOW_FIRST = ("tests/browser/", "tests/deploy/", "tests/docs/", "tests/saml/", "tests/federation/")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    named = config.option.markexpr or ""
    selected, deselected = [], []
    for item in items:
        needs = [m for m in SERVICE_MARKERS if item.get_closest_marker(m)]
        (deselected if needs and not any(m in named for m in needs) else selected).append(item)
    if deselected:
        config.hook.pytest_deselected(items=deselected)
    # A stable sort: each module's tests stay together and in order.
    items[:] = sorted(selected, key=lambda item: not item.nodeid.startswith(SLOW_FIRST))


# The suite runs in one process, so its cache is that process's memory: the stand-in for
# production's Redis in the query budgets, cleared by fixtures that have no database. The
# database cache idp/settings.py ships without Redis is proven across real processes
# (tests/deploy/test_shared_cache.py).
ONE_PROCESS_CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}


@pytest.fixture(scope="session", autouse=True)
def _one_process_cache():
    from django.test.utils import override_settings

    with override_settings(CACHES=ONE_PROCESS_CACHES):
        yield


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Each test starts with an empty cache: allauth's rate limits (30 sign-ins a minute per
    address) count in it, and the suite signs in from 127.0.0.1 many times a minute, so a test
    could otherwise be refused (429) for what the tests before it did."""
    from django.core.cache import cache

    cache.clear()


@pytest.fixture(autouse=True)
def _no_webhook_subscribers_yet():
    """Each test starts with no webhook subscriber, as its database does. Each process keeps
    the list in memory and reads the table again by the first audit event after it expires
    (webhooks/subscriptions.py): without this, that query would land in whichever test came
    next, inside its pinned query count. Tests that make subscribers go through the services,
    which make the process read the table again."""
    from webhooks import subscriptions

    subscriptions.set_loaded({})


@pytest.fixture(autouse=True)
def _default_language():
    """Each test starts in the default language. A request through the locale middleware (or
    a test that activates a language) leaves that language active in the thread, where a later
    test calling a service directly would get its messages in Japanese."""
    yield
    from django.utils import translation

    translation.deactivate()


@pytest.fixture
def database_key_store(settings, tmp_path):
    """The signing keys in the database (oauth_clients/key_store.py): a fresh key-encryption
    key, no key from the environment, an empty key directory; the process's key ring and
    published documents forgotten before and after. No key is created: tests take that step."""
    from cryptography.fernet import Fernet

    from oauth_clients import key_store
    from oauth_clients.oidc import published

    settings.IDP_SIGNING_KEY_STORE = "database"
    settings.IDP_KEY_ENCRYPTION_KEY = [Fernet.generate_key().decode()]
    settings.IDP_SIGNING_KEYS_FROM_ENVIRONMENT = []
    settings.IDP_SIGNING_KEY_DIR = tmp_path / "keys"
    key_store.forget()
    published.forget()
    yield settings
    key_store.forget()
    published.forget()


@pytest.fixture
def password() -> str:
    return PASSWORD


@pytest.fixture(autouse=True)
def _staff_mfa_policy(request, settings):
    """IDP_STAFF_MFA_REQUIRED is on in every deployment. Most tests sign administrators in with
    a password only (or `force_login`), so here it is on only for tests marked `staff_mfa`
    (tests/accounts/test_mfa_policy.py proves the gate)."""
    settings.IDP_STAFF_MFA_REQUIRED = request.node.get_closest_marker("staff_mfa") is not None


@pytest.fixture(scope="session")
def password_hash() -> str:
    """One Argon2id hash of PASSWORD (the project's hasher and parameters), made once.

    Hashing anew for every fixture user cost a fifth of the suite's time (~35 ms each on a slow
    VM; 711 hashes in tests/oidc + tests/accounts alone). Sign-ins still verify this hash with
    the real hasher; tests about hashing itself make their own.
    """
    from django.contrib.auth.hashers import make_password

    return make_password(PASSWORD)


def with_password(user, encoded: str):
    """`user` (created without a password) with the ready-made hash of PASSWORD."""
    type(user)._default_manager.filter(pk=user.pk).update(password=encoded)
    user.password = encoded
    return user


@pytest.fixture
def user(db, password_hash):
    created = get_user_model().objects.create_user(
        "alice", "alice@example.com", None, first_name="Alice", last_name="Liddell"
    )
    return with_password(created, password_hash)


@pytest.fixture
def admin_user(db, password_hash):
    created = get_user_model().objects.create_superuser("root", "root@example.com", None)
    return with_password(created, password_hash)


CHROMIUM = "/usr/bin/chromium"
# Flags for Debian's chromium as root on a machine without a network (see the env notes).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def chromium_browser():
    """Debian's chromium driven by Playwright (never a downloaded browser)."""
    import os

    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the ORM calls the tests make
    # between browser steps are still plain synchronous code.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def browser_page(chromium_browser):
    """A fresh browser context (own cookies) and page per test."""
    context = chromium_browser.new_context()
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()
