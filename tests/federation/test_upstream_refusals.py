"""What the IdP refuses of an upstream provider's answers and of the person's browser: each case
after the positive path, against a hand-made provider that sends the malformed answers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from http import HTTPStatus

import jwt
import pytest
from allauth.account.models import EmailAddress
from allauth.socialaccount.models import SocialAccount
from django.contrib.auth import get_user_model

from accounts.models import AuditEvent, User
from federation.models import UpstreamProvider
from federation.secrets import encrypt_secret
from tests.federation.fake_provider import CLIENT_ID, CLIENT_SECRET, FakeProvider
from tests.federation.helpers import query


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeProvider]:
    provider = FakeProvider().start()
    yield provider
    provider.stop()


@pytest.fixture
def provider(db, fake) -> UpstreamProvider:
    fake.reset()
    return UpstreamProvider.objects.create(
        name="Fake",
        slug="fake",
        kind=UpstreamProvider.Kind.OIDC,
        issuer=fake.url,
        client_id=CLIENT_ID,
        client_secret_encrypted=encrypt_secret(CLIENT_SECRET),
        allow_private_network=True,
        email_domains="corp.example",
        create_accounts=True,
    )


def sign_in(client, fake: FakeProvider, token: Callable[[str], str]) -> object:
    """Start at the IdP, let the provider answer with `token(nonce)`, come back with its code."""
    response = client.post("/accounts/upstream/fake/login/", {"process": "login"})
    assert response.status_code == HTTPStatus.FOUND, response.content[:500]
    params = query(response["Location"])
    fake.id_token = token(params["nonce"])
    return client.get(
        "/accounts/upstream/fake/login/callback/", {"code": "the-code", "state": params["state"]}
    )


def refusal(reason_part: str) -> AuditEvent:
    event = AuditEvent.objects.get(type=AuditEvent.Type.UPSTREAM_REFUSED)
    assert reason_part.lower() in event.extra["reason"].lower(), event.extra
    assert event.extra["source"] == "upstream"
    assert event.extra["provider"] == "fake"
    return event


def without_nonce(claims: dict) -> dict:
    return {key: value for key, value in claims.items() if key != "nonce"}


def signed_in(client) -> bool:
    return "_auth_user_id" in client.session


def test_a_signed_id_token_for_this_client_with_its_nonce_signs_in(client, fake, provider):
    response = sign_in(client, fake, lambda nonce: fake.sign(fake.claims(nonce)))
    assert response.status_code == HTTPStatus.FOUND, response.content[:800]
    assert signed_in(client)
    assert User.objects.filter(email="erin@corp.example").exists()
    assert len(fake.token_requests) == 1
    assert "code_verifier=" in fake.token_requests[0]  # PKCE (RFC 7636)


@pytest.mark.spec("OpenID Connect Core 1.0", "3.1.3.7")
def test_an_unsigned_id_token_is_refused(client, fake, provider):
    response = sign_in(
        client, fake, lambda nonce: jwt.encode(fake.claims(nonce), None, algorithm="none")
    )
    assert response.status_code == HTTPStatus.FORBIDDEN
    assert not signed_in(client)
    assert not User.objects.filter(email="erin@corp.example").exists()
    refusal("'none' is not accepted")


@pytest.mark.spec("OpenID Connect Core 1.0", "3.1.3.7")
def test_an_id_token_signed_with_the_client_secret_is_refused(client, fake, provider):
    response = sign_in(
        client, fake, lambda nonce: jwt.encode(fake.claims(nonce), CLIENT_SECRET * 2, "HS256")
    )
    assert response.status_code == HTTPStatus.FORBIDDEN
    assert not signed_in(client)
    refusal("'HS256' is not accepted")


@pytest.mark.spec("OpenID Connect Core 1.0", "3.1.3.7")
def test_an_id_token_signed_by_another_key_is_refused(client, fake, provider):
    other = FakeProvider()
    other.server.server_close()
    response = sign_in(
        client,
        fake,
        lambda nonce: jwt.encode(fake.claims(nonce), other.key, "RS256", headers={"kid": fake.kid}),
    )
    assert response.status_code == HTTPStatus.FORBIDDEN
    assert not signed_in(client)
    refusal("signature verification failed")


@pytest.mark.spec("OpenID Connect Core 1.0", "3.1.3.7")
def test_an_id_token_for_another_audience_is_refused(client, fake, provider):
    response = sign_in(
        client, fake, lambda nonce: fake.sign(fake.claims(nonce, aud="another-client"))
    )
    assert response.status_code == HTTPStatus.FORBIDDEN
    assert not signed_in(client)
    assert not User.objects.filter(email="erin@corp.example").exists()
    refusal("audience")


@pytest.mark.spec("OpenID Connect Core 1.0", "3.1.3.7")
def test_an_id_token_of_another_issuer_is_refused(client, fake, provider):
    response = sign_in(
        client, fake, lambda nonce: fake.sign(fake.claims(nonce, iss="https://evil.example"))
    )
    assert response.status_code == HTTPStatus.FORBIDDEN
    refusal("issuer")


@pytest.mark.spec("OpenID Connect Core 1.0", "3.1.3.7")
def test_an_expired_id_token_is_refused(client, fake, provider):
    response = sign_in(
        client, fake, lambda nonce: fake.sign(fake.claims(nonce, iat=1_000, exp=2_000))
    )
    assert response.status_code == HTTPStatus.FORBIDDEN
    refusal("expired")


@pytest.mark.spec("OpenID Connect Core 1.0", "3.1.3.7")
def test_an_id_token_with_another_nonce_is_refused(client, fake, provider):
    response = sign_in(client, fake, lambda nonce: fake.sign(fake.claims("a-replayed-nonce")))
    assert response.status_code == HTTPStatus.FORBIDDEN
    assert not signed_in(client)
    assert b"could not be completed" in response.content
    refusal("nonce mismatch")


@pytest.mark.spec("OpenID Connect Core 1.0", "3.1.3.7")
def test_an_id_token_without_a_nonce_is_refused(client, fake, provider):
    response = sign_in(client, fake, lambda nonce: fake.sign(without_nonce(fake.claims(nonce))))
    assert response.status_code == HTTPStatus.FORBIDDEN
    refusal("nonce mismatch")


@pytest.mark.spec("OpenID Connect Core 1.0", "5.3.2")
def test_a_userinfo_answer_about_another_person_is_refused(client, fake, provider):
    fake.userinfo["sub"] = "someone-else"
    response = sign_in(client, fake, lambda nonce: fake.sign(fake.claims(nonce)))
    assert response.status_code == HTTPStatus.FORBIDDEN
    refusal("another person")


@pytest.mark.spec("RFC 6749", "10.12")
def test_a_callback_with_a_state_this_browser_did_not_send_is_refused(client, fake, provider):
    response = client.post("/accounts/upstream/fake/login/", {"process": "login"})
    params = query(response["Location"])
    fake.id_token = fake.sign(fake.claims(params["nonce"]))
    response = client.get(
        "/accounts/upstream/fake/login/callback/", {"code": "c", "state": "forged-state"}
    )
    assert response.status_code == HTTPStatus.FORBIDDEN
    assert not signed_in(client)
    assert fake.token_requests == []  # the code was never redeemed
    assert AuditEvent.objects.filter(type=AuditEvent.Type.UPSTREAM_REFUSED).exists()


def test_a_provider_disabled_mid_flow_stops_the_sign_in(client, fake, provider):
    response = client.post("/accounts/upstream/fake/login/", {"process": "login"})
    params = query(response["Location"])
    fake.id_token = fake.sign(fake.claims(params["nonce"]))
    UpstreamProvider.objects.filter(pk=provider.pk).update(enabled=False)
    response = client.get(
        "/accounts/upstream/fake/login/callback/", {"code": "c", "state": params["state"]}
    )
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert b"not available" in response.content
    assert not signed_in(client)
    assert fake.token_requests == []


def test_a_provider_on_a_private_address_is_not_called_unless_allowed(client, fake, provider):
    UpstreamProvider.objects.filter(pk=provider.pk).update(allow_private_network=False)
    response = client.post("/accounts/upstream/fake/login/", {"process": "login"})
    assert response.status_code == HTTPStatus.BAD_GATEWAY
    assert b"not available" in response.content


def test_a_redirect_from_the_provider_is_not_followed(client, fake, provider):
    fake.discovery_status = 302
    response = client.post("/accounts/upstream/fake/login/", {"process": "login"})
    assert response.status_code == HTTPStatus.BAD_GATEWAY


def test_a_discovery_document_of_another_issuer_is_refused(client, fake, provider):
    fake.issuer = "https://evil.example"
    response = sign_in(client, fake, lambda nonce: fake.sign(fake.claims(nonce)))
    assert response.status_code == HTTPStatus.FORBIDDEN
    refusal("another issuer")


# --- Linking and accounts created just in time ------------------------------------------------


def test_an_address_the_provider_has_not_verified_creates_no_account(client, fake, provider):
    fake.reset(verified=False)
    response = sign_in(client, fake, lambda nonce: fake.sign(fake.claims(nonce)))
    assert response.status_code == HTTPStatus.FORBIDDEN
    assert not signed_in(client)
    assert not User.objects.filter(email="erin@corp.example").exists()
    refusal("not verified by the provider")


def test_an_address_verified_on_both_sides_links_the_existing_account(client, fake, provider):
    erin = get_user_model().objects.create_user("erin.local", "erin@corp.example", None)
    assert EmailAddress.objects.get(user=erin).verified  # recorded by the administrator
    response = sign_in(client, fake, lambda nonce: fake.sign(fake.claims(nonce)))
    assert response.status_code == HTTPStatus.FOUND, response.content[:500]
    assert client.session["_auth_user_id"] == str(erin.pk)
    assert SocialAccount.objects.get(provider="fake").user == erin
    linked = AuditEvent.objects.get(type=AuditEvent.Type.IDENTITY_LINKED, subject=erin)
    assert linked.extra == {"how": "verified_email", "source": "upstream", "provider": "fake"}
    assert not AuditEvent.objects.filter(type=AuditEvent.Type.USER_CREATED).exists()


def test_an_address_the_provider_has_not_verified_never_links_an_account(client, fake, provider):
    erin = get_user_model().objects.create_user("erin.local", "erin@corp.example", None)
    fake.reset(verified=False)
    response = sign_in(client, fake, lambda nonce: fake.sign(fake.claims(nonce)))
    assert response.status_code == HTTPStatus.FORBIDDEN
    assert not signed_in(client)
    assert not SocialAccount.objects.filter(user=erin).exists()
    refusal("address not verified on both sides")


def test_an_address_not_verified_here_never_links_an_account(client, fake, provider):
    erin = get_user_model().objects.create_user("erin.local", "erin@corp.example", None)
    EmailAddress.objects.filter(user=erin).update(verified=False)
    response = sign_in(client, fake, lambda nonce: fake.sign(fake.claims(nonce)))
    assert response.status_code == HTTPStatus.FORBIDDEN
    assert not SocialAccount.objects.filter(user=erin).exists()
    refusal("address not verified on both sides")


def test_without_just_in_time_creation_an_unknown_person_is_refused(client, fake, provider):
    UpstreamProvider.objects.filter(pk=provider.pk).update(create_accounts=False)
    response = sign_in(client, fake, lambda nonce: fake.sign(fake.claims(nonce)))
    assert response.status_code == HTTPStatus.FORBIDDEN
    assert not User.objects.filter(email="erin@corp.example").exists()
    refusal("no linked account")


def test_an_address_outside_the_providers_domains_creates_no_account(client, fake, provider):
    fake.reset(email="erin@elsewhere.example")
    response = sign_in(client, fake, lambda nonce: fake.sign(fake.claims(nonce)))
    assert response.status_code == HTTPStatus.FORBIDDEN
    assert not User.objects.filter(email="erin@elsewhere.example").exists()
    refusal("outside the provider's domains")


# --- Linking from the security centre (allauth's connect flow) -----------------------------


def connect(client, fake: FakeProvider) -> object:
    response = client.post("/accounts/upstream/fake/login/", {"process": "connect"})
    assert response.status_code == HTTPStatus.FOUND, response.content[:500]
    params = query(response["Location"])
    fake.id_token = fake.sign(fake.claims(params["nonce"]))
    return client.get(
        "/accounts/upstream/fake/login/callback/", {"code": "c", "state": params["state"]}
    )


def test_a_person_links_an_identity_whose_verified_address_is_theirs(client, fake, provider):
    erin = get_user_model().objects.create_user("erin.local", "erin@corp.example", None)
    client.force_login(erin)
    response = connect(client, fake)
    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"] == "/account/identities/"
    assert SocialAccount.objects.get(provider="fake").user == erin
    linked = AuditEvent.objects.get(type=AuditEvent.Type.IDENTITY_LINKED)
    assert linked.extra["how"] == "linked_by_user"


def test_an_identity_whose_address_is_not_the_persons_is_not_linked(client, fake, provider, user):
    client.force_login(user)  # alice@example.com; the provider says erin@corp.example
    response = connect(client, fake)
    assert response.status_code == HTTPStatus.FORBIDDEN
    assert not SocialAccount.objects.exists()
    refusal("no address verified on both sides")


def test_an_identity_whose_address_the_provider_has_not_verified_is_not_linked(
    client, fake, provider
):
    erin = get_user_model().objects.create_user("erin.local", "erin@corp.example", None)
    client.force_login(erin)
    fake.reset(verified=False)
    response = connect(client, fake)
    assert response.status_code == HTTPStatus.FORBIDDEN
    assert not SocialAccount.objects.exists()
    refusal("no address verified on both sides")


def test_a_taken_username_gets_a_unique_one_not_an_error(client, fake, provider):
    get_user_model().objects.create_user("erin", "someone.else@example.com", None)
    response = sign_in(client, fake, lambda nonce: fake.sign(fake.claims(nonce)))
    assert response.status_code == HTTPStatus.FOUND, response.content[:500]
    created = User.objects.get(email="erin@corp.example")
    assert created.username != "erin"
    assert created.username.startswith("erin")


def test_an_invalid_username_claim_gets_a_valid_one(client, fake, provider):
    fake.userinfo["preferred_username"] = "erin <script>"
    response = sign_in(client, fake, lambda nonce: fake.sign(fake.claims(nonce)))
    assert response.status_code == HTTPStatus.FOUND, response.content[:500]
    created = User.objects.get(email="erin@corp.example")
    get_user_model().username_validator(created.username)


def test_an_email_verified_sent_as_the_string_false_is_not_verified(client, fake, provider):
    fake.userinfo["email_verified"] = "false"
    response = sign_in(
        client, fake, lambda nonce: fake.sign(fake.claims(nonce, email_verified="false"))
    )
    assert response.status_code == HTTPStatus.FORBIDDEN
    assert not User.objects.filter(email="erin@corp.example").exists()
    refusal("not verified by the provider")


def test_entra_ids_domain_owner_verified_claim_counts_as_verified(client, fake, provider):
    del fake.userinfo["email_verified"]
    response = sign_in(
        client,
        fake,
        lambda nonce: fake.sign(fake.claims(nonce, email_verified=None, xms_edov=True)),
    )
    assert response.status_code == HTTPStatus.FOUND, response.content[:500]
    assert EmailAddress.objects.get(email="erin@corp.example").verified
