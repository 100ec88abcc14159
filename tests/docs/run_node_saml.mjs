// Runs docs/snippets/node_saml.mjs for tests/docs/test_saml_guides.py, in one process (node-saml
// remembers the request IDs it sent in memory): prints the SP metadata and the sign-in URL as one
// JSON line, reads {SAMLResponse, RelayState} as one JSON line, prints the person or the error.
import { createInterface } from "node:readline";
import { companySaml } from "./node_saml.mjs";

const config = JSON.parse(process.argv[2]);
const app = companySaml(config);
const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();

console.log(JSON.stringify({ metadata: app.serviceProviderMetadata() }));
for (;;) {
  const { value, done } = await lines.next();
  if (done) break;
  const message = JSON.parse(value);
  try {
    if (message.step === "start") {
      console.log(JSON.stringify({ url: await app.signInUrl(message.relayState) }));
    } else {
      console.log(JSON.stringify({ person: await app.finishSignIn(message.body) }));
    }
  } catch (error) {
    console.log(JSON.stringify({ error: String(error && error.message) }));
  }
}
