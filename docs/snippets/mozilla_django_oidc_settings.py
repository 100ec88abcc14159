"""settings.py additions for a Django app signing in with the company IdP via mozilla-django-oidc.

pip install mozilla-django-oidc. Add "mozilla_django_oidc" to INSTALLED_APPS and
path("oidc/", include("mozilla_django_oidc.urls")) to urls.py; register the app in the IdP admin
with the redirect URI https://<your app>/oidc/callback/.
"""

import os

COMPANY_IDP = os.environ["COMPANY_IDP_ISSUER"]  # e.g. https://idp.example.com

AUTHENTICATION_BACKENDS = ["mozilla_django_oidc.auth.OIDCAuthenticationBackend"]
OIDC_RP_CLIENT_ID = os.environ["COMPANY_IDP_CLIENT_ID"]
OIDC_RP_CLIENT_SECRET = os.environ["COMPANY_IDP_CLIENT_SECRET"]
OIDC_RP_SCOPES = "openid profile email"
OIDC_RP_SIGN_ALGO = "RS256"  # ID tokens are signed with the IdP's RSA keys
OIDC_USE_PKCE = True  # required by the IdP
OIDC_OP_AUTHORIZATION_ENDPOINT = f"{COMPANY_IDP}/o/authorize/"
OIDC_OP_TOKEN_ENDPOINT = f"{COMPANY_IDP}/o/token/"
OIDC_OP_USER_ENDPOINT = f"{COMPANY_IDP}/o/userinfo/"
OIDC_OP_JWKS_ENDPOINT = f"{COMPANY_IDP}/.well-known/jwks.json"
OIDC_OP_LOGOUT_ENDPOINT = f"{COMPANY_IDP}/o/logout/"
OIDC_STORE_ID_TOKEN = True  # kept for id_token_hint at sign-out
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/"
