"""docs/guides/scim-outbound.md: its example User and PATCH are what the IdP sends."""

from __future__ import annotations

import json
import re
from pathlib import Path

from oauth_clients import services as client_services
from provisioning.models import ScimTarget
from provisioning.resources import deactivation, user_resource
from tests.provisioning.conftest import register_app

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "guides" / "scim-outbound.md"


def json_blocks() -> list[dict]:
    blocks = re.findall(r"```json\n(.*?)```", GUIDE.read_text(), re.S)
    return [json.loads(block) for block in blocks]


def test_the_guides_example_user_is_what_the_idp_sends(admin_user, user):
    app = register_app(admin_user)
    client_services.assign(client=app, user=user, actor=admin_user)
    role = client_services.define_role(client=app, name="editor", actor=admin_user)
    client_services.grant_role(role=role, user=user, actor=admin_user)
    user.job_title, user.department, user.employee_id = "Engineer", "Research", "E-1001"
    user.save()
    target = ScimTarget(
        client=app,
        base_url="https://app.example.com/scim/v2",
        user_attributes=["name", "displayName", "emails", "title", "roles"],
        enterprise_extension=True,
    )
    example, leaver = json_blocks()

    assert user_resource(target=target, user=user) == {**example, "externalId": str(user.pk)}
    assert deactivation() == leaver
