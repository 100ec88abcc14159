"""`manage.py clients`: create/list/show/rotate/disable/enable with --json, export and import."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from oauth2_provider.models import get_access_token_model

from accounts.models import AuditEvent
from oauth_clients import selectors
from oauth_clients.models import Client
from oauth_clients.secrets import check_client_secret
from tests.clients.conftest import WEB_REDIRECT, issue_tokens


def run(*args: str, **options) -> str:
    out = StringIO()
    call_command("clients", *args, stdout=out, stderr=StringIO(), **options)
    return out.getvalue()


def run_json(*args: str, **options):
    return json.loads(run(*args, "--json", **options))


# --- create, list, show, rotate-secret, disable, enable


def test_create_prints_the_secret_once_and_audits_the_actor(admin_user):
    data = run_json(
        "create",
        "--kind=web",
        "--name=Wiki",
        f"--redirect-uri={WEB_REDIRECT}",
        "--post-logout-redirect-uri=https://app.example.com/",
        "--scope=openid",
        "--scope=email",
        "--owner=wiki@example.com",
        "--access-token-lifetime=300",
        actor="root",
    )
    client = Client.objects.get(client_id=data["client_id"])
    assert check_client_secret(data["client_secret"], client.client_secret)
    assert data["redirect_uris"] == [WEB_REDIRECT]
    assert data["scopes"] == ["email", "openid"]
    assert data["discovery_url"].endswith("/.well-known/openid-configuration")
    assert client.access_token_lifetime == 300
    event = AuditEvent.objects.get(type=AuditEvent.Type.CLIENT_CREATED)
    assert event.actor == admin_user
    # show and list never print it again.
    assert data["client_secret"] not in run("show", client.client_id)
    assert data["client_secret"] not in run("show", client.client_id, "--json")
    assert data["client_secret"] not in run("list", "--json")


def test_create_text_output_names_the_secret(db):
    text = run("create", "--kind=service", "--name=Batch", "--client-id=batch")
    assert "client_id:      batch" in text
    assert "client_secret:  " in text
    assert "shown only now" in text
    assert Client.objects.get(client_id="batch").allowed_scopes == ""


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--kind=web", "--name=X", "--redirect-uri=http://x.example.com/cb"], "must use https"),
        (["--kind=web", "--name=X"], "at least one redirect URI"),
        (["--kind=spa", "--name=X", "--redirect-uri=https://x.example.com/#a"], "fragment"),
        (["--kind=web", "--name=X", f"--redirect-uri={WEB_REDIRECT}", "--scope=admin"], "admin"),
        (["--kind=service", "--name=X", "--redirect-uri=https://x.example.com/cb"], "machine"),
    ],
)
def test_create_refuses_unsafe_registrations_with_the_reason(db, arguments, message):
    with pytest.raises(CommandError, match=message):
        run("create", *arguments)
    assert not Client.objects.exists()


def test_list_and_show(web_client, service_client, user):
    web, _ = web_client
    issue_tokens(web, user)
    rows = run_json("list")
    assert [row["name"] for row in rows] == ["Nightly export", "Wiki"]
    assert rows[1] == {
        "client_id": web.client_id,
        "name": "Wiki",
        "kind": "web",
        "is_active": True,
        "is_trusted": False,
        "id_token_algorithm": "RS256",
        "last_used_at": None,
    }
    assert rows[0]["id_token_algorithm"] is None  # a service gets no ID tokens
    assert "Wiki" in run("list")
    shown = run_json("show", web.client_id)
    assert shown["usage"]["active_access_tokens"] == 1
    assert shown["usage"]["distinct_users"] == 1
    assert shown["issuer"]
    with pytest.raises(CommandError, match="No client app"):
        run("show", "nope")


def test_create_with_es256_signs_the_apps_id_tokens_with_it_and_show_says_so(db):
    default = run_json("create", "--kind=web", "--name=Old", f"--redirect-uri={WEB_REDIRECT}")
    assert default["id_token_algorithm"] == "RS256"
    data = run_json(
        "create",
        "--kind=spa",
        "--name=Board",
        "--client-id=board",
        "--redirect-uri=https://board.example.com/cb",
        "--id-token-algorithm=ES256",
    )
    assert data["id_token_algorithm"] == "ES256"
    assert Client.objects.get(client_id="board").algorithm == Client.ES256_ALGORITHM
    assert run_json("show", "board")["id_token_algorithm"] == "ES256"
    assert "id_token_algorithm: ES256" in run("show", "board")
    rows = {row["client_id"]: row for row in run_json("list")}
    assert rows["board"]["id_token_algorithm"] == "ES256"
    text = run(
        "create",
        "--kind=web",
        "--name=Text",
        f"--redirect-uri={WEB_REDIRECT}",
        "--id-token-algorithm=ES256",
    )
    assert "ID tokens:      signed with ES256" in text


def create_es256_web_app(name: str) -> None:
    run(
        "create",
        "--kind=web",
        f"--name={name}",
        f"--redirect-uri={WEB_REDIRECT}",
        "--id-token-algorithm=ES256",
    )


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (
            ["--kind=web", f"--redirect-uri={WEB_REDIRECT}", "--id-token-algorithm=HS256"],
            "--id-token-algorithm: invalid choice: 'HS256'",
        ),
        (["--kind=service", "--id-token-algorithm=RS256"], "signs no one in"),
    ],
)
def test_create_refuses_an_algorithm_not_offered_and_saves_nothing(db, arguments, message):
    create_es256_web_app("Fine")  # the positive path first
    with pytest.raises(CommandError) as exc:
        run("create", "--name=Odd", *arguments)
    assert message in str(exc.value)
    assert list(Client.objects.values_list("name", flat=True)) == ["Fine"]


def test_create_refuses_es256_without_an_ec_key(db, settings):
    create_es256_web_app("Fine")  # the positive path first
    settings.IDP_OIDC_EC_PRIVATE_KEYS = []
    with pytest.raises(CommandError, match="ES256 needs an EC signing key"):
        create_es256_web_app("Odd")
    assert not Client.objects.filter(name="Odd").exists()


def test_rotate_secret_with_and_without_grace(web_client):
    client, old = web_client
    data = run_json("rotate-secret", client.client_id, "--grace-seconds=600")
    client.refresh_from_db()
    assert check_client_secret(data["client_secret"], client.client_secret)
    assert check_client_secret(old, client.previous_client_secret)
    assert data["previous_secret_valid_until"]
    text = run("rotate-secret", client.client_id)
    assert "no longer works" in text
    with pytest.raises(CommandError, match="grace_seconds"):
        run("rotate-secret", client.client_id, "--grace-seconds=-1")


def test_disable_and_enable(web_client, user):
    client, _ = web_client
    issue_tokens(client, user)
    assert run_json("disable", client.client_id) == {
        "client_id": client.client_id,
        "is_active": False,
    }
    client.refresh_from_db()
    assert not client.is_active
    assert not get_access_token_model().objects.filter(application=client).exists()
    assert run_json("enable", client.client_id)["is_active"] is True
    assert (
        AuditEvent.objects.filter(
            type__in=[AuditEvent.Type.CLIENT_DISABLED, AuditEvent.Type.CLIENT_ENABLED]
        ).count()
        == 2
    )


def test_unknown_actor_is_refused(db):
    with pytest.raises(CommandError, match="No user named"):
        run("list", actor="ghost")


# --- Registry as code


@pytest.fixture
def registry(admin_user):
    """A varied registry: every kind, logout URIs, lifetimes, a disabled app."""
    from oauth_clients import services

    services.register_client(
        actor=admin_user,
        kind="web",
        name="Wiki",
        client_id="wiki",
        redirect_uris=[WEB_REDIRECT, "http://localhost:8000/cb"],
        post_logout_redirect_uris=["https://app.example.com/"],
        scopes="openid profile email",
        is_trusted=True,
        requires_mfa=True,
        logo_uri="https://app.example.com/logo.png",
        owner_contact="wiki@example.com",
        access_token_lifetime=300,
        refresh_token_idle_lifetime=3600,
        refresh_token_absolute_lifetime=86400,
        backchannel_logout_uri="https://app.example.com/bcl",
        backchannel_logout_session_required=True,
        frontchannel_logout_uri="https://app.example.com/fcl",
    )
    services.register_client(
        actor=admin_user,
        kind="native",
        name="Mobile",
        client_id="mobile",
        redirect_uris=["com.example.mobile:/cb"],
        scopes="openid offline_access",
    )
    services.register_client(
        actor=admin_user,
        kind="spa",
        name="Board",
        client_id="board",
        redirect_uris=["https://board.example.com/cb"],
        scopes="openid",
        algorithm="ES256",
    )
    batch, _ = services.register_client(
        actor=admin_user, kind="service", name="Batch", client_id="batch", scopes=""
    )
    services.disable_client(client=batch, actor=admin_user)


def test_export_then_import_into_an_empty_database_reproduces_the_registry(registry, tmp_path):
    exported = run("export")
    document = json.loads(exported)
    assert document["version"] == 1
    assert [entry["client_id"] for entry in document["clients"]] == [
        "batch",
        "board",
        "mobile",
        "wiki",
    ]
    for client in Client.objects.all():
        assert client.client_secret not in exported or not client.client_secret
    assert "secret" not in json.dumps([sorted(entry) for entry in document["clients"]])
    path = tmp_path / "registry.json"
    path.write_text(exported)

    Client.objects.all().delete()
    result = run_json("import", str(path))
    assert sorted(item["client_id"] for item in result["created"]) == [
        "batch",
        "board",
        "mobile",
        "wiki",
    ]
    # New confidential clients get fresh secrets (printed once); public ones none.
    secrets = {item["client_id"]: item["client_secret"] for item in result["created"]}
    assert check_client_secret(secrets["wiki"], Client.objects.get(client_id="wiki").client_secret)
    assert secrets["board"] == ""
    assert json.loads(run("export")) == document
    algorithms = {entry["client_id"]: entry["id_token_algorithm"] for entry in document["clients"]}
    assert algorithms == {"batch": None, "board": "ES256", "mobile": "RS256", "wiki": "RS256"}
    assert Client.objects.get(client_id="board").algorithm == Client.ES256_ALGORITHM
    assert not Client.objects.get(client_id="batch").is_active

    # Importing again changes nothing: no writes, no audit rows.
    events = AuditEvent.objects.count()
    updated = dict(Client.objects.values_list("client_id", "updated"))
    again = run_json("import", str(path))
    assert again["created"] == again["updated"] == again["enabled"] == again["disabled"] == []
    assert sorted(again["unchanged"]) == ["batch", "board", "mobile", "wiki"]
    assert AuditEvent.objects.count() == events
    assert dict(Client.objects.values_list("client_id", "updated")) == updated
    assert "Nothing to change (4 clients up to date)." in run("import", str(path))


def edited_export(mutate) -> dict:
    document = json.loads(run("export"))
    for entry in document["clients"]:
        if entry["client_id"] == "wiki":
            mutate(entry)
    return document


def test_import_applies_safe_changes(registry, tmp_path, admin_user):
    def mutate(entry):
        entry["name"] = "Team wiki"
        entry["redirect_uris"] = [WEB_REDIRECT]  # removing a URI is not a weakening
        entry["scopes"] = ["openid", "profile"]  # narrowing neither
        entry["access_token_lifetime"] = 120

    path = tmp_path / "registry.json"
    path.write_text(json.dumps(edited_export(mutate)))
    result = run_json("import", str(path), actor="root")
    assert result["updated"] == [
        {
            "client_id": "wiki",
            "fields": ["access_token_lifetime", "allowed_scopes", "name", "redirect_uris"],
        }
    ]
    wiki = Client.objects.get(client_id="wiki")
    assert wiki.name == "Team wiki"
    assert wiki.redirect_uris == WEB_REDIRECT
    event = AuditEvent.objects.filter(type=AuditEvent.Type.CLIENT_CHANGED).latest("id")
    assert event.actor == admin_user


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (
            lambda e: e["redirect_uris"].append("http://127.0.0.1:9000/cb"),
            "plain-http URI http://127.0.0.1:9000/cb",
        ),
        (lambda e: e.update(require_pkce=False), "turns PKCE off"),
        (lambda e: e.update(is_trusted=True, requires_mfa=False), "stops requiring MFA"),
        (lambda e: e.update(scopes=["openid", "profile", "email", "groups"]), "widens scopes"),
        (lambda e: e.update(refresh_token_absolute_lifetime=90 * 86400), "lengthens"),
        (lambda e: e.update(is_resource_server=True), "introspect"),
    ],
)
def test_import_refuses_to_weaken_an_app_unless_forced(registry, tmp_path, mutate, reason):
    path = tmp_path / "registry.json"
    path.write_text(json.dumps(edited_export(mutate)))
    before = selectors.registry()
    with pytest.raises(CommandError) as exc:
        run("import", str(path))
    assert reason in str(exc.value)
    assert "nothing changed" in str(exc.value)
    assert selectors.registry() == before

    forced = run_json("import", str(path), "--force")
    assert forced["forced"][0]["client_id"] == "wiki"
    assert any(reason in text for text in forced["forced"][0]["weakenings"])
    assert selectors.registry() != before


def test_import_switches_the_algorithm_and_audits_it(registry, tmp_path, admin_user):
    path = tmp_path / "registry.json"
    path.write_text(json.dumps(edited_export(lambda e: e.update(id_token_algorithm="ES256"))))
    result = run_json("import", str(path), actor="root")
    assert result["updated"] == [{"client_id": "wiki", "fields": ["algorithm"]}]
    assert result["forced"] == []  # a different algorithm is not a weaker app
    assert Client.objects.get(client_id="wiki").algorithm == Client.ES256_ALGORITHM
    event = AuditEvent.objects.filter(type=AuditEvent.Type.CLIENT_CHANGED).latest("id")
    assert event.actor == admin_user
    assert event.extra["algorithm"] == {"before": "RS256", "after": "ES256"}
    assert run_json("import", str(path))["unchanged"] == ["batch", "board", "mobile", "wiki"]


def test_import_refuses_es256_without_an_ec_key_as_a_whole(registry, tmp_path, settings):
    path = tmp_path / "registry.json"
    path.write_text(json.dumps(edited_export(lambda e: e.update(id_token_algorithm="ES256"))))
    before = selectors.registry()
    settings.IDP_OIDC_EC_PRIVATE_KEYS = []
    with pytest.raises(CommandError) as exc:
        run("import", str(path))
    assert "wiki: algorithm: ES256 needs an EC signing key" in str(exc.value)
    assert selectors.registry() == before


def test_an_export_without_algorithms_leaves_them_alone(registry, tmp_path):
    document = json.loads(run("export"))
    for entry in document["clients"]:
        del entry["id_token_algorithm"]
    document["clients"].append(
        {"client_id": "new", "kind": "web", "name": "New", "redirect_uris": [WEB_REDIRECT]}
    )
    path = tmp_path / "registry.json"
    path.write_text(json.dumps(document))
    result = run_json("import", str(path))
    assert [item["client_id"] for item in result["created"]] == ["new"]
    assert sorted(result["unchanged"]) == ["batch", "board", "mobile", "wiki"]
    assert Client.objects.get(client_id="board").algorithm == Client.ES256_ALGORITHM
    assert Client.objects.get(client_id="new").algorithm == Client.RS256_ALGORITHM


def test_import_refuses_re_enabling_a_disabled_app_unless_forced(registry, tmp_path):
    document = json.loads(run("export"))
    for entry in document["clients"]:
        if entry["client_id"] == "batch":
            entry["is_active"] = True
    path = tmp_path / "registry.json"
    path.write_text(json.dumps(document))
    with pytest.raises(CommandError, match="re-enables a disabled app"):
        run("import", str(path))
    assert run_json("import", str(path), "--force")["enabled"] == ["batch"]
    assert Client.objects.get(client_id="batch").is_active


def test_import_disables_an_app_the_file_marks_inactive(registry, tmp_path):
    def mutate(entry):
        entry["is_active"] = False

    path = tmp_path / "registry.json"
    path.write_text(json.dumps(edited_export(mutate)))
    assert run_json("import", str(path))["disabled"] == ["wiki"]
    assert not Client.objects.get(client_id="wiki").is_active


def test_unsafe_import_is_refused_as_a_whole(registry, tmp_path):
    document = json.loads(run("export"))
    document["clients"].append(
        {"client_id": "new-good", "kind": "web", "name": "Good", "redirect_uris": [WEB_REDIRECT]}
    )
    document["clients"].append(
        {
            "client_id": "new-bad",
            "kind": "web",
            "name": "Bad",
            "redirect_uris": ["javascript:alert(1)"],
        }
    )
    path = tmp_path / "registry.json"
    path.write_text(json.dumps(document))
    with pytest.raises(CommandError) as exc:
        run("import", str(path))
    assert "new-bad: redirect_uris: javascript:alert(1)" in str(exc.value)
    assert not Client.objects.filter(client_id__startswith="new-").exists()


def test_import_dry_run_changes_nothing_and_hands_out_no_secret(registry, tmp_path):
    document = json.loads(run("export"))
    document["clients"].append(
        {"client_id": "new", "kind": "web", "name": "New", "redirect_uris": [WEB_REDIRECT]}
    )
    path = tmp_path / "registry.json"
    path.write_text(json.dumps(document))
    result = run_json("import", str(path), "--dry-run")
    assert result["dry_run"] is True
    assert result["created"] == [{"client_id": "new", "client_secret": ""}]
    assert not Client.objects.filter(client_id="new").exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", "not valid JSON"),
        ("[]", '"clients" list'),
        ('{"version": 2, "clients": []}', "unsupported registry version"),
        ('{"clients": [{"kind": "web", "name": "x"}]}', "client_id is required"),
        ('{"clients": [{"client_id": "a", "kind": "web", "name": "x", "secret": "s"}]}', "unknown"),
        ('{"clients": [{"client_id": "wiki", "kind": "spa", "name": "Wiki"}]}', "kind cannot"),
        (
            '{"clients": [{"client_id": "n", "kind": "web", "name": "N", "is_trusted": "false"}]}',
            "is_trusted must be true or false",
        ),
        (
            '{"clients": [{"client_id": "n", "kind": "web", "name": "N", "redirect_uris": 5}]}',
            "redirect_uris must be a list of strings",
        ),
        (
            '{"clients": [{"client_id": "n", "kind": "web", "name": "N", '
            '"access_token_lifetime": "600"}]}',
            "access_token_lifetime must be a number",
        ),
        ('{"clients": [{"client_id": "n", "kind": "web", "name": 7}]}', "name is required"),
        (
            '{"clients": [{"client_id": "n", "kind": "web", "name": "N", '
            '"id_token_algorithm": "HS256"}]}',
            "n: id_token_algorithm must be RS256 or ES256 .null for a service., not 'HS256'",
        ),
        (
            '{"clients": [{"client_id": "n", "kind": "service", "name": "N", '
            '"id_token_algorithm": "RS256"}]}',
            "n: algorithm: A machine-to-machine service signs no one in",
        ),
    ],
)
def test_malformed_import_files_are_refused_clearly(registry, tmp_path, content, message):
    path = tmp_path / "registry.json"
    path.write_text(content)
    with pytest.raises(CommandError, match=message):
        run("import", str(path))


def test_import_of_a_missing_file_is_a_clear_error(db, tmp_path):
    with pytest.raises(CommandError, match="Cannot read"):
        run("import", str(tmp_path / "missing.json"))
