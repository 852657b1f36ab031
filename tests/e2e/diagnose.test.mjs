// "Check connection" against endpoints that fail in the ways users meet: no CORS, nothing
// listening, a missing API key, an unknown model, a wrong base URL. Each verdict must name the
// problem and say how to fix it.

import { describe, test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { startEndpoint } from './support/endpoint.mjs';
import { NETWORK_ERRORS, checkConnection, closedPort, configure, openApp } from './support/browser.mjs';

describe('check connection', () => {
  let app, open, nocors, keyed;
  before(async () => {
    open = await startEndpoint({});
    nocors = await startEndpoint({ cors: false });
    keyed = await startEndpoint({ apiKey: 'sk-test-diagnose-7' });
    app = await openApp();
  });
  after(async () => {
    await app?.close();
    await open?.close();
    await nocors?.close();
    await keyed?.close();
  });
  beforeEach(() => {
    app.seen.errors.length = 0;
  });

  test('an endpoint without CORS headers: the CORS verdict, with OLLAMA_ORIGINS for this origin', async () => {
    const { page } = app;
    await configure(page, { baseUrl: nocors.url, model: 'scripted-model', apiKey: '' });
    const verdict = await checkConnection(page);
    assert.equal(verdict.status, 'error', verdict.text);
    assert.match(verdict.text, /CORS/);
    assert.match(verdict.text, /OLLAMA_ORIGINS/);
    const origin = new URL(app.url).origin;
    assert.ok(verdict.text.includes(origin), `the advice names the page's origin ${origin}: ${verdict.text}`);
    assert.match(verdict.text, /--cors-origins/);
    assert.doesNotMatch(verdict.text, /Nothing answers/);
    // The server did answer: the browser sent the request (or its preflight) there.
    assert.ok(nocors.requests.length > 0);
    await app.checkConsole(NETWORK_ERRORS.cors);
  });

  test('a closed port: nothing answers, with how to start a server', async () => {
    const { page } = app;
    const port = await closedPort();
    await configure(page, { baseUrl: `http://127.0.0.1:${port}/v1`, model: 'scripted-model' });
    const verdict = await checkConnection(page);
    assert.equal(verdict.status, 'error', verdict.text);
    assert.match(verdict.text, /Nothing answers at this address/);
    assert.match(verdict.text, /Check that the server is running/);
    assert.doesNotMatch(verdict.text, /CORS/);
    await app.checkConsole(NETWORK_ERRORS.refused);
  });

  test('an endpoint that needs an API key: refused without it, connected with it', async () => {
    const { page } = app;
    await configure(page, { baseUrl: keyed.url, model: 'scripted-model', apiKey: '' });
    const refused = await checkConnection(page);
    assert.equal(refused.status, 'error', refused.text);
    assert.match(refused.text, /refused the API key \(HTTP 401\)/);
    assert.match(refused.text, /Check the API key/);
    assert.match(refused.text, /You didn't provide an API key/, 'the server message is passed on');
    assert.equal(keyed.counts().unauthorized, 1);

    await configure(page, { apiKey: 'sk-test-wrong' });
    const wrong = await checkConnection(page);
    assert.equal(wrong.status, 'error', wrong.text);
    assert.match(wrong.text, /Incorrect API key provided/);

    await configure(page, { apiKey: 'sk-test-diagnose-7' });
    const ok = await checkConnection(page);
    assert.equal(ok.status, 'ok', ok.text);
    assert.match(ok.text, /Connected: the endpoint serves 2 models/);
    const sent = keyed.requests.filter((r) => r.kind === 'models').map((r) => r.headers.authorization);
    assert.deepEqual(sent, [undefined, 'Bearer sk-test-wrong', 'Bearer sk-test-diagnose-7']);
    await app.checkConsole([NETWORK_ERRORS.status(401)]);
  });

  test('an unknown model: the list of the models the endpoint serves', async () => {
    const { page } = app;
    await configure(page, { baseUrl: open.url, model: 'no-such-model', apiKey: '' });
    const unknown = await checkConnection(page);
    assert.equal(unknown.status, 'error', unknown.text);
    assert.match(unknown.text, /does not serve the model "no-such-model"/);
    assert.match(unknown.text, /Choose one of: scripted-model, scripted-judge\./);

    await configure(page, { model: 'scripted-judge' });
    const ok = await checkConnection(page);
    assert.equal(ok.status, 'ok', ok.text);
    await app.checkConsole();
  });

  test('a base URL without /v1: no /models there, with where the base URL should end', async () => {
    const { page } = app;
    await configure(page, { baseUrl: open.url.replace(/\/v1$/, ''), model: 'scripted-model' });
    const verdict = await checkConnection(page);
    assert.equal(verdict.status, 'error', verdict.text);
    assert.match(verdict.text, /No \/models at this address \(HTTP 404\)/);
    assert.match(verdict.text, /usually with \/v1/);
    await app.checkConsole([NETWORK_ERRORS.status(404)]);
  });
});
