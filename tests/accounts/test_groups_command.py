"""`manage.py groups create/add/remove/import`: JSON with --json, one line and nothing written
on bad input."""

from __future__ import annotations

import json
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.core.management.base import CommandError

from accounts.groups import effective_group_ids
from accounts.models import AuditEvent, GroupProfile
from tests.accounts.test_groups import events, make_user

pytestmark = pytest.mark.django_db


def groups(*args: str) -> str:
    out = StringIO()
    call_command("groups", *args, stdout=out)
    return out.getvalue()


def as_json(*args: str) -> dict:
    return json.loads(groups(*args, "--json"))


@pytest.fixture
def people(db):
    return {name: make_user(name) for name in ("alice", "bob", "carol")}


def snapshot() -> tuple:
    return (
        sorted(Group.objects.values_list("name", flat=True)),
        sorted(GroupProfile.objects.values_list("group__name", "parent__name")),
        sorted(Group.objects.values_list("name", "user__username")),
        AuditEvent.objects.count(),
    )


# --- create -------------------------------------------------------------------------------------


def test_create_makes_a_group_inside_its_parent(db):
    assert as_json("create", "staff") == {
        "id": Group.objects.get(name="staff").pk,
        "name": "staff",
        "parent": None,
        "description": "",
    }

    created = as_json("create", "engineering", "--parent", "staff", "--description", "Builders")

    assert created["parent"] == "staff"
    assert GroupProfile.objects.get(group__name="engineering").parent.name == "staff"
    assert [row.extra["group"] for row in events(AuditEvent.Type.GROUP_CREATED)] == [
        "staff",
        "engineering",
    ]
    assert "created inside engineering" in groups("create", "backend", "--parent", "engineering")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["create", "team", "--parent", "nowhere"], "No group named 'nowhere' (--parent)."),
        (["create", "STAFF"], "Refused: A group named STAFF already exists."),
        (["create", "  "], "Refused: Enter a group name."),
        (["--actor", "nobody", "create", "team"], "No user named 'nobody' (--actor)."),
    ],
)
def test_create_refuses_bad_input_with_one_line(db, args, message):
    groups("create", "staff")
    before = snapshot()

    with pytest.raises(CommandError) as refused:
        groups(*args)

    assert str(refused.value) == message
    assert snapshot() == before


def test_an_actor_without_the_group_permissions_is_refused(people, admin_user):
    assert "created" in groups("--actor", "root", "create", "team")
    assert events(AuditEvent.Type.GROUP_CREATED)[0].actor == admin_user
    bob = people["bob"]
    bob.is_staff = True
    bob.save()

    with pytest.raises(CommandError, match=r"^Refused: You are not allowed to manage groups\.$"):
        groups("--actor", "bob", "create", "other")

    assert not Group.objects.filter(name="other").exists()


# --- add and remove -----------------------------------------------------------------------------


def test_add_and_remove_members(people):
    groups("create", "staff")
    groups("create", "engineering", "--parent", "staff")

    added = as_json("add", "engineering", "alice", "bob")
    again = as_json("add", "engineering", "bob", "carol")
    removed = as_json("remove", "engineering", "alice", "carol", "alice")

    assert added == {"group": "engineering", "added": ["alice", "bob"], "already_members": []}
    assert again == {"group": "engineering", "added": ["carol"], "already_members": ["bob"]}
    assert removed == {"group": "engineering", "removed": ["alice", "carol"], "not_members": []}
    staff, engineering = Group.objects.get(name="staff"), Group.objects.get(name="engineering")
    assert effective_group_ids(user_id=people["bob"].pk) == {staff.pk, engineering.pk}
    assert len(events(AuditEvent.Type.GROUP_MEMBER_ADDED)) == 3
    assert sorted(r.subject_repr for r in events(AuditEvent.Type.GROUP_MEMBER_REMOVED)) == [
        "alice",
        "carol",
    ]
    assert groups("remove", "engineering", "alice") == (
        "0 removed from engineering; 1 were not members.\n"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["add", "engineering", "alice", "zed", "yan"], "No user named: zed, yan."),
        (["remove", "engineering", "zed"], "No user named: zed."),
        (["add", "nowhere", "alice"], "No group named 'nowhere'."),
        (["remove", "nowhere", "alice"], "No group named 'nowhere'."),
    ],
)
def test_add_and_remove_refuse_unknown_names_and_change_nothing(people, args, message):
    groups("create", "engineering")
    groups("add", "engineering", "bob")
    before = snapshot()

    with pytest.raises(CommandError) as refused:
        groups(*args)

    assert str(refused.value) == message
    assert snapshot() == before


def test_group_names_match_in_any_letter_case(people):
    groups("create", "Engineering")

    assert as_json("add", "engineering", "alice")["group"] == "Engineering"


# --- import -------------------------------------------------------------------------------------


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "groups.csv"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_import_creates_nests_and_adds_members(people, tmp_path):
    groups("create", "staff")
    groups("add", "staff", "carol")
    csv_file = write(
        tmp_path,
        "group,username,parent\n"
        "backend,alice,engineering\n"
        "backend,bob\n"
        "engineering,,staff\n"
        "\n"
        "sales,carol,staff\n",
    )

    result = as_json("import", csv_file)

    assert result == {
        "rows": 4,
        "groups_created": ["backend", "engineering", "sales"],
        "groups_moved": [
            {"group": "engineering", "parent": "staff"},
            {"group": "sales", "parent": "staff"},
            {"group": "backend", "parent": "engineering"},
        ],
        "members_added": {"backend": ["alice", "bob"], "sales": ["carol"]},
    }
    names = dict(Group.objects.values_list("name", "pk"))
    assert effective_group_ids(user_id=people["alice"].pk) == {
        names["backend"],
        names["engineering"],
        names["staff"],
    }
    assert len(events(AuditEvent.Type.GROUP_MEMBER_ADDED)) == 4  # carol to staff, then 3
    # Importing the same file again changes nothing.
    assert as_json("import", csv_file)["members_added"] == {}


def test_import_moves_groups_in_an_order_that_never_closes_a_loop(people, tmp_path):
    # a inside b now; the file puts b inside c and c inside a's old place at the top.
    groups("create", "b")
    groups("create", "a", "--parent", "b")
    groups("create", "c")
    csv_file = write(tmp_path, "b,,a\na,,c\n")

    result = as_json("import", csv_file)

    assert result["groups_moved"] == [{"group": "a", "parent": "c"}, {"group": "b", "parent": "a"}]
    parents = dict(GroupProfile.objects.values_list("group__name", "parent__name"))
    assert parents == {"a": "c", "b": "a", "c": None}


def test_import_reads_stdin(people, monkeypatch):
    monkeypatch.setattr(sys, "stdin", StringIO("ops,alice\n"))

    assert as_json("import", "-")["members_added"] == {"ops": ["alice"]}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("ops,alice\nops\n", "line 2: expected group,username[,parent], got 1 column(s)."),
        ("ops,alice\nops,bob,staff,extra\n", "got 4 column(s)"),
        ("ops,alice\n,bob\n", "line 2: the group column is empty."),
        ("ops,alice\nops,nobody\n", "line 2: no user named 'nobody'."),
        ("ops,alice,nowhere\n", "line 1: no group named 'nowhere' (parent of ops)."),
        ("ops,alice,staff\nops,bob,sales\n", "line 2: ops is given two parents"),
        ("ops,alice\nstaff,,ops\n", "line 2: staff cannot be put inside ops"),
        ("ops,alice,ops\n", "line 1: ops cannot be put inside ops"),
        ("ops,alice\n" + "x" * 151 + ",bob\n", "line 2: A group name has at most 150"),
        ('ops,"alice\n', "is not valid CSV"),
    ],
)
def test_a_bad_import_file_writes_nothing(people, tmp_path, text, message):
    groups("create", "staff")
    groups("create", "sales")
    groups("create", "ops", "--parent", "staff")
    assert as_json("import", write(tmp_path, "ops,carol\n"))["members_added"] == {"ops": ["carol"]}
    before = snapshot()

    with pytest.raises(CommandError) as refused:
        groups("import", write(tmp_path, text))

    assert message in str(refused.value)
    assert "\n" not in str(refused.value)
    assert snapshot() == before


def test_a_loop_through_new_groups_of_the_file_is_refused(people, tmp_path):
    assert as_json("import", write(tmp_path, "x,alice,y\ny,bob\n"))["groups_created"] == ["x", "y"]
    before = snapshot()

    with pytest.raises(CommandError, match="line 1: p cannot be put inside z"):
        groups("import", write(tmp_path, "p,alice,z\nx,,p\nz,,x\n"))

    assert snapshot() == before


def test_a_missing_file_is_one_line(db):
    with pytest.raises(CommandError, match=r"^Cannot read /nonexistent\.csv: No such file"):
        groups("import", "/nonexistent.csv")
