// Generated test inputs built from the trajectories of tests/e2e/data.

import { dataRecords } from './browser.mjs';

/**
 * A JSONL file of `n` copies of run-a.jsonl's `run-accept` trajectory (three calls each against
 * the scripted endpoint: extraction, relabeling, second judge), with ids `{prefix}-{i}`.
 */
export async function acceptFile(n, prefix = 'accept') {
  const accept = (await dataRecords('run-a.jsonl')).find((r) => r.trajectory_id === 'run-accept');
  const lines = [];
  for (let i = 0; i < n; i++) lines.push(JSON.stringify({ ...accept, trajectory_id: `${prefix}-${i}` }));
  return { name: `${prefix}.jsonl`, text: lines.join('\n') + '\n' };
}
