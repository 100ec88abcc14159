"""build_claims: the one pure function releasing user claims by scope (no HTTP here)."""

from __future__ import annotations

import pytest
from allauth.account.models import EmailAddress
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from accounts.sessions import authentication_methods
from oauth_clients.oidc.claims import SCOPE_CLAIMS, build_claims, supported_claims

pytestmark = pytest.mark.django_db


@pytest.mark.spec("OpenID Connect Core 1.0", "5.4")
def test_profile_scope_releases_name_claims(user):
    claims = build_claims(user=user, scopes=["openid", "profile"])
    assert claims == {
        "sub": str(user.pk),
        "name": "Alice Liddell",
        "given_name": "Alice",
        "family_name": "Liddell",
        "preferred_username": "alice",
        "updated_at": int(user.updated_at.timestamp()),
    }


@pytest.mark.spec("OpenID Connect Core 1.0", "5.4")
def test_email_scope_releases_email_and_its_verification(user):
    # Users created by an administrator have their address recorded as verified (accounts).
    assert build_claims(user=user, scopes=["email"]) == {
        "sub": str(user.pk),
        "email": "alice@example.com",
        "email_verified": True,
    }
    EmailAddress.objects.filter(user=user).update(verified=False)
    assert build_claims(user=user, scopes=["email"])["email_verified"] is False


def test_a_verified_other_address_does_not_verify_the_email(user):
    EmailAddress.objects.filter(user=user).update(verified=False)
    EmailAddress.objects.create(user=user, email="other@example.com", verified=True)
    assert build_claims(user=user, scopes=["email"])["email_verified"] is False


def test_groups_scope_releases_sorted_group_names(user):
    assert build_claims(user=user, scopes=["groups"])["groups"] == []
    for name in ("staff", "engineering"):
        user.groups.add(Group.objects.create(name=name))
    assert build_claims(user=user, scopes=["groups"])["groups"] == ["engineering", "staff"]


@pytest.mark.spec("OpenID Connect Core 1.0", "5.4")
def test_openid_alone_releases_only_sub(user):
    assert build_claims(user=user, scopes=["openid", "offline_access"]) == {"sub": str(user.pk)}
    assert build_claims(user=user, scopes=[]) == {"sub": str(user.pk)}


@pytest.mark.spec("OpenID Connect Core 1.0", "5.3.2")
def test_empty_values_are_omitted_not_sent_blank(db):
    bare = get_user_model().objects.create_user("bare", "", "pw-not-used-here-123")
    claims = build_claims(user=bare, scopes=["profile", "email"])
    assert claims == {
        "sub": str(bare.pk),
        "preferred_username": "bare",
        "updated_at": int(bare.updated_at.timestamp()),
    }


def test_every_call_returns_a_new_dict(user):
    first = build_claims(user=user, scopes=["profile"])
    first["name"] = "changed"
    assert build_claims(user=user, scopes=["profile"])["name"] == "Alice Liddell"


def test_supported_claims_cover_every_scope_claim():
    names = set(supported_claims())
    for claims in SCOPE_CLAIMS.values():
        assert set(claims) <= names
    assert {"sub", "iss", "auth_time", "sid", "amr", "nonce", "at_hash"} <= names


@pytest.mark.spec("RFC 8176", "2")
@pytest.mark.parametrize(
    ("records", "amr"),
    [
        ([], ["pwd"]),
        ([{"method": "password"}], ["pwd"]),
        ([{"method": "password"}, {"method": "mfa", "type": "totp"}], ["mfa", "otp", "pwd"]),
        (
            [{"method": "password"}, {"method": "mfa", "type": "recovery_codes"}],
            ["mfa", "otp", "pwd"],
        ),
        ([{"method": "password"}, {"method": "mfa", "type": "webauthn"}], ["hwk", "mfa", "pwd"]),
        ([{"method": "mfa", "type": "webauthn", "passwordless": True}], ["hwk"]),
        ([{"method": "code"}], ["otp"]),
        # A second factor after a sign-in allauth did not record (admin or test login).
        ([{"method": "mfa", "type": "totp", "reauthenticated": True}], ["mfa", "otp", "pwd"]),
        ([{"method": "password"}, {"method": "password", "reauthenticated": True}], ["pwd"]),
    ],
)
def test_amr_from_allauths_authentication_records(records, amr):
    assert authentication_methods(records) == amr
