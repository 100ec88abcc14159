// Sign users in with the company IdP from a Node.js web app, with openid-client (v6).
// npm install openid-client. Your framework keeps `pending` in the user's session between the
// two steps and sends the browser to `url`; the IdP sends it back to your redirect URI.
import * as client from 'openid-client';

const issuer = new URL(process.env.COMPANY_IDP_ISSUER); // e.g. https://idp.example.com
const redirectUri = process.env.COMPANY_IDP_REDIRECT_URI; // registered in the IdP admin

// Discovery, once at start-up: the IdP's endpoints and signing keys.
export const config = await client.discovery(
  issuer,
  process.env.COMPANY_IDP_CLIENT_ID,
  process.env.COMPANY_IDP_CLIENT_SECRET,
  undefined,
  // Only for the loopback dev IdP (make demo, http://127.0.0.1:8000); never in production.
  issuer.protocol === 'http:' ? { execute: [client.allowInsecureRequests] } : undefined,
);

// Step 1: where to send the browser (authorization code + PKCE, required by the IdP).
export async function startSignIn() {
  const codeVerifier = client.randomPKCECodeVerifier();
  const codeChallenge = await client.calculatePKCECodeChallenge(codeVerifier);
  const state = client.randomState();
  const nonce = client.randomNonce();
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri,
    scope: 'openid profile email',
    code_challenge: codeChallenge,
    code_challenge_method: 'S256',
    state,
    nonce,
  });
  return { url: url.href, pending: { codeVerifier, state, nonce } };
}

// Step 2: the browser is back at your redirect URI. Checks state, iss, nonce and the ID token.
export async function finishSignIn(currentUrl, pending) {
  const tokens = await client.authorizationCodeGrant(config, new URL(currentUrl), {
    pkceCodeVerifier: pending.codeVerifier,
    expectedState: pending.state,
    expectedNonce: pending.nonce,
    idTokenExpected: true,
  });
  return { claims: tokens.claims(), tokens };
}

// New tokens before the access token expires; store the rotated refresh token it returns.
export async function refresh(refreshToken) {
  return client.refreshTokenGrant(config, refreshToken);
}

// Sign out at the IdP too (RP-Initiated Logout); register postLogoutRedirectUri in the admin.
export function signOutUrl(idToken, postLogoutRedirectUri) {
  return client.buildEndSessionUrl(config, {
    id_token_hint: idToken,
    post_logout_redirect_uri: postLogoutRedirectUri,
  }).href;
}
