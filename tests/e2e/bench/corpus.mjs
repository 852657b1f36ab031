// The benchmarks' input: the reference corpus (tests/fixtures/reference/corpus.jsonl, 400
// trajectories) written over and over with fresh trajectory ids.

import { createReadStream, createWriteStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const CORPUS = join(REPO, 'tests', 'fixtures', 'reference', 'corpus.jsonl');
export const CORPUS_RECORDS = 400;

/**
 * Writes `count` trajectories to `path`: the corpus's records in order, again and again, the
 * ids of the r-th repetition prefixed with `r{r}-`. Returns the file's size in bytes.
 */
export async function writeCorpus(path, count) {
  const lines = [];
  const input = createInterface({ input: createReadStream(CORPUS, 'utf8'), crlfDelay: Infinity });
  for await (const line of input) if (line.trim()) lines.push(line);
  if (lines.length !== CORPUS_RECORDS) throw new Error(`${CORPUS}: ${lines.length} records`);
  const marker = '"trajectory_id": "';
  const out = createWriteStream(path);
  for (let r = 0; r * CORPUS_RECORDS < count; r++) {
    const block = lines.slice(0, count - r * CORPUS_RECORDS).map((l) => {
      if (!l.includes(marker)) throw new Error('a corpus line without a trajectory_id');
      return l.replace(marker, `${marker}r${r}-`);
    });
    if (!out.write(block.join('\n') + '\n')) await new Promise((ok) => out.once('drain', ok));
  }
  await new Promise((ok, fail) => out.end((err) => (err ? fail(err) : ok())));
  return (await stat(path)).size;
}
