"""Where deliveries queued by earlier releases find their task: the database queue stores each
task's import path, and this one was `oauth_clients.oidc.tasks.deliver_backchannel_logout`. The task
lives beside the deliveries it sends (oauth_clients/oidc/backchannel.py)."""

from oauth_clients.oidc.backchannel import deliver_backchannel_logout

__all__ = ["deliver_backchannel_logout"]
