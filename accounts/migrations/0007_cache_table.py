"""The database cache's table (idp/settings.py: the cache when REDIS_URL is not set).

allauth's record of used TOTP codes and its rate-limit counts live in the cache, so the table
must exist wherever the IdP runs without Redis: every path that migrates (`make run`, the
deploy's migrate job, a new test database) creates it here. Created even while Redis is
configured, so an instance can drop Redis later without a step of its own. Django's own
`createcachetable` does the work: it leaves an existing table alone, and honours the database
routers. Reversing leaves the table (the settings may still use it).
"""

from django.core.management import call_command
from django.db import migrations

# The table idp/settings.py names in CACHES["default"]["LOCATION"].
CACHE_TABLE = "idp_cache"


def create_cache_table(apps, schema_editor):
    call_command(
        "createcachetable", CACHE_TABLE, database=schema_editor.connection.alias, verbosity=0
    )


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0006_auditevent_admin_refused"),
    ]

    operations = [
        migrations.RunPython(create_cache_table, migrations.RunPython.noop, elidable=False),
    ]
