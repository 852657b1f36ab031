// Runs against endpoints that misbehave: (a) one that fails about a fifth of the calls (HTTP
// 500, HTTP 429 with Retry-After: 1, connections cut mid-reply) and answers about a fifth with
// garbage (prose, JSON cut short, the wrong fields), the same way on every run; (b) one that goes
// away in the middle of a run and comes back.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { flaky, marker, startEndpoint } from './support/endpoint.mjs';
import {
  DATA,
  NETWORK_ERRORS,
  configure,
  dataFile,
  downloadAll,
  dropFiles,
  jsonLines,
  numberIn,
  openApp,
  openDetail,
  pickFiles,
  runToEnd,
  tableRows,
} from './support/browser.mjs';

/** Console errors Chromium logs for the faults these tests inject. */
const FAULT_ERRORS = [
  NETWORK_ERRORS.status(500),
  NETWORK_ERRORS.status(429),
  /Failed to load resource: net::ERR_/,
];

/** `n` trajectories, each with its own action and observation; scenarios in turn. */
function trajectories(n) {
  const scenarios = ['accept', 'accept', 'retry', 'fallback', 'judge-reject', 'accept'];
  const lines = [];
  for (let i = 0; i < n; i++) {
    const scenario = scenarios[i % scenarios.length];
    lines.push(
      JSON.stringify({
        trajectory_id: `flaky-${String(i).padStart(2, '0')}`,
        original_prompt: `Order ${i + 2} boxes of green tea and have them delivered on Monday.`,
        steps: [
          {
            thought: 'Look the tea up first.',
            action_name: `search_shop_${i}`,
            action_input: { query: 'green tea', page: i },
            observation: `${marker(scenario)} Found ${i + 3} teas: Sencha ${i}.50 EUR, Gyokuro ${i + 9}.00 EUR, Matcha ${i + 12}.25 EUR; delivery on Tuesday at the earliest.`,
          },
        ],
        final_answer: '',
        failure_reason: 'Nothing was ordered: delivery on Monday was not possible.',
        metadata: { source: 'e2e-faults' },
      }),
    );
  }
  return lines.join('\n') + '\n';
}

const progress = async (page, name) => (await page.getByTestId(`progress-${name}`).textContent()).trim();

test('a flaky endpoint: every trajectory ends, no sample twice, and the report counts the retries', { timeout: 300_000 }, async () => {
  const n = 24;
  const endpoint = await startEndpoint(flaky({ seed: 20261130, failRate: 0.2, garbageRate: 0.2 }));
  let app;
  try {
    app = await openApp();
    const { page } = app;
    await dropFiles(page, [{ name: 'flaky.jsonl', text: trajectories(n) }]);
    await page.getByTestId('file-row').waitFor();
    await configure(page, {
      baseUrl: endpoint.url,
      model: 'scripted-model',
      fields: { concurrency: 4 },
      selects: { 'detection-mode': 'rules', 'extraction-mode': 'llm' },
    });
    const started = Date.now();
    await runToEnd(page, { timeout: 240_000 });
    console.log(`# flaky run of ${n} trajectories: ${Date.now() - started} ms`);

    const counts = endpoint.counts();
    const faults = endpoint.requests.filter((r) => r.failed !== undefined);
    console.log(
      `# ${counts.chat} replies (${counts.garbled} garbage), ${counts.failed} faults: ` +
        `${faults.filter((r) => r.failed === 500).length} × 500, ` +
        `${faults.filter((r) => r.failed === 429).length} × 429, ${counts.dropped} dropped`,
    );
    // The seed gives every kind of fault and garbage; the test means nothing otherwise.
    for (const kind of [500, 429, 'drop']) assert.ok(faults.some((r) => r.failed === kind), `no ${kind} fault`);
    assert.ok(counts.garbled > 0, 'no garbage reply');

    // Every trajectory ended, none as failed, cancelled or still pending.
    const rows = await tableRows(page);
    assert.equal(rows.length, n);
    assert.equal(new Set(rows.map((r) => r.id)).size, n);
    for (const r of rows) assert.ok(['accepted', 'rejected', 'skipped'].includes(r.status), `${r.id} is ${r.status}`);
    assert.match(await progress(page, 'done'), new RegExp(`^${n}\\s*/\\s*${n}$`));
    assert.equal(numberIn(await progress(page, 'failed')), 0);
    // Each fault cost one retry, and no call ran out of tries.
    assert.equal(numberIn(await progress(page, 'retries')), counts.failed);
    assert.equal(numberIn(await progress(page, 'calls')), counts.chat);

    const files = await downloadAll(page);
    const accepted = rows.filter((r) => r.status === 'accepted').map((r) => r.id);
    assert.ok(accepted.length > 0);
    for (const format of ['sft', 'dpo', 'sharegpt']) {
      const sources = jsonLines(files[format].text).map((l) => l.source_trajectory_id);
      assert.equal(new Set(sources).size, sources.length, `${format}: a sample twice`);
      assert.deepEqual(sources, accepted, `${format}: one sample per accepted row`);
    }

    const report = JSON.parse(files.report.text);
    assert.equal(report.totals.done, n);
    assert.equal(report.totals.failed, 0);
    assert.equal(report.totals.cancelled, 0);
    assert.equal(report.totals.accepted + report.totals.rejected + report.totals.skipped, n);
    assert.equal(report.retries, counts.failed, 'retries in the report');
    const usage = Object.values(report.totals.usage);
    assert.equal(usage.reduce((s, u) => s + u.retries, 0), counts.failed);
    assert.equal(report.trajectories.reduce((s, t) => s + t.retries, 0), counts.failed);
    assert.equal(usage.reduce((s, u) => s + u.calls, 0), counts.chat);
    assert.equal(usage.reduce((s, u) => s + u.failed_calls, 0), 0);
    // Every garbage reply, and every prose reply a scenario asks for, is an unreadable reply:
    // a failed attempt, never a crash or a lost trajectory.
    const unreadable = endpoint.requests.filter((r) => r.reply && (r.garbled || r.reply.startsWith('Sure!'))).length;
    assert.equal(usage.reduce((s, u) => s + u.unparseable_replies, 0), unreadable);
    assert.deepEqual(
      report.trajectories.map((t) => t.trajectory_id),
      rows.map((r) => r.id),
    );
    await app.checkConsole(FAULT_ERRORS);
  } finally {
    await app?.close();
    await endpoint.close();
  }
});

// What each trajectory of run-a.jsonl and run-b.jsonl ends as, and the calls it takes (as in
// run.test.mjs).
const EXPECTED = {
  'run-accept': { status: 'accepted', scenario: 'accept', relabel: 1, judge: 1 },
  'run-retry': { status: 'accepted', scenario: 'retry', relabel: 2, judge: 1 },
  'run-judge-reject': { status: 'rejected', scenario: 'judge-reject', relabel: 3, judge: 3 },
  'run-fallback': { status: 'accepted', scenario: 'fallback', relabel: 3, judge: 0 },
  'run-low': { status: 'rejected', scenario: 'low', relabel: 3, judge: 0 },
  'run-not-valid': { status: 'rejected', scenario: 'not-valid', relabel: 3, judge: 0 },
  'run-unparseable': { status: 'rejected', scenario: 'unparseable', relabel: 3, judge: 0 },
  'run-tool-skip': { status: 'skipped', scenario: null, relabel: 0, judge: 0 },
};
const IDS = Object.keys(EXPECTED);

/** Loads run-a.jsonl and points the app at `endpoint`, with the rule-based Stages 1 and 2. */
async function loadRunA(page, endpoint) {
  await pickFiles(page, [join(DATA, 'run-a.jsonl')]);
  await page.getByTestId('file-row').waitFor();
  await configure(page, {
    baseUrl: endpoint.url,
    model: 'scripted-model',
    selects: { 'detection-mode': 'rules', 'extraction-mode': 'rules' },
  });
}

test('the endpoint goes away mid-run: the run pauses, and Resume finishes it once it is back', { timeout: 300_000 }, async () => {
  const endpoint = await startEndpoint({ delayMs: 150 });
  let app;
  try {
    app = await openApp();
    const { page } = app;
    await pickFiles(page, [join(DATA, 'run-a.jsonl')]);
    await page.getByTestId('file-row').first().waitFor();
    await dropFiles(page, [{ name: 'run-b.jsonl', text: await dataFile('run-b.jsonl') }]);
    await page.getByTestId('file-row').nth(1).waitFor();
    await configure(page, {
      baseUrl: endpoint.url,
      model: 'scripted-model',
      fields: { concurrency: 2 },
      selects: { 'detection-mode': 'rules', 'extraction-mode': 'rules' },
    });

    const panel = page.getByTestId('run-panel');
    await page.getByTestId('run').click();
    await panel.and(page.locator('[data-state="running"]')).waitFor();
    // Go away once the judge-reject trajectory has its first relabel and judge answers, so
    // that it is cut off halfway with answers to replay.
    const deadline = Date.now() + 60_000;
    while ((endpoint.counts()['judge_reply:judge-reject'] ?? 0) < 1) {
      assert.ok(Date.now() < deadline, 'the judge-reject trajectory never reached its judge');
      await new Promise((r) => setTimeout(r, 10));
    }
    await endpoint.stopListening();
    const gone = Date.now();

    await panel.and(page.locator('[data-state="paused"]')).waitFor({ timeout: 120_000 });
    console.log(`# paused ${Date.now() - gone} ms after the endpoint went away`);
    const message = (await page.getByTestId('run-message').textContent()).trim();
    assert.match(message, /^Paused: the endpoint stopped answering/);
    assert.match(message, /gave up after 4 attempts/);
    assert.match(message, /Resume/);
    await page.getByTestId('resume').waitFor();
    assert.equal(await page.getByTestId('stop').isDisabled(), true);

    // Nothing was recorded as failed: the trajectories the outage hit are pending again.
    const paused = await tableRows(page);
    assert.deepEqual(paused.map((r) => r.id), IDS);
    for (const r of paused) {
      const notRun = ['pending', 'will-skip'];
      assert.ok([...notRun, EXPECTED[r.id].status].includes(r.status), `${r.id} is ${r.status} while paused`);
    }
    const left = paused.filter((r) => ['pending', 'will-skip'].includes(r.status)).map((r) => r.id);
    assert.ok(left.includes('run-judge-reject'), `put back: ${left}`);
    assert.equal(numberIn(await progress(page, 'failed')), 0);
    assert.equal(await page.getByTestId('retry-failed').isDisabled(), true, 'nothing failed to retry');

    await endpoint.listenAgain();
    await page.getByTestId('resume').click();
    await panel.and(page.locator('[data-state="done"]')).waitFor({ timeout: 120_000 });
    assert.equal(await page.getByTestId('resume').count(), 0);
    assert.equal(await page.getByTestId('run-message').count(), 0);

    const rows = await tableRows(page);
    for (const r of rows) assert.equal(r.status, EXPECTED[r.id].status, `status of ${r.id}`);
    assert.match(await progress(page, 'done'), new RegExp(`^${IDS.length}\\s*/\\s*${IDS.length}$`));
    assert.equal(numberIn(await progress(page, 'failed')), 0);

    // The endpoint answered each call once: what it answered before going away was replayed
    // from the exchange log, not asked again.
    const counts = endpoint.counts();
    for (const [id, e] of Object.entries(EXPECTED)) {
      if (!e.scenario) continue;
      assert.equal(counts[`relabel_reply:${e.scenario}`] ?? 0, e.relabel, `relabel calls answered for ${id}`);
      assert.equal(counts[`judge_reply:${e.scenario}`] ?? 0, e.judge, `judge calls answered for ${id}`);
    }

    const files = await downloadAll(page);
    const accepted = IDS.filter((id) => EXPECTED[id].status === 'accepted');
    const sources = jsonLines(files.sft.text).map((l) => l.source_trajectory_id);
    assert.deepEqual(sources, accepted);
    const report = JSON.parse(files.report.text);
    assert.equal(report.totals.done, IDS.length);
    assert.equal(report.totals.failed, 0);
    const cutOff = report.trajectories.find((t) => t.trajectory_id === 'run-judge-reject');
    assert.ok(cutOff.calls_from_log >= 2, `replayed calls of run-judge-reject: ${cutOff.calls_from_log}`);
    assert.equal(cutOff.calls, 6);
    await app.checkConsole([NETWORK_ERRORS.refused[0], /Failed to load resource: net::ERR_/]);
  } finally {
    await app?.close();
    await endpoint.close();
  }
});

test('a cut-off reply and a truncated prompt are flagged with advice in the detail and the report', { timeout: 120_000 }, async () => {
  // The accept trajectory's judge reply "hits max_tokens" (still whole JSON); its relabel reply
  // reports far fewer prompt tokens than the prompt has, as a server that cut it would.
  const endpoint = await startEndpoint({
    tweak: (req, response) => {
      if (req.scenario !== 'accept') return;
      if (req.kind === 'judge_reply') response.choices[0].finish_reason = 'length';
      if (req.kind === 'relabel_reply') response.usage.prompt_tokens = 40;
    },
  });
  let app;
  try {
    app = await openApp();
    const { page } = app;
    await loadRunA(page, endpoint);
    await runToEnd(page);
    const relabel = endpoint.requests.find((r) => r.kind === 'relabel_reply' && r.scenario === 'accept');
    const chars = relabel.body.messages.reduce((n, m) => n + m.role.length + m.content.length, 0);
    assert.ok(chars / 4 >= 256, `the relabel prompt is long enough to be judged (${chars} characters)`);

    const detail = await openDetail(page, 'run-accept');
    const flags = detail.getByTestId('call-flag');
    assert.equal(await flags.count(), 2);
    const byKind = {};
    for (let i = 0; i < 2; i++) byKind[await flags.nth(i).getAttribute('data-flag')] = await flags.nth(i).textContent();
    assert.match(byKind.reply_truncated, /raise max_tokens/);
    assert.match(byKind.prompt_truncated, /40 prompt tokens/);
    assert.match(byKind.prompt_truncated, /the server truncated the prompt: raise its context size, e\.g\. Ollama's num_ctx \/ OLLAMA_CONTEXT_LENGTH/);
    await detail.getByTestId('close-detail').click();
    // Other trajectories raised nothing.
    const other = await openDetail(page, 'run-retry');
    assert.equal(await other.getByTestId('call-flag').count(), 0);

    const report = JSON.parse((await downloadAll(page)).report.text);
    const accept = report.trajectories.find((t) => t.trajectory_id === 'run-accept');
    assert.deepEqual(accept.flags.map((f) => f.flag).sort(), ['prompt_truncated', 'reply_truncated']);
    assert.equal(report.trajectories.filter((t) => t.flags).length, 1);
    await app.checkConsole();
  } finally {
    await app?.close();
    await endpoint.close();
  }
});

test('Retry failed runs again only what the endpoint refused', { timeout: 120_000 }, async () => {
  // The endpoint refuses the calls of one trajectory (as if its model were missing) until told.
  let refusing = true;
  const endpoint = await startEndpoint({
    fail: (req) =>
      refusing && req.scenario === 'low'
        ? { status: 404, body: { error: { message: "The model 'scripted-model' does not exist", type: 'invalid_request_error' } } }
        : null,
  });
  let app;
  try {
    app = await openApp();
    const { page } = app;
    await loadRunA(page, endpoint);
    const retry = page.getByTestId('retry-failed');
    assert.equal(await retry.isDisabled(), true);
    await runToEnd(page);
    let rows = Object.fromEntries((await tableRows(page)).map((r) => [r.id, r]));
    assert.equal(rows['run-low'].status, 'failed');
    assert.match(rows['run-low'].outcome, /HTTP 404: The model 'scripted-model' does not exist/);
    // Refused, not unreachable: no retry, no pause.
    assert.equal(endpoint.counts().failed, 3, 'one try per relabel attempt');
    assert.equal(numberIn(await progress(page, 'retries')), 0);
    assert.equal(await retry.isEnabled(), true);
    assert.match(await retry.textContent(), /Retry failed \(1\)/);

    refusing = false;
    const before = endpoint.counts();
    await retry.click();
    await page.getByTestId('run-panel').and(page.locator('[data-state="done"]')).waitFor({ timeout: 60_000 });
    rows = Object.fromEntries((await tableRows(page)).map((r) => [r.id, r]));
    for (const [id, e] of Object.entries(EXPECTED)) if (rows[id]) assert.equal(rows[id].status, e.status, `status of ${id}`);
    const after = endpoint.counts();
    assert.equal(after['relabel_reply:low'], 3, 'the refused trajectory ran again');
    assert.equal(after.relabel_reply - before.relabel_reply, 3, 'and nothing else did');
    assert.equal(after.judge_reply, before.judge_reply);
    assert.equal(await retry.isDisabled(), true);
    await app.checkConsole([NETWORK_ERRORS.status(404)]);
  } finally {
    await app?.close();
    await endpoint.close();
  }
});
