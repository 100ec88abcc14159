"""settings.py additions for a Django app signing in with the company IdP via django-allauth.

pip install django-allauth PyJWT cryptography requests (not the `socialaccount` extra if your
project pins oauthlib 3). Add to INSTALLED_APPS: "allauth", "allauth.account",
"allauth.socialaccount", "allauth.socialaccount.providers.openid_connect"; add
"allauth.account.middleware.AccountMiddleware"; path("accounts/", include("allauth.urls")).
Register the app in the IdP admin with the redirect URI
https://<your app>/accounts/oidc/company/login/callback/. deploy/demo-app uses exactly this.
"""

import os

COMPANY_IDP = os.environ["COMPANY_IDP_ISSUER"]  # e.g. https://idp.example.com

AUTHENTICATION_BACKENDS = ["allauth.account.auth_backends.AuthenticationBackend"]
SOCIALACCOUNT_ONLY = True  # no local passwords: every sign-in goes through the IdP
ACCOUNT_EMAIL_VERIFICATION = "none"  # the IdP has verified the address (email_verified)
SOCIALACCOUNT_AUTO_SIGNUP = True
SOCIALACCOUNT_STORE_TOKENS = True  # keeps the refresh token
SOCIALACCOUNT_PROVIDERS = {
    "openid_connect": {
        "OAUTH_PKCE_ENABLED": True,  # required by the IdP
        "APPS": [
            {
                "provider_id": "company",
                "name": "Company",
                "client_id": os.environ["COMPANY_IDP_CLIENT_ID"],
                "secret": os.environ["COMPANY_IDP_CLIENT_SECRET"],
                "settings": {
                    "server_url": COMPANY_IDP,
                    "token_auth_method": "client_secret_basic",
                    "scope": ["openid", "profile", "email"],
                },
            }
        ],
    }
}
