//! The background reader's entry point: Trunk builds this binary for `wasm32-unknown-unknown`
//! as a Web Worker (index.html, `data-type="worker"`); the page starts one per core it may use.

#[cfg(target_arch = "wasm32")]
fn main() {
    agenther::worker::run();
}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    println!(
        "agenther-worker {}: the page's background reader, built for the browser with Trunk; \
         there is nothing to run here.",
        agenther::version()
    );
}
