"""Discovery (RFC 7643 §5-§7): what the service offers, and only the attributes it stores."""

from __future__ import annotations

from http import HTTPStatus

import pytest

pytestmark = pytest.mark.django_db


@pytest.mark.spec("RFC 7643", "5")
def test_the_service_provider_config_says_what_is_offered(scim):
    config = scim.get("ServiceProviderConfig").json()
    assert config["patch"] == {"supported": True}
    assert config["filter"] == {"supported": True, "maxResults": 200}
    assert config["etag"] == {"supported": True}
    assert config["bulk"]["supported"] is False
    assert config["sort"] == {"supported": False}
    assert config["authenticationSchemes"][0]["type"] == "oauthbearertoken"


@pytest.mark.spec("RFC 7643", "6")
def test_the_resource_types_are_users_with_the_enterprise_extension_and_groups(scim):
    types = {rt["name"]: rt for rt in scim.get("ResourceTypes").json()["Resources"]}
    assert set(types) == {"User", "Group"}
    assert types["User"]["endpoint"] == "/Users"
    assert [ext["schema"] for ext in types["User"]["schemaExtensions"]] == [
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
    ]


@pytest.mark.spec("RFC 7643", "7")
def test_the_schemas_list_only_the_attributes_this_directory_stores(scim):
    schemas = {schema["id"]: schema for schema in scim.get("Schemas").json()["Resources"]}
    user = {
        a["name"]: a for a in schemas["urn:ietf:params:scim:schemas:core:2.0:User"]["attributes"]
    }
    assert set(user) == {
        "userName",
        "name",
        "displayName",
        "title",
        "active",
        "password",
        "emails",
        "groups",
    }
    assert user["displayName"]["mutability"] == "readOnly"
    assert user["userName"]["uniqueness"] == "server"
    enterprise = schemas["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]
    assert {a["name"] for a in enterprise["attributes"]} == {
        "employeeNumber",
        "department",
        "manager",
    }
    assert scim.get("Schemas/urn:ietf:params:scim:schemas:core:2.0:Group").status_code == (
        HTTPStatus.OK
    )
