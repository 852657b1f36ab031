//! The browser user interface (Leptos, client-side rendering). Components read and write the
//! signals of [`state::AppState`] and call the core; they hold no logic of their own.

mod bound;
pub mod browser;
mod charts;
pub(crate) mod demand;
mod downloads;
mod drop;
mod filters;
mod inpage;
mod load;
mod method;
mod pool;
mod results;
mod review;
mod run;
mod running;
mod saved;
mod settings;
pub mod state;
mod stepper;
mod templates;

use leptos::prelude::*;
pub use state::AppState;

/// One sentence of what the product does, shown under its name.
pub const TAGLINE: &str = "AgentHER turns failed LLM-agent trajectories into training data: \
     it finds what each failed run actually achieved and relabels it as a successful \
     demonstration of that goal.";

/// The whole app.
#[component]
pub fn App() -> impl IntoView {
    let state = AppState::new();
    state.persist();
    state.templates.follow(state.draft);
    state.open_storage();
    provide_context(state);
    provide_context(state.running);
    provide_context(results::TableFilters(state.table));
    let checks = results::MethodChecks::new(state);
    provide_context(checks);
    provide_context(review::ReviewQueue::new(checks));
    view! {
        <div class="app">
            <header class="app-header">
                <img class="app-logo" src="favicon.svg" alt="" width="40" height="40" />
                <h1 class="app-name">"AgentHER"</h1>
                <span class="app-version" title="Version">
                    {format!("v{}", crate::version())}
                </span>
                <p class="app-tagline">{TAGLINE}</p>
            </header>
            <stepper::Stepper />
            <main class="app-main">
                <saved::SavedSession />
                <load::LoadSection />
                <settings::SettingsSection />
                <method::MethodSection />
                <run::RunSection />
                <inpage::RunSpeed />
                <charts::ChartsSection />
                <results::ResultsSection />
                <review::ReviewSection />
                <downloads::DownloadSection />
                {move || {
                    state
                        .notice
                        .get()
                        .map(|n| {
                            view! {
                                <div class="notice" role="status">
                                    <span>{n}</span>
                                    <button class="small" on:click=move |_| state.notice.set(None)>
                                        "Dismiss"
                                    </button>
                                </div>
                            }
                        })
                }}
            </main>
        </div>
    }
}

/// Mounts [`App`] to the document body. Called once by the `agenther` binary.
pub fn mount() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(App);
}
