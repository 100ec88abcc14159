"""Web Browser SSO (SAML 2.0 Profiles §4.1): SP-initiated over both bindings, IdP-initiated, and
what the assertion says (NameID, authentication context, attributes), validated by a real SP."""

from __future__ import annotations

import time
from http import HTTPStatus
from urllib.parse import unquote

import pytest
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT, samlp

from accounts.models import AuditEvent
from oauth_clients.models import AppRole, Assignment, Client, RoleGrant
from oauth_clients.saml import state
from oauth_clients.saml.response import PASSWORD_PROTECTED_TRANSPORT, REFEDS_MFA, persistent_id
from tests.saml.conftest import (
    SP_ACS_URL,
    SP_ENTITY_ID,
    SP_OTHER_ACS_URL,
    NameIdFormat,
    authn_request,
    consume,
    follow_to_post,
    idp_metadata,
    make_sp,
    posted,
    send_post,
    send_redirect,
    status_of,
)


def record_second_factor(client, user) -> None:
    session = client.session
    now = time.time()
    session["account_authentication_methods"] = [
        {"method": "password", "at": now - 10},
        {"method": "mfa", "type": "totp", "at": now - 5, "id": 1},
    ]
    session["account_authentication_methods_user"] = str(user.pk)
    session.save()


@pytest.mark.spec("SAML 2.0 Bindings", "3.4")
@pytest.mark.spec("SAML 2.0 Profiles", "4.1.4.2")
def test_sp_initiated_redirect_signs_the_person_in_and_the_sp_validates_it(client, user, sp):
    client.force_login(user)
    sent = authn_request(sp)

    post = posted(send_redirect(client, sp, sent))

    assert post.action == SP_ACS_URL
    assert post.relay_state == "state-1"
    result = consume(sp, post, outstanding={sent.request_id: "/"})
    assert result.name_id.text == "alice@example.com"
    assert result.name_id.format == NameIdFormat.EMAIL
    assert (
        result.assertion.subject.subject_confirmation[0].subject_confirmation_data.in_response_to
        == sent.request_id
    )
    ava = result.get_identity()
    assert ava["email"] == ["alice@example.com"]
    assert ava["given_name"] == ["Alice"]
    assert result.authn_info()[0][0] == PASSWORD_PROTECTED_TRANSPORT
    event = AuditEvent.objects.get(type=AuditEvent.Type.SAML_ASSERTION_ISSUED)
    assert event.subject == user
    assert event.client.client_id == "saml-wiki"
    assert event.extra["in_response_to"] == sent.request_id
    session_record = client.session[state.SESSIONS_KEY][-1]
    assert session_record["entity_id"] == SP_ENTITY_ID
    assert session_record["name_id"] == "alice@example.com"
    assert session_record["session_index"] == result.assertion.authn_statement[0].session_index


@pytest.mark.spec("SAML 2.0 Bindings", "3.5")
@pytest.mark.spec("SAML 2.0 Profiles", "4.1.4.1")
def test_sp_initiated_post_continues_through_the_resume_step(client, user, sp):
    client.force_login(user)
    sent = authn_request(sp, binding=BINDING_HTTP_POST)

    first = send_post(client, sent)
    assert first.status_code == HTTPStatus.SEE_OTHER
    assert first["Location"].startswith("/saml/sso/continue/")
    post = posted(follow_to_post(client, first))

    result = consume(sp, post, outstanding={sent.request_id: "/"})
    assert result.name_id.text == "alice@example.com"
    # The resume key works once.
    again = client.get(first["Location"])
    assert again.status_code == HTTPStatus.BAD_REQUEST


@pytest.mark.spec("SAML 2.0 Profiles", "4.1.4.1")
def test_the_acs_by_index_is_the_registered_one(client, user, sp):
    client.force_login(user)
    sent = authn_request(sp, assertion_consumer_service_index="1")
    post = posted(send_redirect(client, sp, sent))
    assert post.action == SP_OTHER_ACS_URL


def test_a_signed_in_person_is_sent_to_sign_in_first_and_comes_back(client, user, password, sp):
    sent = authn_request(sp)
    response = send_redirect(client, sp, sent)
    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"].startswith("/accounts/login/?next=/saml/sso/continue/")

    client.force_login(user)
    resume = unquote(response["Location"].split("next=", 1)[1])
    post = posted(client.get(resume))
    assert consume(sp, post, outstanding={sent.request_id: "/"}).name_id.text == "alice@example.com"


@pytest.mark.spec("SAML 2.0 Core", "8.3")
@pytest.mark.parametrize(
    "nameid_format", [NameIdFormat.UNSPECIFIED, NameIdFormat.PERSISTENT, NameIdFormat.TRANSIENT]
)
def test_nameid_formats(client, user, saml_app, sp_keys, nameid_format):
    saml_app.nameid_format = nameid_format
    saml_app.save()
    sp = make_sp(idp_metadata(client), sp_keys)
    client.force_login(user)

    def sign_in():
        sent = authn_request(sp)
        return consume(
            sp, posted(send_redirect(client, sp, sent)), outstanding={sent.request_id: "/"}
        )

    first, second = sign_in().name_id, sign_in().name_id
    assert first.format == nameid_format
    if nameid_format == NameIdFormat.UNSPECIFIED:
        assert first.text == "alice"
    elif nameid_format == NameIdFormat.PERSISTENT:
        assert (
            first.text == second.text == persistent_id(user_pk=user.pk, sp_entity_id=SP_ENTITY_ID)
        )
        assert first.sp_name_qualifier == SP_ENTITY_ID
        assert persistent_id(user_pk=user.pk, sp_entity_id="https://other.example") != first.text
    else:
        assert first.text != second.text


@pytest.mark.spec("SAML 2.0 Core", "2.7.3")
def test_attributes_are_mapped_and_groups_and_roles_are_multi_valued(
    client, user, saml_app, sp_keys
):
    from django.contrib.auth.models import Group

    from accounts.groups import Membership

    staff, admins = Group.objects.create(name="staff"), Group.objects.create(name="admins")
    Membership.objects.create(user=user, group=staff)
    Membership.objects.create(user=user, group=admins)
    editor = AppRole.objects.create(client=saml_app.client, name="editor")
    viewer = AppRole.objects.create(client=saml_app.client, name="viewer")
    RoleGrant.objects.create(role=editor, user=user)
    RoleGrant.objects.create(role=viewer, group=staff)
    saml_app.attribute_names = {"email": "mail", "groups": "memberOf", "family_name": "sn"}
    saml_app.save()
    sp = make_sp(idp_metadata(client), sp_keys)
    client.force_login(user)
    sent = authn_request(sp)

    ava = consume(
        sp, posted(send_redirect(client, sp, sent)), outstanding={sent.request_id: "/"}
    ).get_identity()

    assert ava["mail"] == ["alice@example.com"]
    assert ava["sn"] == ["Liddell"]
    assert sorted(ava["memberOf"]) == ["admins", "staff"]
    assert sorted(ava["roles"]) == ["editor", "viewer"]
    assert "email" not in ava
    assert "sub" not in ava


@pytest.mark.spec("SAML 2.0 Core", "3.4.1")
def test_force_authn_asks_the_signed_in_person_to_authenticate_again(client, user, sp):
    client.force_login(user)
    session = client.session
    session["idp_auth_time"] = int(time.time()) - 3600
    session.save()
    sent = authn_request(sp, force_authn="true")

    response = send_redirect(client, sp, sent)

    assert response.status_code == HTTPStatus.FOUND
    assert unquote(response["Location"]).startswith(
        "/accounts/reauthenticate/?next=/saml/sso/continue/"
    )
    # After a fresh authentication the same request goes on.
    session = client.session
    session["account_authentication_methods"] = [{"method": "password", "at": time.time() + 1}]
    session["account_authentication_methods_user"] = str(user.pk)
    session.save()
    resume = unquote(response["Location"].split("next=", 1)[1])
    post = posted(client.get(resume))
    assert consume(sp, post, outstanding={sent.request_id: "/"}).name_id.text == "alice@example.com"


@pytest.mark.spec("SAML 2.0 Core", "3.4.1")
def test_is_passive_answers_no_passive_when_nobody_is_signed_in(client, user, sp):
    client.force_login(user)
    signed_in = authn_request(sp, is_passive="true")
    assert consume(
        sp, posted(send_redirect(client, sp, signed_in)), outstanding={signed_in.request_id: "/"}
    )
    client.logout()

    sent = authn_request(sp, is_passive="true")
    post = posted(send_redirect(client, sp, sent))

    assert post.action == SP_ACS_URL
    assert status_of(post) == [samlp.STATUS_RESPONDER, samlp.STATUS_NO_PASSIVE]
    assert "<saml:Assertion" not in post.xml
    assert "Assertion" not in post.xml.split("Status")[0]


@pytest.mark.spec("SAML 2.0 Core", "3.4.1")
def test_a_second_factor_in_the_session_gives_the_mfa_class(client, user, sp):
    client.force_login(user)
    record_second_factor(client, user)
    sent = authn_request(sp)
    result = consume(
        sp, posted(send_redirect(client, sp, sent)), outstanding={sent.request_id: "/"}
    )
    assert result.authn_info()[0][0] == REFEDS_MFA


def test_an_app_requiring_mfa_sends_a_password_session_to_its_second_factor(
    client, user, saml_app, sp
):
    saml_app.client.requires_mfa = True
    saml_app.client.save()
    client.force_login(user)
    response = send_redirect(client, sp, authn_request(sp))
    assert response.status_code == HTTPStatus.FORBIDDEN
    assert "Two-step verification required" in response.content.decode()
    record_second_factor(client, user)
    sent = authn_request(sp)
    assert consume(sp, posted(send_redirect(client, sp, sent)), outstanding={sent.request_id: "/"})


def test_a_person_the_app_is_not_open_to_sees_the_no_access_page_then_request_denied(
    client, user, saml_app, sp
):
    client.force_login(user)
    # Positive path first: the app open to everyone.
    ok = authn_request(sp)
    assert consume(sp, posted(send_redirect(client, sp, ok)), outstanding={ok.request_id: "/"})
    saml_app.client.access_policy = Client.AccessPolicy.ASSIGNED
    saml_app.client.save()

    sent = authn_request(sp)
    page = send_redirect(client, sp, sent)

    assert page.status_code == HTTPStatus.FORBIDDEN
    body = page.content.decode()
    assert "You don" in body
    assert "have access to Wiki (SAML)" in body
    assert AuditEvent.objects.filter(type=AuditEvent.Type.ACCESS_DENIED).count() == 1
    action = body.split('<form method="post" action="', 1)[1].split('"', 1)[0]
    back = posted(client.post(action, {"back": "back"}))
    assert status_of(back) == [samlp.STATUS_RESPONDER, samlp.STATUS_REQUEST_DENIED]
    assert AuditEvent.objects.filter(type=AuditEvent.Type.SAML_ASSERTION_ISSUED).count() == 1

    Assignment.objects.create(client=saml_app.client, user=user)
    again = authn_request(sp)
    assert consume(
        sp, posted(send_redirect(client, sp, again)), outstanding={again.request_id: "/"}
    )


@pytest.mark.spec("SAML 2.0 Profiles", "4.1.5")
def test_idp_initiated_sign_in_from_the_launcher(client, user, saml_app, sp):
    client.force_login(user)
    launcher = client.get("/account/my-apps/")
    assert 'href="/saml/sso/idp-initiated/saml-wiki/"' in launcher.content.decode()

    post = posted(client.get("/saml/sso/idp-initiated/saml-wiki/"))

    assert post.action == SP_ACS_URL
    result = consume(sp, post)
    assert result.name_id.text == "alice@example.com"
    assert (
        result.assertion.subject.subject_confirmation[0].subject_confirmation_data.in_response_to
        is None
    )


def test_idp_initiated_needs_a_signed_in_person_and_access(client, user, saml_app):
    response = client.get("/saml/sso/idp-initiated/saml-wiki/")
    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"].startswith("/accounts/login/")
    client.force_login(user)
    saml_app.client.access_policy = Client.AccessPolicy.ASSIGNED
    saml_app.client.save()
    assert client.get("/saml/sso/idp-initiated/saml-wiki/").status_code == HTTPStatus.FORBIDDEN
    saml_app.client.is_active = False
    saml_app.client.save()
    assert client.get("/saml/sso/idp-initiated/saml-wiki/").status_code == HTTPStatus.BAD_REQUEST


@pytest.mark.spec("SAML 2.0 Core", "5.4")
def test_the_response_is_signed_too_when_the_app_asks(client, user, saml_app, sp_keys):
    saml_app.sign_response = True
    saml_app.save()
    sp = make_sp(idp_metadata(client), sp_keys, want_response_signed=True)
    client.force_login(user)
    sent = authn_request(sp)
    post = posted(send_redirect(client, sp, sent))
    response = samlp.response_from_string(post.xml)
    assert response.signature is not None
    assert response.assertion[0].signature is not None
    assert consume(sp, post, outstanding={sent.request_id: "/"}).name_id.text == "alice@example.com"


def test_a_changed_app_is_seen_at_once(client, user, saml_app, sp):
    client.force_login(user)
    sent = authn_request(sp)
    assert consume(sp, posted(send_redirect(client, sp, sent)), outstanding={sent.request_id: "/"})

    saml_app.nameid_format = NameIdFormat.UNSPECIFIED
    saml_app.want_authn_requests_signed = True
    saml_app.save()

    unsigned = posted(send_redirect(client, sp, authn_request(sp)))
    assert status_of(unsigned) == [samlp.STATUS_REQUESTER, samlp.STATUS_REQUEST_DENIED]
    signed = authn_request(sp)
    result = consume(
        sp,
        posted(send_redirect(client, sp, signed, sign=True)),
        outstanding={signed.request_id: "/"},
    )
    assert result.name_id.text == "alice"


@pytest.mark.spec("SAML 2.0 Bindings", "3.4.4.1")
def test_a_signed_redirect_request_is_accepted(client, user, saml_app, sp):
    saml_app.want_authn_requests_signed = True
    saml_app.save()
    client.force_login(user)
    sent = authn_request(sp)
    assert consume(
        sp, posted(send_redirect(client, sp, sent, sign=True)), outstanding={sent.request_id: "/"}
    )


@pytest.mark.spec("SAML 2.0 Bindings", "3.5.4")
def test_a_signed_post_request_is_accepted(client, user, saml_app, sp):
    saml_app.want_authn_requests_signed = True
    saml_app.save()
    client.force_login(user)
    sent = authn_request(sp, binding=BINDING_HTTP_POST, sign=True)
    post = posted(follow_to_post(client, send_post(client, sent)))
    assert consume(sp, post, outstanding={sent.request_id: "/"})


def test_the_post_page_submits_itself_without_inline_script(client, user, sp):
    client.force_login(user)
    response = send_redirect(client, sp, authn_request(sp, binding=BINDING_HTTP_REDIRECT))
    body = response.content.decode()
    assert 'src="/static/oauth_clients/saml-post.js"' in body
    assert "<script>" not in body
    assert "unsafe-inline" not in response.get("Content-Security-Policy", "")
    assert "no-store" in response["Cache-Control"]


QUERIES_PER_SIGN_IN = 10


def test_a_signed_in_persons_redirect_sign_in_reads_the_app_once(
    client, user, sp, django_assert_num_queries
):
    """The hot path of SP-initiated sign-in: session, user, the app (once: the check's row is
    the first step's), the person's groups for the attributes, the audit row."""
    client.force_login(user)
    posted(send_redirect(client, sp, authn_request(sp)))  # warm: keys, metadata, server
    sent = authn_request(sp)

    with django_assert_num_queries(QUERIES_PER_SIGN_IN) as captured:
        post = posted(send_redirect(client, sp, sent))

    assert consume(sp, post, outstanding={sent.request_id: "/"})
    app_reads = [q for q in captured.captured_queries if "samlserviceprovider" in q["sql"]]
    assert len(app_reads) == 1, [q["sql"] for q in app_reads]
