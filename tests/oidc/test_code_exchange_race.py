"""Two exchanges of one code, truly concurrent, on PostgreSQL (RFC 6749 §4.1.2).

The one-statement exchange (oauth_clients/oidc/store.py: `PostgresStore`) reads the code without a
lock and relies on PostgreSQL's READ COMMITTED rule that an UPDATE waiting on a row another
transaction changed re-checks its WHERE clause once that transaction commits. This drives two
database connections through exactly that interleaving (tests/oidc/race_helpers.py): the loser
writes nothing, is refused, and — the code having been used twice — what the winner obtained
with it is revoked, as when a replay arrives after the exchange.
"""

from __future__ import annotations

import pytest
from oauthlib.oauth2.rfc6749 import errors

from accounts.models import AuditEvent
from oauth_clients.models import AccessToken, Grant, IDToken, RefreshToken
from oauth_clients.oidc.tokens import token_checksum
from oauth_clients.oidc.validator import IdPOAuth2Validator
from tests.oidc.race_helpers import ON_POSTGRESQL, race, token, token_request

pytestmark = ON_POSTGRESQL


def _exchange(validator: IdPOAuth2Validator, client, code: str, n: int) -> None:
    """Validation, then what oauthlib's code grant calls after it, in its order."""
    request = token_request(client, "authorization_code")
    assert validator.validate_code(client.client_id, code, client, request)
    validator.save_bearer_token(token(n), request)
    validator.invalidate_authorization_code(client.client_id, code, request)


def test_one_exchange_writes_its_rows_and_the_audit_row(web_client, run_code_flow):
    """The positive path the race below departs from: one statement, every row."""
    flow = run_code_flow(web_client, scope="openid")
    _exchange(IdPOAuth2Validator(), web_client, flow.code, 1)

    grant = Grant.objects.get()
    assert grant.consumed_at is not None
    access = AccessToken.objects.get(token_checksum=token_checksum("a1"))
    assert access.user == grant.user
    assert access.code_checksum == grant.code
    assert RefreshToken.objects.get(token_checksum=token_checksum("r1")).access_token == access
    event = AuditEvent.objects.get(type=AuditEvent.Type.TOKENS_ISSUED)
    assert (event.client, event.extra["grant"]) == (web_client, "authorization_code")


@pytest.mark.spec("RFC 6749", "4.1.2")
def test_an_exchange_that_waited_on_a_concurrent_one_writes_nothing(web_client, run_code_flow):
    flow = run_code_flow(web_client, scope="openid")
    validator = IdPOAuth2Validator()
    outcome: dict[str, object] = {}

    def loser() -> None:
        try:
            request = token_request(web_client, "authorization_code")
            # Validation reads the committed row: not consumed yet, so it passes.
            assert validator.validate_code(web_client.client_id, flow.code, web_client, request)
            outcome["validated"] = True
            validator.save_bearer_token(token(2), request)
            validator.invalidate_authorization_code(web_client.client_id, flow.code, request)
            outcome["result"] = "exchanged"
        except errors.InvalidGrantError:
            outcome["result"] = "invalid_grant"

    def loser_waits() -> None:  # validated, waiting for the winner's row; the winner's rows exist
        assert outcome == {"validated": True}
        assert AccessToken.objects.filter(token_checksum=token_checksum("a1")).exists()

    race(lambda: _exchange(validator, web_client, flow.code, 1), loser, loser_waits)
    assert outcome == {"validated": True, "result": "invalid_grant"}
    # The loser wrote nothing: no token of its own, one "tokens issued" row (the winner's).
    assert not AccessToken.objects.filter(token_checksum=token_checksum("a2")).exists()
    assert not RefreshToken.objects.filter(token_checksum=token_checksum("r2")).exists()
    assert AuditEvent.objects.filter(type=AuditEvent.Type.TOKENS_ISSUED).count() == 1
    assert not IDToken.objects.exists()  # no `id_token` asked of either
    # The code was used twice: what it issued is revoked (RFC 6749 §4.1.2, RFC 9700 §4.2.4).
    assert not AccessToken.objects.exists()
    assert not RefreshToken.objects.filter(revoked__isnull=True).exists()
    assert AuditEvent.objects.filter(type=AuditEvent.Type.TOKEN_REPLAY).count() == 1
