import uuid

from django.db import migrations, models


def write_identity(apps, schema_editor):
    installation = apps.get_model("idp", "Installation")
    installation.objects.using(schema_editor.connection.alias).create(id=uuid.uuid4())


class Migration(migrations.Migration):
    initial = True

    dependencies = []

    operations = [
        migrations.CreateModel(
            name="Installation",
            fields=[
                ("id", models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                ("created_at", models.DateTimeField(auto_now_add=True, verbose_name="created")),
            ],
            options={"verbose_name": "installation"},
        ),
        migrations.RunPython(write_identity, migrations.RunPython.noop),
    ]
