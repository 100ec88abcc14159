"""Who acts when no person does: a service client calling the admin API (adminapi/).

On the ground floor beside `accounts.audit`: the permission rule (`accounts.permissions`) and the
audit row (`accounts.audit.build_event`) read it; it imports no app. The API builds one per
request from the bearer token's client and scopes and passes it as `actor=` to the same services
the admin and the CLI call.
"""

from __future__ import annotations

from dataclasses import dataclass

# The scopes the permission rule reads (the API checks the per-area scopes itself).
USERS_SCOPE = "admin:users"
SUPERUSERS_SCOPE = "admin:superusers"


@dataclass(frozen=True)
class ServiceActor:
    """A registered service client acting through the admin API with the token's scopes."""

    client_id: str
    name: str
    scopes: frozenset[str]
    # Never a person: `request.user`-style checks treat it as nobody signed in.
    is_authenticated = False

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes

    @property
    def audit_repr(self) -> str:
        """How the audit row's `actor_repr` names it (usernames carry no colon prefix)."""
        return f"service:{self.client_id}"

    def __str__(self) -> str:
        return self.audit_repr
