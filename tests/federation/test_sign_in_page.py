"""The sign-in page's upstream providers: a button each, and home-realm discovery (an address of
a provider's domain goes to that provider; any other address signs in here as before)."""

from __future__ import annotations

from http import HTTPStatus

import pytest
from django.urls import reverse

from accounts.models import AuditEvent
from federation.models import UpstreamProvider
from federation.secrets import encrypt_secret
from tests.federation.fake_provider import CLIENT_ID, CLIENT_SECRET, FakeProvider
from tests.federation.helpers import query
from tests.oidc.authorize_helpers import AUTHORIZE_URL, authorization_params
from tests.oidc.conftest import web_client  # noqa: F401 (a fixture)

LOGIN = "/accounts/login/"


@pytest.fixture(scope="module")
def fake():
    provider = FakeProvider().start()
    yield provider
    provider.stop()


@pytest.fixture
def provider(db, fake) -> UpstreamProvider:
    fake.reset()
    return UpstreamProvider.objects.create(
        name="Corp Okta",
        slug="corp",
        kind=UpstreamProvider.Kind.OKTA,
        issuer=fake.url,
        client_id=CLIENT_ID,
        client_secret_encrypted=encrypt_secret(CLIENT_SECRET),
        allow_private_network=True,
        email_domains="corp.example\nsubsidiary.example",
    )


def test_the_sign_in_page_offers_each_enabled_provider_and_the_address_form(client, provider):
    page = client.get(LOGIN).content.decode()
    assert "Continue with Corp Okta" in page
    assert f'action="{reverse("upstream_login", args=["corp"])}"' in page
    assert f'action="{reverse("federation_discover")}"' in page


def test_a_disabled_provider_is_not_offered(client, provider):
    provider.enabled = False
    provider.save()
    from federation.selectors import forget_sign_in_options

    forget_sign_in_options()
    assert "Corp Okta" not in client.get(LOGIN).content.decode()


def test_an_address_of_the_providers_domain_goes_to_the_provider(client, fake, provider):
    response = client.post(
        reverse("federation_discover"), {"email": "Erin@Subsidiary.example", "next": "/account/"}
    )
    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"].startswith(f"{fake.url}/authorize?")
    assert query(response["Location"])["client_id"] == CLIENT_ID


def test_an_address_of_another_domain_comes_back_to_the_password_form(client, provider):
    response = client.post(reverse("federation_discover"), {"email": "erin@elsewhere.example"})
    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"] == LOGIN


def test_the_main_form_sends_a_providers_address_there_without_checking_a_password(
    client, fake, provider
):
    response = client.post(LOGIN, {"login": "erin@corp.example", "password": "anything"})
    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"].startswith(f"{fake.url}/authorize?")
    # No failed sign-in counted: the password was never looked at.
    assert not AuditEvent.objects.filter(type=AuditEvent.Type.LOGIN_FAILED).exists()


def test_the_main_form_still_signs_in_other_addresses_with_a_password(
    client, provider, user, password
):
    response = client.post(LOGIN, {"login": "alice@example.com", "password": password})
    assert response.status_code == HTTPStatus.FOUND
    assert client.session["_auth_user_id"] == str(user.pk)


def test_an_unsafe_next_is_dropped_on_the_way_to_the_provider(client, fake, provider):
    response = client.post(
        reverse("federation_discover"),
        {"email": "erin@corp.example", "next": "https://evil.example/"},
    )
    assert response.status_code == HTTPStatus.FOUND
    state = client.session["socialaccount_states"]
    assert all("evil" not in str(value) for value in state.values())


def test_a_provider_that_does_not_answer_gets_a_page_not_a_500(client, fake, provider):
    fake.discovery_status = 500
    response = client.post(reverse("federation_discover"), {"email": "erin@corp.example"})
    assert response.status_code == HTTPStatus.BAD_GATEWAY
    assert b"not available" in response.content


def test_a_get_of_a_providers_sign_in_url_asks_to_confirm_and_starts_nothing(
    client, fake, provider
):
    response = client.get(reverse("upstream_login", args=["corp"]))
    assert response.status_code == HTTPStatus.OK
    assert b"<form" in response.content
    assert "socialaccount_states" not in client.session


def test_an_unknown_provider_gets_the_not_available_page(client, provider):
    response = client.post(reverse("upstream_login", args=["nobody"]))
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert b"not available" in response.content


@pytest.mark.parametrize("method", ["get", "post"])
@pytest.mark.parametrize("url", ["github_login", "github_callback"])
def test_githubs_urls_without_an_enabled_github_provider_get_the_not_available_page(
    client, db, url, method
):
    """allauth's own views let SocialApp.DoesNotExist escape (a 500) when no GitHub app
    exists: a provider of that kind never added, or switched off."""
    github = UpstreamProvider.objects.create(
        name="GitHub",
        slug="github-contractors",
        kind=UpstreamProvider.Kind.GITHUB,
        client_id="Iv1.github-client",
        client_secret_encrypted=encrypt_secret("github-secret"),
    )
    started = client.post(reverse("github_login"), {"process": "login"})
    assert started.status_code == HTTPStatus.FOUND
    UpstreamProvider.objects.filter(pk=github.pk).update(enabled=False)
    disabled = getattr(client, method)(reverse(url), {"code": "x", "state": "y"})
    github.delete()
    never_added = getattr(client, method)(reverse(url), {"code": "x", "state": "y"})
    for response in (disabled, never_added):
        assert response.status_code == HTTPStatus.BAD_REQUEST
        assert b"not available" in response.content


def test_the_github_preset_starts_githubs_authorization_with_pkce(client, db):
    UpstreamProvider.objects.create(
        name="GitHub",
        slug="github-contractors",
        kind=UpstreamProvider.Kind.GITHUB,
        client_id="Iv1.github-client",
        client_secret_encrypted=encrypt_secret("github-secret"),
    )
    page = client.get(LOGIN).content.decode()
    assert f'action="{reverse("github_login")}"' in page
    response = client.post(reverse("github_login"), {"process": "login"})
    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"].startswith("https://github.com/login/oauth/authorize?")
    params = query(response["Location"])
    assert params["client_id"] == "Iv1.github-client"
    assert params["code_challenge_method"] == "S256"
    assert set(params["scope"].split()) == {"read:user", "user:email"}


def app_sign_in_page(client, web_client, **params) -> str:  # noqa: F811 (the fixture)
    """The sign-in page an app's authorization request leads to."""
    response = client.get(AUTHORIZE_URL, authorization_params(web_client, **params))
    assert response.status_code == HTTPStatus.FOUND
    return response["Location"]


@pytest.mark.spec("OpenID Connect Core 1.0", "3.1.2.1")
@pytest.mark.parametrize(
    "hint",
    [
        {"login_hint": "erin@corp.example"},
        {"login_hint": "Erin@SUBSIDIARY.example"},
        {"kc_idp_hint": "corp"},
        {"kc_idp_hint": "corp", "login_hint": "erin@elsewhere.example"},
    ],
)
def test_an_apps_hint_naming_a_provider_goes_straight_to_it(
    client,
    fake,
    provider,
    web_client,  # noqa: F811 (the fixture)
    hint,
):
    response = client.get(app_sign_in_page(client, web_client, **hint))

    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"].startswith(f"{fake.url}/authorize?")
    # Back to the app's authorization request once the provider answers.
    (state,) = client.session["socialaccount_states"].values()
    assert AUTHORIZE_URL in str(state)


@pytest.mark.parametrize(
    "hint",
    [
        {"login_hint": "erin@elsewhere.example"},
        {"login_hint": "erin"},
        {"kc_idp_hint": "nobody"},
        {"login_hint": "erin@corp.example.evil"},
        {},
    ],
)
def test_a_hint_naming_no_provider_shows_the_sign_in_page(
    client,
    provider,
    web_client,  # noqa: F811 (the fixture)
    hint,
):
    assert (
        client.get(app_sign_in_page(client, web_client, login_hint="erin@corp.example")).status_code
        == HTTPStatus.FOUND
    )

    response = client.get(app_sign_in_page(client, web_client, **hint))

    assert response.status_code == HTTPStatus.OK
    assert b'name="login"' in response.content


def test_a_hint_of_a_disabled_provider_shows_the_sign_in_page(
    client,
    provider,
    web_client,  # noqa: F811 (the fixture)
    django_capture_on_commit_callbacks,
):
    login_page = app_sign_in_page(client, web_client, login_hint="erin@corp.example")
    assert client.get(login_page).status_code == HTTPStatus.FOUND
    from federation.selectors import forget_sign_in_options

    provider.enabled = False
    provider.save()
    with django_capture_on_commit_callbacks(execute=True):
        forget_sign_in_options()  # as the admin's change does once committed
    for hint in ({"login_hint": "erin@corp.example"}, {"kc_idp_hint": "corp"}):
        response = client.get(app_sign_in_page(client, web_client, **hint))
        assert response.status_code == HTTPStatus.OK, hint
        assert "Corp Okta" not in response.content.decode()


def test_a_hint_of_a_provider_without_just_in_time_accounts_still_goes_there(
    client,
    fake,
    provider,
    web_client,  # noqa: F811 (the fixture)
):
    # As a typed address does: people it already knows sign in there; a stranger is refused
    # on the way back (tests/federation/test_upstream_refusals.py), never made an account.
    provider.create_accounts = False
    provider.save()

    response = client.get(app_sign_in_page(client, web_client, login_hint="erin@corp.example"))

    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"].startswith(f"{fake.url}/authorize?")


def test_a_hint_in_a_next_that_is_no_registered_apps_request_starts_nothing(
    client,
    provider,
    web_client,  # noqa: F811 (the fixture)
):
    assert client.get(app_sign_in_page(client, web_client, kc_idp_hint="corp")).status_code == 302
    started = dict(client.session["socialaccount_states"])

    for client_id in ("unknown-app", ""):
        next_url = f"{AUTHORIZE_URL}?client_id={client_id}&kc_idp_hint=corp"
        response = client.get(LOGIN, {"next": next_url})
        assert response.status_code == HTTPStatus.OK
    web_client.is_active = False  # a disabled app's request neither
    web_client.save()
    response = client.get(LOGIN, {"next": f"{AUTHORIZE_URL}?client_id=web-app&kc_idp_hint=corp"})
    assert response.status_code == HTTPStatus.OK
    response = client.get(LOGIN, {"next": "/account/?kc_idp_hint=corp"})
    assert response.status_code == HTTPStatus.OK
    assert client.session["socialaccount_states"] == started, "no upstream sign-in started"
