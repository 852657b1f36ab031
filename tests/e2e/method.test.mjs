// The method beyond the paper, end to end: a second judge on its own scripted endpoint (and
// its key remembered across a reload exactly when the main key is), an edited prompt template,
// the grounding check (flag and reject), near-duplicate clusters with the "one per cluster"
// download, what the review queue shows of each goal's checks, and edits of the lexicon and
// templates reaching the analysis once typing pauses.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import AxeBuilder from '@axe-core/playwright';
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
// A run whose relabeled goal only repeats its original goal ("not a new goal").
const RESTATED = run('restated', 'restate_me', 'Looked around the shop; nothing was bought.');

/** The user text of a chat request body. */
function userText(body) {
  return body.messages.filter((m) => m.role === 'user').map((m) => m.content).join('\n');
}

/** Makes the relabeler write OUTSIDE_GOAL for the hotel and weather runs, and the original
 * goal again for RESTATED. */
function tweak(record, response) {
  if (record.kind !== 'relabel_reply') return;
  const text = userText(record.body);
  const goal = /lookup_hotel|get_weather/.test(text)
    ? OUTSIDE_GOAL
    : /restate_me/.test(text)
      ? RESTATED.original_prompt
      : null;
  if (goal) {
    response.choices[0].message.content = JSON.stringify({
      hindsight_prompt: goal,
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

    // The review queue, filtered to the ungrounded goals, shows the one under review with its
    // tokens marked in the goal, the check's finding in words, and its near-duplicate.
    const queueLength = (n) =>
      page.waitForFunction((n) => document.querySelectorAll('[data-testid="review-item"]').length === n, n);
    const card = page.getByTestId('review-card');
    const underReview = (id) => card.getByTestId('review-id').filter({ hasText: id }).waitFor();
    await choose(page, 'review-filter-checks', 'ungrounded');
    await queueLength(1);
    await underReview('weather-bad');
    const goal = card.getByTestId('goal-hindsight');
    assert.deepEqual(await goal.getByTestId('ungrounded-token').allTextContents(), ['Hilton Oslo', '$249']);
    assert.deepEqual(
      await goal.locator('mark').evaluateAll((marks) => marks.map((m) => m.dataset.kind)),
      ['name', 'amount'],
    );
    // Not colour alone: a screen reader hears what each mark means.
    const spoken = await goal.ariaSnapshot();
    assert.match(spoken, /Hilton Oslo \(name the run never observed\)/, spoken);
    assert.match(spoken, /\$249 \(amount the run never observed\)/, spoken);
    const grounding = card.getByTestId('review-grounding');
    assert.equal(await grounding.getAttribute('data-value'), 'false');
    assert.match(
      await grounding.textContent(),
      /^ungrounded The goal names “Hilton Oslo” \(name\) and “\$249” \(amount\), which the run never observed\./,
    );
    assert.equal(await card.getByTestId('review-not-new').count(), 0);
    // Same confidence: one per cluster keeps the first loaded, the hotel run.
    assert.equal(h.kept, 'true');
    const cluster = card.getByTestId('review-cluster');
    assert.equal(await cluster.getAttribute('data-value'), '2');
    assert.match(
      await cluster.textContent(),
      new RegExp(`^cluster #${w.cluster} · 2 goals A near-duplicate of 1 other accepted goal; one per cluster keeps hotel-ok \\(the highest confidence\\)\\.$`),
    );
    const members = card.getByTestId('cluster-member');
    assert.equal(await members.count(), 1);
    assert.equal(await members.getAttribute('data-id'), 'hotel-ok');
    assert.equal(await members.getAttribute('data-kept'), 'true');
    assert.match(await members.locator('.item-goal').textContent(), new RegExp(`${OUTSIDE_GOAL.replace('$', '\\$')}$`));
    // The README's picture of the review queue.
    // (Without the sticky stepper, which would cover the top of the card.)
    const stepper = page.locator('nav.stepper');
    await stepper.evaluate((el) => { el.style.display = 'none'; });
    await page.getByTestId('review-section').screenshot({ path: join(REPO, 'public', 'screenshots', 'review.png') });
    await stepper.evaluate((el) => { el.style.display = ''; });
    // The marks, badges and cluster list pass axe-core in both themes.
    for (const colorScheme of ['light', 'dark']) {
      await page.emulateMedia({ colorScheme });
      const { violations } = await new AxeBuilder({ page }).include('[data-testid="review-section"]').analyze();
      const serious = violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
      assert.deepEqual(serious.map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`), [], colorScheme);
    }
    await page.emulateMedia({ colorScheme: 'light' });

    // The other member is one click away: the filter hid it, so the queue shows every goal again.
    await card.getByTestId('cluster-jump').click();
    await underReview('hotel-ok');
    assert.equal(await page.getByTestId('review-filter-checks').inputValue(), 'all');
    await queueLength(4);
    assert.equal(await card.getByTestId('review-grounding').getAttribute('data-value'), 'true');
    assert.equal(await card.getByTestId('ungrounded-token').count(), 0);
    assert.equal(await card.getByTestId('cluster-member').getAttribute('data-id'), 'weather-bad');
    // "In a cluster": all four goals have a twin; a jump inside the filter keeps the filter.
    await choose(page, 'review-filter-checks', 'clustered');
    await queueLength(4);
    await card.getByTestId('cluster-jump').click();
    await underReview('weather-bad');
    assert.equal(await page.getByTestId('review-filter-checks').inputValue(), 'clustered');
    await choose(page, 'review-filter-checks', 'all');

    // Re-judging an edited goal asks the second judge on its own endpoint, and only it.
    const [judgeCalls, mainCalls] = [chat(judge).length, chat(main).length];
    const EDITED = 'Say whether rain is expected tomorrow afternoon';
    await card.getByTestId('review-edit').click();
    await page.getByTestId('review-edit-input').fill(EDITED);
    await page.getByTestId('review-edit-save').click();
    await page.locator('[data-testid="review-item"][data-id="weather-bad"][data-review="edited"]').click();
    await underReview('weather-bad');
    await card.getByTestId('review-rejudge').click();
    await card.getByTestId('rejudge-verdict').waitFor();
    assert.equal(chat(main).length, mainCalls, 'the relabeling endpoint was asked');
    assert.equal(chat(judge).length, judgeCalls + 1);
    const rejudged = chat(judge).at(-1);
    assert.equal(rejudged.body.model, 'judge-model');
    assert.ok(userText(rejudged.body).includes(EDITED));

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

    // Every sample's provenance names both models; one per cluster keeps three of four: the
    // goals are clustered as exported, so weather-bad's edited goal left hotel-ok's cluster.
    const all = jsonLines((await download(page, 'download-trl-sft')).text);
    assert.equal(all.length, 4);
    assert.ok(all.every((r) => r.provenance.relabel_model === 'scripted-model' && r.provenance.judge_model === 'judge-model'));
    await page.getByTestId('export-one-per-cluster').check();
    const kept = jsonLines((await download(page, 'download-trl-sft')).text);
    const goals = kept.map((r) => r.messages.find((m) => m.role === 'user').content).sort();
    assert.deepEqual(goals, [EDITED, OUTSIDE_GOAL, hindsightPromptFor('search', 'accept')].sort());

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
    await load(page, [...RUNS.filter((r) => GROUNDED_IDS.includes(r.trajectory_id)), RESTATED]);
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
    assert.deepEqual(sft.map((r) => r.source_trajectory_id), ['hotel-ok', 'restated']);

    // The review queue: the goal that repeats the original one is "not a new goal", and it has
    // no near-duplicate.
    const card = page.getByTestId('review-card');
    await choose(page, 'review-filter-checks', 'not-new');
    await page.waitForFunction(() => document.querySelectorAll('[data-testid="review-item"]').length === 1);
    await card.getByTestId('review-id').filter({ hasText: 'restated' }).waitFor();
    assert.equal(await card.getByTestId('review-not-new').count(), 1);
    assert.match(await card.getByTestId('review-not-new').textContent(), /^not a new goal The hindsight goal restates the original goal/);
    assert.equal(await card.getByTestId('review-cluster').getAttribute('data-value'), '1');
    assert.equal(await card.getByTestId('cluster-member').count(), 0);
    assert.match(await card.getByTestId('review-grounding').textContent(), /^ Nothing to check/);
    await choose(page, 'review-filter-checks', 'all');
    await page.locator('[data-testid="review-item"][data-id="hotel-ok"]').click();
    await card.getByTestId('review-id').filter({ hasText: 'hotel-ok' }).waitFor();
    assert.equal(await card.getByTestId('review-not-new').count(), 0);
    await app.checkConsole();
  } finally {
    await app?.close();
    await main.close();
  }
});

/** Everything the page keeps in the browser's storage (local and session storage). */
async function stored(page) {
  return page.evaluate(() => JSON.stringify({ local: { ...localStorage }, session: { ...sessionStorage } }));
}

test("the second judge's key is remembered across a reload exactly when the main key is", { timeout: 180_000 }, async () => {
  const MAIN_KEY = 'sk-main-MAINSECRET';
  const JUDGE_KEY = 'sk-judge-JUDGESECRET';
  const main = await startEndpoint({ models: ['scripted-model'], apiKey: MAIN_KEY });
  const judge = await startEndpoint({ models: ['judge-model'], apiKey: JUDGE_KEY });
  let app;
  try {
    app = await openApp();
    const { page } = app;
    const keys = async () => ({
      main: await page.getByTestId('api-key').inputValue(),
      judge: await page.getByTestId('judge-api-key').inputValue(),
    });
    await configure(page, { baseUrl: main.url, model: 'scripted-model', apiKey: MAIN_KEY });
    await setField(page, 'judge-base-url', judge.url);
    await setField(page, 'judge-model', 'judge-model');
    await setField(page, 'judge-api-key', JUDGE_KEY);
    assert.equal(await page.getByTestId('remember-key').isChecked(), false, 'remembering is off by default');
    assert.ok(!(await stored(page)).includes('SECRET'), 'a key is stored without being remembered');

    // Not remembered: a reload forgets both keys and keeps the judge's endpoint and model.
    await app.reload();
    assert.deepEqual(await keys(), { main: '', judge: '' });
    assert.equal(await page.getByTestId('judge-base-url').inputValue(), judge.url);
    assert.equal(await page.getByTestId('judge-model').inputValue(), 'judge-model');

    // Remembered: both come back after a reload, and a run sends each endpoint its own key.
    await setField(page, 'api-key', MAIN_KEY);
    await setField(page, 'judge-api-key', JUDGE_KEY);
    await page.getByTestId('remember-key').check();
    await app.reload();
    assert.deepEqual(await keys(), { main: MAIN_KEY, judge: JUDGE_KEY });
    assert.equal(await page.getByTestId('remember-key').isChecked(), true);
    await load(page, RUNS.slice(0, 2));
    await runToEnd(page);
    const chat = (ep) => ep.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/chat/completions'));
    assert.equal(chat(judge).length, 2, 'one judge call per run');
    assert.ok(chat(judge).every((r) => r.headers.authorization === `Bearer ${JUDGE_KEY}`));
    assert.ok(chat(main).length > 0 && chat(main).every((r) => r.headers.authorization === `Bearer ${MAIN_KEY}`));
    assert.equal(main.counts().unauthorized ?? 0, 0);
    assert.equal(judge.counts().unauthorized ?? 0, 0);
    for (const r of await page.getByTestId('result-row').all()) {
      assert.equal(await r.getAttribute('data-status'), 'accepted');
    }

    // Forgotten again: unticking removes both from storage.
    await page.getByTestId('remember-key').uncheck();
    assert.ok(!(await stored(page)).includes('SECRET'), 'a key stays stored after unticking');
    await app.reload();
    assert.deepEqual(await keys(), { main: '', judge: '' });
    assert.equal(await page.getByTestId('remember-key').isChecked(), false);
    await app.checkConsole();
  } finally {
    await app?.close();
    await main.close();
    await judge.close();
  }
});

test('edits of the lexicon and of a template reach the analysis once typing pauses, or at once on blur', { timeout: 180_000 }, async () => {
  // A run only the keyword typed below points at a failure type.
  const zebra = {
    trajectory_id: 'zebra',
    original_prompt: 'Photograph the animals at the park.',
    steps: [{ thought: 'Look.', action_name: 'look', action_input: { at: 'park' }, observation: 'A zebra stood by the fence.' }],
    final_answer: '',
    failure_reason: '',
  };
  let app;
  try {
    app = await openApp();
    const { page, context } = app;
    // The page's timers run on a clock the test moves.
    await context.clock.install();
    await app.reload();
    await load(page, [zebra]);
    const type = () => rowOf(page, 'zebra').getByTestId('cell-type').textContent();
    const typeBefore = await type();
    assert.notEqual(typeBefore, 'tool_error');
    const lexicon = page.getByTestId('lexicon');
    const recomputed = async () => Number(await lexicon.getAttribute('data-recomputed'));
    const before = await recomputed();
    await page.clock.pauseAt(Date.now() + 60_000);

    // Typing a keyword: nothing is recomputed while the keys come, once 300 ms after the last.
    const keywords = page.getByTestId('keywords-tool_error');
    await keywords.focus();
    await page.keyboard.press('Control+End');
    await page.keyboard.type('\nzebra');
    assert.equal(await recomputed(), before, 'recomputed while typing');
    await page.clock.runFor(299);
    assert.equal(await recomputed(), before, 'recomputed before the pause was over');
    await page.clock.runFor(1);
    await page.waitForFunction((n) => Number(document.querySelector('[data-testid="lexicon"]').dataset.recomputed) === n, before + 1);
    assert.equal(await type(), 'tool_error', 'the new keyword reached the analysis');
    await page.clock.runFor(2_000);
    assert.equal(await recomputed(), before + 1, 'recomputed more than once for one edit');

    // Leaving the field puts the edit in at once, and nothing more comes after.
    await page.keyboard.press('Control+End');
    await page.keyboard.type('\nbuffalo');
    assert.equal(await recomputed(), before + 1);
    await page.keyboard.press('Tab');
    await page.waitForFunction((n) => Number(document.querySelector('[data-testid="lexicon"]').dataset.recomputed) === n, before + 2);
    await page.clock.runFor(2_000);
    assert.equal(await recomputed(), before + 2);
    assert.match(await keywords.inputValue(), /\nzebra\nbuffalo$/);

    // The template preview: rendered once for a burst of keys.
    const preview = page.getByTestId('template-preview');
    const renders = async () => Number(await preview.getAttribute('data-renders'));
    const rendersBefore = await renders();
    await page.getByTestId('template-text').focus();
    await page.keyboard.press('Control+End');
    await page.keyboard.type(' [[typed]]');
    await page.clock.runFor(299);
    assert.equal(await renders(), rendersBefore, 'rendered while typing');
    assert.ok(!(await preview.textContent()).includes('[[typed]]'));
    await page.clock.runFor(1);
    await preview.filter({ hasText: '[[typed]]' }).waitFor();
    assert.equal(await renders(), rendersBefore + 1, 'rendered more than once for one edit');
    await app.checkConsole();
  } finally {
    await app?.close();
  }
});
