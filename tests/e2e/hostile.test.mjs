// Hostile input through the page: binary and compressed files, an empty file, an object that
// wraps the runs, prose and a file cut off mid-record, dropped together with a good file. Each
// gets a clear message at its line, every good record is kept, and the page stays usable.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { REPO, openApp, pickFiles, tableRows } from './support/browser.mjs';

const CORPUS = join(REPO, 'tests', 'fixtures', 'reference', 'corpus.jsonl');

test('hostile files get one clear message each and good records are kept', async () => {
  const corpus = await readFile(CORPUS, 'utf8');
  const lines = corpus.split('\n').filter((l) => l.trim());
  const dir = await mkdtemp(join(tmpdir(), 'agenther-hostile-'));
  const noise = Buffer.alloc(64 * 1024);
  for (let i = 0; i < noise.length; i++) noise[i] = (i * 2654435761) >>> 24;
  noise[3] = 0;
  const files = {
    'noise.bin': noise,
    'corpus.jsonl.gz': gzipSync(corpus),
    'empty.jsonl': '',
    'wrapped.json': `{"version": 1, "data": [${lines.slice(0, 3).join(',')}]}`,
    'notes.txt': 'These are my notes about the agent.\nIt failed a lot.\n',
    'cut.jsonl': `${lines[0]}\n${lines[1]}\n${lines[2].slice(0, 80)}`,
    'good.jsonl': `${lines.slice(0, 10).join('\n')}\n`,
  };
  const paths = [];
  for (const [name, content] of Object.entries(files)) {
    const path = join(dir, name);
    await writeFile(path, content);
    paths.push(path);
  }

  const app = await openApp();
  try {
    const { page } = app;
    await pickFiles(page, paths);
    const fileRow = page.getByTestId('file-row');
    await fileRow.filter({ hasText: 'good.jsonl' }).waitFor();
    await assert.doesNotReject(fileRow.filter({ hasText: 'cut.jsonl' }).waitFor());
    const rowText = async (name) => (await fileRow.filter({ hasText: name }).first().textContent()) ?? '';

    assert.match(await rowText('noise.bin'), /not text/);
    assert.match(await rowText('noise.bin'), /1 rejected/);
    assert.match(await rowText('good.jsonl'), /10 trajectories/);
    assert.match(await rowText('cut.jsonl'), /2 trajectories/);
    assert.match(await rowText('cut.jsonl'), /1 rejected/);
    assert.match(await rowText('empty.jsonl'), /empty/);

    const items = await page.getByTestId('rejected-item').allTextContents();
    const has = (re) => assert.ok(items.some((i) => re.test(i)), `${re} not in:\n${items.join('\n')}`);
    has(/noise\.bin:1: .*binary file \(it holds NUL bytes\).*nothing was read from it/);
    has(/corpus\.jsonl\.gz:1: .*gzip-compressed file: decompress it first/);
    has(/wrapped\.json:1: .*it holds a list under "data"/);
    has(/notes\.txt:1: /);
    has(/cut\.jsonl:3: /);
    // One message for each binary file, not one per line of noise.
    assert.equal(items.filter((i) => i.includes('noise.bin')).length, 1);
    assert.equal(items.filter((i) => i.includes('corpus.jsonl.gz')).length, 1);

    // Every good record is in the table; the page still answers.
    const rows = await tableRows(page);
    assert.equal(rows.length, 10 + 2);
    await page.getByTestId('load-example').click();
    await fileRow.filter({ hasText: 'agenther-example.jsonl' }).waitFor();
    assert.equal((await tableRows(page)).length, 12 + 18);
    await app.checkConsole();
  } finally {
    await app.close();
  }
});
