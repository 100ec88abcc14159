// A Node app signing in with the company IdP over SAML 2.0, with @node-saml/node-saml.
//
// npm install @node-saml/node-saml@5.1.0
// Register the app in the IdP with the metadata `serviceProviderMetadata()` returns (admin:
// Register an app → SAML 2.0, or `manage.py clients create --kind saml --saml-metadata FILE`).
import { SAML, ValidateInResponseTo } from "@node-saml/node-saml";

const EMAIL = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress";

// The IdP's signing certificates from its metadata: the current one, and during a key
// rollover the next and previous ones too. Read again every hour, so a new key is trusted
// before the IdP signs with it.
export function idpCertificates(idpBaseUrl, { maxAgeMs = 3_600_000 } = {}) {
  let certificates = null;
  let fetchedAt = 0;
  return (callback) => {
    if (certificates && Date.now() - fetchedAt < maxAgeMs) return callback(null, certificates);
    fetch(`${idpBaseUrl}/saml/metadata/`)
      .then((response) => {
        if (!response.ok) throw new Error(`IdP metadata: HTTP ${response.status}`);
        return response.text();
      })
      .then((xml) => {
        // The base64 text of every <ds:X509Certificate> (node-saml accepts it without PEM armour).
        const found = [...xml.matchAll(/<ds:X509Certificate>([^<]+)</g)].map((m) =>
          m[1].replace(/\s+/g, ""),
        );
        if (found.length === 0) throw new Error("IdP metadata lists no certificate");
        certificates = found;
        fetchedAt = Date.now();
        callback(null, certificates);
      })
      .catch((error) => callback(error));
  };
}

// idpBaseUrl: the IdP's issuer (https://idp.example.com); appBaseUrl: this app's public URL;
// privateKey / certificate: this app's own key pair (PEM), for signing its requests.
export function companySaml({ idpBaseUrl, appBaseUrl, privateKey, certificate }) {
  const saml = new SAML({
    entryPoint: `${idpBaseUrl}/saml/sso/redirect/`,
    idpIssuer: `${idpBaseUrl}/saml/metadata/`,
    idpCert: idpCertificates(idpBaseUrl),
    issuer: `${appBaseUrl}/saml/metadata`, // this app's entity ID
    audience: `${appBaseUrl}/saml/metadata`,
    callbackUrl: `${appBaseUrl}/saml/acs`, // the ACS URL
    identifierFormat: EMAIL,
    wantAssertionsSigned: true, // the IdP always signs the assertion
    wantAuthnResponseSigned: false, // true if the app is registered with "sign the response"
    privateKey, // signs the AuthnRequest (the IdP refuses unsigned ones if told to)
    publicCert: certificate,
    signatureAlgorithm: "sha256",
    // Asking for none, the IdP states the strongest class the session used (password, or
    // REFEDS MFA); `authnContext: ["https://refeds.org/profile/mfa"]` would require a second
    // factor instead (node-saml asks for exactly PasswordProtectedTransport by default).
    disableRequestedAuthnContext: true,
    // SP-initiated responses must answer a request of ours; IdP-initiated ones (from the
    // company's app launcher) carry no InResponseTo.
    validateInResponseTo: ValidateInResponseTo.ifPresent,
    acceptedClockSkewMs: 60_000,
  });
  return {
    // Where to send the browser to sign in (HTTP-Redirect binding); relayState comes back.
    signInUrl: (relayState = "") => saml.getAuthorizeUrlAsync(relayState, undefined, {}),
    // The POST to the ACS URL: { SAMLResponse, RelayState } → the person (throws if invalid).
    async finishSignIn(body) {
      const { profile } = await saml.validatePostResponseAsync(body);
      return {
        nameID: profile.nameID,
        email: profile.email,
        name: profile.name,
        groups: [].concat(profile.groups ?? []),
        relayState: body.RelayState ?? "",
      };
    },
    serviceProviderMetadata: () => saml.generateServiceProviderMetadata(null, certificate),
  };
}
