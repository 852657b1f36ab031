// The estimate before a run and the counters during and after it, against the scripted
// endpoint: a pilot calibrates the estimate of the rest (calls within 10 %, tokens within
// 25 %), cost follows the prices entered, a large paid run asks first; Stop leaves the page's
// counters equal to the requests the endpoint received; a model whose replies never parse
// trips the breaker.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { marker, startEndpoint } from './support/endpoint.mjs';
import { REPO, configure, dropFiles, numberIn, openApp, setField, tableRows } from './support/browser.mjs';

/** `n` trajectories with their own action and observation; `scenarios` in turn. */
function trajectories(n, scenarios = ['accept', 'accept', 'retry', 'fallback', 'judge-reject', 'accept']) {
  const lines = [];
  for (let i = 0; i < n; i++) {
    const scenario = scenarios[i % scenarios.length];
    lines.push(
      JSON.stringify({
        trajectory_id: `est-${String(i).padStart(2, '0')}`,
        original_prompt: `Book a table for ${i + 2} at an Italian place near the station for Friday at 8 pm.`,
        steps: [
          {
            thought: 'Search the restaurants first.',
            action_name: `search_restaurants_${i}`,
            action_input: { cuisine: 'italian', near: 'station', party: i + 2 },
            observation: `${marker(scenario)} Found ${i + 3} places: Trattoria ${i} (4.${i % 10} stars, free at 9 pm), Pizzeria Roma (full on Friday), Osteria Blu (free at 7:30 pm).`,
          },
          {
            thought: 'Try to book the best rated one.',
            action_name: 'book_table',
            action_input: { place: `Trattoria ${i}`, time: '21:00' },
            observation: `Booked Trattoria ${i} for ${i + 2} on Friday at 9 pm; confirmation TR-${1000 + i}.`,
          },
        ],
        final_answer: `Booked Trattoria ${i} at 9 pm.`,
        failure_reason: 'The booking is at 9 pm, not at 8 pm as asked.',
        metadata: { source: 'e2e-estimate' },
      }),
    );
  }
  return lines.join('\n') + '\n';
}

const stat = async (page, name) => numberIn((await page.getByTestId(`progress-${name}`).textContent()).trim());
const chatRequests = (endpoint) =>
  endpoint.requests.filter((r) => r.method === 'POST' && r.path === '/v1/chat/completions').length;
const percent = (text) => {
  const m = /([+−-]?)(\d+)%/.exec(text);
  assert.ok(m, `no percentage in "${text}"`);
  return (m[1] === '' || m[1] === '+' ? 1 : -1) * Number(m[2]);
};

async function load(page, name, n, scenarios) {
  await dropFiles(page, [{ name, text: trajectories(n, scenarios) }]);
  await page.getByTestId('file-row').first().waitFor();
}

/** Loads `n` trajectories and points the app at `endpoint` with rule-based detection and
 * `extraction` (LLM by default) and the settings `fields`. */
async function setUp(page, endpoint, { name, n, scenarios, fields, extraction = 'llm' }) {
  await load(page, name, n, scenarios);
  await configure(page, {
    baseUrl: endpoint.url,
    model: 'scripted-model',
    fields,
    selects: { 'detection-mode': 'rules', 'extraction-mode': extraction },
  });
}

/** The estimate panel's expected calls, summed over the stages. */
async function estimatedCalls(page) {
  const cells = await page.getByTestId('estimate').getByTestId('estimate-calls').allTextContents();
  return cells.reduce((n, c) => n + numberIn(c), 0);
}

test('a pilot calibrates the estimate of the rest; cost follows the prices; a large paid run asks first', { timeout: 240_000 }, async () => {
  const endpoint = await startEndpoint({ delayMs: 20 });
  let app;
  try {
    app = await openApp({ viewport: { width: 1280, height: 1400 } });
    const { page } = app;
    await setUp(page, endpoint, { name: 'estimate.jsonl', n: 30, fields: { concurrency: 3, 'price-input': 0.15, 'price-output': 0.6, 'confirm-above': 10 } });
    const panel = page.getByTestId('run-panel');
    const summary = page.getByTestId('estimate-summary');
    await summary.waitFor();
    assert.match(await summary.textContent(), /^30 trajectories: about [\d,]+ calls/);

    // "Run the filtered rows" takes what the results filter shows.
    await setField(page, 'filter-text', 'est-1');
    await page.getByTestId('run-filtered').filter({ hasText: 'Run the filtered rows (10)' }).waitFor();
    await setField(page, 'filter-text', '');
    await page.getByTestId('run-filtered').filter({ hasText: 'Run the filtered rows (30)' }).waitFor();

    // The pilot: the first 6 (one of each scenario), under the confirmation threshold.
    await setField(page, 'pilot-size', 6);
    await page.getByTestId('run-first').click();
    await panel.and(page.locator('[data-state="done"]')).waitFor({ timeout: 60_000 });
    const pilotServed = chatRequests(endpoint);
    console.log(`# cold estimate of the pilot of 6: calls ${await page.getByTestId('deviation-calls').textContent()}, tokens ${await page.getByTestId('deviation-tokens').textContent()}, ${pilotServed} requests`);
    assert.equal(await stat(page, 'calls'), pilotServed, 'calls are the requests the endpoint received');
    assert.equal(await stat(page, 'sent'), pilotServed);

    // Cost follows the prices: the tokens shown at the prices entered.
    const tokens = (await page.getByTestId('progress-tokens').textContent()).match(/[\d,]+/g).map(numberIn);
    const cost = Number((await page.getByTestId('progress-cost').textContent()).trim());
    const want = (tokens[0] * 0.15 + tokens[1] * 0.6) / 1e6;
    assert.ok(Math.abs(cost - want) <= Math.max(want * 0.01, 0.00005), `cost ${cost}, tokens at the prices ${want}`);
    const served = endpoint.requests.filter((r) => r.path === '/v1/chat/completions' && r.method === 'POST');
    const promptServed = served.reduce((n, r) => n + Math.ceil(r.body.messages.map((m) => m.content).join('\n').length / 4), 0);
    assert.equal(tokens[0], promptServed, 'prompt tokens as the endpoint counted them');

    // The estimate of the rest, refined by the pilot.
    await summary.waitFor();
    const text = await summary.textContent();
    assert.match(text, /^24 trajectories/);
    const estimateCalls = await estimatedCalls(page);
    assert.match(text, /cost about [\d.]+/);
    const estimateCost = Number(await summary.getAttribute('data-cost'));
    await page.screenshot({ path: join(REPO, 'public', 'screenshots', 'estimate.png'), clip: await estimateClip(page), fullPage: true });
    await setField(page, 'price-input', 0.3);
    await setField(page, 'price-output', 1.2);
    await page.waitForFunction((c) => Number(document.querySelector('[data-testid="estimate-summary"]').dataset.cost) !== c, estimateCost);
    const doubled = Number(await summary.getAttribute('data-cost'));
    assert.ok(estimateCost > 0 && Math.abs(doubled - 2 * estimateCost) <= 1e-9, `doubling the prices: ${estimateCost} → ${doubled}`);

    // 24 trajectories at a price, above the threshold of 10: the run asks first.
    await page.getByTestId('run').click();
    const confirm = page.getByTestId('confirm-run');
    await confirm.waitFor();
    assert.match(await confirm.textContent(), /costs money/);
    assert.equal(await panel.getAttribute('data-state'), 'done', 'nothing started before the answer');
    assert.equal(chatRequests(endpoint), pilotServed);
    await page.getByTestId('confirm-run-start').click();
    await panel.and(page.locator('[data-state="done"]')).waitFor({ timeout: 120_000 });
    const restServed = chatRequests(endpoint) - pilotServed;
    const callsOff = (restServed - estimateCalls) / estimateCalls;
    const shownCalls = percent(await page.getByTestId('deviation-calls').textContent());
    const shownTokens = percent(await page.getByTestId('deviation-tokens').textContent());
    console.log(`# calibrated estimate of the rest: ${estimateCalls} calls estimated, ${restServed} sent (${(callsOff * 100).toFixed(1)}%); page: calls ${shownCalls}%, tokens ${shownTokens}%`);
    assert.ok(Math.abs(callsOff) <= 0.1, `calls off by ${callsOff}`);
    assert.ok(Math.abs(shownCalls) <= 10, `calls off by ${shownCalls}%`);
    assert.ok(Math.abs(shownTokens) <= 25, `tokens off by ${shownTokens}%`);
    await app.checkConsole();
  } finally {
    await app?.close();
    await endpoint.close();
  }
});

/** The part of the page from the estimate to the pilot's comparison with its estimate. */
async function estimateClip(page) {
  const a = await page.getByTestId('estimate').boundingBox();
  const b = await page.getByTestId('deviation').boundingBox();
  // Bounding boxes are relative to the viewport; a full-page clip to the page.
  const scrollY = await page.evaluate(() => window.scrollY);
  const top = Math.max(0, a.y + scrollY - 60);
  return { x: Math.max(0, a.x - 16), y: top, width: Math.min(1280, a.width + 32), height: b.y + scrollY + b.height + 16 - top };
}

test('a server that answers one request at a time: after a pilot at 3, the time at 6 is what the run takes', { timeout: 240_000 }, async () => {
  const endpoint = await startEndpoint({ delayMs: 150, slots: 1 });
  let app;
  try {
    app = await openApp({ viewport: { width: 1280, height: 1400 } });
    const { page } = app;
    await setUp(page, endpoint, { name: 'one-slot.jsonl', n: 16, scenarios: ['accept'], fields: { concurrency: 3 } });
    const panel = page.getByTestId('run-panel');
    const summary = page.getByTestId('estimate-summary');
    // Nothing measured yet: the time is a range, and the page says why.
    await summary.waitFor();
    assert.match(await summary.textContent(), /, \d+:\d\d to \d+:\d\d,/);
    assert.match(await summary.textContent(), /how many requests the server answers at once is not known yet/);

    // The pilot at 3 lanes: the server answered one at a time.
    await setField(page, 'pilot-size', 6);
    const pilotStarted = Date.now();
    await page.getByTestId('run-first').click();
    await panel.and(page.locator('[data-state="done"]')).waitFor({ timeout: 60_000 });
    const pilotWall = Date.now() - pilotStarted;
    assert.equal(endpoint.concurrency().serving, 1);
    const pilotTime = (await page.getByTestId('progress-elapsed').textContent()).trim();
    const pilotCalls = chatRequests(endpoint);

    // The rest at 6: the estimate knows the server's limit, so it is one figure.
    await setField(page, 'concurrency', 6);
    await page.waitForFunction(() => /^10 trajectories/.test(document.querySelector('[data-testid="estimate-summary"]')?.textContent ?? ''));
    const ms = Number(await summary.getAttribute('data-ms'));
    const msMax = Number(await summary.getAttribute('data-ms-max'));
    assert.ok(ms > 0 && msMax <= ms * 1.05, `one figure: ${ms} to ${msMax}`);
    assert.doesNotMatch(await summary.textContent(), /not known yet/);
    const started = Date.now();
    await page.getByTestId('run').click();
    await panel.and(page.locator('[data-state="done"]')).waitFor({ timeout: 120_000 });
    const actual = Date.now() - started;
    const restCalls = chatRequests(endpoint) - pilotCalls;
    assert.equal(endpoint.concurrency().serving, 1);
    const off = (actual - ms) / ms;
    // The time per call as measured before the server's parallelism was: elapsed × lanes ÷
    // requests, shared by the new lanes.
    const lanesAlike = ((pilotWall * 3) / pilotCalls) * (restCalls / 6);
    console.log(`# one slot: at 6 as if the server ran every lane at once: ${Math.round(lanesAlike)} ms (${(((actual - lanesAlike) / lanesAlike) * 100).toFixed(0)}% off)`);
    console.log(`# one slot: pilot ${pilotCalls} calls at 3 in ${pilotTime}; the rest at 6: estimated ${Math.round(ms)} ms, took ${actual} ms for ${restCalls} calls (${(off * 100).toFixed(1)}%)`);
    assert.ok(Math.abs(off) <= 0.25, `time off by ${(off * 100).toFixed(1)}%`);
    await app.checkConsole();
  } finally {
    await app?.close();
    await endpoint.close();
  }
});

test('Stop mid-run: the counters equal the requests the endpoint received; what never started is said', { timeout: 180_000 }, async () => {
  const endpoint = await startEndpoint({ delayMs: 250 });
  let app;
  try {
    app = await openApp();
    const { page } = app;
    await setUp(page, endpoint, { name: 'stop.jsonl', n: 40, scenarios: ['accept'], fields: { concurrency: 4 } });
    const panel = page.getByTestId('run-panel');
    await page.getByTestId('run').click();
    await panel.and(page.locator('[data-state="running"]')).waitFor();
    while (chatRequests(endpoint) < 14) await new Promise((r) => setTimeout(r, 10));
    await page.getByTestId('stop').click();
    await panel.and(page.locator('[data-state="stopped"]')).waitFor({ timeout: 30_000 });
    await new Promise((r) => setTimeout(r, 500));
    const received = chatRequests(endpoint);
    const calls = await stat(page, 'calls');
    const sent = await stat(page, 'sent');
    const retries = await stat(page, 'retries');
    console.log(`# stop: the endpoint received ${received} requests; the page counts ${calls} calls, ${sent} sent, ${retries} retries`);
    assert.equal(retries, 0);
    assert.equal(calls, received, 'calls');
    assert.equal(sent, received, 'requests sent');
    const stageCalls = (await page.getByTestId('stage-calls').allTextContents()).reduce((n, c) => n + numberIn(c), 0);
    assert.equal(stageCalls, received, 'the stage table');

    const rows = await tableRows(page);
    const by = (status) => rows.filter((r) => r.status === status).length;
    const notStarted = await stat(page, 'not-started');
    const cancelled = await stat(page, 'cancelled');
    assert.ok(notStarted > 0, 'something never started');
    assert.equal(by('pending'), notStarted, 'never started: still pending');
    assert.equal(by('cancelled'), cancelled);
    assert.ok(cancelled <= 4, `at most the trajectories in flight were cancelled (${cancelled})`);
    assert.equal(by('accepted') + cancelled + notStarted, 40);
    const done = (await page.getByTestId('progress-done').textContent()).trim();
    assert.match(done, new RegExp(`^${by('accepted')}\\s*/\\s*40$`));
    assert.match(
      await page.getByTestId('stop-summary').textContent(),
      new RegExp(`${by('accepted')} finished, ${cancelled} cancelled in flight, ${notStarted} never started`),
    );

    // Reset results asks first and says what it deletes.
    await page.getByTestId('reset-results').click();
    const question = page.getByTestId('confirm-reset');
    await question.waitFor();
    assert.match(await question.textContent(), /log of [\d,]+ answers/);
    await page.getByTestId('confirm-reset-keep').click();
    assert.equal(await question.count(), 0);
    assert.equal((await tableRows(page)).filter((r) => r.status === 'accepted').length, by('accepted'), 'kept');
    await app.checkConsole();
  } finally {
    await app?.close();
    await endpoint.close();
  }
});

test('the breaker pauses a run whose replies never parse, with the parse error on the page', { timeout: 120_000 }, async () => {
  const endpoint = await startEndpoint({ garble: () => 'Sure! The user wanted a table, and a table is what they got.' });
  let app;
  try {
    app = await openApp();
    const { page } = app;
    await setUp(page, endpoint, { name: 'prose.jsonl', n: 12, scenarios: ['accept'], fields: { concurrency: 1 }, extraction: 'rules' });
    const panel = page.getByTestId('run-panel');
    await page.getByTestId('run').click();
    await panel.and(page.locator('[data-state="paused"]')).waitFor({ timeout: 60_000 });
    const message = (await page.getByTestId('run-message').textContent()).trim();
    console.log(`# breaker: ${message}`);
    assert.match(message, /^Paused: the last 10 relabel replies could not be read; the last one: whole reply: expected value at line 1 column 1/);
    assert.match(message, /another model/);
    assert.match(message, /json_schema/);
    assert.match(message, /max_tokens/);
    // One trajectory at a time, K = 3 replies each; the second and third try send the same
    // request (the retry temperature) and get the same prose, which counts once. So each
    // trajectory adds two to the streak: the tenth came in the fifth, which ended; nothing
    // started after it.
    assert.equal(chatRequests(endpoint), 15);
    const unreadable = page.locator('[data-stage="relabel"] [data-testid="stage-unreadable"]').first();
    assert.equal(numberIn(await unreadable.textContent()), 15);
    assert.equal((await tableRows(page)).filter((r) => r.status === 'rejected').length, 5);
    await page.getByTestId('resume').waitFor();
    await app.checkConsole();
  } finally {
    await app?.close();
    await endpoint.close();
  }
});

test('a paid run reloaded mid-way asks again before it goes on, with the estimate of what remains', { timeout: 180_000 }, async () => {
  // The endpoint answers the first calls, then holds every call until the reload.
  let holding = false;
  const endpoint = await startEndpoint({
    delayMs: (r) => (holding && r.method === 'POST' ? new Promise(() => {}) : 30),
  });
  let app;
  try {
    app = await openApp();
    const { page } = app;
    await setUp(page, endpoint, { name: 'paid.jsonl', n: 12, scenarios: ['accept'], fields: { concurrency: 1, 'price-input': 0.15, 'price-output': 0.6, 'confirm-above': 5 } });
    const panel = page.getByTestId('run-panel');
    await page.getByTestId('run').click();
    await page.getByTestId('confirm-run').waitFor();
    await page.getByTestId('confirm-run-start').click();
    // Three trajectories done (extract, relabel, judge each), the fourth in flight.
    while (chatRequests(endpoint) < 9) await new Promise((r) => setTimeout(r, 10));
    holding = true;
    while (chatRequests(endpoint) < 10) await new Promise((r) => setTimeout(r, 10));
    await app.reload();
    holding = false;
    await page.getByTestId('resume-session').click();
    await page.getByTestId('saved-session').waitFor({ state: 'detached' });

    // Nine trajectories remain, above the threshold of 5, at a price: the page asks first.
    const confirm = page.getByTestId('confirm-run');
    await confirm.waitFor();
    const text = await confirm.textContent();
    assert.match(text, /^Run, resumed after the reload: this run costs money\. 9 trajectories: about [\d,]+ calls/);
    assert.match(await page.locator('.notice').textContent(), /costs money: see its estimate under Run/);
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(chatRequests(endpoint), 10, 'nothing was sent before the answer');
    assert.notEqual(await panel.getAttribute('data-state'), 'running');
    await page.getByTestId('confirm-run-start').click();
    await panel.and(page.locator('[data-state="done"]')).waitFor({ timeout: 60_000 });
    const rows = await tableRows(page);
    assert.equal(rows.filter((r) => r.status === 'accepted').length, 12);
    await app.checkConsole();
  } finally {
    await app?.close();
    await endpoint.close();
  }
});
