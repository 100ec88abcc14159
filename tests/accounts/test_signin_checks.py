"""The sign-in lookup answers the login stages' two checks (verified address, second factor).

accounts.backends reads the user by username together with allauth's `has_verified_email` and
`is_mfa_enabled(user, [TOTP, WebAuthn])`; accounts.stages and accounts.mfa_policy.MFAAdapter
use those answers when the instance carries them and ask allauth's own queries otherwise.
"""

from __future__ import annotations

from http import HTTPStatus

import pytest
from allauth.account.models import EmailAddress
from allauth.mfa.models import Authenticator
from django.contrib.auth import get_user_model
from django.db import connection

from accounts.backends import _USER_BY_USERNAME, LockoutAwareBackend
from accounts.mfa_policy import HAS_SECOND_FACTOR, SECOND_FACTOR_TYPES, MFAAdapter
from accounts.stages import HAS_VERIFIED_EMAIL
from tests import plans
from tests.accounts.conftest import (
    LOGIN_URL,
    MFA_AUTHENTICATE_URL,
    OVERVIEW_URL,
    enable_totp,
    is_signed_in,
    sign_in,
)

pytestmark = pytest.mark.django_db

VERIFY_EMAIL_URL = "/accounts/confirm-email/"


def test_allauth_uses_our_mfa_adapter():
    from allauth.mfa.adapter import get_adapter

    assert isinstance(get_adapter(), MFAAdapter)


def _statements(captured) -> list[str]:
    return [query["sql"] for query in captured.captured_queries]


def test_verified_user_signs_in_with_one_read_for_the_user_and_both_checks(
    client, user, password, settings, django_assert_max_num_queries
):
    # Sessions in the cache, as in production (tests/oidc/test_signin_query_counts.py).
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.cache"  # production's (REDIS_URL)
    client.get(LOGIN_URL)
    with django_assert_max_num_queries(5) as captured:
        response = client.post(LOGIN_URL, {"login": "alice", "password": password})
    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"] == OVERVIEW_URL
    assert is_signed_in(client)
    # The lookup, the audit row, last_login, this browser's session record and the user's
    # sessions that may have expired: the two checks ride on the lookup.
    lookup = captured.captured_queries[0]["sql"]
    assert 'FROM "account_emailaddress"' in lookup
    assert 'FROM "mfa_authenticator"' in lookup
    assert not any('FROM "account_emailaddress"' in sql for sql in _statements(captured)[1:])
    assert not any('FROM "mfa_authenticator"' in sql for sql in _statements(captured)[1:])


def test_user_with_an_unverified_address_only_is_sent_to_verification(client, password):
    carol = get_user_model().objects.create_user("carol", "carol@example.com", password)
    EmailAddress.objects.filter(user=carol).update(verified=False)

    response = sign_in(client, "carol", password)

    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"] == VERIFY_EMAIL_URL
    assert not is_signed_in(client)


def test_user_with_an_authenticator_app_is_asked_for_the_code(client, user, password):
    enable_totp(user)

    response = sign_in(client, "alice", password)

    assert response["Location"] == MFA_AUTHENTICATE_URL
    assert not is_signed_in(client)


@pytest.mark.parametrize("recovery_codes_only", [False, True])
def test_user_without_an_authenticator_app_or_key_is_not_asked_for_a_code(
    client, user, password, recovery_codes_only
):
    if recovery_codes_only:
        # allauth's stage asks about TOTP and WebAuthn only; recovery codes stand in for them.
        Authenticator.objects.create(
            user=user, type=Authenticator.Type.RECOVERY_CODES, data={"seed": "00"}
        )

    response = sign_in(client, "alice", password)

    assert response["Location"] == OVERVIEW_URL
    assert is_signed_in(client)


def test_sign_in_by_address_still_checks_that_address(client, user, password):
    # Users found by address come from allauth's own lookup, without the answers: the stages
    # read them as allauth does.
    assert sign_in(client, "alice@example.com", password)["Location"] == OVERVIEW_URL

    EmailAddress.objects.filter(user=user).update(verified=False)
    other = type(client)()
    assert sign_in(other, "alice@example.com", password)["Location"] == VERIFY_EMAIL_URL


def test_username_like_an_address_asks_about_any_verified_address(client, password):
    # Found by username, but allauth takes the typed value for an address and asks whether
    # that address is verified: it is none of bob's, so the question is any verified address
    # (accounts/stages.py), as for a sign-in by name; a directory's userPrincipalName is the
    # same case (tests/directory/test_login_attributes.py).
    bob = get_user_model().objects.create_user("bob@example.org", "bob@work.example", password)
    assert EmailAddress.objects.get(user=bob).verified

    response = sign_in(client, "bob@example.org", password)

    assert response["Location"] != VERIFY_EMAIL_URL
    assert client.session["_auth_user_id"] == str(bob.pk)
    EmailAddress.objects.filter(user=bob).update(verified=False)
    other = type(client)()
    assert sign_in(other, "bob@example.org", password)["Location"] == VERIFY_EMAIL_URL


# --- The lookup and the adapter on their own ---------------------------------------------------


def test_lookup_by_username_carries_both_answers(user, password):
    enable_totp(user)

    found = LockoutAwareBackend().authenticate(None, username="ALICE", password=password)

    assert found == user
    assert getattr(found, HAS_VERIFIED_EMAIL) is True
    assert getattr(found, HAS_SECOND_FACTOR) is True


@pytest.mark.parametrize("typed", ["al_ce", "a%", "alice%", "ali\\ce", "alice "])
def test_lookup_matches_the_whole_name_only(user, password, typed):
    assert LockoutAwareBackend().authenticate(None, username=typed, password=password) is None


def test_names_differing_only_in_case_sign_in_no_one_by_username(user, password):
    # allauth's rule (userkit.get_user_by_username): an ambiguous name finds no one.
    get_user_model().objects.create_user("Alice", "alice2@example.com", password)
    for typed in ("alice", "Alice", "ALICE"):
        assert LockoutAwareBackend().authenticate(None, username=typed, password=password) is None


def test_adapter_uses_the_answer_for_the_stages_question_only(
    user, password, django_assert_num_queries
):
    found = LockoutAwareBackend().authenticate(None, username="alice", password=password)
    adapter = MFAAdapter()
    with django_assert_num_queries(0):
        assert adapter.is_mfa_enabled(found, [Authenticator.Type.WEBAUTHN, "totp"]) is False
    # Any other question is allauth's query (recovery codes count when no types are given).
    Authenticator.objects.create(user=user, type=Authenticator.Type.RECOVERY_CODES, data={})
    with django_assert_num_queries(1):
        assert adapter.is_mfa_enabled(found) is True
    with django_assert_num_queries(1):
        assert adapter.is_mfa_enabled(found, [Authenticator.Type.TOTP]) is False


def test_adapter_falls_back_to_allauths_query_for_users_loaded_elsewhere(
    user, django_assert_num_queries
):
    loaded = get_user_model().objects.get(pk=user.pk)
    adapter = MFAAdapter()
    with django_assert_num_queries(1):
        assert adapter.is_mfa_enabled(loaded, SECOND_FACTOR_TYPES) is False
    enable_totp(user)
    with django_assert_num_queries(1):
        assert adapter.is_mfa_enabled(loaded, SECOND_FACTOR_TYPES) is True


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's planner")
def test_the_sign_in_lookup_probes_an_index_however_many_users(user, password):
    """allauth's `username__iexact` is UPPER(username) = UPPER(%s): without an index on that
    expression every sign-in scanned the whole user table, upper() on each row (16.5-22 ms of
    PostgreSQL per sign-in with 50,000 users). The two checks riding on
    it read one row each by user id, never a hash of the whole table."""
    User = get_user_model()
    employees = User.objects.bulk_create(
        User(username=f"employee{i}", email=f"employee{i}@example.com", password="!")
        for i in range(3000)
    )
    EmailAddress.objects.bulk_create(
        EmailAddress(user=employee, email=employee.email, verified=True, primary=True)
        for employee in employees[:200]
    )
    with connection.cursor() as cursor:
        for model in (User, EmailAddress):
            cursor.execute(f"ANALYZE {connection.ops.quote_name(model._meta.db_table)}")
    assert LockoutAwareBackend()._authenticate_by_username("ALICE", password) == user
    plan = plans.generic_plan(_USER_BY_USERNAME, connection.ops.prep_for_iexact_query("alice"))
    scans = [node for node in plans.nodes(plan) if node.get("Relation Name") == User._meta.db_table]
    assert [scan.get("Index Name") for scan in scans] == ["user_username_upper"]
    verified_email, second_factor = plans.subplans(plan)
    assert plans.per_row_probe_of(verified_email, "account_emailaddress")
    assert plans.per_row_probe_of(second_factor, "mfa_authenticator")
