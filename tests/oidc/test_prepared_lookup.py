"""idp.db.prepared: the hot token lookups compiled once, answering like the ORM."""

from __future__ import annotations

from datetime import timedelta
from unittest import mock

import pytest
from allauth.account.models import EmailAddress
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models.sql.compiler import SQLCompiler
from django.db.transaction import TransactionManagementError
from django.utils import timezone
from oauth2_provider.models import get_access_token_model, get_refresh_token_model

from idp.db.prepared import PreparedLookup
from oauth_clients.oidc import token_policy
from oauth_clients.oidc.claims import annotate_email_verified
from oauth_clients.oidc.tokens import token_checksum
from tests import plans

AccessToken = get_access_token_model()
RefreshToken = get_refresh_token_model()


@pytest.fixture
def tokens(web_client, issue_tokens) -> dict:
    return issue_tokens(web_client, scope="openid profile email")


def orm_access_token(checksum: str):
    return (
        annotate_email_verified(AccessToken.objects.select_related("user"))
        .filter(token_checksum=checksum)
        .first()
    )


def test_a_prepared_lookup_answers_what_the_orm_answers(tokens):
    checksum = token_checksum(tokens["access_token"])
    expected = orm_access_token(checksum)
    assert expected is not None
    found = token_policy._ACCESS_TOKEN.first(checksum, AccessToken)
    assert found is not None
    for field in AccessToken._meta.concrete_fields:
        assert getattr(found, field.attname) == getattr(expected, field.attname), field.name
    assert found.user == expected.user  # select_related: no query to reach it
    assert found.user.email == expected.user.email
    assert found.idp_email_verified is True
    assert found._state.adding is False
    assert found._state.db == "default"


def test_unknown_values_find_nothing_and_values_stay_parameters(tokens, django_assert_num_queries):
    assert token_policy._ACCESS_TOKEN.first(token_checksum(tokens["access_token"]), AccessToken)
    with django_assert_num_queries(1):
        assert token_policy._ACCESS_TOKEN.first("0" * 64, AccessToken) is None
    # SQL in the value is a value: it matches nothing and breaks nothing.
    assert token_policy._ACCESS_TOKEN.first("x' OR '1'='1", AccessToken) is None
    assert AccessToken.objects.count() >= 1


def test_the_queryset_is_compiled_once(tokens):
    lookup = PreparedLookup(
        lambda checksum: AccessToken.objects.select_related("user").filter(token_checksum=checksum)[
            :1
        ]
    )
    checksum = token_checksum(tokens["access_token"])
    assert lookup.first(checksum, AccessToken) is not None  # compiled here
    with mock.patch.object(SQLCompiler, "as_sql", side_effect=AssertionError("recompiled")):
        for _ in range(3):
            assert lookup.first(checksum, AccessToken).token_checksum == checksum
        assert lookup.first("f" * 64, AccessToken) is None


LOCKED_REFRESH_TOKEN = PreparedLookup(
    lambda checksum: (
        RefreshToken.objects.filter(token_checksum=checksum)
        .select_for_update(of=("self",))
        .select_related("access_token", "user")[:1]
    )
)


def test_a_locking_lookup_refuses_to_run_outside_a_transaction(tokens):
    checksum = token_checksum(tokens["refresh_token"])
    with transaction.atomic():
        rt = LOCKED_REFRESH_TOKEN.first(checksum, RefreshToken)
        assert rt is not None
        assert rt.access_token is not None
        assert rt.user is not None
    # pytest-django's test transaction is an atomic block; leave it to see autocommit.
    with (
        mock.patch.object(connection, "get_autocommit", return_value=True),
        pytest.raises(TransactionManagementError),
    ):
        LOCKED_REFRESH_TOKEN.first(checksum, RefreshToken)


@pytest.mark.parametrize(
    "build",
    [
        lambda value: AccessToken.objects.filter(token_checksum=value),  # not one row
        lambda value: AccessToken.objects.filter(token_checksum="fixed")[:1],  # no marker
        lambda value: AccessToken.objects.filter(token_checksum=value, token=value)[:1],
    ],
    ids=["unsliced", "no-marker", "marker-twice"],
)
def test_lookups_the_helper_cannot_prepare_are_refused(db, build):
    with pytest.raises(ValueError, match=r"one row|marker"):
        PreparedLookup(build).first("anything", AccessToken)


def _verified_by_lookups(checksums: dict[str, str]) -> dict[str, bool]:
    """`email_verified` as each hot lookup annotates it (access token, refresh token)."""
    access = token_policy._ACCESS_TOKEN.first(checksums["access"], AccessToken)
    refresh = token_policy._REFRESH_TOKEN.first(checksums["refresh"], RefreshToken)
    return {"access": access.idp_email_verified, "refresh": refresh.idp_email_verified}


def test_the_lookups_answer_email_verified_for_the_users_current_address(tokens, user):
    """OIDC Core §5.1 `email_verified`: a verified address equal to the user's email, case
    aside (allauth compares addresses case-insensitively); anything else is unverified."""
    checksums = {
        "access": token_checksum(tokens["access_token"]),
        "refresh": token_checksum(tokens["refresh_token"]),
    }
    assert _verified_by_lookups(checksums) == {"access": True, "refresh": True}
    EmailAddress.objects.filter(user=user).update(email="ALICE@Example.COM")
    assert _verified_by_lookups(checksums) == {"access": True, "refresh": True}
    EmailAddress.objects.filter(user=user).update(verified=False)
    assert _verified_by_lookups(checksums) == {"access": False, "refresh": False}
    EmailAddress.objects.create(user=user, email="other@example.com", verified=True)
    assert _verified_by_lookups(checksums) == {"access": False, "refresh": False}
    # Another user's verified copy of the address verifies nobody else.
    other = get_user_model().objects.create_user("bob", "bob@example.com", None)
    EmailAddress.objects.filter(user=user, email="ALICE@Example.COM").delete()
    EmailAddress.objects.create(user=other, email="alice@example.com", verified=True)
    assert _verified_by_lookups(checksums) == {"access": False, "refresh": False}


def test_a_token_without_a_user_is_annotated_unverified(db, machine_client):
    checksum = "c" * 64
    AccessToken.objects.create(
        user=None,
        application=machine_client,
        token="",
        token_checksum=checksum,
        expires=timezone.now() + timedelta(minutes=5),
        scope="",
    )
    found = token_policy._ACCESS_TOKEN.first(checksum, AccessToken)
    assert found is not None
    assert found.user is None
    assert found.idp_email_verified is False


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's planner")
def test_email_verified_is_one_address_row_found_by_user_id(tokens):
    """The annotation compares with the outer query's user row and reads one address by its
    user id. With a second join to the user table inside the subquery, the generic plan on
    never-analysed tables (this test database; a new deployment) was a hash join of every user
    and verified address with `upper()` on each, for every lookup."""
    for lookup, token in (
        (token_policy._REFRESH_TOKEN, tokens["refresh_token"]),
        (token_policy._ACCESS_TOKEN, tokens["access_token"]),
    ):
        # The second subplan is whether the app defines roles (claims.annotate_app_has_roles):
        # a probe of that app's role rows by their client index, likewise.
        # The access check's and the roles' subplans follow (tests/oidc/test_access_plans.py).
        email, roles = plans.subplans(plans.generic_plan(lookup, token_checksum(token)))[:2]
        assert plans.per_row_probe_of(email, "account_emailaddress"), email
        assert plans.per_row_probe_of(roles, "oauth_clients_approle"), roles
