"""Client app admin: register flow, one-time secret page, actions with confirmation, permissions."""

from __future__ import annotations

import json
import logging
from http import HTTPStatus
from io import StringIO

import pytest
from django import forms
from django.conf import settings
from django.contrib.admin.models import LogEntry
from django.core.management import call_command
from django.urls import reverse
from oauth2_provider.models import get_access_token_model, get_refresh_token_model

from accounts.models import AuditEvent
from oauth_clients.admin_views import ONE_TIME_SECRET_KEY
from oauth_clients.models import Client, Consent
from oauth_clients.secrets import check_client_secret
from tests.clients.conftest import WEB_REDIRECT, grant_client_permissions, issue_tokens

REGISTER_URL = "/admin/oauth_clients/client/register/"
CHANGELIST_URL = "/admin/oauth_clients/client/"


def url(name: str, client: Client) -> str:
    return reverse(f"admin:oauth_clients_client_{name}", args=[client.pk])


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


def register_form(**overrides) -> dict:
    data = {
        "kind": "web",
        "name": "Expenses",
        "description": "Expense reports",
        "redirect_uris": "https://expenses.example.com/oidc/callback\r\nhttp://localhost:8000/cb",
        "post_logout_redirect_uris": "https://expenses.example.com/",
        "scopes": ["openid", "profile", "email"],
        "logo_uri": "https://expenses.example.com/logo.png",
        "client_uri": "https://expenses.example.com/",
        "policy_uri": "",
        "tos_uri": "",
        "owner_contact": "finance-it@example.com",
        "access_token_lifetime": "",
        "id_token_lifetime": "300",
        "refresh_token_idle_lifetime": "",
        "refresh_token_absolute_lifetime": "",
    }
    data.update(overrides)
    return data


def register(admin_client, **overrides):
    response = admin_client.post(REGISTER_URL, register_form(**overrides))
    assert response.status_code == HTTPStatus.FOUND, response.content.decode()[:3000]
    client = Client.objects.get(name=overrides.get("name", "Expenses"))
    assert response["Location"] == url("setup", client)
    return client, response


# --- Register an app


def test_register_page_asks_the_questions_with_defaults_shown(admin_client):
    response = admin_client.get(REGISTER_URL)
    assert response.status_code == HTTPStatus.OK
    page = response.content.decode()
    for text in (
        "Server-side web app",
        "Single-page app",
        "Native app",
        "Machine-to-machine service",
        "Redirect URIs",
        "Post-logout redirect URIs",
        "Trusted first-party app",
        "Logo URL",
        "Owner contact",
        "provider default (600 s)",
    ):
        assert text in page
    # The "add" button of the list leads to the same flow.
    assert admin_client.get(f"{CHANGELIST_URL}add/")["Location"] == REGISTER_URL


def test_registering_a_web_app_shows_the_secret_once_with_everything_needed(
    admin_client, admin_user, caplog
):
    caplog.set_level(logging.DEBUG)
    client, _ = register(admin_client)
    assert client.kind == Client.Kind.WEB
    assert client.client_type == Client.CLIENT_CONFIDENTIAL
    assert client.id_token_lifetime == 300
    assert client.access_token_lifetime is None
    assert client.owner_contact == "finance-it@example.com"

    # The secret sits in the session for one render only (never in the URL).
    secret = admin_client.session[ONE_TIME_SECRET_KEY]["secret"]
    assert check_client_secret(secret, client.client_secret)

    page = admin_client.get(url("setup", client))
    assert page.status_code == HTTPStatus.OK
    assert "no-store" in page["Cache-Control"]
    html = page.content.decode()
    assert f'<code id="client-secret">{secret}</code>' in html
    assert settings.IDP_ISSUER in html
    assert f"{settings.IDP_ISSUER}/.well-known/openid-configuration" in html
    assert client.client_id in html
    assert "https://expenses.example.com/oidc/callback" in html
    assert "http://localhost:8000/cb" in html
    # Snippets: a generic OIDC library and django-allauth's openid_connect provider.
    assert f"OIDC_CLIENT_SECRET={secret}" in html
    assert "allauth.socialaccount.providers.openid_connect" in html
    assert f"&quot;server_url&quot;: &quot;{settings.IDP_ISSUER}&quot;" in html
    assert f"&quot;client_id&quot;: &quot;{client.client_id}&quot;" in html
    assert ONE_TIME_SECRET_KEY not in admin_client.session

    # Never again: not on a reload, not on the change page, not in the export or logs.
    again = admin_client.get(url("setup", client)).content.decode()
    assert secret not in again
    assert "cannot be shown again" in again
    assert client.client_id in again
    change = admin_client.get(url("change", client)).content.decode()
    assert secret not in change
    assert client.client_secret not in change  # not even the hash
    out = StringIO()
    call_command("clients", "export", stdout=out)
    assert secret not in out.getvalue()
    assert client.client_secret not in out.getvalue()
    assert all(secret not in record.getMessage() for record in caplog.records)
    assert all(secret not in (entry.change_message or "") for entry in LogEntry.objects.all())
    assert all(secret not in json.dumps(event.extra) for event in AuditEvent.objects.all())

    event = AuditEvent.objects.get(type=AuditEvent.Type.CLIENT_CREATED)
    assert event.actor == admin_user
    assert event.client == client


def test_secret_in_session_is_shown_only_for_its_own_client(admin_client, web_client):
    other, _ = web_client
    client, _ = register(admin_client)
    html = admin_client.get(url("setup", other)).content.decode()
    assert 'id="client-secret"' not in html
    # Still kept for the page it belongs to.
    assert 'id="client-secret"' in admin_client.get(url("setup", client)).content.decode()


def test_registering_a_single_page_app_shows_no_secret(admin_client):
    client, _ = register(
        admin_client, kind="spa", name="Board", redirect_uris="https://board.example.com/cb"
    )
    assert client.client_type == Client.CLIENT_PUBLIC
    html = admin_client.get(url("setup", client)).content.decode()
    assert 'id="client-secret"' not in html
    assert "Public client" in html
    assert "OIDC_TOKEN_ENDPOINT_AUTH_METHOD=none" in html


def test_registering_a_service_shows_a_client_credentials_snippet(admin_client):
    client, _ = register(
        admin_client,
        kind="service",
        name="Payroll sync",
        redirect_uris="",
        post_logout_redirect_uris="",
        scopes=[],
    )
    assert client.allowed_grant_types() == {Client.GRANT_CLIENT_CREDENTIALS}
    html = admin_client.get(url("setup", client)).content.decode()
    assert "grant_type=client_credentials" in html
    assert reverse("oauth2_provider:token") in html
    assert "allauth" not in html


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"redirect_uris": "http://expenses.example.com/cb"}, "redirect_uris", "must use https"),
        ({"redirect_uris": "https://x.example.com/cb#top"}, "redirect_uris", "fragment"),
        ({"redirect_uris": "https://*.example.com/cb"}, "redirect_uris", "wildcard"),
        ({"redirect_uris": "https://u:p@x.example.com/cb"}, "redirect_uris", "user name"),
        ({"redirect_uris": "JavaScript:alert(1)"}, "redirect_uris", "javascript"),
        ({"redirect_uris": "com.example.app:/cb"}, "redirect_uris", "native"),
        ({"redirect_uris": ""}, "redirect_uris", "at least one"),
        ({"post_logout_redirect_uris": "data:text/html,x"}, "post_logout_redirect_uris", "data"),
        ({"scopes": ["profile"]}, "scopes", "openid"),
        ({"logo_uri": "javascript:alert(1)"}, "logo_uri", "javascript"),
        ({"access_token_lifetime": "5"}, "access_token_lifetime", "greater than or equal"),
        ({"name": ""}, "name", "required"),
        ({"kind": "desktop"}, "kind", "valid choice"),
    ],
)
def test_unsafe_registration_is_refused_per_field_and_nothing_saved(
    admin_client, overrides, field, message
):
    response = admin_client.post(REGISTER_URL, register_form(**overrides))
    assert response.status_code == HTTPStatus.OK
    errors = response.context["form"].errors
    assert field in errors, errors
    assert message.lower() in " ".join(errors[field]).lower()
    assert not Client.objects.exists()
    assert not AuditEvent.objects.filter(type__startswith="client.").exists()


def test_native_app_may_register_a_reverse_domain_scheme(admin_client):
    client, _ = register(
        admin_client,
        kind="native",
        name="Mobile",
        redirect_uris="com.example.mobile:/oauth/callback\nhttp://127.0.0.1/cb",
        post_logout_redirect_uris="",
    )
    assert client.redirect_uris == "com.example.mobile:/oauth/callback http://127.0.0.1/cb"


# --- Change page: overview, secret never shown, edits validated and audited


def test_change_page_shows_overview_and_never_the_secret(admin_client, web_client, user):
    client, secret = web_client
    issue_tokens(client, user)
    Client.objects.filter(pk=client.pk).update(last_used_at="2030-01-02T03:04:00Z")
    html = admin_client.get(url("change", client)).content.decode()
    assert "2030-01-02 03:04 UTC" in html
    assert "1 access tokens, 1 refresh tokens, 1 consents" in html
    assert "Distinct users" in html
    assert "Client created" in html  # recent audit events for this client
    assert "root" in html  # the admin who registered it
    assert secret not in html
    assert client.client_secret not in html
    assert "Rotate secret" in html
    assert url("disable", client) in html
    # DOT's self-service pages are not mounted: no "view on site" link leading to an error.
    assert "View on site" not in html
    assert "Save and add another" not in html


def test_change_form_saves_through_the_service_with_an_audit_row(
    admin_client, admin_user, web_client
):
    client, _ = web_client
    page = admin_client.get(url("change", client))
    data = {
        name: value
        for name, value in page.context["adminform"].form.initial.items()
        if name in page.context["adminform"].form.fields
    }
    data = {key: ("" if value is None else value) for key, value in data.items()}
    data.update(
        {
            "name": "Wiki 2",
            "allowed_scopes": ["openid", "profile"],
            "redirect_uris": f"{WEB_REDIRECT}\nhttps://wiki2.example.com/cb",
        }
    )
    for flag in ("is_trusted", "requires_mfa", "is_resource_server", "allow_private_network"):
        data.pop(flag, None)
    data["require_pkce"] = "on"
    data.pop("backchannel_logout_session_required", None)
    response = admin_client.post(url("change", client), data)
    assert response.status_code == HTTPStatus.FOUND, response.context["adminform"].form.errors
    client.refresh_from_db()
    assert client.name == "Wiki 2"
    assert client.allowed_scopes == "openid profile"
    assert client.redirect_uris == f"{WEB_REDIRECT} https://wiki2.example.com/cb"
    event = AuditEvent.objects.get(type=AuditEvent.Type.CLIENT_CHANGED)
    assert event.actor == admin_user
    assert event.extra["fields"] == ["allowed_scopes", "name", "redirect_uris"]

    data["redirect_uris"] = "http://wiki.example.com/cb"
    data["backchannel_logout_uri"] = "https://10.0.0.8/logout"
    response = admin_client.post(url("change", client), data)
    assert response.status_code == HTTPStatus.OK
    errors = response.context["adminform"].form.errors
    assert "must use https" in errors["redirect_uris"][0]
    assert "internal" in errors["backchannel_logout_uri"][0]
    client.refresh_from_db()
    assert client.redirect_uris == f"{WEB_REDIRECT} https://wiki2.example.com/cb"


# --- ID-token signing algorithm: a choice on the register and change forms

ALGORITHM_HELP = (
    "RS256 is what every OpenID Connect library accepts",
    "ES256 is faster and gives smaller tokens, for clients that support it",
)


def change_form_data(admin_client, client: Client) -> dict:
    """What the change page would post back unchanged."""
    form = admin_client.get(url("change", client)).context["adminform"].form
    data = {
        name: ("" if value is None else value)
        for name, value in form.initial.items()
        if name in form.fields
    }
    # An unticked checkbox is not posted at all.
    return {
        name: value
        for name, value in data.items()
        if value or not isinstance(form.fields[name], forms.BooleanField)
    }


def test_register_page_offers_the_id_token_algorithm_with_rs256_by_default(admin_client):
    response = admin_client.get(REGISTER_URL)
    page = response.content.decode()
    assert "ID token signing algorithm" in page
    for text in ALGORITHM_HELP:
        assert text in page
    field = response.context["form"]["algorithm"]
    assert field.value() == "RS256"
    assert [value for value, _ in field.field.choices] == ["RS256", "ES256"]


def test_registering_with_es256_in_the_admin_keeps_it_and_the_setup_page_says_so(admin_client):
    default, _ = register(admin_client, name="Default")
    assert default.algorithm == Client.RS256_ALGORITHM
    client, _ = register(admin_client, name="Modern", algorithm="ES256")
    assert client.algorithm == Client.ES256_ALGORITHM
    event = AuditEvent.objects.filter(type=AuditEvent.Type.CLIENT_CREATED).latest("id")
    assert event.extra["algorithm"] == "ES256"
    html = admin_client.get(url("setup", client)).content.decode()
    assert "OIDC_ID_TOKEN_SIGNING_ALG=ES256" in html


@pytest.mark.parametrize(
    ("algorithm", "ec_key", "message"),
    [
        ("HS256", True, "Select a valid choice. HS256 is not one of the available choices."),
        ("none", True, "Select a valid choice. none is not one of the available choices."),
        ("ES256", False, "ES256 needs an EC signing key and none is configured"),
    ],
)
def test_register_form_refuses_an_algorithm_it_cannot_sign_with_and_saves_nothing(
    admin_client, settings, algorithm, ec_key, message
):
    register(admin_client, name="Fine", algorithm="ES256")
    if not ec_key:
        settings.IDP_OIDC_EC_PRIVATE_KEYS = []
    response = admin_client.post(REGISTER_URL, register_form(name="Odd", algorithm=algorithm))
    assert response.status_code == HTTPStatus.OK
    errors = response.context["form"].errors
    assert list(errors) == ["algorithm"], errors
    assert message in errors["algorithm"][0]
    assert not Client.objects.filter(name="Odd").exists()
    assert AuditEvent.objects.filter(type=AuditEvent.Type.CLIENT_CREATED).count() == 1


def test_a_service_registered_in_the_admin_gets_no_algorithm_whatever_the_radio_says(
    admin_client,
):
    client, _ = register(
        admin_client,
        kind="service",
        name="Payroll sync",
        redirect_uris="",
        post_logout_redirect_uris="",
        scopes=[],
        algorithm="ES256",
    )
    assert client.algorithm == Client.NO_ALGORITHM


def test_change_form_switches_the_algorithm_through_the_service_with_an_audit_row(
    admin_client, admin_user, web_client
):
    client, _ = web_client
    page = admin_client.get(url("change", client))
    html = page.content.decode()
    assert "ID token signing algorithm" in html
    for text in ALGORITHM_HELP:
        assert text in html
    data = change_form_data(admin_client, client)
    assert data["algorithm"] == "RS256"
    data["algorithm"] = "ES256"
    response = admin_client.post(url("change", client), data)
    assert response.status_code == HTTPStatus.FOUND, response.context["adminform"].form.errors
    client.refresh_from_db()
    assert client.algorithm == Client.ES256_ALGORITHM
    event = AuditEvent.objects.get(type=AuditEvent.Type.CLIENT_CHANGED)
    assert event.actor == admin_user
    assert event.extra["fields"] == ["algorithm"]
    assert event.extra["algorithm"] == {"before": "RS256", "after": "ES256"}


@pytest.mark.parametrize(
    ("algorithm", "ec_key", "message"),
    [
        ("HS256", True, "Select a valid choice."),
        ("", True, "This field is required."),
        ("ES256", False, "ES256 needs an EC signing key"),
    ],
)
def test_change_form_refuses_an_algorithm_it_cannot_sign_with(
    admin_client, web_client, settings, algorithm, ec_key, message
):
    client, _ = web_client
    data = change_form_data(admin_client, client)
    data["algorithm"] = "ES256"
    assert admin_client.post(url("change", client), data).status_code == HTTPStatus.FOUND
    data["algorithm"] = "RS256"
    assert admin_client.post(url("change", client), data).status_code == HTTPStatus.FOUND
    events = AuditEvent.objects.count()
    if not ec_key:
        settings.IDP_OIDC_EC_PRIVATE_KEYS = []
    data.update(name="Renamed", algorithm=algorithm)
    response = admin_client.post(url("change", client), data)
    assert response.status_code == HTTPStatus.OK
    errors = response.context["adminform"].form.errors
    assert list(errors) == ["algorithm"], errors
    assert message in errors["algorithm"][0]
    client.refresh_from_db()
    assert (client.name, client.algorithm) == ("Wiki", "RS256")
    assert AuditEvent.objects.count() == events


def test_a_service_change_page_has_no_algorithm_to_choose(admin_client, service_client):
    client, _ = service_client
    response = admin_client.get(url("change", client))
    assert response.status_code == HTTPStatus.OK
    assert "algorithm" not in response.context["adminform"].form.fields
    assert "ID token signing algorithm" not in response.content.decode()
    data = change_form_data(admin_client, client)
    data.update(name="Payroll", algorithm="ES256")  # a forged field is ignored
    assert admin_client.post(url("change", client), data).status_code == HTTPStatus.FOUND
    client.refresh_from_db()
    assert (client.name, client.algorithm) == ("Payroll", Client.NO_ALGORITHM)


# --- Actions: confirmation first, then the service, audited with the acting admin


def test_rotate_secret_confirms_then_shows_the_new_secret_once(
    admin_client, admin_user, web_client
):
    client, old = web_client
    confirm = admin_client.get(url("rotate_secret", client))
    assert confirm.status_code == HTTPStatus.OK
    assert "stops working at once" in confirm.content.decode()
    client.refresh_from_db()
    assert check_client_secret(old, client.client_secret)  # nothing happened on GET

    response = admin_client.post(url("rotate_secret", client), {"grace_seconds": "3600"})
    assert response["Location"] == url("setup", client)
    new = admin_client.session[ONE_TIME_SECRET_KEY]["secret"]
    html = admin_client.get(url("setup", client)).content.decode()
    assert new in html
    assert new not in admin_client.get(url("setup", client)).content.decode()
    client.refresh_from_db()
    assert check_client_secret(new, client.client_secret)
    assert check_client_secret(old, client.previous_client_secret)
    assert (
        "previous secret still works until"
        in admin_client.get(url("change", client)).content.decode()
    )
    event = AuditEvent.objects.get(type=AuditEvent.Type.CLIENT_SECRET_ROTATED)
    assert event.actor == admin_user
    assert event.extra["grace_seconds"] == 3600


def test_rotate_secret_refuses_a_bad_grace_period(admin_client, web_client):
    client, old = web_client
    response = admin_client.post(url("rotate_secret", client), {"grace_seconds": "-5"})
    assert response.status_code == HTTPStatus.OK
    assert response.context["form"].errors["grace_seconds"]
    client.refresh_from_db()
    assert check_client_secret(old, client.client_secret)


@pytest.mark.parametrize(
    ("action", "consequence", "event_type"),
    [
        ("disable", "stop working at once", AuditEvent.Type.CLIENT_DISABLED),
        ("revoke_tokens", "consents are forgotten", AuditEvent.Type.TOKEN_REVOKED),
    ],
)
def test_token_killing_actions_confirm_then_revoke(
    admin_client, admin_user, web_client, user, action, consequence, event_type
):
    client, _ = web_client
    issue_tokens(client, user)
    confirm = admin_client.get(url(action, client))
    assert confirm.status_code == HTTPStatus.OK
    html = confirm.content.decode()
    assert consequence in html
    assert "1 active access tokens and 1 refresh tokens (1 users)" in html
    assert get_access_token_model().objects.filter(application=client).exists()

    response = admin_client.post(url(action, client))
    assert response["Location"] == url("change", client)
    assert not get_access_token_model().objects.filter(application=client).exists()
    assert get_refresh_token_model().objects.get(application=client).revoked is not None
    assert AuditEvent.objects.get(type=event_type).actor == admin_user
    client.refresh_from_db()
    assert client.is_active is (action != "disable")
    assert Consent.objects.filter(client=client).exists() is (action == "disable")


def test_enable_confirms_then_enables(admin_client, admin_user, web_client):
    client, _ = web_client
    admin_client.post(url("disable", client))
    html = admin_client.get(url("change", client)).content.decode()
    assert "This app is disabled" in html
    assert url("enable", client) in html
    assert "sign in to the app again" in admin_client.get(url("enable", client)).content.decode()
    admin_client.post(url("enable", client))
    client.refresh_from_db()
    assert client.is_active
    assert AuditEvent.objects.get(type=AuditEvent.Type.CLIENT_ENABLED).actor == admin_user


def test_delete_confirms_then_deletes_and_keeps_the_audit_trail(
    admin_client, admin_user, web_client, user
):
    client, _ = web_client
    issue_tokens(client, user)
    confirm = admin_client.get(url("delete", client))
    assert confirm.status_code == HTTPStatus.OK
    assert "removed for good" in confirm.content.decode()
    response = admin_client.post(url("delete", client))
    assert response["Location"] == CHANGELIST_URL
    assert not Client.objects.exists()
    event = AuditEvent.objects.get(type=AuditEvent.Type.CLIENT_DELETED)
    assert event.actor == admin_user
    assert event.client_repr == client.client_id


def test_public_client_has_no_rotate_action(admin_client):
    client, _ = register(
        admin_client, kind="spa", name="Board", redirect_uris="https://board.example.com/cb"
    )
    assert "Rotate secret" not in admin_client.get(url("change", client)).content.decode()
    response = admin_client.get(url("rotate_secret", client))
    assert response["Location"] == url("change", client)


@pytest.mark.parametrize(
    ("action", "event_type"),
    [
        ("disable_selected", AuditEvent.Type.CLIENT_DISABLED),
        ("revoke_selected", AuditEvent.Type.TOKEN_REVOKED),
        ("delete_selected_clients", AuditEvent.Type.CLIENT_DELETED),
    ],
)
def test_bulk_actions_confirm_first(
    admin_client, admin_user, web_client, service_client, user, action, event_type
):
    clients = [web_client[0], service_client[0]]
    issue_tokens(clients[0], user)
    selection = {"action": action, "_selected_action": [c.pk for c in clients]}
    confirm = admin_client.post(CHANGELIST_URL, selection)
    assert confirm.status_code == HTTPStatus.OK
    assert "Yes, I’m sure" in confirm.content.decode()
    assert not AuditEvent.objects.filter(type=event_type).exists()

    done = admin_client.post(CHANGELIST_URL, {**selection, "confirm": "yes"})
    assert done.status_code == HTTPStatus.FOUND
    events = AuditEvent.objects.filter(type=event_type)
    assert events.count() == 2
    assert {event.actor for event in events} == {admin_user}
    assert not get_access_token_model().objects.exists()


def test_django_bulk_delete_is_replaced(admin_client, web_client):
    response = admin_client.get(CHANGELIST_URL)
    actions = [value for value, _label in response.context["action_form"].fields["action"].choices]
    assert "delete_selected" not in actions
    assert "delete_selected_clients" in actions


def test_changelist_filters_and_search(admin_client, web_client, service_client):
    assert admin_client.get(CHANGELIST_URL, {"q": "Nightly"}).context["cl"].result_count == 1
    assert admin_client.get(CHANGELIST_URL, {"kind__exact": "web"}).context["cl"].result_count == 1
    assert (
        admin_client.get(CHANGELIST_URL, {"is_active__exact": "1"}).context["cl"].result_count == 2
    )


# --- Permissions: superusers and staff holding the client permissions only


def test_staff_without_client_permissions_can_neither_see_nor_change_clients(
    client, staff_user, web_client
):
    app, secret = web_client
    client.force_login(staff_user)
    assert "client apps" not in client.get("/admin/").content.decode().lower()
    for target in (
        CHANGELIST_URL,
        REGISTER_URL,
        url("change", app),
        url("setup", app),
        url("rotate_secret", app),
        url("disable", app),
        url("revoke_tokens", app),
        url("delete", app),
    ):
        assert client.get(target).status_code == HTTPStatus.FORBIDDEN, target
    for target in (url("rotate_secret", app), url("disable", app), url("delete", app)):
        assert client.post(target).status_code == HTTPStatus.FORBIDDEN, target
    assert client.post(REGISTER_URL, register_form()).status_code == HTTPStatus.FORBIDDEN
    app.refresh_from_db()
    assert app.is_active
    assert check_client_secret(secret, app.client_secret)
    assert Client.objects.count() == 1
    assert not (
        AuditEvent.objects.filter(type__regex=r"^(client|token|consent)\.")
        .exclude(type=AuditEvent.Type.CLIENT_CREATED)
        .exists()
    )


def test_staff_with_view_permission_only_can_look_but_not_act(client, staff_user, web_client):
    app, _ = web_client
    grant_client_permissions(staff_user, "view_client")
    client.force_login(staff_user)
    assert client.get(CHANGELIST_URL).status_code == HTTPStatus.OK
    assert client.get(url("change", app)).status_code == HTTPStatus.OK
    assert client.get(url("setup", app)).status_code == HTTPStatus.OK
    assert "Rotate secret" not in client.get(url("change", app)).content.decode()
    for target in (
        REGISTER_URL,
        url("rotate_secret", app),
        url("disable", app),
        url("delete", app),
    ):
        assert client.post(target).status_code == HTTPStatus.FORBIDDEN, target


def test_staff_with_client_permissions_can_register_and_act(client, staff_user):
    grant_client_permissions(staff_user, "view_client", "add_client", "change_client")
    client.force_login(staff_user)
    app, _ = register(client)
    assert client.post(url("disable", app)).status_code == HTTPStatus.FOUND
    assert client.post(url("delete", app)).status_code == HTTPStatus.FORBIDDEN
    assert AuditEvent.objects.get(type=AuditEvent.Type.CLIENT_DISABLED).actor == staff_user
