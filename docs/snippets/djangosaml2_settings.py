"""settings.py additions for a Django app signing in with the company IdP over SAML 2.0 via
djangosaml2 (which runs pysaml2).

pip install djangosaml2 (and apt-get install xmlsec1). Add "djangosaml2" to INSTALLED_APPS,
"djangosaml2.middleware.SamlSessionMiddleware" after the session middleware, and
path("saml2/", include("djangosaml2.urls")). Make a key pair for the app (SAML_APP_KEY_FILE,
SAML_APP_CERT_FILE) and register the app in the IdP with the metadata djangosaml2 serves at
https://<your app>/saml2/metadata/.
"""

import os
import shutil

import saml2
import saml2.saml

COMPANY_IDP = os.environ["COMPANY_IDP_ISSUER"]  # e.g. https://idp.example.com
APP_URL = os.environ["APP_BASE_URL"]  # e.g. https://wiki.example.com

AUTHENTICATION_BACKENDS = ["djangosaml2.backends.Saml2Backend"]
LOGIN_URL = "/saml2/login/"
SESSION_COOKIE_SECURE = True
# The SAML response comes back as a cross-site POST: djangosaml2 keeps the request it sent in
# its own cookie (SameSite=None), which only travels over https.
SAML_SESSION_COOKIE_NAME = "saml_session"

# Who the person is: the NameID (here the email address) finds or creates the Django user.
SAML_DJANGO_USER_MAIN_ATTRIBUTE = "email"
SAML_USE_NAME_ID_AS_USERNAME = False
SAML_CREATE_UNKNOWN_USER = True
# The IdP's attributes (the claim names unless the app's attribute names rename them) → fields.
SAML_ATTRIBUTE_MAPPING = {
    "email": ("email",),
    "given_name": ("first_name",),
    "family_name": ("last_name",),
}

SAML_CONFIG = {
    "xmlsec_binary": shutil.which("xmlsec1") or "/usr/bin/xmlsec1",
    "entityid": f"{APP_URL}/saml2/metadata/",
    # Our metadata, read at start: every signing certificate the IdP publishes (during a key
    # rollover, the next one too). Restart the app (or refresh) at least daily.
    "metadata": {"remote": [{"url": f"{COMPANY_IDP}/saml/metadata/"}]},
    "key_file": os.environ["SAML_APP_KEY_FILE"],
    "cert_file": os.environ["SAML_APP_CERT_FILE"],
    # The attributes keep the IdP's names (no OID translation).
    "allow_unknown_attributes": True,
    "accepted_time_diff": 60,
    "service": {
        "sp": {
            "name": "Wiki",
            "name_id_format": saml2.saml.NAMEID_FORMAT_EMAILADDRESS,
            "endpoints": {
                "assertion_consumer_service": [(f"{APP_URL}/saml2/acs/", saml2.BINDING_HTTP_POST)],
                "single_logout_service": [
                    (f"{APP_URL}/saml2/ls/", saml2.BINDING_HTTP_REDIRECT),
                    (f"{APP_URL}/saml2/ls/post/", saml2.BINDING_HTTP_POST),
                ],
            },
            "want_assertions_signed": True,  # the IdP always signs the assertion
            "want_response_signed": False,  # True if the app is registered with "sign the response"
            "authn_requests_signed": True,
            "signing_algorithm": "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
            "digest_algorithm": "http://www.w3.org/2001/04/xmlenc#sha256",
            # IdP-initiated sign-in (from the company's app launcher) sends an unsolicited
            # response; djangosaml2 accepts it only if this is on.
            "allow_unsolicited": True,
            "only_use_keys_in_metadata": True,
        }
    },
}
