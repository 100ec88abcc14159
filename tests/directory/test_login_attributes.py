"""Sign-in by another attribute of the directory entry (IDP_LDAP_LOGIN_ATTRIBUTES): the address
(`mail`) or Active Directory's userPrincipalName (slapd carries it through the test schema in
tests/directory/slapd.py), against a real slapd; the typed value is never filter syntax."""

from __future__ import annotations

from datetime import timedelta
from http import HTTPStatus

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from directory.checks import check_login_attributes
from directory.config import directory_settings
from tests.directory.conftest import ALICE_PASSWORD, add_person, delete_person
from tests.directory.test_signin import sign_in

pytestmark = pytest.mark.django_db

User = get_user_model()
LOGIN_ATTRIBUTES = ["mail", "userPrincipalName"]


@pytest.fixture
def by_address(directory, settings):
    settings.IDP_LDAP_LOGIN_ATTRIBUTES = LOGIN_ATTRIBUTES
    return directory


def signed_in_as(client) -> str | None:
    user_id = client.session.get("_auth_user_id")
    return User.objects.get(pk=user_id).username if user_id else None


def test_the_sign_in_filter_names_each_login_attribute_within_the_user_filter(settings):
    settings.IDP_LDAP_USER_FILTER = "(uid=%(user)s)"
    settings.IDP_LDAP_LOGIN_ATTRIBUTES = []
    assert directory_settings().sign_in_filter == "(uid=%(user)s)"

    settings.IDP_LDAP_LOGIN_ATTRIBUTES = [" mail", "userPrincipalName "]
    assert directory_settings().sign_in_filter == (
        "(&(uid=*)(|(uid=%(user)s)(mail=%(user)s)(userPrincipalName=%(user)s)))"
    )


@pytest.mark.parametrize("login", ["alice@example.com", "alice@corp.example", "ALICE@Corp.Example"])
def test_a_person_signs_in_by_address_or_principal_name(client, by_address, login):
    response = sign_in(client, login, ALICE_PASSWORD)

    assert response.status_code == HTTPStatus.FOUND, response.content.decode()[-500:]
    assert signed_in_as(client) == "alice", response["Location"]
    assert signed_in_as(client) == "alice", "the account is named by the entry's uid"
    assert User.objects.count() == 1


def test_without_login_attributes_only_the_name_signs_in(client, directory):
    assert sign_in(client, "alice", ALICE_PASSWORD).status_code == HTTPStatus.FOUND
    client.post("/accounts/logout/")

    response = sign_in(client, "alice@corp.example", ALICE_PASSWORD)

    assert response.status_code == HTTPStatus.OK
    assert signed_in_as(client) is None


def test_the_name_still_signs_in_beside_the_login_attributes(client, by_address):
    assert sign_in(client, "alice", ALICE_PASSWORD).status_code == HTTPStatus.FOUND
    assert signed_in_as(client) == "alice"


@pytest.mark.parametrize(
    "login",
    [
        "*@corp.example",
        "*",
        "alice@corp.example)(uid=*",
        "*)(userPrincipalName=*",
        "alice@corp.example)(|(mail=*",
        "alice@corp.examp*",
        "alice@corp.example\x00",
        "\uff41lice@corp.example",  # a fullwidth a
    ],
)
def test_a_forged_address_never_signs_anyone_in(client, by_address, login):
    assert sign_in(client, "alice@corp.example", ALICE_PASSWORD).status_code == HTTPStatus.FOUND
    client.post("/accounts/logout/")

    response = sign_in(client, login, ALICE_PASSWORD)

    assert response.status_code == HTTPStatus.OK
    assert signed_in_as(client) is None


def test_an_address_two_entries_share_signs_neither_in(client, by_address):
    assert sign_in(client, "alice@example.com", ALICE_PASSWORD).status_code == HTTPStatus.FOUND
    client.post("/accounts/logout/")
    add_person(by_address, "alias", "alias directory password", mail="alice@example.com")
    try:
        response = sign_in(client, "alice@example.com", ALICE_PASSWORD)

        assert response.status_code == HTTPStatus.OK
        assert signed_in_as(client) is None
        # The entry's own name still signs in: only the ambiguous value is refused.
        assert sign_in(client, "alice", ALICE_PASSWORD).status_code == HTTPStatus.FOUND
    finally:
        delete_person(by_address, "alias")


def test_the_lock_holds_when_signing_in_by_address(client, by_address):
    assert sign_in(client, "alice@example.com", ALICE_PASSWORD).status_code == HTTPStatus.FOUND
    client.post("/accounts/logout/")
    alice = User.objects.get(username="alice")

    assert sign_in(client, "alice@example.com", "not alice's password").status_code == 200
    alice.refresh_from_db()
    assert alice.failed_login_count == 1, "a wrong password by address is a strike on alice"

    User.objects.filter(pk=alice.pk).update(locked_until=timezone.now() + timedelta(hours=1))
    for login in ("alice@example.com", "alice@corp.example", "alice"):
        response = sign_in(client, login, ALICE_PASSWORD)
        assert response.status_code == HTTPStatus.OK, login
        assert signed_in_as(client) is None, login


@pytest.mark.parametrize("value", ["mail)(uid=*", "user principal", "1.2.", "-mail", "mail\x00"])
def test_a_login_attribute_that_is_not_an_attribute_name_is_a_check_error(settings, value):
    settings.IDP_LDAP_LOGIN_ATTRIBUTES = ["mail", "userPrincipalName", "1.2.840.113556.1.4.656"]
    assert check_login_attributes() == []

    settings.IDP_LDAP_LOGIN_ATTRIBUTES = ["mail", value]
    (error,) = check_login_attributes()
    assert error.id == "directory.E001"
