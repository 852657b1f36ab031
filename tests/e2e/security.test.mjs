// What the page must never do: run markup that comes from a loaded file or from a model's
// reply, or let the API key out (into downloads, or into storage unless the user asks).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startEndpoint } from './support/endpoint.mjs';
import {
  DATA,
  configure,
  dropFiles,
  downloadAll,
  jsonLines,
  openApp,
  openDetail,
  pickFiles,
  rowOf,
  runToEnd,
} from './support/browser.mjs';

const IMG = '<img src=x onerror="window.__pwned=1">';
const SCRIPT = '<script>window.__pwned=2</script>';
// What the endpoint puts in its relabel reply.
const REPLY_IMG = '<img src=x onerror="window.__pwned=3">';
const REPLY_HINDSIGHT = `List the prices ${REPLY_IMG} <b>found</b> ${SCRIPT.replace('2', '4')}`;

const HOSTILE = {
  trajectory_id: 'sec-html',
  original_prompt: `Compare the two offers ${IMG} and pick one ${SCRIPT}`,
  steps: [
    {
      thought: `Open the offers page <i>now</i> ${IMG}`,
      action_name: 'open_page',
      action_input: { url: 'https://shop.example/offers', note: IMG },
      observation: `Offer A costs 120 EUR per month ${IMG}; Offer B costs 95 EUR per month ${SCRIPT}.`,
    },
  ],
  final_answer: `Offer B is cheaper ${SCRIPT} ${IMG}`,
  failure_reason: 'The agent did not pick an offer as asked.',
  metadata: { source: 'e2e' },
};

/** The endpoint's relabel replies carry HTML; everything else is scripted as usual. */
function htmlRelabel(record) {
  if (record.kind !== 'relabel_reply') return null;
  const content = JSON.stringify({
    hindsight_prompt: REPLY_HINDSIGHT,
    is_valid_replay: true,
    rationale: `The observation lists both prices ${REPLY_IMG}`,
    confidence: 0.9,
  });
  record.reply = content;
  return {
    status: 200,
    body: {
      id: 'chatcmpl-html',
      object: 'chat.completion',
      created: Math.floor(Date.now() / 1000),
      model: record.body.model,
      choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop' }],
      usage: { prompt_tokens: 100, completion_tokens: 40, total_tokens: 140 },
    },
  };
}

async function assertNothingInjected(page) {
  assert.equal(await page.locator('img[src="x"]').count(), 0, 'an injected <img>');
  assert.equal(await page.locator('[onerror]').count(), 0, 'an element with an onerror attribute');
  assert.equal(await page.locator('b, i').filter({ hasText: /^(found|now)$/ }).count(), 0, 'injected markup');
  const scripts = await page.evaluate(() =>
    [...document.querySelectorAll('script')].map((s) => s.textContent).filter((t) => t.includes('__pwned')),
  );
  assert.deepEqual(scripts, [], 'an injected <script>');
  assert.equal(await page.evaluate(() => typeof window.__pwned), 'undefined', 'window.__pwned was set');
}

test('markup in a loaded file and in a model reply is shown as text, never run', { timeout: 120_000 }, async () => {
  const endpoint = await startEndpoint({ fail: htmlRelabel });
  let app;
  try {
    app = await openApp();
    const { page } = app;
    await dropFiles(page, [{ name: `offers ${IMG}.jsonl`, text: `${JSON.stringify(HOSTILE)}\n` }]);
    const fileRow = page.getByTestId('file-row');
    await fileRow.waitFor();
    assert.ok((await fileRow.textContent()).includes(`offers ${IMG}.jsonl`), 'the file name is shown as text');
    await rowOf(page, 'sec-html').waitFor();
    await assertNothingInjected(page);

    await configure(page, {
      baseUrl: endpoint.url,
      model: 'scripted-model',
      selects: { 'extraction-mode': 'rules' },
    });
    await runToEnd(page);
    const row = rowOf(page, 'sec-html');
    assert.equal(await row.getAttribute('data-status'), 'accepted');
    assert.equal((await row.getByTestId('cell-hindsight').textContent()).trim(), REPLY_HINDSIGHT);
    await assertNothingInjected(page);

    const detail = await openDetail(page, 'sec-html');
    const shown = await detail.textContent();
    for (const [what, text] of [
      ['original prompt', HOSTILE.original_prompt],
      ['thought', HOSTILE.steps[0].thought],
      ['observation', HOSTILE.steps[0].observation],
      ['final answer', HOSTILE.final_answer],
      ['hindsight prompt', REPLY_HINDSIGHT],
    ]) {
      assert.ok(shown.includes(text), `the detail shows the ${what} as text: ${text}`);
    }
    const replies = await detail.getByTestId('raw-reply').allTextContents();
    // The raw reply is the JSON the endpoint sent, so the quotes in it are escaped.
    const rawImg = JSON.stringify(REPLY_IMG).slice(1, -1);
    assert.ok(replies.some((t) => t.includes(rawImg)), `the raw reply shows the markup as text: ${JSON.stringify(replies)}`);
    assert.ok(await detail.getByText(HOSTILE.steps[0].observation).first().isVisible());
    await assertNothingInjected(page);

    // The downloads carry the text unchanged (JSON escaping only).
    const files = await downloadAll(page);
    const [sft] = jsonLines(files.sft.text);
    assert.equal(sft.hindsight_prompt, REPLY_HINDSIGHT);
    assert.ok(sft.chosen[1].content.includes(HOSTILE.steps[0].observation));
    await assertNothingInjected(page);
    await app.checkConsole();
  } finally {
    await app?.close();
    await endpoint.close();
  }
});

const KEY = 'sk-test-SECRET-123';

// Settings other than the key, all different from the defaults.
const FIELDS = {
  theta: '0.55',
  delta: '0.25',
  'max-attempts': '2',
  temperature: '0.2',
  'max-tokens': '1024',
  concurrency: '3',
  timeout: '45',
};
const SELECTS = { 'detection-mode': 'rules', 'extraction-mode': 'rules', 'structured-mode': 'json_schema' };

/** Everything the page keeps in the browser: both storages, cookies and the saved sessions. */
async function stored(page) {
  return page.evaluate(async () => {
    const request = (r) =>
      new Promise((resolve, reject) => {
        r.onsuccess = () => resolve(r.result);
        r.onerror = () => reject(r.error);
      });
    const db = await request(indexedDB.open('agenther'));
    const saved = {};
    for (const name of db.objectStoreNames) {
      saved[name] = await request(db.transaction(name).objectStore(name).getAll());
    }
    db.close();
    return JSON.stringify({
      local: { ...localStorage },
      session: { ...sessionStorage },
      cookies: document.cookie,
      saved,
    });
  });
}

test('the API key reaches the endpoint only: not the downloads, not storage unless remembered', { timeout: 180_000 }, async () => {
  const endpoint = await startEndpoint({ apiKey: KEY });
  let app;
  try {
    app = await openApp();
    const { page } = app;
    await pickFiles(page, [join(DATA, 'run-a.jsonl')]);
    await page.getByTestId('file-row').waitFor();
    await configure(page, { baseUrl: endpoint.url, model: 'scripted-model', apiKey: KEY, fields: FIELDS, selects: SELECTS });
    assert.equal(await page.getByTestId('remember-key').isChecked(), false, 'remembering is off by default');
    await runToEnd(page);

    const chats = endpoint.requests.filter((r) => r.method === 'POST' && r.path === '/v1/chat/completions');
    assert.ok(chats.length > 0);
    assert.equal(endpoint.counts().unauthorized, 0);
    for (const r of chats) assert.equal(r.headers.authorization, `Bearer ${KEY}`);
    // The settings reached the requests.
    for (const r of chats) assert.equal(r.body.max_tokens, 1024);
    assert.ok(chats.every((r) => r.body.response_format?.type === 'json_schema'));

    const files = await downloadAll(page);
    assert.ok(jsonLines(files.sft.text).length > 0, 'something was accepted');
    for (const [what, file] of Object.entries(files)) {
      assert.ok(!file.text.includes(KEY), `the ${what} download contains the API key`);
      assert.ok(!file.text.includes('SECRET'), `the ${what} download contains part of the API key`);
    }
    const report = JSON.parse(files.report.text);
    assert.equal(report.settings.theta, 0.55);
    assert.equal(report.settings.max_tokens, 1024);
    const everything = await stored(page);
    assert.match(everything, /run-accept/, 'the session is saved');
    assert.ok(!everything.includes('SECRET'), 'the key is stored without being remembered');

    // A reload forgets the key and keeps everything else.
    await app.reload();
    assert.equal(await page.getByTestId('api-key').inputValue(), '');
    assert.equal(await page.getByTestId('remember-key').isChecked(), false);
    assert.equal(await page.getByTestId('base-url').inputValue(), endpoint.url);
    assert.equal(await page.getByTestId('model').inputValue(), 'scripted-model');
    for (const [testid, value] of Object.entries(FIELDS)) {
      assert.equal(Number(await page.getByTestId(testid).inputValue()), Number(value), `${testid} after a reload`);
    }
    for (const [testid, value] of Object.entries(SELECTS)) {
      assert.equal(await page.getByTestId(testid).inputValue(), value, `${testid} after a reload`);
    }
    // The warning next to "remember": the key is kept unencrypted in this browser.
    const warning = page.getByText(/(stored|saved|kept)\b.{0,80}(unencrypted|local storage)/i);
    assert.equal(await warning.count(), 0, 'no storage warning while the key is not remembered');

    // Remembered: the key comes back after a reload, with the warning.
    await configure(page, { apiKey: KEY });
    await page.getByTestId('remember-key').check();
    await warning.waitFor();
    await app.reload();
    assert.equal(await page.getByTestId('api-key').inputValue(), KEY);
    assert.equal(await page.getByTestId('remember-key').isChecked(), true);
    await warning.waitFor();
    assert.ok(await warning.isVisible());

    // Forgotten again: unticking removes it from storage.
    await page.getByTestId('remember-key').uncheck();
    await warning.waitFor({ state: 'detached' });
    await app.reload();
    assert.equal(await page.getByTestId('api-key').inputValue(), '');
    assert.ok(!(await stored(page)).includes('SECRET'), 'the key stays stored after unticking "remember"');
    await app.checkConsole();
  } finally {
    await app?.close();
    await endpoint.close();
  }
});
