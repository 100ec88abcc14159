"""The security centre's linked identities: seen, removed (audited), never the last way in."""

from __future__ import annotations

import time
from http import HTTPStatus

import pytest
from allauth.socialaccount.models import SocialAccount
from django.urls import reverse

from accounts.models import AuditEvent
from accounts.sessions import AUTH_TIME_KEY
from federation.models import UpstreamProvider


@pytest.fixture
def corp(db) -> UpstreamProvider:
    return UpstreamProvider.objects.create(
        name="Corp", slug="corp", kind=UpstreamProvider.Kind.OIDC, issuer="https://corp.example"
    )


@pytest.fixture
def link(user, corp) -> SocialAccount:
    return SocialAccount.objects.create(
        user=user,
        provider="corp",
        uid="upstream-42",
        extra_data={"id_token": {"sub": "upstream-42", "email": "alice@corp.example"}},
    )


def signed_in(client, user):
    client.force_login(user)
    session = client.session
    session["account_authentication_methods"] = [{"method": "password", "at": time.time()}]
    session["account_authentication_methods_user"] = str(user.pk)
    session.save()
    return client


def test_a_person_sees_their_linked_identities(client, user, link):
    page = signed_in(client, user).get(reverse("federation_identities"))
    assert page.status_code == HTTPStatus.OK
    assert "Corp" in page.content.decode()
    assert "alice@corp.example" in page.content.decode()
    # allauth's connections page is this one.
    assert client.get("/accounts/3rdparty/")["Location"] == reverse("federation_identities")


def test_a_person_removes_a_linked_identity_and_it_is_audited(client, user, link):
    response = signed_in(client, user).post(reverse("federation_remove_identity", args=[link.pk]))
    assert response.status_code == HTTPStatus.FOUND
    assert not SocialAccount.objects.exists()
    event = AuditEvent.objects.get(type=AuditEvent.Type.IDENTITY_UNLINKED)
    assert event.subject == user
    assert event.extra == {"source": "upstream", "provider": "corp"}


def test_the_last_way_to_sign_in_is_not_removed(client, user, link):
    user.set_unusable_password()
    user.save()
    response = signed_in(client, user).post(reverse("federation_remove_identity", args=[link.pk]))
    assert response.status_code == HTTPStatus.FOUND
    assert SocialAccount.objects.filter(pk=link.pk).exists()
    assert not AuditEvent.objects.filter(type=AuditEvent.Type.IDENTITY_UNLINKED).exists()


def test_nobody_removes_another_persons_identity(client, admin_user, link):
    response = signed_in(client, admin_user).post(
        reverse("federation_remove_identity", args=[link.pk])
    )
    assert response.status_code == HTTPStatus.NOT_FOUND
    assert SocialAccount.objects.filter(pk=link.pk).exists()


def test_removing_asks_for_a_recent_authentication(client, user, link):
    client.force_login(user)
    session = client.session
    session["account_authentication_methods"] = [{"method": "password", "at": time.time() - 3600}]
    session["account_authentication_methods_user"] = str(user.pk)
    session[AUTH_TIME_KEY] = int(time.time()) - 3600
    session.save()
    response = client.post(reverse("federation_remove_identity", args=[link.pk]))
    assert response.status_code == HTTPStatus.FOUND
    assert "/reauthenticate/" in response["Location"]
    assert SocialAccount.objects.filter(pk=link.pk).exists()
