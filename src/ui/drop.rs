//! A dashed box that takes dropped files, as section 1 and the in-page model's panel use it.

use super::browser;
use leptos::ev::DragEvent;
use leptos::prelude::*;

/// Calls `on_files` with the files dropped on it (none is ignored) and shows when files are
/// dragged over it.
#[component]
pub fn DropZone(
    class: &'static str,
    testid: &'static str,
    on_files: Callback<Vec<web_sys::File>>,
    children: Children,
) -> impl IntoView {
    let dragging = RwSignal::new(false);
    view! {
        <div
            class=move || if dragging.get() { format!("{class} dragging") } else { class.to_owned() }
            data-testid=testid
            on:dragover=move |ev: DragEvent| {
                ev.prevent_default();
                dragging.set(true);
            }
            on:dragleave=move |_| dragging.set(false)
            on:drop=move |ev: DragEvent| {
                ev.prevent_default();
                dragging.set(false);
                let files = browser::files_of(ev.data_transfer().and_then(|dt| dt.files()));
                if !files.is_empty() {
                    on_files.run(files);
                }
            }
        >
            {children()}
        </div>
    }
}
