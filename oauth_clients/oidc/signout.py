"""The engine's one door for the people side: what a session or an account ending means for the
apps. `accounts` (its services and its allauth adapter) imports the engine through this module
only (tests/test_layers.py holds it to that).

- `queue_session_logout` / `queue_user_logout`: the back-channel deliveries to every app the
  session (or the user) got tokens for (oauth_clients/oidc/backchannel.py);
- `revoke_tokens` and what it counts: the one revocation path (oauth_clients/oidc/tokens.py);
- `revoke_consent`: an app's remembered consent, when its access is removed;
- `logged_out_url`: the signed-out page that frames the apps' front-channel logout URIs.
"""

from oauth_clients.oidc.backchannel import queue_session_logout, queue_user_logout
from oauth_clients.oidc.consent import revoke_consent
from oauth_clients.oidc.frontchannel import logged_out_url
from oauth_clients.oidc.tokens import RevokedCounts, revoke_tokens

__all__ = [
    "RevokedCounts",
    "logged_out_url",
    "queue_session_logout",
    "queue_user_logout",
    "revoke_consent",
    "revoke_tokens",
]
