// The device authorization grant (RFC 8628) with openid-client, for
// tests/docs/test_openid_client_device.py: node device_flow.mjs ISSUER CLIENT_ID. Prints one JSON
// line with the codes the device shows, then one with the tokens' claims once a person approved.
import * as client from 'openid-client';

const [issuer, clientId] = process.argv.slice(2);
const config = await client.discovery(
  new URL(issuer),
  clientId,
  undefined,
  client.None(), // a device app is a public client
  // The test's IdP is a loopback http server; never in production.
  { execute: [client.allowInsecureRequests] },
);

const started = await client.initiateDeviceAuthorization(config, { scope: 'openid profile' });
console.log(JSON.stringify({
  user_code: started.user_code,
  verification_uri: started.verification_uri,
  verification_uri_complete: started.verification_uri_complete,
  interval: started.interval,
}));

const tokens = await client.pollDeviceAuthorizationGrant(config, started);
console.log(JSON.stringify({
  claims: tokens.claims(),
  access_token: tokens.access_token,
  refresh_token: tokens.refresh_token,
  scope: tokens.scope,
}));
