"""The database signing keys' schedule as a background task: every
`IDP_SIGNING_KEY_AUTO_INTERVAL` seconds the worker (`manage.py db_worker`) takes the steps
`key_rotation.tick` has due, as `manage.py rotate_signing_key --auto` does (idp/periodic.py:
started when the worker starts, each run enqueues the next). Off unless
`IDP_SIGNING_KEY_STORE=database`, or with the interval 0."""

from __future__ import annotations

import logging

from django.conf import settings

from idp.periodic import periodic_task
from oauth_clients import key_rotation
from oauth_clients.key_store import database_algorithms
from oauth_clients.keys import ES256, RS256
from oauth_clients.models import SigningKey

logger = logging.getLogger(__name__)


def rotation_interval() -> int:
    """Seconds between two looks at the schedule; 0 (off) without the database key store."""
    return int(settings.IDP_SIGNING_KEY_AUTO_INTERVAL) if database_algorithms() else 0


@periodic_task(every=rotation_interval)
def scheduled_key_rotation() -> list[str]:
    # RS256 always and each other algorithm already stored (tick's own choice), but never one
    # whose key the environment sets: that key wins and is rotated there (key_store.py).
    in_database = set(database_algorithms())
    present = set(SigningKey.objects.values_list("algorithm", flat=True).distinct())
    algorithms = [a for a in (RS256, ES256) if a in in_database and (a == RS256 or a in present)]
    # A step that cannot be taken (KeyRotationError: e.g. no key-encryption key) fails this
    # run, recorded as the task's FAILED result and logged; the next run is queued all the same.
    done = key_rotation.tick(algorithms=algorithms)
    for line in done:
        logger.info("signing key schedule: %s", line)
    return done
