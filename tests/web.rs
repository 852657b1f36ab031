//! Browser tests of the UI: `cargo test --target wasm32-unknown-unknown --test web`, run by
//! `wasm-bindgen-test-runner` in headless Chromium (see `.ci/test`).
#![cfg(target_arch = "wasm32")]

use wasm_bindgen::JsCast;
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_browser);

/// Mounts the app into a fresh element appended to the body and returns that element.
fn mount_app() -> web_sys::HtmlElement {
    let document = web_sys::window().unwrap().document().unwrap();
    let host: web_sys::HtmlElement = document.create_element("div").unwrap().unchecked_into();
    document.body().unwrap().append_child(&host).unwrap();
    // Keep the app mounted for the rest of the test.
    leptos::mount::mount_to(host.clone(), agenther::ui::App).forget();
    host
}

fn text_of(host: &web_sys::HtmlElement, selector: &str) -> String {
    host.query_selector(selector)
        .unwrap()
        .unwrap_or_else(|| panic!("no element matches {selector}"))
        .text_content()
        .unwrap_or_default()
}

#[wasm_bindgen_test]
fn shows_the_product_name() {
    let host = mount_app();
    assert_eq!(text_of(&host, "h1.app-name"), "AgentHER");
}

#[wasm_bindgen_test]
fn shows_the_version() {
    let host = mount_app();
    assert_eq!(
        text_of(&host, ".app-version"),
        format!("v{}", agenther::version())
    );
    assert_eq!(agenther::version(), env!("CARGO_PKG_VERSION"));
}

#[wasm_bindgen_test]
fn says_what_it_does() {
    let host = mount_app();
    let tagline = text_of(&host, ".app-tagline");
    assert!(tagline.contains("training data"), "{tagline}");
    assert_eq!(tagline, agenther::ui::TAGLINE);
}

#[wasm_bindgen_test]
async fn a_later_part_shows_a_task_after_its_condition_and_hides_at_once() {
    use leptos::prelude::*;
    let owner = Owner::new();
    owner.set();
    let wanted = RwSignal::new(false);
    let shown = agenther::ui::browser::later(move || wanted.get());
    // Effects run once the current task's microtasks are done.
    let settle = || async {
        wasm_bindgen_futures::JsFuture::from(js_sys::Promise::resolve(
            &wasm_bindgen::JsValue::from(0),
        ))
        .await
        .unwrap();
    };
    settle().await;
    assert!(!shown.get_untracked());
    wanted.set(true);
    settle().await;
    assert!(!shown.get_untracked(), "not in the task that asked for it");
    agenther::ui::browser::sleep(0).await;
    settle().await;
    assert!(shown.get_untracked(), "in the next one");
    wanted.set(false);
    settle().await;
    assert!(!shown.get_untracked(), "hidden at once");
    // Asked for and taken back before the next task: it stays hidden.
    wanted.set(true);
    settle().await;
    wanted.set(false);
    settle().await;
    agenther::ui::browser::sleep(0).await;
    settle().await;
    assert!(!shown.get_untracked());
}
