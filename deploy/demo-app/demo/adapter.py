"""allauth hook: keep the raw ID token of the sign-in in the session.

allauth verifies the ID token and keeps its claims (SocialAccount.extra_data), but not the token
itself; RP-initiated logout needs it as `id_token_hint`. allauth fetches tokens through the
adapter's requests session, so a response hook on that session reads it from the token response.
"""

from __future__ import annotations

from typing import Any

from allauth.socialaccount.adapter import DefaultSocialAccountAdapter

ID_TOKEN_SESSION_KEY = "demo_id_token"  # noqa: S105 (a session key name, not a secret)


class DemoSocialAccountAdapter(DefaultSocialAccountAdapter):
    def get_requests_session(self):  # type: ignore[no-untyped-def]
        session = super().get_requests_session()
        request = self.request

        def keep_id_token(response: Any, *args: Any, **kwargs: Any) -> None:
            is_token_response = (
                response.request.method == "POST"
                and response.ok
                and response.headers.get("content-type", "").startswith("application/json")
            )
            if is_token_response and request is not None:
                id_token = response.json().get("id_token")
                if id_token:
                    request.session[ID_TOKEN_SESSION_KEY] = id_token

        session.hooks["response"].append(keep_id_token)
        return session
