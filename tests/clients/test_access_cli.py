"""`manage.py clients access/assign/unassign/role` and the registry export/import of access."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.core.management.base import CommandError

from accounts.models import AuditEvent
from oauth_clients import access, selectors, services
from oauth_clients.models import AppRole, Assignment, Client
from tests.clients.conftest import WEB_REDIRECT


def run(*args: str, **options) -> str:
    out = StringIO()
    call_command("clients", *args, stdout=out, stderr=StringIO(), **options)
    return out.getvalue()


def run_json(*args: str, **options):
    return json.loads(run(*args, "--json", **options))


@pytest.fixture
def wiki(admin_user):
    client, _secret = services.register_client(
        actor=admin_user,
        kind="web",
        name="Wiki",
        client_id="wiki",
        redirect_uris=[WEB_REDIRECT],
    )
    return client


@pytest.fixture
def editors(db):
    return Group.objects.create(name="editors")


# --- the subcommands


def test_assign_a_group_and_a_user_prints_json_and_audits_the_actor(
    wiki, editors, user, admin_user
):
    data = run_json("assign", "wiki", "--group", "editors", actor="root")
    assert data == {
        "client_id": "wiki",
        "group": "editors",
        "user": None,
        "assigned": True,
        "changed": True,
        "access_policy": "open",
    }
    assert run_json("assign", "wiki", "--user", "alice")["user"] == "alice"
    assert run_json("assign", "wiki", "--user", "alice")["changed"] is False
    assert Assignment.objects.filter(client=wiki).count() == 2
    event = AuditEvent.objects.filter(extra__change="assignment_added").earliest("id")
    assert event.actor == admin_user
    assert "counts once" in run("assign", "wiki", "--group", "editors")


def test_access_switches_the_policy(wiki, user, editors):
    run("assign", "wiki", "--group", "editors")
    data = run_json("access", "wiki", "assigned")
    assert data == {
        "client_id": "wiki",
        "access_policy": "assigned",
        "changed": True,
        "users_losing_access": 0,
    }
    assert not access.may_use(user=user, client=Client.objects.get(client_id="wiki"))
    user.groups.add(editors)
    assert access.may_use(user=user, client=Client.objects.get(client_id="wiki"))
    assert "open to every active account" in run("access", "wiki", "open")


def test_unassign_removes_and_says_when_there_was_nothing(wiki, editors):
    run("assign", "wiki", "--group", "editors")
    data = run_json("unassign", "wiki", "--group", "editors")
    assert data["changed"] is True
    assert data["assigned"] is False
    assert not Assignment.objects.exists()
    assert run_json("unassign", "wiki", "--group", "editors")["changed"] is False


def test_role_defines_the_role_if_missing_and_grants_it(wiki, editors, user):
    data = run_json("role", "wiki", "editor", "--group", "editors", "--description", "Edits")
    assert data == {
        "client_id": "wiki",
        "role": "editor",
        "group": "editors",
        "user": None,
        "role_created": True,
        "changed": True,
    }
    again = run_json("role", "wiki", "editor", "--user", "alice")
    assert again["role_created"] is False
    assert AppRole.objects.get(client=wiki).description == "Edits"
    assert access.roles_for(user=user, client=wiki) == ["editor"]


@pytest.mark.parametrize(
    ("arguments", "reason"),
    [
        (["assign", "nope", "--group", "editors"], "No client app with client id 'nope'."),
        (["assign", "wiki", "--group", "ghosts"], "No group named 'ghosts'."),
        (["unassign", "wiki", "--user", "ghost"], "No user named 'ghost'."),
        (["role", "wiki", "editor", "--group", "ghosts"], "No group named 'ghosts'."),
        (["role", "wiki", "email", "--group", "editors"], "reserved claim name"),
        (["role", "wiki", "Editor", "--group", "editors"], "lower-case letters"),
        (["access", "nope", "open"], "No client app"),
    ],
)
def test_bad_input_exits_with_a_one_line_reason(wiki, editors, arguments, reason):
    run("role", "wiki", "viewer", "--group", "editors")  # the good path first
    with pytest.raises(CommandError) as exc:
        run(*arguments)
    assert reason in str(exc.value)
    assert "\n" not in str(exc.value)
    assert list(AppRole.objects.values_list("name", flat=True)) == ["viewer"]


def test_argument_errors_are_refused_in_one_line(wiki, editors):
    assert run_json("assign", "wiki", "--group", "editors")["changed"] is True
    # argparse's own refusals: both or neither of --group/--user, an unknown policy.
    for arguments, reason in (
        (["assign", "wiki"], "one of the arguments --group --user is required"),
        (["assign", "wiki", "--group", "editors", "--user", "alice"], "not allowed with"),
        (["access", "wiki", "everyone"], "invalid choice: 'everyone'"),
    ):
        with pytest.raises(CommandError, match=reason) as exc:
            run(*arguments)
        assert "\n" not in str(exc.value)


def test_the_command_exits_1_on_a_reserved_role_from_manage_py(wiki, editors):
    from django.core.management import ManagementUtility

    utility = ManagementUtility(["manage.py", "clients", "role", "wiki", "sub", "--group=editors"])
    with pytest.raises(SystemExit) as exc:
        utility.execute()
    assert exc.value.code == 1


# --- registry export and import


@pytest.fixture
def registry(wiki, editors, user, admin_user):
    readers = Group.objects.create(name="readers")
    services.assign(client=wiki, group=editors, actor=admin_user)
    services.assign(client=wiki, user=user, actor=admin_user)
    services.set_access_policy(client=wiki, policy="assigned", actor=admin_user)
    role = services.define_role(client=wiki, name="editor", description="Edits", actor=admin_user)
    services.grant_role(role=role, group=editors, actor=admin_user)
    services.grant_role(role=role, user=user, actor=admin_user)
    services.set_claim_mapping(
        client=wiki,
        roles_claim="wiki_roles",
        groups_filter="list",
        claim_groups=[readers],
        claim_attributes={"mail": "email"},
        actor=admin_user,
    )
    return wiki


def wiki_entry(document: dict) -> dict:
    return next(entry for entry in document["clients"] if entry["client_id"] == "wiki")


def test_the_export_carries_access_roles_and_claim_mapping(registry):
    entry = wiki_entry(json.loads(run("export")))
    assert entry["access_policy"] == "assigned"
    assert entry["assigned_groups"] == ["editors"]
    assert entry["assigned_users"] == ["alice"]
    assert entry["roles"] == [
        {"name": "editor", "description": "Edits", "groups": ["editors"], "users": ["alice"]}
    ]
    assert entry["claim_mapping"] == {
        "roles_claim": "wiki_roles",
        "groups_filter": "list",
        "groups_prefix": "",
        "groups": ["readers"],
        "attributes": {"mail": "email"},
    }


def test_export_then_import_into_an_empty_registry_reproduces_access(registry, tmp_path):
    exported = run("export")
    path = tmp_path / "registry.json"
    path.write_text(exported)
    Client.objects.all().delete()
    assert not Assignment.objects.exists()
    run_json("import", str(path))
    assert json.loads(run("export")) == json.loads(exported)
    # Importing again changes nothing and writes no audit row.
    events = AuditEvent.objects.count()
    again = run_json("import", str(path))
    assert again["unchanged"] == ["wiki"]
    assert AuditEvent.objects.count() == events


def edited(mutate) -> dict:
    document = json.loads(run("export"))
    mutate(wiki_entry(document))
    return document


def test_import_narrows_and_renames_without_force(registry, tmp_path, admin_user):
    def mutate(entry):
        entry["assigned_users"] = []
        entry["roles"] = [{"name": "viewer", "groups": ["editors"]}]
        entry["claim_mapping"]["attributes"] = {}

    path = tmp_path / "registry.json"
    path.write_text(json.dumps(edited(mutate)))
    result = run_json("import", str(path), actor="root")
    assert result["updated"] == [
        {"client_id": "wiki", "fields": ["assignments", "roles", "claim_mapping"]}
    ]
    assert result["forced"] == []
    wiki = Client.objects.get(client_id="wiki")
    assert list(wiki.roles.values_list("name", flat=True)) == ["viewer"]
    assert wiki.claim_attributes == {}
    assert not Assignment.objects.filter(client=wiki, user__isnull=False).exists()
    event = AuditEvent.objects.filter(extra__change="assignment_removed").get()
    assert event.actor == admin_user


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda e: e.update(access_policy="open"), "opens the app to every active account"),
        (
            lambda e: e["assigned_groups"].append("readers"),
            "assigns the app to group readers (more people may use it)",
        ),
        (
            lambda e: e["assigned_users"].append("root"),
            "assigns the app to user root (more people may use it)",
        ),
    ],
)
def test_import_refuses_to_widen_an_apps_audience_unless_forced(registry, tmp_path, mutate, reason):
    path = tmp_path / "registry.json"
    path.write_text(json.dumps(edited(mutate)))
    before = selectors.registry()
    with pytest.raises(CommandError) as exc:
        run("import", str(path))
    assert reason in str(exc.value)
    assert "nothing changed" in str(exc.value)
    assert selectors.registry() == before

    forced = run_json("import", str(path), "--force")
    assert forced["forced"] == [{"client_id": "wiki", "weakenings": [reason]}]
    assert selectors.registry() != before


def test_assigning_an_open_app_on_import_narrows_it_and_needs_no_force(wiki, editors, tmp_path):
    def mutate(entry):
        entry["access_policy"] = "assigned"
        entry["assigned_groups"] = ["editors"]

    path = tmp_path / "registry.json"
    path.write_text(json.dumps(edited(mutate)))
    result = run_json("import", str(path))
    assert result["updated"] == [{"client_id": "wiki", "fields": ["assignments", "access_policy"]}]
    assert list(Assignment.objects.values_list("group__name", flat=True)) == ["editors"]


@pytest.mark.parametrize(
    ("mutate", "problem"),
    [
        (lambda e: e["assigned_groups"].append("ghosts"), "wiki: no group named 'ghosts'"),
        (lambda e: e["assigned_users"].append("ghost"), "wiki: no user named 'ghost'"),
        (lambda e: e["roles"].append({"name": "email"}), "reserved claim name"),
        (lambda e: e.update(access_policy="everyone"), "access_policy must be"),
        (lambda e: e["claim_mapping"].update(roles_claim="sub"), "roles_claim"),
        (lambda e: e["claim_mapping"].update(attributes={"x": "password"}), "password"),
        (lambda e: e["claim_mapping"].update(colour="red"), "unknown keys colour"),
    ],
)
def test_import_refuses_bad_access_entries_as_a_whole(registry, tmp_path, mutate, problem):
    path = tmp_path / "registry.json"
    path.write_text(json.dumps(edited(lambda e: e.update(name="Team wiki"))))
    assert run_json("import", str(path))["updated"][0]["fields"] == ["name"]  # good path

    def both(entry):
        entry["name"] = "Wiki again"
        mutate(entry)

    path.write_text(json.dumps(edited(both)))
    before = selectors.registry()
    with pytest.raises(CommandError) as exc:
        run("import", str(path))
    assert problem in str(exc.value)
    assert selectors.registry() == before


def test_an_export_without_access_keys_leaves_access_alone(registry, tmp_path):
    document = json.loads(run("export"))
    for entry in document["clients"]:
        for key in services.ACCESS_KEYS:
            del entry[key]
    path = tmp_path / "registry.json"
    path.write_text(json.dumps(document))
    before = selectors.registry()
    assert run_json("import", str(path))["unchanged"] == ["wiki"]
    assert selectors.registry() == before
