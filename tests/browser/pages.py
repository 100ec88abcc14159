"""Every page a person can reach, with the state it needs: the one list that the house-layout
check (tests/accounts/test_house_pages.py), the accessibility run (test_accessibility.py) and
`make screenshots` (tests/browser/screenshots.py) share, and the browser steps that reach each.

A path may name what the visit creates: `{app}` the authorization request of an untrusted app
(its consent screen when signed in, the sign-in naming it when not), `{reset}` a password reset
link from the email just sent, `{user_pk}`/`{client_pk}` an employee's and an app's admin pages,
`{logged_out}` the signed link of the signed-out page. Such pages need a browser visit (or a
test that builds the same); the others are plain GETs in their state.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from http import HTTPStatus
from urllib.parse import urlencode

LOGIN_URL = "/accounts/login/"
MFA_AUTHENTICATE_URL = "/accounts/2fa/authenticate/"
ADMIN_URL = "/admin/"
APP_REDIRECT_PATH = "/rp/callback"


class State(enum.Enum):
    """Who is at the page, and how far they got."""

    ANONYMOUS = "anonymous"
    SIGNED_IN = "signed-in employee (password)"
    CODE_STEP = "employee with an authenticator app, password given, at the code step"
    TOTP = "employee signed in with an authenticator app"
    STAFF_ENROL = "staff without a second factor, sent from the admin to enrol"
    STAFF_GATE = "staff with an authenticator app, password-only session, at the admin's gate"
    ADMIN = "superuser in the admin"


@dataclass(frozen=True)
class Page:
    name: str  # file name of its screenshots, test id
    path: str
    state: State
    status: HTTPStatus = HTTPStatus.OK
    # Django's admin layout (templates/admin/), not templates/base.html.
    admin: bool = False
    # How the browser gets there when a plain GET cannot: see `reach`.
    arrival: str = ""
    # axe-core rules this page is excused from, each with the reason (markup we do not own, or
    # a change waiting on another file): as few as possible.
    excused: dict[str, str] = field(default_factory=dict)

    @property
    def plain(self) -> bool:
        """A GET of `path` in its state, with nothing the visit must create first."""
        return "{" not in self.path and not self.arrival


PAGES: list[Page] = [
    # --- Anyone ------------------------------------------------------------------------------
    Page("sign-in", LOGIN_URL, State.ANONYMOUS),
    Page("sign-in-to-app", "{app}", State.ANONYMOUS),
    Page("password-reset", "/accounts/password/reset/", State.ANONYMOUS),
    Page("password-reset-done", "/accounts/password/reset/done/", State.ANONYMOUS),
    Page("password-reset-from-key", "{reset}", State.ANONYMOUS),
    Page("password-reset-key-done", "/accounts/password/reset/key/done/", State.ANONYMOUS),
    Page("password-reset-bad-key", "/accounts/password/reset/key/1-not-a-key/", State.ANONYMOUS),
    Page("verification-sent", "/accounts/confirm-email/", State.ANONYMOUS),
    Page("confirm-email-bad-key", "/accounts/confirm-email/not-a-key/", State.ANONYMOUS),
    Page("signup-closed", "/accounts/signup/", State.ANONYMOUS),
    Page("account-inactive", "/accounts/inactive/", State.ANONYMOUS),
    Page("signed-out-frames", "{logged_out}", State.ANONYMOUS),
    Page(
        "error-400",
        "/o/authorize/?" + urlencode({"client_id": "nobody", "response_type": "code"}),
        State.ANONYMOUS,
        status=HTTPStatus.BAD_REQUEST,
    ),
    Page("error-403-csrf", LOGIN_URL, State.ANONYMOUS, HTTPStatus.FORBIDDEN, arrival="csrf"),
    Page("error-404", "/no-such-page/", State.ANONYMOUS, status=HTTPStatus.NOT_FOUND),
    # --- A signed-in employee -----------------------------------------------------------------
    Page("account", "/account/", State.SIGNED_IN),
    Page("profile", "/account/profile/", State.SIGNED_IN),
    Page("connected-apps", "/account/apps/", State.SIGNED_IN),
    Page("my-apps", "/account/my-apps/", State.SIGNED_IN),
    Page("activity", "/account/activity/", State.SIGNED_IN),
    Page("sessions", "/accounts/sessions/", State.SIGNED_IN),
    Page("sign-out", "/accounts/logout/", State.SIGNED_IN),
    Page("app-sign-out", "/o/logout/", State.SIGNED_IN),
    Page("password-change", "/accounts/password/change/", State.SIGNED_IN),
    Page("email", "/accounts/email/", State.SIGNED_IN),
    Page("two-step", "/accounts/2fa/", State.SIGNED_IN),
    Page("authenticator-app-set-up", "/accounts/2fa/totp/activate/", State.SIGNED_IN),
    Page("security-keys", "/accounts/2fa/webauthn/", State.SIGNED_IN),
    Page("security-key-add", "/accounts/2fa/webauthn/add/", State.SIGNED_IN),
    Page("reauthenticate", "/accounts/reauthenticate/", State.SIGNED_IN),
    Page("consent", "{app}", State.SIGNED_IN),
    Page("device-code", "/device", State.SIGNED_IN),
    # --- Two-step verification -------------------------------------------------------------------
    Page("code-step", MFA_AUTHENTICATE_URL, State.CODE_STEP),
    Page("two-step-on", "/accounts/2fa/", State.TOTP),
    Page("authenticator-app-remove", "/accounts/2fa/totp/deactivate/", State.TOTP),
    Page("recovery-codes", "/accounts/2fa/recovery-codes/", State.TOTP),
    Page("recovery-codes-new", "/accounts/2fa/recovery-codes/generate/", State.TOTP),
    Page("reauthenticate-code", "/accounts/2fa/reauthenticate/", State.TOTP),
    # --- Staff at the admin's door --------------------------------------------------------------
    Page("admin-enrol", "/account/two-step-required/?next=%2Fadmin%2F", State.STAFF_ENROL),
    Page("admin-gate", "/accounts/2fa/reauthenticate/?next=%2Fadmin%2F", State.STAFF_GATE),
    Page("admin-gate-password", "/accounts/reauthenticate/?next=%2Fadmin%2F", State.STAFF_GATE),
    # --- The identity admin console -------------------------------------------------------------
    Page("admin-dashboard", ADMIN_URL, State.ADMIN, admin=True),
    Page("admin-users", "/admin/accounts/user/", State.ADMIN, admin=True),
    Page("admin-user-add", "/admin/accounts/user/add/", State.ADMIN, admin=True),
    Page("admin-user", "/admin/accounts/user/{user_pk}/change/", State.ADMIN, admin=True),
    Page("admin-groups", "/admin/auth/group/", State.ADMIN, admin=True),
    Page("admin-apps", "/admin/oauth_clients/client/", State.ADMIN, admin=True),
    Page("admin-app-register", "/admin/oauth_clients/client/register/", State.ADMIN, admin=True),
    Page(
        "admin-app-setup",
        "/admin/oauth_clients/client/register/",
        State.ADMIN,
        admin=True,
        arrival="register",
    ),
    Page("admin-app", "/admin/oauth_clients/client/{client_pk}/change/", State.ADMIN, admin=True),
    Page("admin-audit", "/admin/accounts/auditevent/", State.ADMIN, admin=True),
    Page("admin-branding", "/admin/accounts/branding/", State.ADMIN, admin=True),
]


def paths(state: State) -> list[str]:
    """The plain pages of one state that answer 200 in the house layout (for the Django test
    client; the browser run checks the error pages' layout too)."""
    return [
        page.path
        for page in PAGES
        if page.state is state and page.plain and not page.admin and page.status == HTTPStatus.OK
    ]


# --- The browser's side (Playwright's sync API; tests/conftest.py's Debian chromium) -----------


@dataclass
class Visit:
    """What one page's visit set up: the live server, the people and the app it created."""

    site: str
    password: str
    values: dict[str, str] = field(default_factory=dict)


def sign_in(page, site: str, login: str, password: str, *, next_url: str = "") -> None:
    page.goto(f"{site}{LOGIN_URL}" + (f"?{urlencode({'next': next_url})}" if next_url else ""))
    page.locator("#id_login").fill(login)
    page.locator("#id_password").fill(password)
    page.locator("#id_password").press("Enter")
    page.wait_for_load_state()


def redeem_and_verify(site: str, session, callback_url: str, verifier: str) -> dict:
    """An app's end of the code flow: its authlib `OAuth2Session` redeems the code in
    `callback_url` (PKCE `verifier`) and checks the ID token against our JWKS alone, as a
    relying party does; the validated claims."""
    import requests
    from authlib.jose import JsonWebKey, jwt  # here: the callers' warning filter covers it

    tokens = session.fetch_token(
        f"{site}/o/token/", authorization_response=callback_url, code_verifier=verifier
    )
    keys = JsonWebKey.import_key_set(
        requests.get(f"{site}/.well-known/jwks.json", timeout=10).json()
    )
    claims = jwt.decode(tokens["id_token"], keys)
    claims.validate()
    return claims


def prepare(page, *, state: State | None, site: str, password: str) -> Visit:
    """Create the people and the app a page of `state` needs and bring the browser there.

    Needs the database (a `transaction=True` test: the live server reads it). With no state,
    the people and the app only, the browser nowhere yet."""
    from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes
    from django.contrib.auth import get_user_model
    from django.core import signing
    from django.core.cache import cache

    from oauth_clients.models import Client
    from oauth_clients.oidc.frontchannel import SIGNING_SALT
    from tests.accounts.conftest import enable_totp, totp_code
    from tests.oidc.authorize_helpers import authorization_params
    from tests.oidc.conftest import make_client

    # allauth's rate limits count in the cache, which the live server shares with the tests
    # (one process): dozens of visits a minute from 127.0.0.1 would reach "login: 30/m/ip".
    # Each visit is a new person at a new browser.
    cache.clear()
    users = get_user_model().objects
    alice = users.create_user(
        "alice", "alice@example.com", password, first_name="Alice", last_name="Liddell"
    )
    app = make_client(
        name="Wiki",
        client_id="wiki",
        secret="wiki-secret-" + "w" * 32,
        redirect_uris=f"{site}{APP_REDIRECT_PATH}",
        grant_types=[Client.GRANT_AUTHORIZATION_CODE, "refresh_token"],
        allowed_scopes="openid profile email",
        logo_uri=f"{site}/static/idp/favicon.svg",
    )
    visit = Visit(site=site, password=password)
    visit.values = {
        "app": "/o/authorize/?" + urlencode(authorization_params(app)),
        "user_pk": str(alice.pk),
        "client_pk": str(app.pk),
        "logged_out": "/o/logged-out/?"
        + urlencode({"t": signing.dumps({"c": [], "s": "x", "n": LOGIN_URL}, salt=SIGNING_SALT)}),
    }
    if state is State.SIGNED_IN:
        sign_in(page, site, "alice", password)
    elif state in (State.CODE_STEP, State.TOTP):
        secret = enable_totp(alice)
        RecoveryCodes.activate(alice)  # as turning the app on does
        sign_in(page, site, "alice", password)
        page.wait_for_url(f"{site}{MFA_AUTHENTICATE_URL}")
        if state is State.TOTP:
            page.locator("#id_code").fill(totp_code(secret))
            page.locator("#id_code").press("Enter")
            page.wait_for_url(f"{site}/account/")
    elif state in (State.STAFF_ENROL, State.STAFF_GATE):
        staff = users.create_user("helpdesk", "helpdesk@example.com", password, is_staff=True)
        if state is State.STAFF_GATE:
            sign_in(page, site, "helpdesk", password)  # a password-only session,
            enable_totp(staff)  # then an authenticator app, so the gate asks for its code
        else:
            sign_in(page, site, "helpdesk", password, next_url=ADMIN_URL)
    elif state is State.ADMIN:
        users.create_superuser("root", "root@example.com", password)
        sign_in(page, site, "root", password, next_url=ADMIN_URL)
        page.wait_for_url(f"{site}{ADMIN_URL}")
    return visit


def reach(page, entry: Page, visit: Visit):
    """Bring the browser to `entry` (prepared by `prepare`); returns the main response."""
    site = visit.site
    if entry.path == "{logged_out}":
        # The signed-out page moves on by itself once its frames have loaded
        # (static/idp/frontchannel.js, tests/oidc/test_frontchannel_browser.py); it is looked
        # at here, so it stays.
        page.route("**/idp/frontchannel.js", lambda route: route.abort())
    if entry.path == "{reset}":
        from django.core import mail

        mail.outbox.clear()
        page.goto(f"{site}/accounts/password/reset/")
        page.locator("#id_email").fill("alice@example.com")
        page.locator("#id_email").press("Enter")
        page.wait_for_url(f"{site}/accounts/password/reset/done/")
        (link,) = re.findall(r"https?://\S+/accounts/password/reset/key/\S+/", mail.outbox[-1].body)
        # allauth keeps the key in the session and redirects to the form's own address.
        return page.goto(re.sub(r"^https?://[^/]+", site, link))
    if entry.arrival == "csrf":
        # A form kept open past its CSRF cookie (cleared cookies, another browser profile).
        page.goto(f"{site}{entry.path}")
        page.context.clear_cookies()
        with page.expect_navigation() as navigation:
            page.locator("#id_password").fill(visit.password)
            page.locator("#id_login").fill("alice")
            page.locator("#id_password").press("Enter")
        return navigation.value
    if entry.arrival == "register":
        page.goto(f"{site}{entry.path}")
        page.locator("input[name=kind][value=web]").check()
        page.locator("#id_name").fill("Team wiki")
        page.locator("#id_redirect_uris").fill("https://wiki.example.com/callback")
        page.locator("#id_owner_contact").fill("wiki-team@example.com")
        with page.expect_navigation(url=re.compile(r"/setup/$")) as navigation:
            page.locator("#id_owner_contact").press("Enter")
        return navigation.value
    return page.goto(site + entry.path.format(**visit.values))
