"""Signing in through a real upstream OpenID Provider (a second instance of this IdP)."""

from __future__ import annotations

from http import HTTPStatus

import pytest
from allauth.account.models import EmailAddress
from allauth.socialaccount.models import SocialAccount
from django.contrib.auth.models import Group

from accounts.models import AuditEvent, User
from accounts.sessions import UPSTREAM_MFA_KEY, authentication_methods
from oauth_clients.models import Grant
from tests.federation.conftest import callback_uri
from tests.federation.helpers import path_and_query, query, sign_in_upstream
from tests.oidc.authorize_helpers import AUTHORIZE_URL, authorization_params, redirect_query
from tests.oidc.conftest import make_client

PAYROLL_REDIRECT_URI = "https://payroll.example.com/callback"

pytestmark = pytest.mark.spec("OpenID Connect Core 1.0", "3.1.3.7")


def start(broker, slug="corp", **data):
    response = broker.post(f"/accounts/upstream/{slug}/login/", {"process": "login", **data})
    assert response.status_code == HTTPStatus.FOUND, response.content[:500]
    return response["Location"]


def session_amr(broker) -> list[str]:
    session = broker.session
    return authentication_methods(
        session["account_authentication_methods"], upstream_mfa=session.get(UPSTREAM_MFA_KEY)
    )


def test_a_person_signs_in_upstream_and_is_created_just_in_time_with_the_source_audited(
    broker, corp, upstream_idp
):
    authorize = start(broker, next="/account/")
    assert authorize.startswith(f"{upstream_idp.url}/o/authorize/")
    params = query(authorize)
    assert params["client_id"] == upstream_idp.client_id
    assert params["redirect_uri"] == callback_uri("corp")
    assert params["nonce"]
    assert params["code_challenge_method"] == "S256"
    callback = sign_in_upstream(authorize, upstream_idp.url, "carol")
    assert callback.startswith(callback_uri("corp"))

    response = broker.get(path_and_query(callback))

    assert response.status_code == HTTPStatus.FOUND, response.content[:800]
    assert response["Location"] == "/account/"
    user = User.objects.get(email="carol@corp.example")
    assert (user.username, user.first_name, user.last_name) == ("carol", "Carol", "Upstream")
    assert not user.has_usable_password()
    assert EmailAddress.objects.get(user=user, email="carol@corp.example").verified
    link = SocialAccount.objects.get(user=user)
    assert link.provider == "corp"
    created = AuditEvent.objects.get(type=AuditEvent.Type.USER_CREATED, subject=user)
    assert created.extra == {"source": "upstream", "provider": "corp", "just_in_time": True}
    signed_in = AuditEvent.objects.get(type=AuditEvent.Type.UPSTREAM_SIGNED_IN, subject=user)
    assert signed_in.extra["source"] == "upstream"
    assert signed_in.extra["provider"] == "corp"
    assert signed_in.extra["upstream_mfa"] is False
    # RFC 8176 "fed": the session (and so every ID token it obtains) says how it signed in.
    assert session_amr(broker) == ["fed"]


def sign_in_through_corp(broker, upstream_idp, username: str, *, totp: bool = False, **data):
    authorize = start(broker, **data)
    callback = sign_in_upstream(authorize, upstream_idp.url, username, totp=totp)
    response = broker.get(path_and_query(callback))
    assert response.status_code == HTTPStatus.FOUND, response.content[:800]
    return response


def test_upstream_groups_map_onto_groups_here_through_the_group_services(
    broker, corp, upstream_idp
):
    engineers = Group.objects.create(name="Engineers")
    sales = Group.objects.create(name="Sales")
    corp.group_mapping = {"engineering": "Engineers", "sales": "Sales"}
    corp.save()
    sign_in_through_corp(broker, upstream_idp, "carol")
    carol = User.objects.get(email="carol@corp.example")
    assert set(carol.groups.values_list("name", flat=True)) == {"Engineers"}
    added = AuditEvent.objects.get(type=AuditEvent.Type.GROUP_MEMBER_ADDED, subject=carol)
    assert added.extra["group"] == "Engineers"
    signed_in = AuditEvent.objects.get(type=AuditEvent.Type.UPSTREAM_SIGNED_IN, subject=carol)
    assert signed_in.extra["groups_added"] == ["Engineers"]

    # Put into a mapped group by hand: the next upstream sign-in takes her out of it (the
    # provider no longer names it); a group outside the mapping is never touched.
    other = Group.objects.create(name="Other")
    carol.groups.add(sales, other)
    broker.logout()
    sign_in_through_corp(broker, upstream_idp, "carol")
    assert set(carol.groups.values_list("name", flat=True)) == {"Engineers", "Other"}
    removed = AuditEvent.objects.get(type=AuditEvent.Type.GROUP_MEMBER_REMOVED, subject=carol)
    assert removed.extra["group"] == "Sales"
    assert engineers.user_set.filter(pk=carol.pk).exists()


@pytest.fixture
def payroll(db):
    """An app that requires two-step verification (Client.requires_mfa)."""
    return make_client(
        name="Payroll",
        client_id="payroll",
        secret="payroll-secret-" + "p" * 30,
        redirect_uris=PAYROLL_REDIRECT_URI,
        is_trusted=True,
        requires_mfa=True,
    )


@pytest.mark.spec("RFC 8176", "2")
def test_the_providers_second_factor_satisfies_an_app_requiring_one_when_trusted(
    broker, corp, upstream_idp, payroll
):
    corp.trust_mfa = True
    corp.save()
    sign_in_through_corp(broker, upstream_idp, "dave", totp=True)
    assert session_amr(broker) == ["fed", "mfa"]
    signed_in = AuditEvent.objects.get(type=AuditEvent.Type.UPSTREAM_SIGNED_IN)
    assert signed_in.extra["upstream_mfa"] is True
    query = redirect_query(
        broker.get(AUTHORIZE_URL, authorization_params(payroll)), PAYROLL_REDIRECT_URI
    )
    assert query["code"]
    assert Grant.objects.get().amr == ["fed", "mfa"]


@pytest.mark.spec("RFC 8176", "2")
def test_an_untrusted_providers_second_factor_still_steps_up_to_ours(
    broker, corp, upstream_idp, payroll
):
    sign_in_through_corp(broker, upstream_idp, "frank", totp=True)
    assert session_amr(broker) == ["fed"]
    response = broker.get(AUTHORIZE_URL, authorization_params(payroll))
    assert response.status_code == HTTPStatus.FORBIDDEN  # no second factor here to step up to
    assert not Grant.objects.exists()


@pytest.mark.spec("RFC 8176", "2")
def test_a_trusted_provider_that_used_no_second_factor_still_steps_up(
    broker, corp, upstream_idp, payroll
):
    corp.trust_mfa = True
    corp.save()
    sign_in_through_corp(broker, upstream_idp, "carol")
    assert session_amr(broker) == ["fed"]
    response = broker.get(AUTHORIZE_URL, authorization_params(payroll))
    assert response.status_code == HTTPStatus.FORBIDDEN
    assert not Grant.objects.exists()


@pytest.mark.spec("OpenID Connect Core 1.0", "3.1.2.1")
def test_an_apps_login_hint_of_a_providers_domain_goes_straight_there_and_back_to_the_app(
    broker, corp, upstream_idp, payroll
):
    payroll.requires_mfa = False
    payroll.save()
    params = authorization_params(payroll, login_hint="carol@corp.example")
    login_page = broker.get(AUTHORIZE_URL, params)["Location"]

    # The sign-in page is never shown: the hint's domain names the provider.
    authorize = broker.get(login_page)["Location"]

    assert authorize.startswith(f"{upstream_idp.url}/o/authorize/")
    callback = sign_in_upstream(authorize, upstream_idp.url, "carol")
    back = broker.get(path_and_query(callback))
    assert back.status_code == HTTPStatus.FOUND, back.content[:800]
    assert back["Location"].startswith(AUTHORIZE_URL)
    answer = redirect_query(broker.get(back["Location"]), PAYROLL_REDIRECT_URI)
    assert answer["code"]
    assert answer["state"] == params["state"]
    carol = User.objects.get(email="carol@corp.example")
    assert Grant.objects.get().user == carol
    assert Grant.objects.get().amr == ["fed"]
    created = AuditEvent.objects.get(type=AuditEvent.Type.USER_CREATED, subject=carol)
    assert created.extra["just_in_time"] is True
