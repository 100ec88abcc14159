"""Filtering and paging (RFC 7644 §3.4.2): scim2-models' parser, our ORM transpiler."""

from __future__ import annotations

import json
from datetime import timedelta
from http import HTTPStatus

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from scim2_models import ScimFilter

from accounts.models import User
from scim.filters import USER_COLUMNS, filter_q
from scim.models import ScimUser
from scim.schemas import EnterpriseUser
from scim.schemas import User as ScimUser_
from scim.storage import users_for_scim
from tests import plans
from tests.scim.conftest import assert_scim_error

ScimUserResource = ScimUser_[EnterpriseUser]

pytestmark = pytest.mark.django_db


@pytest.fixture
def directory(db):
    people = {}
    for username, first, department in [
        ("bjensen", "Barbara", "Sales"),
        ("jsmith", "John", "Sales"),
        ("ajones", "Anna", "R&D"),
        ("mbrown", "", "R&D"),
    ]:
        people[username] = User.objects.create_user(
            username, f"{username}@example.com", first_name=first, department=department
        )
    ScimUser.objects.create(user=people["ajones"], external_id="E-3")
    past = timezone.now() - timedelta(days=2)
    User.objects.filter(username__in=["jsmith", "mbrown"]).update(updated_at=past)
    return people


def names(response) -> list[str]:
    assert response.status_code == HTTPStatus.OK, response.content
    return sorted(resource["userName"] for resource in response.json().get("Resources", []))


@pytest.mark.spec("RFC 7644", "3.4.2.2")
@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ('userName eq "BJENSEN"', ["bjensen"]),
        ('userName ne "bjensen"', ["ajones", "jsmith", "mbrown"]),
        ('userName sw "j"', ["jsmith"]),
        ('userName co "JON"', ["ajones"]),
        ('emails.value ew "smith@example.com"', ["jsmith"]),
        ("name.givenName pr", ["ajones", "bjensen", "jsmith"]),
        ('userName gt "j"', ["jsmith", "mbrown"]),
        ('userName le "b"', ["ajones"]),
        ('externalId eq "E-3"', ["ajones"]),
        ('externalId eq "e-3"', []),  # caseExact
        (
            'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "sales" '
            'and not (userName eq "jsmith")',
            ["bjensen"],
        ),
        ('userName eq "mbrown" or name.givenName sw "a"', ["ajones", "mbrown"]),
        ('emails[value co "jones"]', ["ajones"]),
        ("active eq true", ["ajones", "bjensen", "jsmith", "mbrown"]),
    ],
)
def test_filters_select_the_matching_users(scim, directory, expression, expected):
    assert names(scim.get("Users", filter=expression)) == expected


@pytest.mark.spec("RFC 7644", "3.4.2.2")
def test_meta_last_modified_gt_finds_the_recently_changed(scim, directory):
    since = (timezone.now() - timedelta(days=1)).isoformat().replace("+00:00", "Z")
    response = scim.get("Users", filter=f'meta.lastModified gt "{since}"')
    assert names(response) == ["ajones", "bjensen"]


@pytest.mark.spec("RFC 7644", "3.4.2.4")
def test_pages_by_start_index_and_count(scim, directory):
    first = scim.get("Users", startIndex=1, count=3).json()
    second = scim.get("Users", startIndex=4, count=3).json()
    assert (first["totalResults"], first["itemsPerPage"], first["startIndex"]) == (4, 3, 1)
    assert (second["totalResults"], second["itemsPerPage"], second["startIndex"]) == (4, 1, 4)
    ids = [r["id"] for r in first["Resources"]] + [r["id"] for r in second["Resources"]]
    assert ids == [str(pk) for pk in User.objects.order_by("pk").values_list("pk", flat=True)]


@pytest.mark.spec("RFC 7644", "3.4.2.4")
def test_a_start_index_past_the_last_match_is_an_empty_page_however_far(scim, directory):
    """Past the end is an empty page with the total; past what PostgreSQL's OFFSET holds (a
    bigint) too, not a 500 (the PostgreSQL phase holds the difference)."""
    assert len(scim.get("Users", startIndex=4, count=3).json()["Resources"]) == 1
    for start in (5, 2**63, 10**30):
        page = scim.get("Users", startIndex=start, count=3).json()
        assert (page["totalResults"], page["itemsPerPage"], page["startIndex"]) == (4, 0, start)
        assert page.get("Resources", []) == []


@pytest.mark.spec("RFC 7644", "3.4.2.4")
def test_a_count_of_a_million_is_capped_at_200(scim, db):
    User.objects.bulk_create([User(username=f"u{i:03}") for i in range(205)])
    page = scim.get("Users", count=1_000_000).json()
    assert (page["totalResults"], page["itemsPerPage"]) == (205, 200)
    assert len(page["Resources"]) == 200


@pytest.mark.spec("RFC 7644", "3.4.2.2")
def test_a_filter_on_user_name_is_one_indexed_query(scim, directory, django_assert_max_num_queries):
    scim.get("Users", filter='userName eq "x"')  # the token's last use is written once a minute
    with CaptureQueriesContext(connection) as queries:
        response = scim.get("Users", filter='userName eq "BJensen"')
    assert names(response) == ["bjensen"]
    user_queries = [
        q["sql"] for q in queries.captured_queries if '"accounts_user"."username"' in q["sql"]
    ]
    # One query finds the user (its groups come with a second, by primary key); no COUNT: the
    # page holds every match. On PostgreSQL it is UPPER(username) = UPPER(%s), the expression
    # index of sign-in (the test below reads its plan).
    assert len(user_queries) == 1
    assert not any("COUNT(" in q["sql"] for q in queries.captured_queries)
    assert len(queries.captured_queries) <= 3  # the token, the user, their groups


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's planner")
def test_the_user_name_filter_probes_the_sign_in_index_however_many_users(db):
    User.objects.bulk_create(User(username=f"employee{i}", password="!") for i in range(3000))
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE accounts_user")
        cursor.execute("ANALYZE scim_scimuser")
    tree = ScimFilter[ScimUserResource]('userName eq "Employee42"').ast
    condition, _joins = filter_q(USER_COLUMNS, tree)
    plan = json.loads(
        users_for_scim().filter(condition).order_by("pk")[:100].explain(format="json")
    )
    scans = [
        node
        for node in plans.nodes(plan[0]["Plan"])
        if node.get("Relation Name") == "accounts_user"
    ]
    assert [scan.get("Index Name") for scan in scans] == ["user_username_upper"]


@pytest.mark.spec("RFC 7644", "3.4.2.2")
@pytest.mark.parametrize(
    "expression",
    [
        'nickName eq "x"',  # in no schema this server serves
        'unknownAttribute eq "x"',
        'userName eq "x" and',  # malformed
        "active gt true",  # ordering a boolean
        "x" * 10_000,
        " or ".join(['userName eq "abcdefgh"'] * 400),  # a 10 kB expression
    ],
)
def test_a_bad_filter_answers_400_invalid_filter(scim, directory, expression):
    assert names(scim.get("Users", filter='userName eq "bjensen"')) == ["bjensen"]
    assert_scim_error(scim.get("Users", filter=expression), HTTPStatus.BAD_REQUEST, "invalidFilter")


@pytest.mark.spec("RFC 7644", "3.4.2")
def test_a_listed_user_or_group_is_exactly_what_reading_it_answers(scim, directory):
    """Lists are sent from the mapped JSON directly (scim.handler), reads through scim2-models:
    both say the same, to the ETag."""
    group = scim.post(
        "Groups",
        {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "displayName": "Sales",
            "externalId": "G-1",
            "members": [{"value": str(directory["bjensen"].pk)}],
        },
    ).json()
    scim.patch(
        f"Users/{directory['bjensen'].pk}",
        [
            {"op": "add", "path": "externalId", "value": "E-1"},
            {
                "op": "add",
                "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
                "value": {"value": str(directory["jsmith"].pk)},
            },
        ],
    )
    listed = scim.get("Users", filter='userName eq "bjensen"').json()["Resources"][0]
    read = scim.get(f"Users/{directory['bjensen'].pk}")
    assert listed == read.json()
    assert listed["meta"]["version"] == read["ETag"]
    assert listed["groups"][0]["$ref"].endswith(f"/scim/v2/Groups/{group['id']}")
    projected = scim.get("Users", filter='userName eq "bjensen"', excludedAttributes="groups")
    assert "groups" not in projected.json()["Resources"][0]  # scim2-server's own path
    listed_group = scim.get("Groups").json()["Resources"][0]
    assert listed_group == scim.get(f"Groups/{group['id']}").json()


@pytest.mark.spec("RFC 7644", "3.4.2.4")
def test_a_page_of_100_users_costs_four_queries(scim, db, django_assert_max_num_queries):
    User.objects.bulk_create([User(username=f"u{i:03}") for i in range(150)])
    scim.get("Users", count=1)  # the token's last use is written once a minute
    with django_assert_max_num_queries(4):  # the token, the page, its groups, the count
        page = scim.get("Users", startIndex=1, count=100).json()
    assert (page["totalResults"], page["itemsPerPage"]) == (150, 100)
