//! The saved session: the offer to resume the one saved last, and the notice when the browser
//! does not let the page save.

use super::browser;
use super::state::{AppState, Storage};
use crate::progress::format_count;
use leptos::prelude::*;

#[component]
pub fn SavedSession() -> impl IntoView {
    let state = expect_context::<AppState>();
    let busy = move || {
        state
            .running
            .run
            .with(|r| r.phase == super::state::Phase::Running)
            || state.loading.with(Option::is_some)
    };
    let offer = move || {
        state.offer.get().map(|offer| {
            let record = &offer.record;
            let interrupted = if record.running {
                " A run was going on when the page closed."
            } else {
                ""
            };
            let others = (offer.others > 0).then(|| {
                format!(
                    "{} other saved session{}.",
                    format_count(offer.others),
                    if offer.others == 1 { "" } else { "s" }
                )
            });
            let restoring = offer.restoring;
            view! {
                <section class="card saved-session" data-testid="saved-session" aria-label="Saved session">
                    <p>
                        <b>"A saved session: "</b>
                        <span data-testid="saved-summary">{record.summary()}</span>
                        {format!(", saved {}.", browser::local_time(record.saved_ms))}
                        {interrupted}
                    </p>
                    <div class="buttons">
                        <button
                            class="primary"
                            data-testid="resume-session"
                            disabled=move || restoring || busy()
                            on:click=move |_| state.resume_saved()
                        >
                            {if restoring { "Restoring…" } else { "Resume session" }}
                        </button>
                        <button
                            data-testid="discard-session"
                            disabled=restoring
                            title="Delete this saved session and keep working with what the page shows"
                            on:click=move |_| state.discard_offer()
                        >
                            "Start fresh"
                        </button>
                        <button
                            data-testid="delete-stored-sessions"
                            disabled=restoring
                            title="Delete every session this browser keeps for the page"
                            on:click=move |_| state.delete_saved_sessions()
                        >
                            "Delete all saved sessions"
                        </button>
                        {others.map(|o| view! { <span class="muted">{o}</span> })}
                    </div>
                </section>
            }
        })
    };
    let storage_notice = move || match state.storage.get() {
        Storage::Off(message) => Some(view! {
            <p class="storage-notice" data-testid="storage-notice" role="status">
                {message}
            </p>
        }),
        _ => None,
    };
    view! {
        {storage_notice}
        {offer}
    }
}
