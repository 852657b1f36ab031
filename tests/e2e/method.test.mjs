// The method beyond the paper, end to end: a second judge on its own scripted endpoint, an
// edited prompt template, the grounding check (flag and reject), and near-duplicate clusters
// with the "one per cluster" download.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { hindsightPromptFor, startEndpoint } from './support/endpoint.mjs';
import {
  REPO,
  checkConnection,
  choose,
  configure,
  download,
  dropFiles,
  jsonLines,
  openApp,
  rowOf,
  runToEnd,
  setField,
} from './support/browser.mjs';

/** A failed run whose only step is `action`, observing `observation`. */
function run(id, action, observation, prompt = 'Find me something good and book it.') {
  return {
    trajectory_id: id,
    original_prompt: prompt,
    steps: [{ thought: 'Look it up.', action_name: action, action_input: { q: id }, observation }],
    final_answer: '',
    failure_reason: 'The agent did not finish the booking.',
  };
}

// dup-1 and dup-2: the scripted relabeler writes the same goal for both (same first action).
// hotel-ok and weather-bad: the test's tweak makes it write a goal naming the Hilton Oslo and
// $249, which the first run observed and the second never did.
const RUNS = [
  run('dup-1', 'search', 'Found 3 laptops: Dell XPS 13 at $899, Lenovo X1 at $1,099, HP Spectre at $999.'),
  run('dup-2', 'search', 'Found 2 laptops: Acer Swift at $749 and Asus Zenbook at $829, both in stock.'),
  run('hotel-ok', 'lookup_hotel', 'Hotel Hilton Oslo: a double room costs $249 per night, 12 rooms free.'),
  run('weather-bad', 'get_weather', 'Rain expected tomorrow afternoon, 12 degrees, wind from the west.'),
];
const OUTSIDE_GOAL = 'Book a night at the Hilton Oslo for $249';
const GROUNDED_IDS = ['hotel-ok', 'weather-bad'];

/** The user text of a chat request body. */
function userText(body) {
  return body.messages.filter((m) => m.role === 'user').map((m) => m.content).join('\n');
}

/** Makes the relabeler write OUTSIDE_GOAL for the hotel and weather runs. */
function tweak(record, response) {
  if (record.kind !== 'relabel_reply') return;
  const text = userText(record.body);
  if (/lookup_hotel|get_weather/.test(text)) {
    response.choices[0].message.content = JSON.stringify({
      hindsight_prompt: OUTSIDE_GOAL,
      is_valid_replay: true,
      rationale: 'scripted',
      confidence: 0.9,
    });
  }
}

/** SHA-256 of the templates as the app computes it: name, NUL, text, NUL, in file order. */
async function fingerprint(edits = {}) {
  const names = ['detect', 'extract', 'relabel', 'judge'].flatMap((k) => [`${k}_system.j2`, `${k}_user.j2`]);
  const hash = createHash('sha256');
  for (const name of names) {
    const text = edits[name] ?? (await readFile(join(REPO, 'src', 'llm', 'templates', name), 'utf8'));
    hash.update(name);
    hash.update('\0');
    hash.update(text);
    hash.update('\0');
  }
  return hash.digest('hex');
}

async function load(page, runs) {
  await dropFiles(page, [{ name: 'method.jsonl', text: runs.map((r) => JSON.stringify(r)).join('\n') }]);
  await page.getByTestId('file-row').first().waitFor();
}

test('a judge on a second endpoint, an edited template, grounding flags and near-duplicate clusters', { timeout: 240_000 }, async () => {
  const main = await startEndpoint({ models: ['scripted-model'], tweak });
  const judge = await startEndpoint({ models: ['judge-model'] });
  let app;
  try {
    app = await openApp();
    const { page } = app;
    await load(page, RUNS);
    await configure(page, { baseUrl: main.url, model: 'scripted-model' });

    // The page says when the judge is the relabeling model itself.
    assert.match(await page.getByTestId('judge-note').textContent(), /relabeling model itself \(scripted-model.*not an independent judge/);
    await setField(page, 'judge-base-url', judge.url);
    await setField(page, 'judge-model', 'judge-model');
    assert.equal(
      (await page.getByTestId('judge-note').textContent()).trim(),
      `The second judge is judge-model, on ${judge.url.replace(/\/$/, '')}, at temperature 0.`,
    );
    await page.getByTestId('check-judge-connection').click();
    await page.locator('[data-testid="judge-connection-status"][data-status="ok"]').waitFor();
    assert.equal((await checkConnection(page)).status, 'ok');

    // Edit the relabel template: the preview shows it on the first trajectory.
    await choose(page, 'template-file', 'relabel_user.j2');
    const area = page.getByTestId('template-text');
    const edited = `${await area.inputValue()}\nKeep it to one sentence. [[edited-template]]`;
    await area.fill(edited);
    await page.getByTestId('template-preview').filter({ hasText: '[[edited-template]]' }).waitFor();
    assert.match(await page.getByTestId('templates-fingerprint').textContent(), /^edited/);

    // A template that does not render is shown at its line and blocks Run.
    await area.fill('Line one\n{{ no_such_field }}\n');
    const error = page.getByTestId('template-error');
    await error.waitFor();
    assert.match(await error.textContent(), /^relabel_user\.j2, line 2: undefined value/);
    assert.equal(await page.getByTestId('run').isDisabled(), true);
    await area.fill(edited);
    await page.getByTestId('template-preview').waitFor();

    await runToEnd(page);

    // Each endpoint received only its own calls.
    const chat = (ep) => ep.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/chat/completions'));
    const mainKinds = new Set(chat(main).map((r) => r.kind));
    assert.ok(!mainKinds.has('judge_reply'), `main endpoint got ${[...mainKinds]}`);
    assert.ok(mainKinds.has('relabel_reply'));
    const judged = chat(judge);
    assert.equal(judged.length, RUNS.length, 'one judge call per run');
    assert.ok(judged.every((r) => r.kind === 'judge_reply' && r.body.model === 'judge-model'));
    assert.ok(chat(main).every((r) => r.body.model === 'scripted-model'));
    // The edited template is what the relabeler received.
    const relabels = chat(main).filter((r) => r.kind === 'relabel_reply');
    assert.equal(relabels.length, RUNS.length);
    assert.ok(relabels.every((r) => userText(r.body).endsWith('Keep it to one sentence. [[edited-template]]')));

    // Grounding: flagged with its tokens marked; the grounded one passes.
    for (const id of RUNS.map((r) => r.trajectory_id)) {
      assert.equal(await rowOf(page, id).getAttribute('data-status'), 'accepted', id);
    }
    const bad = rowOf(page, 'weather-bad');
    assert.equal(await bad.getByTestId('badge-ungrounded').count(), 1);
    assert.deepEqual(await bad.getByTestId('ungrounded-token').allTextContents(), ['Hilton Oslo', '$249']);
    assert.equal(await rowOf(page, 'hotel-ok').getByTestId('badge-ungrounded').count(), 0);

    // Clusters: the two identical goals share one, the hotel and weather goals another.
    const clusterOf = async (id) => {
      const badge = rowOf(page, id).getByTestId('badge-cluster');
      return (await badge.count()) ? { cluster: await badge.getAttribute('data-cluster'), kept: await badge.getAttribute('data-kept') } : null;
    };
    const [d1, d2, h, w] = await Promise.all(RUNS.map((r) => clusterOf(r.trajectory_id)));
    assert.ok(d1 && d2 && h && w, 'every goal has a twin');
    assert.equal(d1.cluster, d2.cluster);
    assert.equal(h.cluster, w.cluster);
    assert.notEqual(d1.cluster, h.cluster);
    assert.equal([d1, d2].filter((c) => c.kept === 'true').length, 1);
    await choose(page, 'filter-checks', 'ungrounded');
    await page.waitForFunction(() => document.querySelectorAll('[data-testid="result-row"]').length === 1);
    assert.equal(await page.getByTestId('result-row').getAttribute('data-id'), 'weather-bad');
    await choose(page, 'filter-checks', 'kept');
    await page.waitForFunction(() => document.querySelectorAll('[data-testid="result-row"]').length === 2);
    await choose(page, 'filter-checks', 'all');

    // The report names both models, per run and as a whole.
    const report = JSON.parse((await download(page, 'download-report')).text);
    assert.equal(report.models.relabel, 'scripted-model');
    assert.equal(report.models.judge, 'judge-model');
    assert.equal(report.models.judge_endpoint, judge.url.replace(/\/$/, ''));
    assert.equal(report.models.judge_same_model, false);
    const byId = Object.fromEntries(report.trajectories.map((t) => [t.trajectory_id, t]));
    for (const id of Object.keys(byId)) {
      assert.equal(byId[id].relabel_model, 'scripted-model');
      assert.equal(byId[id].judge_model, 'judge-model');
    }
    assert.deepEqual(byId['weather-bad'].grounding.ungrounded.map((t) => t.text), ['Hilton Oslo', '$249']);
    assert.equal(byId['hotel-ok'].grounding.ungrounded.length, 0);

    // Every sample's provenance names both models; one per cluster keeps two of four.
    const all = jsonLines((await download(page, 'download-trl-sft')).text);
    assert.equal(all.length, 4);
    assert.ok(all.every((r) => r.provenance.relabel_model === 'scripted-model' && r.provenance.judge_model === 'judge-model'));
    await page.getByTestId('export-one-per-cluster').check();
    const kept = jsonLines((await download(page, 'download-trl-sft')).text);
    assert.equal(kept.length, 2);
    const goals = kept.map((r) => r.messages.find((m) => m.role === 'user').content).sort();
    assert.deepEqual(goals, [OUTSIDE_GOAL, hindsightPromptFor('search', 'accept')].sort());

    // The manifest carries the edited template, its fingerprint and both models.
    const manifest = JSON.parse((await download(page, 'download-manifest')).text);
    assert.equal(manifest.templates.default, false);
    assert.equal(manifest.templates.files['relabel_user.j2'], edited);
    assert.equal(manifest.templates.fingerprint, await fingerprint({ 'relabel_user.j2': edited }));
    assert.notEqual(manifest.templates.fingerprint, await fingerprint());
    assert.equal(manifest.model, 'scripted-model');
    assert.equal(manifest.judge_model, 'judge-model');
    assert.equal(manifest.export_options.one_per_cluster, true);
    assert.equal(manifest.lexicon.default, true);
  } finally {
    await app?.close();
    await main.close();
    await judge.close();
  }
});

test('with grounding set to reject, the ungrounded goal is rejected and says why', { timeout: 180_000 }, async () => {
  const main = await startEndpoint({ models: ['scripted-model'], tweak });
  let app;
  try {
    app = await openApp();
    const { page } = app;
    await load(page, RUNS.filter((r) => GROUNDED_IDS.includes(r.trajectory_id)));
    await configure(page, { baseUrl: main.url, model: 'scripted-model', selects: { 'grounding-mode': 'reject' } });
    await runToEnd(page);
    assert.equal(await rowOf(page, 'hotel-ok').getAttribute('data-status'), 'accepted');
    const bad = rowOf(page, 'weather-bad');
    assert.equal(await bad.getAttribute('data-status'), 'rejected');
    assert.match(
      await bad.getByTestId('cell-outcome').textContent(),
      /grounding check: ungrounded: the goal names “Hilton Oslo” \(name\) and “\$249” \(amount\)/,
    );
    const sft = jsonLines((await download(page, 'download-sft')).text);
    assert.deepEqual(sft.map((r) => r.source_trajectory_id), ['hotel-ok']);
  } finally {
    await app?.close();
    await main.close();
  }
});
