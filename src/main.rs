//! The browser app's entry point. Trunk builds this binary for `wasm32-unknown-unknown`.

#[cfg(target_arch = "wasm32")]
fn main() {
    agenther::ui::mount();
}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    println!(
        "agenther {}: this binary is built for the browser with Trunk (`trunk build --release` or \
         `bash .ci/serve`); there is nothing to run here.",
        agenther::version()
    );
}
