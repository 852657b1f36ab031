// Past six connections: the page's own queue and replicas of one model.
//
// - Three scripted endpoints (three ports) as the base URL and two replicas: the requests are
//   spread over them, none gets more than its limit, and 16 or more are in flight at once.
// - One of them goes away in the middle of a run: it is taken out, and the run still ends with
//   every trajectory accepted.
// - A short timeout and a concurrency far above what the browser opens: no request times out,
//   because a request's timeout starts only when the page sends it.
// - A second judge on its own endpoint goes through a queue of its own, its concurrency as the
//   limit, and none of its requests times out while it waits either.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startEndpoint } from './support/endpoint.mjs';
import { configure, dropFiles, numberIn, openApp, runToEnd, setField } from './support/browser.mjs';
import { acceptFile } from './support/trajectories.mjs';

const sleep = (ms) => new Promise((ok) => setTimeout(ok, ms));

/** A latency shared by several endpoints that counts the requests waiting on any of them. */
function sharedLatency(ms) {
  const all = { now: 0, max: 0 };
  const delayMs = async () => {
    all.now += 1;
    all.max = Math.max(all.max, all.now);
    await sleep(ms);
    all.now -= 1;
    return 0;
  };
  return { all, delayMs };
}

async function stat(page, testid) {
  return numberIn(await page.getByTestId(testid).textContent());
}

/**
 * Three endpoints answering after `latency` ms and the app with `trajectories` accept
 * trajectories loaded: `{all, eps, app, page}`; `done()` closes them all.
 */
async function threeEndpoints(latency, trajectories) {
  const { all, delayMs } = sharedLatency(latency);
  const eps = await Promise.all([0, 1, 2].map(() => startEndpoint({ delayMs })));
  let app;
  const done = async () => {
    await app?.close();
    await Promise.all(eps.map((ep) => ep.close()));
  };
  try {
    app = await openApp();
    await dropFiles(app.page, [await acceptFile(trajectories)]);
  } catch (err) {
    await done();
    throw err;
  }
  return { all, eps, app, page: app.page, done };
}

test('requests are spread over three endpoints, 16 or more in flight at once', async () => {
  const trajectories = 60;
  const { all, eps, app, page, done } = await threeEndpoints(300, trajectories);
  try {
    await configure(page, { baseUrl: eps[0].url, model: 'scripted-model', fields: { concurrency: 18 } });
    // One endpoint: the run panel says the browser opens 6 connections, not 18.
    const note = page.getByTestId('connection-note');
    await note.waitFor();
    assert.match(await note.textContent(), /Concurrency 18 .* 6 requests .*HTTP\/1\.1/);
    await setField(page, 'replicas', `${eps[1].url}\n${eps[2].url}`);
    await configure(page, {});
    await note.waitFor({ state: 'detached' });

    await runToEnd(page);
    assert.equal(await stat(page, 'progress-accepted'), trajectories);
    assert.equal(await stat(page, 'progress-retries'), 0);
    const chats = eps.map((ep) => ep.counts().chat);
    assert.equal(chats.reduce((a, b) => a + b, 0), trajectories * 3);
    for (const [i, ep] of eps.entries()) {
      assert.ok(chats[i] >= trajectories / 2, `endpoint ${i} answered ${chats[i]} of ${trajectories * 3}`);
      assert.ok(ep.concurrency().max <= 6, `endpoint ${i} had ${ep.concurrency().max} at once`);
    }
    assert.ok(all.max >= 16, `at most ${all.max} requests in flight at once`);
    await app.checkConsole();
  } finally {
    await done();
  }
});

test('an endpoint that goes away mid-run is taken out and the run still finishes', async () => {
  const trajectories = 60;
  const { eps, app, page, done } = await threeEndpoints(200, trajectories);
  try {
    await configure(page, {
      baseUrl: eps[0].url,
      model: 'scripted-model',
      fields: { concurrency: 18, replicas: `${eps[1].url}\n${eps[2].url}` },
    });
    await page.getByTestId('run').click();
    // Once the run is well under way, the second endpoint goes away for good.
    while (eps[1].counts().chat < 10) await sleep(10);
    await eps[1].stopListening();
    const answeredBefore = eps[1].counts().chat;
    await page
      .getByTestId('run-panel')
      .and(page.locator('[data-state="done"]'))
      .waitFor({ timeout: 60_000 });
    assert.equal(await stat(page, 'progress-accepted'), trajectories);
    assert.equal(await stat(page, 'progress-failed'), 0);
    assert.equal(eps[1].counts().chat, answeredBefore);
    // Only the requests in flight there when it went (at most its limit of 6), and the
    // occasional trial request once its time out is over, had to be retried: sending it a
    // third of the traffic all along would have cost dozens.
    const retries = await stat(page, 'progress-retries');
    assert.ok(retries >= 1 && retries <= 12, `${retries} retries`);
    await app.checkConsole([/Failed to load resource: net::ERR_/]);
  } finally {
    await done();
  }
});

test('a short timeout at a high concurrency: no request times out while it waits its turn', async () => {
  // 400 ms a reply, a 1 s timeout, 32 trajectories at once against one endpoint: the browser
  // opens 6 connections, so most requests wait longer than the timeout before they are sent.
  const ep = await startEndpoint({ delayMs: 400 });
  const app = await openApp();
  try {
    const { page } = app;
    const trajectories = 32;
    await dropFiles(page, [await acceptFile(trajectories)]);
    await configure(page, { baseUrl: ep.url, model: 'scripted-model', fields: { concurrency: 32, timeout: 1 } });
    await runToEnd(page);
    assert.equal(await stat(page, 'progress-accepted'), trajectories);
    assert.equal(await stat(page, 'progress-retries'), 0);
    assert.equal(ep.counts().chat, trajectories * 3);
    assert.equal(ep.requests.filter((r) => r.lost).length, 0);
    assert.ok(ep.concurrency().max <= 6);
    await app.checkConsole();
  } finally {
    await app.close();
    await ep.close();
  }
});

test('the judge on its own endpoint has its own queue: its concurrency in flight, no timeout while waiting', async () => {
  // The judge answers after 400 ms, two at a time, with a 1 s timeout and 24 trajectories at
  // once: most judge requests wait far longer than the timeout before they are sent.
  const main = await startEndpoint({});
  const judge = await startEndpoint({ delayMs: 400 });
  const app = await openApp();
  try {
    const { page } = app;
    const trajectories = 24;
    await dropFiles(page, [await acceptFile(trajectories)]);
    await configure(page, {
      baseUrl: main.url,
      model: 'scripted-model',
      fields: { concurrency: 24, timeout: 1, 'judge-base-url': judge.url, 'judge-model': 'scripted-model', 'judge-concurrency': 2 },
    });
    await runToEnd(page);
    assert.equal(await stat(page, 'progress-accepted'), trajectories);
    assert.equal(await stat(page, 'progress-retries'), 0);
    assert.equal(judge.counts().chat, trajectories, 'one judge call each');
    assert.equal(main.counts().chat, trajectories * 2, 'no judge call on the main endpoint');
    assert.equal(judge.requests.filter((r) => r.lost).length, 0);
    assert.equal(judge.concurrency().max, 2);
    await app.checkConsole();
  } finally {
    await app.close();
    await main.close();
    await judge.close();
  }
});
