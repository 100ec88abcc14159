// Runs docs/snippets/spa_pkce.mjs in Node 20 (fetch and Web Crypto built in) for
// tests/docs/test_snippets.py: reads a JSON payload on stdin, prints a JSON result.
import { startSignIn, finishSignIn } from '../../docs/snippets/spa_pkce.mjs';

class MemoryStorage {
  constructor(items = {}) { this.items = { ...items }; }
  getItem(key) { return key in this.items ? this.items[key] : null; }
  setItem(key, value) { this.items[key] = String(value); }
  removeItem(key) { delete this.items[key]; }
}

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const payload = JSON.parse(Buffer.concat(chunks).toString());
const storage = new MemoryStorage(payload.storage);
const config = { ...payload, storage };
const step = process.argv[2];

if (step === 'start') {
  const url = await startSignIn(config);
  console.log(JSON.stringify({ url, storage: storage.items }));
} else if (step === 'finish') {
  console.log(JSON.stringify(await finishSignIn(config)));
} else if (step === 'finish-expecting-error') {
  try {
    await finishSignIn(config);
    console.log(JSON.stringify({ error: null }));
  } catch (error) {
    console.log(JSON.stringify({ error: error.message }));
  }
} else {
  throw new Error(`unknown step ${step}`);
}
