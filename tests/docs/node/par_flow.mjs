// Pushed authorization requests (RFC 9126) with private_key_jwt (RFC 7523) and DPoP (RFC 9449) in
// openid-client, for tests/docs/test_openid_client_par.py:
//   node par_flow.mjs ISSUER CLIENT_ID REDIRECT_URI JWK
// Prints one JSON line with the authorization URL built from the pushed request; reads the
// callback URL the browser reached from standard input; redeems the code, calls userinfo and
// refreshes, every request with a DPoP proof of one key pair; prints one JSON line with what
// came back.
import * as client from 'openid-client';
import { createInterface } from 'node:readline';

const [issuer, clientId, redirectUri, jwkJson] = process.argv.slice(2);
const jwk = JSON.parse(jwkJson);
// RS256 for an RSA key; ES256 for an EC P-256 key (a high-security client: FAPI 2.0 §5.4.1).
const algorithm = jwk.kty === 'EC'
  ? { name: 'ECDSA', namedCurve: 'P-256' }
  : { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' };
const key = await crypto.subtle.importKey('jwk', jwk, algorithm, false, ['sign']);
const config = await client.discovery(
  new URL(issuer),
  clientId,
  undefined,
  client.PrivateKeyJwt({ key, kid: jwk.kid }),
  // The test's IdP is a loopback http server; never in production.
  { execute: [client.allowInsecureRequests] },
);

// One key pair for the whole session: each request carries a proof signed with it (openid-client
// answers a use_dpop_nonce challenge by itself).
const DPoP = client.getDPoPHandle(config, await client.randomDPoPKeyPair('ES256'));

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
}, { DPoP });
console.log(JSON.stringify({ url: url.href }));

const lines = createInterface({ input: process.stdin });
for await (const callback of lines) {
  const tokens = await client.authorizationCodeGrant(config, new URL(callback), {
    pkceCodeVerifier: verifier,
    expectedState: state,
    expectedNonce: nonce,
  }, undefined, { DPoP });
  const claims = tokens.claims();
  const userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub, { DPoP });
  const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token, undefined, { DPoP });
  console.log(JSON.stringify({
    claims,
    access_token: tokens.access_token,
    token_type: tokens.token_type,
    userinfo,
    refreshed_access_token: refreshed.access_token,
    refreshed_token_type: refreshed.token_type,
  }));
  break;
}
