//! Inputs bound to a signal. The child component is given the signal it edits (the field)
//! instead of every input wiring its own value and handler: one piece of code for the search
//! boxes, the number inputs of the filters and the run, the API keys and the check boxes.

use leptos::prelude::*;

/// A text input that shows `value` and writes each keystroke to it. The optional attributes
/// are left out when not given.
#[component]
pub fn BoundInput(
    value: RwSignal<String>,
    #[prop(into)] testid: String,
    #[prop(default = "text")] kind: &'static str,
    /// Its accessible name, when no label wraps it.
    #[prop(optional)]
    label: Option<&'static str>,
    #[prop(optional)] placeholder: Option<&'static str>,
    #[prop(optional)] min: Option<&'static str>,
    #[prop(optional)] max: Option<&'static str>,
    #[prop(optional)] step: Option<&'static str>,
    #[prop(optional)] inputmode: Option<&'static str>,
    #[prop(optional)] autocomplete: Option<&'static str>,
    #[prop(optional)] narrow: bool,
    /// The id of the help text that describes it.
    #[prop(optional)]
    describedby: Option<String>,
) -> impl IntoView {
    view! {
        <input
            type=kind
            data-testid=testid
            aria-label=label
            placeholder=placeholder
            min=min
            max=max
            step=step
            inputmode=inputmode
            autocomplete=autocomplete
            aria-describedby=describedby
            class:narrow=narrow
            prop:value=move || value.get()
            on:input=move |ev| value.set(event_target_value(&ev))
        />
    }
}

/// A check box that shows `checked` and writes each change to it, with its text.
#[component]
pub fn BoundCheck(
    checked: RwSignal<bool>,
    #[prop(into)] testid: String,
    text: &'static str,
) -> impl IntoView {
    view! {
        <label class="check">
            <input
                type="checkbox"
                data-testid=testid
                prop:checked=move || checked.get()
                on:change=move |ev| checked.set(event_target_checked(&ev))
            />
            {text}
        </label>
    }
}
