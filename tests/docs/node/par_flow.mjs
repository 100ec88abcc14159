// Pushed authorization requests (RFC 9126) with private_key_jwt (RFC 7523) in openid-client, for
// tests/docs/test_openid_client_par.py: node par_flow.mjs ISSUER CLIENT_ID REDIRECT_URI JWK.
// Prints one JSON line with the authorization URL built from the pushed request; reads the
// callback URL the browser reached from standard input; prints one JSON line with the tokens.
import * as client from 'openid-client';
import { createInterface } from 'node:readline';

const [issuer, clientId, redirectUri, jwkJson] = process.argv.slice(2);
const jwk = JSON.parse(jwkJson);
const key = await crypto.subtle.importKey(
  'jwk', jwk, { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' }, false, ['sign'],
);
const config = await client.discovery(
  new URL(issuer),
  clientId,
  undefined,
  client.PrivateKeyJwt({ key, kid: jwk.kid }),
  // The test's IdP is a loopback http server; never in production.
  { execute: [client.allowInsecureRequests] },
);

const verifier = client.randomPKCECodeVerifier();
const state = client.randomState();
const nonce = client.randomNonce();
// POSTs the request to pushed_authorization_request_endpoint, then builds
// authorize?client_id=...&request_uri=...
const url = await client.buildAuthorizationUrlWithPAR(config, {
  redirect_uri: redirectUri,
  scope: 'openid profile email',
  code_challenge: await client.calculatePKCECodeChallenge(verifier),
  code_challenge_method: 'S256',
  state,
  nonce,
});
console.log(JSON.stringify({ url: url.href }));

const lines = createInterface({ input: process.stdin });
for await (const callback of lines) {
  const tokens = await client.authorizationCodeGrant(config, new URL(callback), {
    pkceCodeVerifier: verifier,
    expectedState: state,
    expectedNonce: nonce,
  });
  console.log(JSON.stringify({ claims: tokens.claims(), access_token: tokens.access_token }));
  break;
}
