// End-to-end test of the built app: serves ../../dist on 127.0.0.1 and drives headless
// Chromium through playwright-core. Build first (`trunk build --release`); `.ci/test` does.
import { test } from "node:test";
import assert from "node:assert/strict";
import { access, mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { startServer } from "./server.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, "..", "..");
const dist = join(repo, "dist");
// Screenshots, the browser profile and Chromium's temporary files go here (git-ignored).
const scratch = resolve(process.env.E2E_SCRATCH ?? join(repo, "target", "e2e"));
const executablePath = process.env.CHROMIUM ?? "/usr/bin/chromium";
// Playwright adds --headless and --no-sandbox itself.
const CHROMIUM_FLAGS = [
  "--disable-gpu",
  "--disable-dev-shm-usage",
  "--disable-background-networking",
  "--disable-component-update",
  "--no-first-run",
  "--disable-sync",
  "--disable-quic",
];

async function crateVersion() {
  const manifest = await readFile(join(repo, "Cargo.toml"), "utf8");
  const pkg = manifest.split(/^\[/m).find((section) => section.startsWith("package]"));
  const version = pkg?.match(/^version\s*=\s*"([^"]+)"/m)?.[1];
  assert.ok(version, "no [package] version in Cargo.toml");
  return version;
}

/** Starts Chromium with a fresh profile under the scratch folder. */
async function launch() {
  const tmp = join(scratch, "tmp");
  await mkdir(tmp, { recursive: true });
  process.env.TMPDIR = tmp; // Playwright's own temporary files
  const profile = await mkdtemp(join(scratch, "profile-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath,
    headless: true,
    args: CHROMIUM_FLAGS,
    env: { ...process.env, TMPDIR: tmp },
    viewport: { width: 960, height: 600 },
  });
  return {
    context,
    close: async () => {
      await context.close().catch(() => {});
      await rm(profile, { recursive: true, force: true }).catch(() => {});
    },
  };
}

/** Records console errors, page errors and CSP violations of `page`. */
async function watch(page) {
  const seen = { errors: [], warnings: [], wasmTypes: [] };
  page.on("console", (msg) => {
    if (msg.type() === "error") seen.errors.push(msg.text());
    if (msg.type() === "warning") seen.warnings.push(msg.text());
  });
  page.on("pageerror", (err) => seen.errors.push(`page error: ${err.message}`));
  page.on("response", (res) => {
    if (new URL(res.url()).pathname.endsWith(".wasm")) {
      seen.wasmTypes.push(res.headers()["content-type"]);
    }
  });
  await page.addInitScript(() => {
    window.__cspViolations = [];
    document.addEventListener("securitypolicyviolation", (e) =>
      window.__cspViolations.push(`${e.effectiveDirective} ${e.blockedURI}`),
    );
  });
  seen.cspViolations = () => page.evaluate(() => window.__cspViolations);
  return seen;
}

test("the built app loads under its CSP and shows name, version and purpose", { timeout: 120_000 }, async () => {
  await access(join(dist, "index.html")).catch(() => {
    throw new Error(`${dist}/index.html is missing: run \`trunk build --release\` first`);
  });
  await mkdir(scratch, { recursive: true });
  const version = await crateVersion();

  let server, other, browser;
  try {
    server = await startServer(dist);
    // A second origin (another port), standing in for a user's local LLM endpoint.
    other = await startServer(dist, { cors: true });
    browser = await launch();
    const page = browser.context.pages()[0] ?? (await browser.context.newPage());
    const seen = await watch(page);

    const response = await page.goto(server.url);
    assert.equal(response.status(), 200);
    await page.locator("h1.app-name").waitFor({ timeout: 30_000 });

    assert.equal(await page.title(), "AgentHER");
    assert.equal(await page.locator("h1.app-name").textContent(), "AgentHER");
    assert.equal(await page.locator(".app-version").textContent(), `v${version}`);
    assert.match(await page.locator(".app-tagline").textContent(), /failed LLM-agent trajectories/);
    assert.deepEqual(seen.wasmTypes, ["application/wasm"]);

    const csp = await page
      .locator('meta[http-equiv="Content-Security-Policy"]')
      .getAttribute("content");
    assert.match(csp, /script-src 'self' 'wasm-unsafe-eval';/);
    // connect-src lets the page call other origins, such as a local endpoint.
    const status = await page.evaluate(async (url) => (await fetch(url)).status, `${other.url}favicon.svg`);
    assert.equal(status, 200);

    await page.screenshot({ path: join(scratch, "app.png"), fullPage: true });

    if (seen.warnings.length) console.log(`console warnings:\n  ${seen.warnings.join("\n  ")}`);
    assert.deepEqual(seen.errors, [], "console errors");
    assert.deepEqual(await seen.cspViolations(), [], "CSP violations");

    // The policy is really enforced: an inline script is refused.
    await page.addScriptTag({ content: "window.__inlineRan = true;" }).catch(() => {});
    assert.equal(await page.evaluate(() => window.__inlineRan === true), false);
    assert.deepEqual(await seen.cspViolations(), ["script-src-elem inline"]);
  } finally {
    await browser?.close();
    await server?.close();
    await other?.close();
  }
});
