//! The browser user interface (Leptos, client-side rendering).

use leptos::prelude::*;

/// One sentence of what the product does, shown under its name.
pub const TAGLINE: &str = "AgentHER turns failed LLM-agent trajectories into training data: \
     it finds what each failed run actually achieved and relabels it as a successful \
     demonstration of that goal.";

/// The whole app.
#[component]
pub fn App() -> impl IntoView {
    view! {
        <div class="app">
            <header class="app-header">
                <img class="app-logo" src="favicon.svg" alt="" width="40" height="40" />
                <h1 class="app-name">"AgentHER"</h1>
                <span class="app-version" title="Version">
                    {format!("v{}", crate::version())}
                </span>
            </header>
            <main class="app-main">
                <p class="app-tagline">{TAGLINE}</p>
            </main>
        </div>
    }
}

/// Mounts [`App`] to the document body. Called once by the `agenther` binary.
pub fn mount() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(App);
}
