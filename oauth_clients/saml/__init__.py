"""The SAML 2.0 identity provider (Web Browser SSO Profile) on pysaml2, beside the OIDC engine.

Floors as for `oauth_clients/oidc/`: it reads people (`accounts`) and the registry
(`oauth_clients.models.SamlServiceProvider`, `oauth_clients.access`), uses the OIDC engine's
public helpers (the one claims function, the access audit) and is imported by nothing below it.

- `keys.py`: an X.509 certificate for each published RSA signing key; key files for xmlsec1.
- `xmlsec.py`: xmlsec1 (pysaml2's signer) started without the system's CA bundle it never uses.
- `idp.py`: pysaml2's configuration built in code, the IdP `Server` per service provider
  (cached per process), the IdP metadata document.
- `authn_request.py`: an AuthnRequest read and checked (bindings, signature, time, replay).
- `response.py`: the Response: NameID, authentication context, attributes, signature, audit.
- `state.py`: what the browser session keeps (pending requests, the SPs it signed in to).
- `errors.py`: every refusal, its SAML status and the words the person reads, in one place.
- `views.py`, `urls.py`: `/saml/metadata/`, `/saml/sso/redirect/`, `/saml/sso/post/`, the resume
  step after sign-in, and IdP-initiated sign-in from the app launcher.
- Single logout (Profiles §4.4): `logout_request.py` (an app's LogoutRequest checked), `slo.py`
  (our LogoutRequests and LogoutResponses), `slo_delivery.py` (which apps of an ended session
  are told, through the browser or over SOAP, and the delivery log), `slo_views.py`
  (`/saml/slo/redirect/`, `/saml/slo/post/` and the steps after them).
"""

import warnings

from cryptography.utils import CryptographyDeprecationWarning

# pysaml2 7.5 names cryptography's CFB mode, which cryptography has moved (it is never used
# here: no encryption is offered); the notice would print on every start.
warnings.filterwarnings(
    "ignore", message="CFB has been moved", category=CryptographyDeprecationWarning
)
