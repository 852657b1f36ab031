// A whole run against the scripted endpoint: load two files (file picker and drag and drop),
// configure, check the connection, run, read the table, the progress counters and a
// trajectory's detail, then download the four files and check them against the table and the
// requests the endpoint saw.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { hindsightPromptFor, startEndpoint } from './support/endpoint.mjs';
import {
  DATA,
  DOWNLOAD_NAMES,
  checkConnection,
  configure,
  dataFile,
  dataRecords,
  downloadAll,
  dropFiles,
  jsonLines,
  numberIn,
  openApp,
  openDetail,
  pickFiles,
  rowOf,
  runToEnd,
  tableRows,
} from './support/browser.mjs';

// What each trajectory of run-a.jsonl and run-b.jsonl ends as (θ = 0.5, K = 3), and the calls
// the scripted endpoint answers for it: relabel and second-judge calls.
const EXPECTED = {
  'run-accept': { status: 'accepted', scenario: 'accept', relabel: 1, judge: 1, judges: 'two', confidence: 0.85 },
  'run-retry': { status: 'accepted', scenario: 'retry', relabel: 2, judge: 1, judges: 'two', confidence: 0.85 },
  'run-judge-reject': { status: 'rejected', scenario: 'judge-reject', relabel: 3, judge: 3 },
  'run-fallback': { status: 'accepted', scenario: 'fallback', relabel: 3, judge: 0, judges: 'single', confidence: 0.45 },
  'run-low': { status: 'rejected', scenario: 'low', relabel: 3, judge: 0 },
  'run-not-valid': { status: 'rejected', scenario: 'not-valid', relabel: 3, judge: 0 },
  'run-unparseable': { status: 'rejected', scenario: 'unparseable', relabel: 3, judge: 0 },
  // A tool error: the rule-based gate skips it before any call.
  'run-tool-skip': { status: 'skipped', scenario: null, relabel: 0, judge: 0 },
};
const IDS = Object.keys(EXPECTED);
const ACCEPTED = IDS.filter((id) => EXPECTED[id].status === 'accepted');

/** The text of every message of a chat request, as the endpoint counts tokens. */
function messagesText(body) {
  return body.messages.map((m) => (typeof m.content === 'string' ? m.content : '')).join('\n');
}

/** Prompt and completion tokens the endpoint reported for the requests it answered. */
function tokensOf(requests) {
  const answered = requests.filter((r) => typeof r.reply === 'string');
  const prompt = answered.reduce((n, r) => n + Math.ceil(messagesText(r.body).length / 4), 0);
  const completion = answered.reduce((n, r) => n + Math.ceil(r.reply.length / 4), 0);
  return { prompt, completion, total: prompt + completion };
}

/** Every number in a shown text ("1,234 prompt + 56 completion" → [1234, 56]). */
function numbersIn(text) {
  return [...(text ?? '').matchAll(/\d[\d,]*(?:\.\d+)?/g)].map((m) => Number(m[0].replace(/,/g, '')));
}

test('a run over two loaded files: table, progress, detail and the four downloads agree with the endpoint', { timeout: 240_000 }, async () => {
  const records = [...(await dataRecords('run-a.jsonl')), ...(await dataRecords('run-b.jsonl'))];
  const byId = Object.fromEntries(records.map((r) => [r.trajectory_id, r]));
  const endpoint = await startEndpoint({});
  let app;
  try {
    app = await openApp();
    const { page } = app;

    // --- Loading: one file through the picker, one dropped.
    await pickFiles(page, [join(DATA, 'run-a.jsonl')]);
    await page.getByTestId('file-row').first().waitFor();
    await dropFiles(page, [{ name: 'run-b.jsonl', text: await dataFile('run-b.jsonl') }]);
    const fileRows = page.getByTestId('file-row');
    await fileRows.nth(1).waitFor();
    assert.equal(await fileRows.count(), 2);
    const fileA = await fileRows.nth(0).textContent();
    const fileB = await fileRows.nth(1).textContent();
    assert.match(fileA, /run-a\.jsonl/);
    assert.match(fileA, /(?<!\d)6 trajectories/);
    assert.match(fileA, /(?<!\d)0 rejected/);
    assert.match(fileB, /run-b\.jsonl/);
    assert.match(fileB, /(?<!\d)2 trajectories/);
    assert.match(fileB, /(?<!\d)1 rejected/);
    const rejected = page.getByTestId('rejected-item');
    assert.equal(await rejected.count(), 1);
    assert.equal((await rejected.textContent()).trim(), 'run-b.jsonl:3: original_prompt: required field is missing');

    // Failure types by the rules: seven wrong results, one tool error.
    assert.equal(numberIn(await page.locator('[data-testid="type-count"][data-type="wrong_result"]').textContent()), 7);
    assert.equal(numberIn(await page.locator('[data-testid="type-count"][data-type="tool_error"]').textContent()), 1);

    // Before the run: all pending but the tool error, which the gate will skip.
    const before = await tableRows(page);
    assert.deepEqual(
      before.map((r) => [r.id, r.status]),
      IDS.map((id) => [id, id === 'run-tool-skip' ? 'will-skip' : 'pending']),
    );

    // --- Settings and the connection.
    await configure(page, {
      baseUrl: endpoint.url,
      model: 'scripted-model',
      selects: { 'detection-mode': 'rules', 'extraction-mode': 'rules' },
    });
    const connection = await checkConnection(page);
    assert.equal(connection.status, 'ok', connection.text);
    assert.match(connection.text, /Connected/);
    assert.equal(endpoint.counts().models, 1);
    endpoint.reset();

    // --- The run.
    const started = Date.now();
    await runToEnd(page, { timeout: 120_000 });
    console.log(`# run of ${IDS.length} trajectories: ${Date.now() - started} ms`);

    const counts = endpoint.counts();
    assert.equal(counts.failure_analysis, 0, 'no detection calls in rules mode');
    assert.equal(counts.extracted_outcome, 0, 'no extraction calls in rules mode');
    assert.equal(counts.unknown, 0);
    for (const [id, e] of Object.entries(EXPECTED)) {
      if (!e.scenario) continue;
      assert.equal(counts[`relabel_reply:${e.scenario}`] ?? 0, e.relabel, `relabel calls for ${id}`);
      assert.equal(counts[`judge_reply:${e.scenario}`] ?? 0, e.judge, `judge calls for ${id}`);
    }
    const relabelCalls = IDS.reduce((n, id) => n + EXPECTED[id].relabel, 0);
    const judgeCalls = IDS.reduce((n, id) => n + EXPECTED[id].judge, 0);
    assert.equal(counts.relabel_reply, relabelCalls);
    assert.equal(counts.judge_reply, judgeCalls);

    // Every chat request: the chosen model, the schema asked for, the default max_tokens.
    const chats = endpoint.requests.filter((r) => r.method === 'POST' && r.path === '/v1/chat/completions');
    for (const r of chats) {
      assert.equal(r.body.model, 'scripted-model');
      assert.equal(r.body.response_format?.type, 'json_schema');
      assert.equal(r.body.max_tokens, 2048);
    }
    // Temperatures: 0.3 on the first relabel attempt, 0.7 on retries, 0 for the judge.
    const temps = (kind, scenario) =>
      endpoint.requests.filter((r) => r.kind === kind && r.scenario === scenario).map((r) => r.body.temperature);
    assert.deepEqual(temps('relabel_reply', 'retry'), [0.3, 0.7]);
    assert.deepEqual(temps('judge_reply', 'retry'), [0]);
    assert.deepEqual(temps('relabel_reply', 'judge-reject'), [0.3, 0.7, 0.7]);
    assert.deepEqual(temps('judge_reply', 'judge-reject'), [0, 0, 0]);

    // --- The table.
    const rows = await tableRows(page);
    assert.deepEqual(rows.map((r) => r.id), IDS, 'rows in load order');
    const row = Object.fromEntries(rows.map((r) => [r.id, r]));
    for (const id of IDS) assert.equal(row[id].status, EXPECTED[id].status, `status of ${id}`);
    for (const id of ACCEPTED) {
      const e = EXPECTED[id];
      const action = byId[id].steps[0].action_name;
      assert.equal(row[id].hindsight, hindsightPromptFor(action, e.scenario), `hindsight prompt of ${id}`);
      // The sample's confidence, or the relabeler's c and the judge's c2 it comes from.
      const shown = numbersIn(row[id].confidence);
      const near = (x) => shown.some((v) => Math.abs(v - x) < 0.006);
      assert.ok(
        near(e.confidence) || (e.judges === 'two' && near(0.9) && near(0.8)),
        `confidence of ${id}: ${row[id].confidence}`,
      );
      if (e.judges === 'single') assert.match(row[id].judges, /single judge/i, `judges of ${id}`);
      else {
        assert.match(row[id].judges, /judge/i, `judges of ${id}`);
        assert.doesNotMatch(row[id].judges, /single/i, `judges of ${id}`);
      }
    }

    // --- Progress.
    const progress = async (name) => (await page.getByTestId(`progress-${name}`).textContent()).trim();
    assert.match(await progress('done'), new RegExp(`^${IDS.length}\\s*/\\s*${IDS.length}$`));
    const tally = (status) => IDS.filter((id) => EXPECTED[id].status === status).length;
    assert.equal(numberIn(await progress('accepted')), tally('accepted'));
    assert.equal(numberIn(await progress('rejected')), tally('rejected'));
    assert.equal(numberIn(await progress('skipped')), tally('skipped'));
    assert.equal(numberIn(await progress('failed')), 0);
    assert.equal(numberIn(await progress('calls')), counts.chat);
    // Tokens: the total, or prompt and completion tokens, as the endpoint counted them.
    const served = tokensOf(chats);
    const shownTokens = await progress('tokens');
    const tokenNumbers = numbersIn(shownTokens);
    assert.ok(
      tokenNumbers.includes(served.total) ||
        (tokenNumbers[0] === served.prompt && tokenNumbers[1] === served.completion),
      `tokens shown "${shownTokens}", served ${JSON.stringify(served)}`,
    );
    await page.getByTestId('progress-elapsed').waitFor();
    await page.getByTestId('progress-eta').waitFor({ state: 'attached' });

    // --- The detail of the retried trajectory: two steps, two attempts, the prose reply.
    const detail = await openDetail(page, 'run-retry');
    assert.equal(await detail.getByTestId('detail-step').count(), 2);
    // Only failure types whose keywords appear are listed, each with its keywords.
    const fired = await detail.locator('[data-testid="keywords-fired"] li').allTextContents();
    const none = await detail.getByTestId('keywords-none').count();
    assert.ok(fired.length > 0 !== (none === 1), `fired ${JSON.stringify(fired)}, none ${none}`);
    for (const line of fired) assert.match(line, /^[a-z_]+: \S/, 'a failure type listed without a keyword');
    assert.equal(
      await detail.getByTestId('detail-attempt').count(),
      2,
      'one detail-attempt per relabel attempt (the judge call belongs to its attempt)',
    );
    const prose = endpoint.requests.find((r) => r.kind === 'relabel_reply' && r.scenario === 'retry').reply;
    assert.match(prose, /^Sure!/);
    const replies = await detail.getByTestId('raw-reply').allTextContents();
    assert.ok(replies.some((t) => t.includes(prose)), `no raw reply shows the prose: ${JSON.stringify(replies)}`);
    assert.equal(await detail.getByTestId('raw-reply').first().evaluate((el) => el.tagName), 'PRE');
    await detail.getByTestId('close-detail').click();
    await detail.waitFor({ state: 'detached' });

    // --- Downloads.
    const files = await downloadAll(page);
    for (const [what, re] of Object.entries(DOWNLOAD_NAMES)) assert.match(files[what].name, re, `${what} file name`);
    const samples = {
      sft: jsonLines(files.sft.text),
      dpo: jsonLines(files.dpo.text),
      sharegpt: jsonLines(files.sharegpt.text),
    };
    for (const [format, lines] of Object.entries(samples)) {
      assert.equal(lines.length, ACCEPTED.length, `${format}: one line per accepted row`);
      assert.deepEqual(lines.map((l) => l.source_trajectory_id), ACCEPTED, `${format}: sources`);
      for (const l of lines) {
        const id = l.source_trajectory_id;
        assert.equal(l.format, format);
        assert.equal(l.hindsight_prompt, row[id].hindsight, `${format} ${id}: hindsight prompt as shown`);
        assert.equal(typeof l.weight, 'number');
        assert.ok(l.weight >= 0 && l.weight <= 1, `${format} ${id}: weight ${l.weight}`);
        assert.deepEqual(l.chosen[0], { role: 'user', content: row[id].hindsight });
        assert.equal(l.metadata.original_prompt, byId[id].original_prompt);
        assert.ok(Math.abs(l.metadata.relabel_confidence - EXPECTED[id].confidence) < 1e-9);
      }
    }
    for (const l of samples.sft) {
      const t = byId[l.source_trajectory_id];
      assert.equal(l.chosen.length, 2);
      assert.equal(l.chosen[1].role, 'assistant');
      assert.ok(l.chosen[1].content.startsWith(`Step 1: ${t.steps[0].thought}\n  Action: ${t.steps[0].action_name}(`));
      assert.deepEqual(l.rejected, []);
      assert.equal(l.metadata.num_steps, t.steps.length);
    }
    for (const [i, l] of samples.dpo.entries()) {
      const t = byId[l.source_trajectory_id];
      assert.deepEqual(l.rejected[0], { role: 'user', content: t.original_prompt });
      assert.equal(l.rejected[1].role, 'assistant');
      assert.equal(l.rejected[1].content, l.chosen[1].content);
      assert.equal(l.chosen[1].content, samples.sft[i].chosen[1].content);
    }
    for (const l of samples.sharegpt) {
      const t = byId[l.source_trajectory_id];
      const observations = l.chosen.filter((m) => m.role === 'observation').map((m) => m.content);
      assert.deepEqual(observations, t.steps.map((s) => s.observation));
    }

    const report = JSON.parse(files.report.text);
    assert.equal(report.product, 'agenther');
    assert.equal(report.endpoint, endpoint.url);
    assert.equal(report.settings.model, 'scripted-model');
    assert.deepEqual(report.loaded, { files: 2, trajectories: IDS.length, rejected_records: 1, verdict_unknown: 0 });
    assert.equal(report.samples_per_format, ACCEPTED.length);
    const totals = report.totals;
    assert.equal(totals.done, IDS.length);
    assert.equal(totals.accepted, tally('accepted'));
    assert.equal(totals.accepted_two_judges, ACCEPTED.filter((id) => EXPECTED[id].judges === 'two').length);
    assert.equal(totals.accepted_single_judge, ACCEPTED.filter((id) => EXPECTED[id].judges === 'single').length);
    assert.equal(totals.rejected, tally('rejected'));
    assert.equal(totals.skipped, tally('skipped'));
    assert.equal(totals.failed, 0);
    assert.equal(totals.cancelled, 0);
    assert.equal(totals.usage.detect.calls, 0);
    assert.equal(totals.usage.extract.calls, 0);
    assert.equal(totals.usage.relabel.calls, counts.relabel_reply);
    assert.equal(totals.usage.judge.calls, counts.judge_reply);
    const reportTokens = Object.values(totals.usage).reduce((n, s) => n + s.prompt_tokens + s.completion_tokens, 0);
    assert.equal(reportTokens, served.total, 'tokens in the report');
    assert.deepEqual(report.trajectories.map((t) => t.trajectory_id), IDS);
    for (const t of report.trajectories) {
      const e = EXPECTED[t.trajectory_id];
      assert.equal(t.status, row[t.trajectory_id].status, `report status of ${t.trajectory_id}`);
      assert.equal(t.calls, e.relabel + e.judge, `report calls of ${t.trajectory_id}`);
      assert.equal(t.relabel_attempts, e.relabel, `report attempts of ${t.trajectory_id}`);
      if (e.status === 'accepted') {
        assert.equal(t.hindsight_prompt, row[t.trajectory_id].hindsight);
        assert.equal(t.judges, e.judges === 'single' ? 'single judge' : 'relabeler + judge');
        const sft = samples.sft.find((l) => l.source_trajectory_id === t.trajectory_id);
        assert.equal(sft.weight, t.weight, `weight of ${t.trajectory_id}`);
      }
    }
    assert.equal(report.trajectories.find((t) => t.trajectory_id === 'run-retry').accepted_attempt, 2);

    // --- Filters.
    await page.getByTestId('filter-text').fill('lasagne');
    await rowOf(page, 'run-accept').waitFor({ state: 'detached' });
    assert.deepEqual((await tableRows(page)).map((r) => r.id), ['run-retry']);
    await page.getByTestId('filter-text').fill('');
    await rowOf(page, 'run-accept').waitFor();
    await page.getByTestId('filter-status').selectOption('rejected');
    await rowOf(page, 'run-accept').waitFor({ state: 'detached' });
    assert.deepEqual(
      (await tableRows(page)).map((r) => r.id),
      IDS.filter((id) => EXPECTED[id].status === 'rejected'),
    );
    await page.getByTestId('filter-type').selectOption('tool_error');
    await rowOf(page, 'run-low').waitFor({ state: 'detached' });
    assert.equal(await page.getByTestId('result-row').count(), 0);

    await app.checkConsole();
  } finally {
    await app?.close();
    await endpoint.close();
  }
});

test('stop cancels what is left, a second run finishes only that, and reset results starts over', { timeout: 120_000 }, async () => {
  // Slow replies, one trajectory at a time, so that the stop lands in the middle of the run.
  const endpoint = await startEndpoint({ delayMs: 250 });
  const ids = (await dataRecords('run-a.jsonl')).map((r) => r.trajectory_id);
  let app;
  try {
    app = await openApp();
    const { page } = app;
    await pickFiles(page, [join(DATA, 'run-a.jsonl')]);
    await page.getByTestId('file-row').waitFor();
    await configure(page, {
      baseUrl: endpoint.url,
      model: 'scripted-model',
      fields: { concurrency: 1 },
      selects: { 'extraction-mode': 'rules' },
    });

    const panel = page.getByTestId('run-panel');
    await page.getByTestId('run').click();
    await panel.and(page.locator('[data-state="running"]')).waitFor();
    // Stop once the first trajectory (two calls) has ended.
    await page.waitForFunction(() => {
      const done = document.querySelector('[data-testid="progress-done"]')?.textContent ?? '';
      return Number(/\d+/.exec(done)?.[0] ?? 0) >= 1;
    });
    await page.getByTestId('stop').click();
    await panel.and(page.locator('[data-state="stopped"]')).waitFor({ timeout: 30_000 });

    const stopped = await tableRows(page);
    assert.deepEqual(stopped.map((r) => r.id), ids);
    // Finished, cancelled in flight, or never started (still pending or skipped by the gates).
    for (const r of stopped) {
      assert.ok(['accepted', 'rejected', 'cancelled', 'pending', 'will-skip'].includes(r.status), `${r.id} is ${r.status} after stop`);
    }
    const finished = stopped.filter((r) => ['accepted', 'rejected'].includes(r.status)).map((r) => r.id);
    const unfinished = stopped.filter((r) => !finished.includes(r.id)).map((r) => r.id);
    assert.ok(finished.includes('run-accept'), `finished before the stop: ${finished}`);
    assert.ok(unfinished.length > 0, 'something was left to cancel or never started');
    const callsBefore = endpoint.counts();

    // Run again: only the cancelled trajectories are run; the finished ones keep their result.
    await runToEnd(page, { timeout: 60_000 });
    const resumed = Object.fromEntries((await tableRows(page)).map((r) => [r.id, r]));
    for (const id of ids) assert.equal(resumed[id].status, EXPECTED[id].status, `status of ${id} after the second run`);
    const callsAfter = endpoint.counts();
    for (const id of finished) {
      const s = EXPECTED[id].scenario;
      assert.equal(callsAfter[`relabel_reply:${s}`] ?? 0, callsBefore[`relabel_reply:${s}`] ?? 0, `${id} was run again`);
    }
    const acceptedRows = ids.filter((id) => EXPECTED[id].status === 'accepted').length;
    assert.equal(numberIn(await page.getByTestId('progress-accepted').textContent()), acceptedRows);
    assert.equal(jsonLines((await downloadAll(page)).sft.text).length, acceptedRows);

    // Reset results: every trajectory is pending again.
    await page.getByTestId('reset-results').click();
    await page.getByTestId('confirm-reset-delete').click();
    await rowOf(page, 'run-accept').and(page.locator('[data-status="pending"]')).waitFor();
    const reset = await tableRows(page);
    assert.deepEqual(reset.map((r) => r.status), ids.map(() => 'pending'));
    await app.checkConsole();
  } finally {
    await app?.close();
    await endpoint.close();
  }
});
