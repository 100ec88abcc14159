"""The group nesting flattened into a closure table (accounts.models.GroupClosure), filled
from the existing `GroupProfile.parent` tree: one row per group for itself (depth 0) and one
per group above it."""

import django.db.models.deletion
from django.db import migrations, models


def fill_closure(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    GroupProfile = apps.get_model("accounts", "GroupProfile")
    GroupClosure = apps.get_model("accounts", "GroupClosure")
    parents = dict(
        GroupProfile.objects.filter(parent__isnull=False).values_list("group_id", "parent_id")
    )
    rows = []
    for group_id in Group.objects.values_list("pk", flat=True).iterator():
        rows.append(GroupClosure(ancestor_id=group_id, descendant_id=group_id, depth=0))
        seen = {group_id}
        current, depth = parents.get(group_id), 1
        # The services refuse a loop; should one exist anyway, the walk ends where it closes.
        while current is not None and current not in seen:
            rows.append(GroupClosure(ancestor_id=current, descendant_id=group_id, depth=depth))
            seen.add(current)
            current, depth = parents.get(current), depth + 1
    GroupClosure.objects.bulk_create(rows, batch_size=1000)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0012_auditevent_saml_assertion_issued"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]

    operations = [
        migrations.CreateModel(
            name="GroupClosure",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("depth", models.PositiveSmallIntegerField(verbose_name="depth")),
                (
                    "ancestor",
                    models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="closure_descendants",
                        to="auth.group",
                        verbose_name="ancestor",
                    ),
                ),
                (
                    "descendant",
                    models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="closure_ancestors",
                        to="auth.group",
                        verbose_name="descendant",
                    ),
                ),
            ],
            options={
                "verbose_name": "group nesting",
                "verbose_name_plural": "group nesting",
                "indexes": [
                    models.Index(
                        fields=["descendant", "ancestor"], name="groupclosure_by_descendant"
                    )
                ],
                "constraints": [
                    models.UniqueConstraint(
                        fields=("ancestor", "descendant"), name="groupclosure_one_per_pair"
                    )
                ],
            },
        ),
        migrations.RunPython(fill_closure, migrations.RunPython.noop),
    ]
