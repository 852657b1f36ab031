#!/usr/bin/env bash
# Builds the page's WebAssembly, split into the first load and the parts loaded when first
# used, and puts it into Trunk's staging folder. Run by Trunk as a post-build hook
# (Trunk.toml); Trunk itself builds the background reader (index.html).
#
# Functions declared with `on_demand!` (src/ui/demand.rs, through the wasm_split_helpers
# crate that Leptos re-exports) are split points: what only they reach goes into a module of
# its own that the page fetches the first time one of them is called. The steps, which
# Trunk's own Rust pipeline cannot do:
# 1. cargo links the page with its relocations kept (`--emit-relocs`), which the splitter
#    needs to follow every reference between functions and data;
# 2. `wasm-split-cli` (crate wasm_split_cli_support) writes the main module, one module per
#    split point and `__wasm_split.js`, which loads them into the main module's memory and
#    function table;
# 3. wasm-bindgen generates the JavaScript glue of the main module, keeping the exports the
#    split modules import;
# 4. wasm-opt -Oz shrinks every module (release builds).
# Everything goes into one folder named after a hash of the linked wasm (`app-<hash>/`), so a
# browser never mixes files of two builds, and index.html's loader tag is pointed at it.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
staging="${TRUNK_STAGING_DIR:?this script is run by Trunk (a post_build hook in Trunk.toml)}"
export PATH="$root/tests/e2e/node_modules/.bin:${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
target="wasm32-unknown-unknown"
target_dir="$(cd "$root" && cargo metadata --format-version 1 --no-deps --offline |
  node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).target_directory))')"

if [ "${TRUNK_PROFILE:-debug}" = release ]; then
  profile=web
  built="$target_dir/$target/web/agenther.wasm"
else
  profile=dev
  built="$target_dir/$target/debug/agenther.wasm"
fi

(cd "$root" && cargo rustc --offline --quiet --features split --bin agenther --target "$target" --profile "$profile" \
  -- -C link-args=--emit-relocs)

hash="$(sha256sum "$built" | cut -c1-16)"
work="$target_dir/page"
rm -rf "$work"
mkdir -p "$work/split" "$work/out"

wasm-split-cli "$built" "$work/split" --out-name agenther >"$work/split.log" 2>&1 ||
  { cat "$work/split.log" >&2; exit 1; }
# The relocations and linking data are for the splitter only.
node "$root/.ci/strip-linking.mjs" "$work/split"/*.wasm

wasm-bindgen --target web --keep-lld-exports --no-demangle --no-typescript \
  --out-dir "$work/out" --out-name agenther "$work/split/agenther.wasm"
# The split main module stays in target/page/split/ (with its function names, for
# tests/e2e/bench/size.mjs); the other modules go with the glue.
find "$work/split" -type f ! -name agenther.wasm -exec cp {} "$work/out/" \;

if [ "$profile" = web ]; then
  for wasm in "$work/out"/*.wasm; do
    wasm-opt -Oz "$wasm" -o "$wasm"
  done
fi

folder="app-$hash"
# Which build target/page/ holds (tests/e2e/bench/size.mjs reads its names only if it is the
# one in dist/).
echo "$folder" >"$work/folder"
rm -rf "${staging:?}/$folder"
cp -r "$work/out" "$staging/$folder"
# The loader tag of index.html names the folder's glue and wasm (see public/boot.js).
sed -i "s#/app/agenther#/$folder/agenther#g" "$staging/index.html"
grep -q "/$folder/agenther.js" "$staging/index.html" ||
  { echo "index.html has no loader tag naming /app/agenther.js" >&2; exit 1; }
# The background reader's loader (src/ui/pool.rs starts workers from it), naming the hashed
# files Trunk wrote for it.
reader_js="$(cd "$staging" && ls agenther-worker-*.js | grep -v _loader | head -n 1)"
reader_wasm="$(cd "$staging" && ls agenther-worker-*_bg.wasm | head -n 1)"
[ -n "$reader_js" ] && [ -n "$reader_wasm" ] || { echo "no background reader in $staging" >&2; exit 1; }
printf 'importScripts("./%s");wasm_bindgen("./%s");\n' "$reader_js" "$reader_wasm" \
  >"$staging/agenther-worker_loader.js"
echo "page: $folder ($(ls "$work/out" | tr '\n' ' '))" >&2
