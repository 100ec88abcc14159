// A single-page app signs users in with the company IdP: authorization code + PKCE (S256), no
// client secret (a browser cannot keep one). Register the app in the IdP admin as
// "Single-page app"; its redirect URI's origin is then allowed to call the token endpoint (CORS).
// No library needed: fetch and Web Crypto. Keep tokens in memory, not in localStorage.

const b64url = (bytes) =>
  btoa(String.fromCharCode(...new Uint8Array(bytes)))
    .replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');

const random = (size = 32) => b64url(crypto.getRandomValues(new Uint8Array(size)));

async function discover(issuer) {
  const response = await fetch(`${issuer}/.well-known/openid-configuration`);
  if (!response.ok) throw new Error(`discovery failed: ${response.status}`);
  return response.json();
}

// Step 1: build the sign-in URL and remember state, nonce and the PKCE verifier for step 2.
export async function startSignIn({ issuer, clientId, redirectUri, storage = sessionStorage }) {
  const metadata = await discover(issuer);
  const verifier = random(48);
  const challenge = b64url(
    await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier)),
  );
  const state = random();
  const nonce = random();
  storage.setItem('oidc', JSON.stringify({ verifier, state, nonce }));
  const url = new URL(metadata.authorization_endpoint);
  url.search = new URLSearchParams({
    response_type: 'code',
    client_id: clientId,
    redirect_uri: redirectUri,
    scope: 'openid profile email',
    state,
    nonce,
    code_challenge: challenge,
    code_challenge_method: 'S256',
  }).toString();
  return url.href;
}

// Step 2: on the redirect URI page. Checks state and iss (RFC 9207), exchanges the code.
export async function finishSignIn({
  issuer, clientId, redirectUri, callbackUrl = location.href, storage = sessionStorage,
}) {
  const metadata = await discover(issuer);
  const pending = JSON.parse(storage.getItem('oidc') || 'null');
  storage.removeItem('oidc');
  const params = new URL(callbackUrl).searchParams;
  if (!pending || params.get('state') !== pending.state) throw new Error('state mismatch');
  if (params.get('iss') !== metadata.issuer) throw new Error('response from another issuer');
  if (params.get('error')) throw new Error(`sign-in refused: ${params.get('error')}`);
  const response = await fetch(metadata.token_endpoint, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'authorization_code',
      code: params.get('code'),
      redirect_uri: redirectUri,
      client_id: clientId,
      code_verifier: pending.verifier,
    }),
  });
  const tokens = await response.json();
  if (!response.ok) throw new Error(`token request failed: ${tokens.error}`);
  // Who signed in: ask the IdP (the access token proves it); a browser app does not need to
  // verify the ID token's signature itself when it uses UserInfo for identity.
  const userinfo = await fetch(metadata.userinfo_endpoint, {
    headers: { Authorization: `Bearer ${tokens.access_token}` },
  });
  if (!userinfo.ok) throw new Error(`userinfo failed: ${userinfo.status}`);
  return { tokens, user: await userinfo.json() };
}
