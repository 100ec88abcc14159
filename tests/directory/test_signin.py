"""Sign-in with the company directory's password against a real slapd (directory/backend.py):
the person is created or updated here from their entry, groups mirrored with their nesting,
and every bad input refused."""

from __future__ import annotations

import time
from http import HTTPStatus

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.contrib.auth.models import Group

from accounts.groups import effective_group_ids
from accounts.models import AuditEvent
from directory.models import DirectoryAccount
from tests.conftest import with_password
from tests.directory.conftest import (
    ALICE_GROUPS,
    ALICE_PASSWORD,
    add_person,
    configure,
    lock_person,
)
from tests.directory.slapd import remove_slapd, start_slapd, user_dn

pytestmark = pytest.mark.django_db

LOGIN_URL = "/accounts/login/"
UNAVAILABLE = "The company directory is unavailable. Try again shortly."
MISMATCH = "The username and/or password you specified are not correct."
User = get_user_model()
# A returning directory person's sign-in POST, whole (13 for a local password's: session,
# audit, allauth's stages): the directory's share is the person, their account (last seen),
# their groups and memberships compared, in one transaction, and the two answers allauth's
# stages read that the local backend's compiled lookup gives a local sign-in for free.
QUERY_BUDGET = 26


def sign_in(client, login: str, password: str):
    return client.post(LOGIN_URL, {"login": login, "password": password})


def effective_group_names(user) -> set[str]:
    return set(
        Group.objects.filter(pk__in=effective_group_ids(user_id=user.pk)).values_list(
            "name", flat=True
        )
    )


def test_a_person_only_in_the_directory_signs_in_and_is_mirrored(client, directory):
    response = sign_in(client, "alice", ALICE_PASSWORD)

    assert response.status_code == HTTPStatus.FOUND
    alice = User.objects.get(username="alice")
    assert client.session["_auth_user_id"] == str(alice.pk)
    assert not alice.has_usable_password(), "the directory's password is never stored here"
    assert (alice.first_name, alice.last_name, alice.email) == (
        "Alice",
        "Adams",
        "alice@example.com",
    )
    assert (alice.employee_id, alice.department, alice.job_title) == (
        "E-1001",
        "Finance",
        "Analyst",
    )
    account = DirectoryAccount.objects.get(user=alice)
    assert account.dn == user_dn("alice")
    assert account.source == directory.url.rstrip("/")
    assert account.last_seen_at is not None
    # Nested groups: finance-team sits in finance (in everyone) and in auditors.
    assert effective_group_names(alice) == ALICE_GROUPS
    assert alice.emailaddress_set.get().verified, "the directory's address is trusted"
    created = AuditEvent.objects.get(type=AuditEvent.Type.USER_CREATED, subject=alice)
    assert created.extra["source"] == "directory"
    assert AuditEvent.objects.filter(type=AuditEvent.Type.LOGIN_SUCCEEDED, subject=alice).exists()


def test_a_second_sign_in_updates_nothing_that_did_not_change(
    client, directory, django_assert_max_num_queries
):
    assert sign_in(client, "alice", ALICE_PASSWORD).status_code == HTTPStatus.FOUND
    client.logout()
    last_event = AuditEvent.objects.order_by("-pk").values_list("pk", flat=True).first()

    with django_assert_max_num_queries(QUERY_BUDGET):
        assert sign_in(client, "alice", ALICE_PASSWORD).status_code == HTTPStatus.FOUND

    assert User.objects.filter(username__iexact="alice").count() == 1
    new = AuditEvent.objects.filter(pk__gt=last_event).values_list("type", flat=True)
    assert set(new) <= {AuditEvent.Type.LOGIN_SUCCEEDED, AuditEvent.Type.LOGOUT}


def test_a_wrong_directory_password_is_a_strike_towards_the_lock(client, directory):
    assert sign_in(client, "alice", ALICE_PASSWORD).status_code == HTTPStatus.FOUND
    client.logout()

    response = sign_in(client, "alice", "not alice's password")

    assert response.status_code == HTTPStatus.OK
    assert MISMATCH in response.content.decode()
    assert User.objects.get(username="alice").failed_login_count == 1


@pytest.mark.parametrize(
    "login",
    [
        "*",
        "*)(uid=*",
        "alice)(|(uid=*",
        "alice*",
        "alice\x00",
        "\x00alice",
        "\uff41\uff4c\uff49\uff43\uff45",  # fullwidth: the directory folds it to alice
        "\u0430lice",  # Cyrillic a
        "alice\u200b",  # zero-width space
    ],
)
def test_a_forged_name_never_signs_anyone_in(client, directory, login):
    assert authenticate(None, username="alice", password=ALICE_PASSWORD) is not None

    response = sign_in(client, login, ALICE_PASSWORD)

    assert response.status_code == HTTPStatus.OK
    assert "_auth_user_id" not in client.session
    assert User.objects.count() == 1, "no second account for alice under another spelling"


def test_an_empty_password_is_never_an_anonymous_success(directory):
    assert authenticate(None, username="alice", password=ALICE_PASSWORD) is not None

    assert authenticate(None, username="alice", password="") is None
    assert authenticate(None, username="alice", password=None) is None


def test_a_person_disabled_in_the_directory_is_refused_at_once_and_deactivated(client, directory):
    add_person(directory, "dora", "dora directory password", "vpn-users")
    assert sign_in(client, "dora", "dora directory password").status_code == HTTPStatus.FOUND
    dora = User.objects.get(username="dora")
    lock_person(directory, "dora")
    other = client.__class__()

    response = sign_in(other, "dora", "dora directory password")

    assert response.status_code == HTTPStatus.OK
    assert "_auth_user_id" not in other.session
    dora.refresh_from_db()
    assert not dora.is_active
    assert "_auth_user_id" not in client.session, "the earlier session ended"
    assert AuditEvent.objects.filter(type=AuditEvent.Type.USER_DEACTIVATED, subject=dora).exists()


def test_a_locked_entry_never_signed_in_before_is_refused(client, directory):
    response = sign_in(client, "bob", "bob directory password")

    assert response.status_code == HTTPStatus.OK
    assert not User.objects.filter(username="bob").exists()


def test_a_local_account_is_never_taken_over_by_a_directory_entry_of_its_name(
    client, directory, password_hash, password
):
    with_password(User.objects.create_user("admin", "root@example.com", None), password_hash)

    refused = sign_in(client, "admin", "directory admin password")
    assert refused.status_code == HTTPStatus.OK
    assert "_auth_user_id" not in client.session

    assert sign_in(client, "admin", password).status_code == HTTPStatus.FOUND
    assert not DirectoryAccount.objects.exists()


@pytest.fixture
def doomed_slapd():
    server = start_slapd("")
    yield server
    remove_slapd(server)


def test_a_stopped_directory_is_a_clear_message_and_local_accounts_still_sign_in(
    client, settings, doomed_slapd, password_hash, password
):
    configure(settings, doomed_slapd)
    add_person(doomed_slapd, "erin", "erin directory password")
    assert sign_in(client, "erin", "erin directory password").status_code == HTTPStatus.FOUND
    client.logout()
    erin = User.objects.get(username="erin")
    with_password(User.objects.create_user("breakglass", "bg@example.com", None), password_hash)
    doomed_slapd.stop()

    response = sign_in(client, "erin", "erin directory password")

    assert response.status_code == HTTPStatus.OK
    assert UNAVAILABLE in response.content.decode()
    erin.refresh_from_db()
    assert erin.failed_login_count == 0, "not a strike towards the lock"
    failed = AuditEvent.objects.filter(type=AuditEvent.Type.LOGIN_FAILED, subject=erin).get()
    assert failed.extra["reason"] == "directory_unavailable"
    # Someone the directory never heard of learns no more than the same message.
    assert UNAVAILABLE in sign_in(client, "nobody", "whatever").content.decode()
    # The break-glass administrator does not need the directory, by name or by address.
    assert sign_in(client, "breakglass", password).status_code == HTTPStatus.FOUND
    client.logout()
    assert sign_in(client, "bg@example.com", password).status_code == HTTPStatus.FOUND


def test_a_directory_that_never_answers_is_given_up_after_the_timeout(
    client, settings, silent_server
):
    configure(settings, _Url(silent_server.url), IDP_LDAP_TIMEOUT_SECONDS=1)
    started = time.monotonic()

    response = sign_in(client, "alice", ALICE_PASSWORD)

    assert response.status_code == HTTPStatus.OK
    assert UNAVAILABLE in response.content.decode()
    assert time.monotonic() - started < 5


class _Url:
    def __init__(self, url: str) -> None:
        self.url = url


def test_a_directory_that_refuses_starttls_is_unavailable_not_plaintext(client, settings, slapd):
    # This slapd has no certificate: it refuses StartTLS, and the password is never sent.
    configure(settings, slapd, IDP_LDAP_START_TLS=True)

    response = sign_in(client, "alice", ALICE_PASSWORD)

    assert response.status_code == HTTPStatus.OK
    assert UNAVAILABLE in response.content.decode()
    assert not User.objects.filter(username="alice").exists()


@pytest.fixture(scope="module")
def tls_slapd():
    server = start_slapd(
        "\n".join(
            [
                __import__("tests.directory.slapd", fromlist=["person"]).person(
                    "tess", "Tess", "Tls", "tess directory password"
                )
            ]
        ),
        tls=True,
    )
    yield server
    remove_slapd(server)


def test_starttls_with_the_configured_ca_signs_in(client, settings, tls_slapd):
    configure(settings, tls_slapd, IDP_LDAP_START_TLS=True, IDP_LDAP_CA_FILE=str(tls_slapd.tls.ca))

    assert sign_in(client, "tess", "tess directory password").status_code == HTTPStatus.FOUND


def test_ldaps_with_the_configured_ca_signs_in(client, settings, tls_slapd):
    configure(
        settings,
        tls_slapd,
        IDP_LDAP_URL=tls_slapd.ldaps_url,
        IDP_LDAP_CA_FILE=str(tls_slapd.tls.ca),
    )

    assert sign_in(client, "tess", "tess directory password").status_code == HTTPStatus.FOUND


def test_starttls_with_a_certificate_no_configured_ca_signed_is_refused(
    client, settings, tls_slapd, tmp_path
):
    configure(settings, tls_slapd, IDP_LDAP_START_TLS=True, IDP_LDAP_CA_FILE=str(tls_slapd.tls.ca))
    assert authenticate(None, username="tess", password="tess directory password") is not None
    from tests.directory.slapd import make_tls_files

    other_ca = make_tls_files(tmp_path).ca
    configure(settings, tls_slapd, IDP_LDAP_START_TLS=True, IDP_LDAP_CA_FILE=str(other_ca))

    response = sign_in(client, "tess", "tess directory password")

    assert response.status_code == HTTPStatus.OK
    assert UNAVAILABLE in response.content.decode()
