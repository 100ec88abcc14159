"""Background tasks (Django's tasks API; the database queue, run by `manage.py db_worker`).

One task per back-channel logout delivery, so a slow or failing app holds up no other app.
"""

from __future__ import annotations

from django_tasks import task

from oauth_clients.backchannel import attempt_delivery


@task()
def deliver_backchannel_logout(delivery_id: int) -> str:
    """Send one logout token (OIDC Back-Channel Logout 1.0 §2.5); retries are scheduled by
    `attempt_delivery` itself, with exponential backoff, as new tasks."""
    return attempt_delivery(delivery_id=delivery_id)
