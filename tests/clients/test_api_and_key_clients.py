"""Registering an API (resource server, RFC 9068) with its audience and a client that
authenticates with its keys (private_key_jwt, RFC 7523): the command line, the admin's register
flow, and the registry's export and import."""

from __future__ import annotations

import json
from http import HTTPStatus

import pytest
from django.core.management.base import CommandError

from accounts.models import AuditEvent
from oauth_clients.models import Client
from tests.clients.test_admin import REGISTER_URL, register, register_form, url
from tests.clients.test_cli import run, run_json
from tests.oidc.pkjwt_helpers import ClientKey, jwks_of

AUDIENCE = "https://orders.example.com/api"
KEYS = jwks_of(ClientKey.rsa(kid="k1"))


def test_the_cli_registers_an_api_with_its_audience_and_a_secret_to_introspect(admin_user):
    data = run_json("create", "--kind=api", "--name=Orders API", f"--audience={AUDIENCE}")
    api = Client.objects.get(client_id=data["client_id"])
    assert api.kind == Client.Kind.API
    assert api.audience == data["audience"] == AUDIENCE
    assert data["client_secret"]  # it authenticates at introspection
    assert api.allowed_grant_types() == {Client.GRANT_CLIENT_CREDENTIALS}
    assert api.algorithm == ""
    event = AuditEvent.objects.get(type=AuditEvent.Type.CLIENT_CREATED, client=api)
    assert event.extra["audience"] == AUDIENCE
    assert "audience:" in run(
        "create", "--kind=api", "--name=Other", "--audience=https://other.example.com"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--kind=api", "--name=No audience"], "needs its audience"),
        (["--kind=api", "--name=Again", f"--audience={AUDIENCE}"], "already uses"),
        (["--kind=api", "--name=Fragment", f"--audience={AUDIENCE}#x"], "absolute URI"),
        (["--kind=api", "--name=Us", "--audience=http://127.0.0.1:8000"], "not this provider"),
        (["--kind=service", "--name=Svc", f"--audience={AUDIENCE}/2"], "Only an API"),
    ],
)
def test_the_cli_refuses_a_bad_audience(admin_user, args, message):
    run("create", "--kind=api", "--name=Orders API", f"--audience={AUDIENCE}")
    with pytest.raises(CommandError, match=message):
        run("create", *args)
    assert Client.objects.count() == 1


def test_the_cli_registers_a_key_client_from_a_file_or_a_url(admin_user, tmp_path):
    keys_file = tmp_path / "jwks.json"
    keys_file.write_text(json.dumps(KEYS))
    by_file = run_json("create", "--kind=service", "--name=File keys", f"--jwks={keys_file}")
    by_url = run_json(
        "create",
        "--kind=web",
        "--name=URL keys",
        "--redirect-uri=https://app.example.com/cb",
        "--jwks=https://app.example.com/jwks.json",
    )
    assert by_file["client_secret"] == by_url["client_secret"] == ""
    assert Client.objects.get(client_id=by_file["client_id"]).jwks == KEYS
    assert Client.objects.get(client_id=by_url["client_id"]).jwks_uri == (
        "https://app.example.com/jwks.json"
    )
    text = run("create", "--kind=service", "--name=Text", f"--jwks={keys_file}")
    assert "private_key_jwt (no secret)" in text
    assert "client_secret" not in text
    keys_file.write_text("{not json")
    with pytest.raises(CommandError, match="--jwks"):
        run("create", "--kind=service", "--name=Broken", f"--jwks={keys_file}")


def test_export_and_import_carry_the_audience_and_the_keys(admin_user, tmp_path):
    run("create", "--kind=api", "--name=Orders API", "--client-id=orders", f"--audience={AUDIENCE}")
    run(
        "create",
        "--kind=service",
        "--name=Batch",
        "--client-id=batch",
        "--jwks=https://batch.example.com/jwks.json",
    )
    document = json.loads(run("export"))
    entries = {entry["client_id"]: entry for entry in document["clients"]}
    assert entries["orders"]["audience"] == AUDIENCE
    assert entries["batch"]["jwks_uri"] == "https://batch.example.com/jwks.json"
    Client.objects.all().delete()
    path = tmp_path / "registry.json"
    path.write_text(json.dumps(document))
    created = {
        item["client_id"]: item["client_secret"]
        for item in run_json("import", str(path))["created"]
    }
    assert created["batch"] == ""
    assert created["orders"]
    assert json.loads(run("export")) == document


def test_the_admin_registers_an_api_and_a_key_client(admin_client):
    api, _ = register(
        admin_client,
        kind="api",
        name="Orders API",
        redirect_uris="",
        post_logout_redirect_uris="",
        scopes=[],
        audience=AUDIENCE,
    )
    assert api.audience == AUDIENCE
    assert admin_client.get(url("setup", api)).status_code == HTTPStatus.OK
    keyed, _ = register(
        admin_client,
        kind="service",
        name="Keyed",
        redirect_uris="",
        post_logout_redirect_uris="",
        scopes=[],
        jwks=json.dumps(KEYS),
    )
    assert keyed.jwks == KEYS
    assert keyed.client_secret == ""
    page = admin_client.get(REGISTER_URL).content.decode()
    assert "API (resource server)" in page


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"kind": "api", "audience": ""}, "audience", "needs its audience"),
        ({"kind": "api", "audience": "relative/path"}, "audience", "absolute URI"),
        ({"audience": AUDIENCE}, "audience", "only an api"),
        ({"jwks": "{not json"}, "jwks", "not valid json"),
        ({"jwks": json.dumps({"keys": [{"kty": "oct", "k": "c2VjcmV0"}]})}, "jwks", "private"),
        ({"jwks_uri": "https://10.0.0.5/jwks.json"}, "jwks_uri", "internal network"),
    ],
)
def test_the_admin_refuses_bad_audiences_and_keys(admin_client, overrides, field, message):
    service = {"kind": "service", "redirect_uris": "", "post_logout_redirect_uris": ""}
    data = register_form(**{"scopes": [], **service, **overrides})
    response = admin_client.post(REGISTER_URL, data)
    assert response.status_code == HTTPStatus.OK
    errors = response.context["form"].errors
    assert field in errors, errors
    assert message.lower() in " ".join(errors[field]).lower()
    assert not Client.objects.exists()


def test_a_key_client_has_no_secret_to_rotate(admin_user):
    from oauth_clients import services

    client, _ = services.register_client(
        actor=admin_user, kind=Client.Kind.SERVICE, name="Keyed", client_id="keyed", jwks=KEYS
    )
    with pytest.raises(CommandError, match="no secret to rotate"):
        run("rotate-secret", "keyed")
    with pytest.raises(services.ValidationError):
        services.rotate_client_secret(client=client, actor=admin_user)


def test_the_admin_changes_an_apis_audience_and_a_clients_keys(admin_client):
    api, _ = register(
        admin_client,
        kind="api",
        name="Orders API",
        redirect_uris="",
        post_logout_redirect_uris="",
        scopes=[],
        audience=AUDIENCE,
    )
    page = admin_client.get(url("change", api))
    assert page.status_code == HTTPStatus.OK
    form = page.context["adminform"].form
    data = {name: value for name, value in form.initial.items() if value is not None}
    data.update(
        {
            "name": "Orders API",
            "audience": f"{AUDIENCE}/v2",
            "jwks": json.dumps(KEYS),
            "allowed_scopes": [],
        }
    )
    data = {k: v for k, v in data.items() if k in form.fields}
    response = admin_client.post(url("change", api), data)
    assert response.status_code == HTTPStatus.FOUND, response.context["adminform"].form.errors
    api.refresh_from_db()
    assert api.audience == f"{AUDIENCE}/v2"
    assert api.jwks == KEYS
    event = AuditEvent.objects.filter(type=AuditEvent.Type.CLIENT_CHANGED, client=api).latest("pk")
    assert {"audience", "jwks"} <= set(event.extra["fields"])


@pytest.mark.parametrize(
    ("jwks", "message"),
    [
        ({"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}, "private"),
        ({"keys": []}, "between 1 and"),
    ],
)
def test_the_change_form_refuses_bad_keys_as_a_field_error(admin_client, jwks, message):
    from tests.clients.test_admin import change_form_data

    keyed, _ = register(
        admin_client,
        kind="service",
        name="Keyed",
        redirect_uris="",
        post_logout_redirect_uris="",
        scopes=[],
        jwks=json.dumps(KEYS),
    )
    data = change_form_data(admin_client, keyed)
    response = admin_client.post(url("change", keyed), {**data, "jwks": json.dumps(jwks)})
    assert response.status_code == HTTPStatus.OK
    errors = response.context["adminform"].form.errors
    assert message in " ".join(errors["jwks"])
    keyed.refresh_from_db()
    assert keyed.jwks == KEYS


def test_an_api_may_be_registered_for_es256_tokens_from_the_cli_and_the_admin(
    admin_user, admin_client
):
    # The default first: an API's tokens are RS256 (RFC 9068 §2.1) unless it asks for ES256.
    assert "access tokens:  signed with RS256" in run(
        "create", "--kind=api", "--name=Default API", "--audience=https://default.example.com"
    )
    text = run(
        "create",
        "--kind=api",
        "--name=Orders API",
        f"--audience={AUDIENCE}",
        "--id-token-algorithm=ES256",
    )
    assert "access tokens:  signed with ES256" in text
    api = Client.objects.get(audience=AUDIENCE)
    assert api.algorithm == "ES256"
    # The admin's change form offers the choice on an API, and saving RS256 records it.
    page = admin_client.get(url("change", api))
    form = page.context["adminform"].form
    assert "algorithm" in form.fields
    assert not form.fields["algorithm"].required  # empty: RS256
    data = {name: value for name, value in form.initial.items() if value is not None}
    data.update({"algorithm": "RS256", "allowed_scopes": []})
    data = {k: v for k, v in data.items() if k in form.fields}
    response = admin_client.post(url("change", api), data)
    assert response.status_code == HTTPStatus.FOUND, response.context["adminform"].form.errors
    api.refresh_from_db()
    assert api.algorithm == "RS256"
    event = AuditEvent.objects.filter(type=AuditEvent.Type.CLIENT_CHANGED, client=api).latest("pk")
    assert event.extra["algorithm"] == {"before": "ES256", "after": "RS256"}
