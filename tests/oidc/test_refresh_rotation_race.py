"""Two refreshes with one token, truly concurrent, on PostgreSQL (RFC 9700 §4.14.2).

The one-statement rotation (oauth_clients/oidc/store.py) holds no lock between validation and the
write; it relies on PostgreSQL's READ COMMITTED rule that an UPDATE waiting on a row another
transaction changed re-checks its WHERE clause once that transaction commits. This drives two
database connections through exactly that interleaving and checks the loser wrote nothing.
"""

from __future__ import annotations

import pytest
from oauthlib.oauth2.rfc6749 import errors

from oauth_clients.models import AccessToken, IDToken, RefreshToken
from oauth_clients.oidc.tokens import token_checksum
from oauth_clients.oidc.validator import IdPOAuth2Validator
from tests.oidc.race_helpers import ON_POSTGRESQL, race, token, token_request

pytestmark = ON_POSTGRESQL


def _request(client):
    request = token_request(client, "refresh_token")
    request.scopes = ["openid"]
    return request


@pytest.mark.spec("RFC 9700", "4.14.2")
def test_a_rotation_that_waited_on_a_concurrent_one_writes_nothing(web_client, issue_tokens):
    first = issue_tokens(web_client, scope="openid")
    validator = IdPOAuth2Validator()
    outcome: dict[str, object] = {}

    def winner() -> None:
        request = _request(web_client)
        assert validator.validate_refresh_token(first["refresh_token"], web_client, request)
        validator.save_bearer_token(token(1), request)

    def loser() -> None:
        try:
            request = _request(web_client)
            # Validation reads the committed row: still live, so it passes.
            assert validator.validate_refresh_token(first["refresh_token"], web_client, request)
            outcome["validated"] = True
            validator.save_bearer_token(token(2), request)
            outcome["result"] = "rotated"
        except errors.InvalidGrantError:
            outcome["result"] = "invalid_grant"

    before = (AccessToken.objects.count(), IDToken.objects.count())

    def loser_waits() -> None:  # validated, waiting for the winner's row: not rotated yet
        assert outcome == {"validated": True}

    race(winner, loser, while_waiting=loser_waits)
    assert outcome == {"validated": True, "result": "invalid_grant"}
    assert RefreshToken.objects.filter(revoked__isnull=True).count() == 1
    # Only the winner's access token was added, in place of the first pair's (which the winner's
    # rotation deleted); no ID token for either (no `id_token` asked).
    assert (AccessToken.objects.count(), IDToken.objects.count()) == before
    assert list(AccessToken.objects.values_list("token_checksum", flat=True)) == [
        token_checksum("a1")
    ]
