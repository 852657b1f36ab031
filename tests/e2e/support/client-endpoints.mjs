// Starts the endpoints the browser unit tests of the fetch client call, prints their URLs as
// one JSON line on stdout, and runs until SIGTERM / SIGINT.
//
//   open:   scripted endpoint with CORS
//   nocors: the same without any CORS header (the browser hides its answers from the page)
//   keyed:  requires `Authorization: Bearer sk-test-key`
//   slow:   answers after 3 s (for timeouts)
//   busy:   answers every call with HTTP 429 and `Retry-After: 7`
//   busydate: answers every call with HTTP 503 and a `Retry-After` date 30 s ahead
//   closed: an address where nothing listens
//
// Used by .ci/test: `AGENTHER_TEST_ENDPOINTS=<that line> cargo test --target wasm32... --test client`.
// Not named test-*.mjs: `node --test` runs such files as tests, and this one never exits.

import net from 'node:net';
import { startEndpoint } from './endpoint.mjs';

async function closedPort() {
  const server = net.createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

const endpoints = {
  open: await startEndpoint({}),
  // The test runner's page is cross-origin isolated (COEP require-corp), which hides even an
  // opaque answer unless it carries a CORP header; an ordinary page, like the app's, needs none.
  nocors: await startEndpoint({
    cors: false,
    headers: { 'Cross-Origin-Resource-Policy': 'cross-origin' },
  }),
  keyed: await startEndpoint({ apiKey: 'sk-test-key' }),
  slow: await startEndpoint({ delayMs: 3000 }),
  busy: await startEndpoint({ fail: () => ({ status: 429, headers: { 'Retry-After': '7' } }) }),
  busydate: await startEndpoint({
    fail: () => ({ status: 503, headers: { 'Retry-After': new Date(Date.now() + 30_000).toUTCString() } }),
  }),
};
const urls = Object.fromEntries(Object.entries(endpoints).map(([k, v]) => [k, v.url]));
urls.closed = `http://127.0.0.1:${await closedPort()}/v1`;
process.stdout.write(JSON.stringify(urls) + '\n');

async function stop() {
  await Promise.all(Object.values(endpoints).map((e) => e.close().catch(() => {})));
  process.exit(0);
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
