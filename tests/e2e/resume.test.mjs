// Nothing lost on reload: the session is saved in the browser as it grows. A run reloaded
// mid-way resumes without sending any completed request again and ends with the same sample
// files as an uninterrupted run; clearing and starting fresh delete the saved copy; without
// IndexedDB the app says so and works in memory.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startEndpoint } from './support/endpoint.mjs';
import {
  DATA,
  configure,
  download,
  jsonLines,
  openApp,
  pickFiles,
  runToEnd,
  storeRecords,
  tableRows,
} from './support/browser.mjs';

const FILES = [join(DATA, 'run-a.jsonl'), join(DATA, 'run-b.jsonl')];
const TRAJECTORIES = 8;
// Two trajectories at once, LLM extraction: 30 chat calls in all (see run.test.mjs).
const SETTINGS = { fields: { concurrency: 2 }, selects: { 'detection-mode': 'rules', 'extraction-mode': 'llm' } };
// The reload comes once this many calls have been answered and both lanes wait on the next.
// The 20 calls left belong to at least three trajectories (seven calls at most each), so two
// are in flight at the reload.
const ANSWERED_BEFORE_RELOAD = 10;
const IN_FLIGHT = 2;

const isChat = (r) => r.method === 'POST' && r.path === '/v1/chat/completions';
const chats = (endpoint) => endpoint.requests.filter(isChat);

/** How many times each request body was sent. */
function bodyCounts(requests) {
  const counts = new Map();
  for (const r of requests) {
    const key = JSON.stringify(r.body);
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return counts;
}

/** A request in a few words: kind, scenario, temperature. */
const label = (r) => `${r.kind} ${r.scenario} t=${r.body.temperature}`;

/** The requests sent a different number of times in `actual` than in `expected`. */
function countDifferences(actual, expected) {
  const a = bodyCounts(actual);
  const e = bodyCounts(expected);
  const labels = new Map([...actual, ...expected].map((r) => [JSON.stringify(r.body), label(r)]));
  return [...labels]
    .filter(([body]) => (a.get(body) ?? 0) !== (e.get(body) ?? 0))
    .map(([body, l]) => `${l}: sent ${a.get(body) ?? 0} times, uninterrupted ${e.get(body) ?? 0}`);
}

/** Waits until `condition()` (or the promise it returns) holds, checking every 25 ms; fails after
 * `timeout` ms. */
async function until(condition, what, timeout = 60_000) {
  const deadline = Date.now() + timeout;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

async function loadAndConfigure(page, endpoint) {
  await pickFiles(page, FILES);
  await page.getByTestId('file-row').nth(1).waitFor();
  await configure(page, { baseUrl: endpoint.url, model: 'scripted-model', ...SETTINGS });
}

async function sampleFiles(page) {
  return {
    sft: (await download(page, 'download-sft')).text,
    dpo: (await download(page, 'download-dpo')).text,
    sharegpt: (await download(page, 'download-sharegpt')).text,
  };
}

/** The session records the page's database holds. */
async function storedSessions(page) {
  return (await storeRecords(page, 'sessions')).map((text) => JSON.parse(text));
}

test('a run reloaded mid-way resumes without repeating a completed call and ends as an uninterrupted run', { timeout: 300_000 }, async () => {
  // The uninterrupted run.
  const plain = await startEndpoint({ delayMs: 20 });
  let expected, uninterrupted;
  let app = await openApp();
  try {
    await loadAndConfigure(app.page, plain);
    await runToEnd(app.page, { timeout: 120_000 });
    expected = await sampleFiles(app.page);
    uninterrupted = chats(plain);
    assert.equal(uninterrupted.length, 30);
    assert.ok(jsonLines(expected.sft).length >= 3, 'some samples to compare');
    await app.checkConsole();
  } finally {
    await app?.close();
    await plain.close();
  }

  // The same run, reloaded while two calls are in flight: they are never answered.
  let holding = true;
  let calls = 0;
  const held = [];
  const endpoint = await startEndpoint({
    delayMs: (record) => {
      if (!isChat(record)) return 0;
      calls += 1;
      if (holding && calls > ANSWERED_BEFORE_RELOAD) {
        held.push(record);
        return new Promise(() => {});
      }
      return 150;
    },
  });
  app = await openApp();
  try {
    const { page } = app;
    await loadAndConfigure(page, endpoint);
    await page.getByTestId('run').click();
    await until(() => held.length === IN_FLIGHT, 'both lanes to wait on a held call');
    const answered = chats(endpoint).filter((r) => !held.includes(r));
    assert.equal(answered.length, ANSWERED_BEFORE_RELOAD);
    assert.ok(answered.every((r) => typeof r.reply === 'string'), 'every earlier call was answered');

    holding = false;
    await app.reload();
    const offer = page.getByTestId('saved-session');
    await offer.waitFor();
    const summary = await page.getByTestId('saved-summary').textContent();
    assert.match(summary, new RegExp(`^${TRAJECTORIES} trajectories in 2 files, \\d+ done$`));
    assert.match(await offer.textContent(), /A run was going on/);
    // Nothing was run again yet.
    assert.equal(chats(endpoint).length, ANSWERED_BEFORE_RELOAD + IN_FLIGHT);

    await page.getByTestId('resume-session').click();
    await offer.waitFor({ state: 'detached' });
    // The interrupted run goes on by itself.
    await page.getByTestId('run-panel').and(page.locator('[data-state="done"]')).waitFor({ timeout: 120_000 });
    const rows = await tableRows(page);
    assert.equal(rows.length, TRAJECTORIES);
    assert.ok(rows.every((r) => !['pending', 'will-skip', 'cancelled', 'failed'].includes(r.status)), JSON.stringify(rows));

    // Every request was answered as often as in the uninterrupted run: none completed before
    // the reload went out again, and the two in flight were sent once more.
    const after = chats(endpoint).slice(ANSWERED_BEFORE_RELOAD + IN_FLIGHT);
    assert.deepEqual(countDifferences([...answered, ...after], uninterrupted), []);
    const resent = bodyCounts(after);
    for (const r of held) assert.ok(resent.has(JSON.stringify(r.body)), `${label(r)} is sent again`);

    const files = await sampleFiles(page);
    assert.equal(files.sft, expected.sft);
    assert.equal(files.dpo, expected.dpo);
    assert.equal(files.sharegpt, expected.sharegpt);

    // The finished session is saved as finished: a reload offers it with every trajectory done.
    await app.reload();
    await offer.waitFor();
    assert.equal(
      await page.getByTestId('saved-summary').textContent(),
      `${TRAJECTORIES} trajectories in 2 files, ${TRAJECTORIES} done`,
    );
    assert.doesNotMatch(await offer.textContent(), /A run was going on/);
    // Resumed, the run panel shows the session as it stands, as the offer counted it.
    await page.getByTestId('resume-session').click();
    await offer.waitFor({ state: 'detached' });
    assert.equal(
      (await page.getByTestId('progress-done').textContent()).trim(),
      `${TRAJECTORIES} / ${TRAJECTORIES}`,
    );
    assert.equal((await page.getByTestId('progress-eta').textContent()).trim(), '–');
    await app.checkConsole();
  } finally {
    await app.close();
    await endpoint.close();
  }
});

test('start fresh, clear and delete all remove saved sessions', { timeout: 120_000 }, async () => {
  const app = await openApp();
  try {
    const { page } = app;
    // Nothing is saved before something is loaded.
    assert.deepEqual(await storedSessions(page), []);
    await page.getByTestId('load-example').click();
    await waitForSessions(page, 1);
    await app.reload();

    // Start fresh deletes the offered session.
    await page.getByTestId('discard-session').click();
    await page.getByTestId('saved-session').waitFor({ state: 'detached' });
    assert.deepEqual(await waitForSessions(page, 0), []);
    await app.reload();
    assert.equal(await page.getByTestId('saved-session').count(), 0);

    // Resume, then Clear: the saved copy goes with the session.
    await page.getByTestId('load-example').click();
    await waitForSessions(page, 1);
    await app.reload();
    await page.getByTestId('resume-session').click();
    await page.getByTestId('file-row').waitFor();
    const [record] = await storedSessions(page);
    assert.equal(record.files, 1);
    assert.equal(record.done, 0);
    assert.equal(record.prefs.api_key, undefined);
    // The saved settings follow the form, and come back with the session.
    await configure(page, { model: 'another-model', fields: { theta: 0.65 } });
    await until(async () => (await storedSessions(page))[0].prefs.model === 'another-model', 'the settings to be saved');
    await app.reload();
    await configure(page, { model: 'not-this-one', fields: { theta: 0.5 } });
    await page.getByTestId('resume-session').click();
    await page.getByTestId('file-row').waitFor();
    assert.equal(await page.getByTestId('model').inputValue(), 'another-model');
    assert.equal(Number(await page.getByTestId('theta').inputValue()), 0.65);
    await page.getByTestId('clear-session').click();
    await waitForSessions(page, 0);
    await app.reload();
    assert.equal(await page.getByTestId('saved-session').count(), 0);

    // Two saved sessions: the later is offered, delete all removes both.
    await page.getByTestId('load-example').click();
    await waitForSessions(page, 1);
    await app.reload();
    await page.getByTestId('load-example').click();
    await waitForSessions(page, 2);
    await app.reload();
    assert.match(await page.getByTestId('saved-session').textContent(), /1 other saved session/);
    await page.getByTestId('delete-stored-sessions').click();
    await waitForSessions(page, 0);
    await app.reload();
    assert.equal(await page.getByTestId('saved-session').count(), 0);
    await app.checkConsole();
  } finally {
    await app.close();
  }
});

/** Waits until the database holds `n` session records; returns them. */
async function waitForSessions(page, n) {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const sessions = await storedSessions(page);
    if (sessions.length === n) return sessions;
    if (Date.now() > deadline) assert.fail(`expected ${n} saved sessions, found ${sessions.length}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('without IndexedDB the app says so and works in memory', { timeout: 120_000 }, async () => {
  const endpoint = await startEndpoint({});
  const app = await openApp();
  try {
    const { page, context } = app;
    await context.addInitScript(() => {
      delete window.indexedDB;
    });
    await app.reload();
    assert.equal(await page.evaluate(() => typeof window.indexedDB), 'undefined');
    const notice = page.getByTestId('storage-notice');
    await notice.waitFor();
    assert.match(await notice.textContent(), /does not let the page save the session/);
    assert.match(await notice.textContent(), /in memory/);

    await loadAndConfigure(page, endpoint);
    await runToEnd(page, { timeout: 120_000 });
    const sft = jsonLines((await download(page, 'download-sft')).text);
    assert.ok(sft.length >= 3);
    assert.equal(await page.getByTestId('saved-session').count(), 0);
    await app.checkConsole();
  } finally {
    await app.close();
    await endpoint.close();
  }
});

test('when the storage quota runs out the app says so and goes on in memory', { timeout: 120_000 }, async () => {
  const endpoint = await startEndpoint({});
  const app = await openApp();
  try {
    const { page, context, url } = app;
    // Far less than the loaded files take.
    const cdp = await context.newCDPSession(page);
    await cdp.send('Storage.overrideQuotaForOrigin', { origin: new URL(url).origin, quotaSize: 2_000 });
    await loadAndConfigure(page, endpoint);
    const notice = page.getByTestId('storage-notice');
    await notice.waitFor();
    assert.match(await notice.textContent(), /storage for this page is full/);
    assert.match(await notice.textContent(), /Download your results/);

    await runToEnd(page, { timeout: 120_000 });
    assert.equal((await tableRows(page)).length, TRAJECTORIES);
    assert.ok(jsonLines((await download(page, 'download-sft')).text).length >= 3);
    // A failed write leaves nothing half-saved to offer.
    await app.reload();
    assert.deepEqual(await storedSessions(page), []);
    assert.equal(await page.getByTestId('saved-session').count(), 0);
    await app.checkConsole();
  } finally {
    await app.close();
    await endpoint.close();
  }
});
