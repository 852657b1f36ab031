// Starts the app. Trunk's default loader is an inline <script>, which a strict
// Content-Security-Policy (script-src 'self') refuses; this file does the same work from
// the app's own origin. index.html's <script> tag that loads it names the wasm-bindgen module
// and the wasm file in data attributes (.ci/page.sh points them at the build's folder).
// The placeholder index.html paints (#boot) goes once the app has mounted; if the app cannot
// start, the placeholder says so instead.
const tag = document.querySelector("script[data-agenther-js][data-agenther-wasm]");
const boot = document.getElementById("boot");
try {
  const { default: init } = await import(tag.dataset.agentherJs);
  const wasm = await init({ module_or_path: tag.dataset.agentherWasm });
  boot?.remove();
  dispatchEvent(new CustomEvent("TrunkApplicationStarted", { detail: { wasm } }));
} catch (err) {
  const status = document.getElementById("boot-status");
  if (status) status.textContent = `The app could not start: ${err}`;
  boot?.removeAttribute("aria-busy");
  throw err;
}
