"""Single sign-out: OpenID Connect Back-Channel Logout 1.0 between the IdP and two apps.

Two relying parties listen on loopback (`Receiver`). A user signs in to both in one IdP session;
however that session ends — at one app (RP-initiated logout), at the IdP, from another browser
in the security centre, by an administrator, by a password change or reset, by deactivation —
each app's receiver gets one logout token that verifies against our JWKS and follows §2.4, and
the tokens the session issued are dead (userinfo 401, introspection inactive, refresh refused).
Delivery runs in Django's tasks framework; here its immediate backend, after commit. The
database queue and its real worker are in `test_backchannel_delivery.py`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from http import HTTPStatus
from typing import Any

import pytest
from allauth.usersessions.models import UserSession
from django.test import Client as HttpClient
from django.urls import reverse

from accounts.models import AuditEvent
from oauth_clients.models import BackchannelDelivery
from oauth_clients.models import Client as OAuthClient
from tests.accounts.conftest import (
    CHANGE_URL,
    LOGOUT_URL,
    OVERVIEW_URL,
    RESET_URL,
    introspect_active,
    is_signed_in,
    last_link,
    refresh_status,
    sign_in,
    userinfo_status,
)
from tests.oidc.backchannel_helpers import (
    IMMEDIATE_TASKS,
    SPEC,
    Receiver,
    assert_logout_token_for_session,
    register_app,
    sign_in_to_app,
    unverified_claims,
)

pytestmark = pytest.mark.django_db

RP_LOGOUT_URL = "/o/logout/"
SESSIONS_URL = "/accounts/sessions/"
ADMIN_USERS_URL = "/admin/accounts/user/"
NEW_PASSWORD = "a brand new passphrase 42"


@pytest.fixture(autouse=True)
def _immediate_tasks(settings):
    settings.TASKS = IMMEDIATE_TASKS


@pytest.fixture
def receivers() -> Iterator[Callable[..., Receiver]]:
    started: list[Receiver] = []

    def start(**behaviour: Any) -> Receiver:
        receiver = Receiver(**behaviour)
        started.append(receiver)
        return receiver

    yield start
    for receiver in started:
        receiver.close()


@pytest.fixture
def mail_rp(receivers):
    receiver = receivers()
    return register_app("Mail", receiver), receiver


@pytest.fixture
def wiki_rp(receivers):
    receiver = receivers()
    return register_app("Wiki", receiver), receiver


def signed_in_browser(password: str) -> HttpClient:
    browser = HttpClient()
    assert sign_in(browser, "alice", password).status_code == HTTPStatus.FOUND
    assert browser.get(OVERVIEW_URL).status_code == HTTPStatus.OK  # tracked by usersessions
    return browser


@pytest.fixture
def laptop(user, password) -> HttpClient:
    return signed_in_browser(password)


@pytest.fixture
def signed_in_to_both(laptop, mail_rp, wiki_rp) -> dict[str, dict]:
    """One IdP session (the laptop) signed in to both apps; both apps' tokens work."""
    tokens = {
        "mail": sign_in_to_app(laptop, mail_rp[0]),
        "wiki": sign_in_to_app(laptop, wiki_rp[0]),
    }
    sids = {unverified_claims(t["id_token"])["sid"] for t in tokens.values()}
    assert len(sids) == 1, "both apps signed in within the same IdP session"
    for (app, _), name in ((mail_rp, "mail"), (wiki_rp, "wiki")):
        assert userinfo_status(tokens[name]["access_token"]) == HTTPStatus.OK
        assert introspect_active(app, tokens[name]["access_token"])
    return tokens


def assert_session_tokens_dead(app, tokens: dict) -> None:
    assert userinfo_status(tokens["access_token"]) == HTTPStatus.UNAUTHORIZED
    assert not introspect_active(app, tokens["access_token"])
    assert not introspect_active(app, tokens["refresh_token"])
    assert refresh_status(app, tokens["refresh_token"]) == HTTPStatus.BAD_REQUEST


def assert_both_apps_signed_out(mail_rp, wiki_rp, tokens: dict, *, reason: str) -> None:
    """Each app received exactly one valid logout token for the session; its tokens are dead;
    the delivery log says sent."""
    for (app, receiver), name in ((mail_rp, "mail"), (wiki_rp, "wiki")):
        (received,) = receiver.wait_for(1, timeout=5)
        assert_logout_token_for_session(received, app, id_token=tokens[name]["id_token"])
        assert_session_tokens_dead(app, tokens[name])
        delivery = BackchannelDelivery.objects.get(client=app)
        assert delivery.status == BackchannelDelivery.Status.SENT
        assert (delivery.attempts, delivery.last_status_code) == (1, HTTPStatus.OK)
        assert delivery.reason == reason
        assert delivery.sid == unverified_claims(tokens[name]["id_token"])["sid"]


# --------------------------------------------------------------------------- discovery, sid


@pytest.mark.spec(SPEC, "2.1")
def test_discovery_advertises_back_channel_logout_with_sid(client):
    metadata = client.get("/.well-known/openid-configuration").json()
    assert metadata["backchannel_logout_supported"] is True
    assert metadata["backchannel_logout_session_supported"] is True


@pytest.mark.spec(SPEC, "2.1")
def test_id_tokens_carry_the_sid_of_the_session_they_were_issued_in(
    laptop, password, mail_rp, signed_in_to_both
):
    first = unverified_claims(signed_in_to_both["mail"]["id_token"])["sid"]
    assert unverified_claims(signed_in_to_both["wiki"]["id_token"])["sid"] == first
    assert len(first) >= 32
    # Another sign-in is another session, with another sid.
    laptop.post(LOGOUT_URL)
    assert sign_in(laptop, "alice", password).status_code == HTTPStatus.FOUND
    again = sign_in_to_app(laptop, mail_rp[0])
    assert unverified_claims(again["id_token"])["sid"] not in ("", first)


# --------------------------------------------------------------------------- each way out


@pytest.mark.spec(SPEC, "2.4")
@pytest.mark.spec(SPEC, "2.5")
@pytest.mark.spec(SPEC, "2.7")
@pytest.mark.spec("OpenID Connect RP-Initiated Logout 1.0", "2")
def test_signing_out_at_one_app_signs_the_user_out_of_the_other(
    laptop, mail_rp, wiki_rp, signed_in_to_both, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = laptop.get(
            RP_LOGOUT_URL, {"id_token_hint": signed_in_to_both["mail"]["id_token"]}
        )
    assert response.status_code == HTTPStatus.FOUND
    assert not is_signed_in(laptop)
    assert_both_apps_signed_out(mail_rp, wiki_rp, signed_in_to_both, reason="rp_initiated_logout")


@pytest.mark.spec(SPEC, "2.4")
@pytest.mark.spec(SPEC, "2.7")
def test_signing_out_at_the_idp_signs_the_user_out_of_both_apps(
    laptop, mail_rp, wiki_rp, signed_in_to_both, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = laptop.post(LOGOUT_URL)
    assert response.status_code == HTTPStatus.FOUND
    assert not is_signed_in(laptop)
    assert_both_apps_signed_out(mail_rp, wiki_rp, signed_in_to_both, reason="session_ended")
    event = AuditEvent.objects.get(type=AuditEvent.Type.LOGOUT)
    assert event.extra["refresh_tokens_revoked"] == 2


@pytest.mark.spec(SPEC, "2.4")
@pytest.mark.spec(SPEC, "2.7")
def test_ending_the_session_from_another_browser_signs_it_out_of_both_apps(
    user, password, laptop, mail_rp, wiki_rp, signed_in_to_both, django_capture_on_commit_callbacks
):
    phone = signed_in_browser(password)
    phone_tokens = sign_in_to_app(phone, mail_rp[0])
    laptop_session = UserSession.objects.get(session_key=laptop.session.session_key)

    with django_capture_on_commit_callbacks(execute=True):
        response = phone.post(reverse("account_end_session", args=[laptop_session.pk]))

    assert response.status_code == HTTPStatus.FOUND
    assert not is_signed_in(laptop)
    assert_both_apps_signed_out(mail_rp, wiki_rp, signed_in_to_both, reason="session_ended")
    # The phone's session, and what it obtained, go on: no logout token named it.
    assert is_signed_in(phone)
    assert userinfo_status(phone_tokens["access_token"]) == HTTPStatus.OK


@pytest.mark.spec(SPEC, "2.7")
def test_signing_out_all_other_sessions_tells_their_apps(
    user, password, laptop, mail_rp, wiki_rp, signed_in_to_both, django_capture_on_commit_callbacks
):
    phone = signed_in_browser(password)
    with django_capture_on_commit_callbacks(execute=True):
        response = phone.post(SESSIONS_URL)  # allauth's "sign out all other sessions"
    assert response.status_code == HTTPStatus.FOUND
    assert is_signed_in(phone)
    assert_both_apps_signed_out(mail_rp, wiki_rp, signed_in_to_both, reason="session_ended")


@pytest.mark.spec(SPEC, "2.7")
def test_an_administrator_signing_the_user_out_everywhere_tells_the_apps(
    user,
    admin_user,
    password,
    laptop,
    mail_rp,
    wiki_rp,
    signed_in_to_both,
    django_capture_on_commit_callbacks,
):
    admin = HttpClient()
    sign_in(admin, "root", password, next="/admin/")
    with django_capture_on_commit_callbacks(execute=True):
        response = admin.post(
            ADMIN_USERS_URL,
            {"action": "sign_out_everywhere", "_selected_action": [user.pk], "index": 0},
        )
    assert response.status_code == HTTPStatus.FOUND
    assert not is_signed_in(laptop)
    assert_both_apps_signed_out(mail_rp, wiki_rp, signed_in_to_both, reason="session_ended")


@pytest.mark.spec(SPEC, "2.7")
def test_deactivating_the_user_in_the_admin_tells_the_apps(
    user,
    admin_user,
    password,
    laptop,
    mail_rp,
    wiki_rp,
    signed_in_to_both,
    django_capture_on_commit_callbacks,
):
    admin = HttpClient()
    sign_in(admin, "root", password, next="/admin/")
    with django_capture_on_commit_callbacks(execute=True):
        response = admin.post(
            ADMIN_USERS_URL,
            {"action": "deactivate_users", "_selected_action": [user.pk], "index": 0},
        )
    assert response.status_code == HTTPStatus.FOUND
    user.refresh_from_db()
    assert not user.is_active
    assert_both_apps_signed_out(mail_rp, wiki_rp, signed_in_to_both, reason="session_ended")


@pytest.mark.spec(SPEC, "2.7")
def test_a_password_reset_that_signs_out_everywhere_tells_the_apps(
    user, laptop, mail_rp, wiki_rp, signed_in_to_both, django_capture_on_commit_callbacks
):
    stranger = HttpClient()
    stranger.get(RESET_URL)
    stranger.post(RESET_URL, {"email": "alice@example.com"})
    path = last_link().replace("http://testserver", "")
    form_page = stranger.get(path, follow=True)
    with django_capture_on_commit_callbacks(execute=True):
        done = stranger.post(
            form_page.redirect_chain[-1][0],
            {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD, "sign_out_others": "on"},
        )
    assert done.status_code == HTTPStatus.FOUND
    assert not is_signed_in(laptop)
    assert_both_apps_signed_out(mail_rp, wiki_rp, signed_in_to_both, reason="session_ended")


@pytest.mark.spec(SPEC, "2.7")
def test_a_password_change_that_signs_out_elsewhere_tells_the_other_sessions_apps(
    password, laptop, mail_rp, wiki_rp, signed_in_to_both, django_capture_on_commit_callbacks
):
    phone = signed_in_browser(password)
    with django_capture_on_commit_callbacks(execute=True):
        response = phone.post(
            CHANGE_URL,
            {
                "oldpassword": password,
                "password1": NEW_PASSWORD,
                "password2": NEW_PASSWORD,
                "sign_out_others": "on",
            },
        )
    assert response.status_code == HTTPStatus.FOUND
    assert_both_apps_signed_out(mail_rp, wiki_rp, signed_in_to_both, reason="session_ended")


@pytest.mark.spec(SPEC, "2.4")
def test_an_app_with_es256_id_tokens_gets_es256_logout_tokens(
    laptop, receivers, django_capture_on_commit_callbacks
):
    receiver = receivers()
    app = register_app("Modern", receiver, algorithm=OAuthClient.ES256_ALGORITHM)
    tokens = sign_in_to_app(laptop, app)

    with django_capture_on_commit_callbacks(execute=True):
        laptop.post(LOGOUT_URL)

    (received,) = receiver.wait_for(1, timeout=5)
    assert_logout_token_for_session(received, app, id_token=tokens["id_token"], algorithm="ES256")
