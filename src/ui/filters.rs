//! The filters and order of a list of trajectories: a state of its own, one for the results
//! table and one for the review queue, turned into the core's [`Filter`] and [`Sort`]. The
//! filter bar shows how many trajectories each choice holds.

use super::bound::{BoundCheck, BoundInput};
use crate::charts::Pick;
use crate::checks::CheckFilter;
use crate::model::FailureType;
use crate::progress::format_count;
use crate::review::ReviewState;
use crate::session::{Facets, Filter, Session, Sort, SortKey, Status};
use leptos::prelude::*;

/// `will skip` → `will-skip`, the form the DOM uses.
pub fn status_slug(status: Status) -> String {
    status.as_str().replace(' ', "-")
}

/// One list's filters, order and page.
#[derive(Clone, Copy)]
pub struct Filters {
    /// What the test ids of this list's filters start with (`filter`, `review-filter`).
    pub prefix: &'static str,
    /// `all` or a [`status_slug`].
    pub status: RwSignal<String>,
    /// `all`, `none` or a failure type.
    pub failure_type: RwSignal<String>,
    pub text: RwSignal<String>,
    /// A file name, or empty for every file.
    pub file: RwSignal<String>,
    /// `all` or a [`ReviewState`].
    pub review: RwSignal<String>,
    /// Only the single-judge fallbacks.
    pub fallback: RwSignal<bool>,
    /// A confidence as typed: only accepted samples below it (empty: no bound).
    pub below: RwSignal<String>,
    /// A chart's bar (a funnel step or a confidence range), set by clicking it.
    pub pick: RwSignal<Option<Pick>>,
    /// The results table's goal checks (a [`CheckFilter`] value).
    pub checks: RwSignal<String>,
    pub sort: RwSignal<Option<Sort>>,
    pub page: RwSignal<usize>,
}

impl Filters {
    pub fn new(prefix: &'static str) -> Self {
        Filters {
            prefix,
            status: RwSignal::new("all".into()),
            failure_type: RwSignal::new("all".into()),
            text: RwSignal::new(String::new()),
            file: RwSignal::new(String::new()),
            review: RwSignal::new("all".into()),
            fallback: RwSignal::new(false),
            below: RwSignal::new(String::new()),
            pick: RwSignal::new(None),
            checks: RwSignal::new(CheckFilter::All.as_str().into()),
            sort: RwSignal::new(None),
            page: RwSignal::new(0),
        }
    }

    /// Back to showing everything, the goal checks and a chart's bar included (the order is
    /// kept).
    pub fn reset(&self) {
        self.set(&Filter::default());
        self.page.set(0);
    }

    /// Whether nothing is filtered out (tracked).
    pub fn is_cleared(&self) -> bool {
        self.is(&Filter::default())
    }

    /// The confidence bound, when what is typed is a number.
    pub fn below_value(&self) -> Option<f64> {
        self.below.with(|b| b.trim().parse::<f64>().ok())
    }

    /// The core's filter (tracked).
    pub fn filter(&self) -> Filter {
        let status = self.status.get();
        let failure_type = self.failure_type.get();
        let file = self.file.get();
        Filter {
            status: Status::ALL.into_iter().find(|s| status_slug(*s) == status),
            failure_type: match failure_type.as_str() {
                "all" => None,
                "none" => Some(None),
                t => FailureType::parse(t).map(Some),
            },
            text: self.text.get(),
            file: (!file.is_empty()).then_some(file),
            review: self.review.with(|r| ReviewState::parse(r)),
            fallback: self.fallback.get(),
            confidence_below: self.below_value(),
            pick: self.pick.get(),
        }
    }

    /// Sets every filter to what `filter` asks (the order is kept): a chart's bar or a chip
    /// shows exactly its rows.
    pub fn set(&self, filter: &Filter) {
        self.status
            .set(filter.status.map_or("all".into(), status_slug));
        self.failure_type.set(
            match filter.failure_type {
                None => "all",
                Some(None) => "none",
                Some(Some(t)) => t.as_str(),
            }
            .into(),
        );
        self.text.set(filter.text.clone());
        self.file.set(filter.file.clone().unwrap_or_default());
        self.review
            .set(filter.review.map_or("all", ReviewState::as_str).into());
        self.fallback.set(filter.fallback);
        self.below.set(
            filter
                .confidence_below
                .map_or(String::new(), |x| x.to_string()),
        );
        self.pick.set(filter.pick);
        self.checks.set(CheckFilter::All.as_str().into());
    }

    /// Whether the filters are exactly `filter`, with no goal check (tracked).
    pub fn is(&self, filter: &Filter) -> bool {
        self.checks.with(|c| c == CheckFilter::All.as_str()) && self.filter() == *filter
    }

    /// The indexes of `session`'s entries that match, in the chosen order (tracked).
    pub fn matching(&self, session: RwSignal<Session>) -> Vec<usize> {
        let filter = self.filter();
        let sort = self.sort.get();
        session.with(|s| {
            let mut rows = s.matching(&filter);
            if let Some(sort) = sort {
                s.sort(&mut rows, sort);
            }
            rows
        })
    }

    /// A click on a column's header: sorts by it ascending, then descending, then not at all.
    pub fn toggle_sort(&self, key: SortKey) {
        self.sort.update(|sort| {
            *sort = match *sort {
                Some(Sort {
                    key: k,
                    descending: false,
                }) if k == key => Some(Sort {
                    key,
                    descending: true,
                }),
                Some(Sort {
                    key: k,
                    descending: true,
                }) if k == key => None,
                _ => Some(Sort {
                    key,
                    descending: false,
                }),
            }
        });
        self.page.set(0);
    }

    /// `aria-sort` of a column.
    pub fn aria_sort(&self, key: SortKey) -> &'static str {
        match self.sort.get() {
            Some(Sort { key: k, descending }) if k == key => {
                if descending {
                    "descending"
                } else {
                    "ascending"
                }
            }
            _ => "none",
        }
    }
}

/// An option of a filter's select, with its count when known.
fn option(value: String, label: &str, count: Option<usize>) -> impl IntoView {
    let text = match count {
        Some(n) => format!("{label} ({})", format_count(n)),
        None => label.to_owned(),
    };
    view! { <option value=value>{text}</option> }
}

/// A select bound to `value`, with the options `options` draws.
pub fn select<V: IntoView + 'static>(
    testid: String,
    label: &'static str,
    value: RwSignal<String>,
    options: impl Fn() -> V + Send + Sync + 'static,
) -> impl IntoView {
    view! {
        <select
            data-testid=testid
            aria-label=label
            prop:value=move || value.get()
            on:change=move |ev| value.set(event_target_value(&ev))
        >
            {options}
        </select>
    }
}

/// The select of statuses, each with how many rows picking it would show.
pub fn status_filter(filters: Filters, facets: Memo<Facets>) -> impl IntoView {
    let options = move || {
        facets.with(|f| {
            std::iter::once(option(
                "all".into(),
                "all statuses",
                Some(Facets::total(&f.status)),
            ))
            .chain(
                f.status
                    .iter()
                    .map(|(s, n)| option(status_slug(*s), s.as_str(), Some(*n))),
            )
            .collect_view()
        })
    };
    select(
        format!("{}-status", filters.prefix),
        "Status",
        filters.status,
        options,
    )
}

/// The select of failure types (as the rule-based stages or the run classified them).
pub fn type_filter(filters: Filters, facets: Memo<Facets>) -> impl IntoView {
    let options = move || {
        facets.with(|f| {
            let total = Facets::total(&f.failure_type);
            let none = Facets::count(&f.failure_type, &None);
            [
                option("all".into(), "all types", Some(total)),
                option("none".into(), "no type", Some(none)),
            ]
            .into_iter()
            .chain(f.failure_type.iter().filter_map(|(t, n)| {
                t.map(|t| option(t.as_str().to_owned(), t.as_str(), Some(*n)))
            }))
            .collect_view()
        })
    };
    select(
        format!("{}-type", filters.prefix),
        "Failure type",
        filters.failure_type,
        options,
    )
}

/// The select of loaded files, each with its rows.
pub fn file_filter(filters: Filters, facets: Memo<Facets>) -> impl IntoView {
    let options = move || {
        facets.with(|f| {
            std::iter::once(option(
                String::new(),
                "all files",
                Some(Facets::total(&f.file)),
            ))
            .chain(
                f.file
                    .iter()
                    .map(|(name, n)| option(name.clone(), name, Some(*n))),
            )
            .collect_view()
        })
    };
    select(
        format!("{}-file", filters.prefix),
        "File",
        filters.file,
        options,
    )
}

/// "Clear filters", while something is filtered out: every filter back to all.
pub fn clear_button(filters: Filters) -> impl IntoView {
    view! {
        <Show when=move || !filters.is_cleared()>
            <button
                class="small"
                data-testid=format!("{}-clear", filters.prefix)
                on:click=move |_| filters.reset()
            >
                "Clear filters"
            </button>
        </Show>
    }
}

/// The search box.
#[component]
pub fn TextFilter(filters: Filters) -> impl IntoView {
    view! {
        <BoundInput
            value=filters.text
            testid=format!("{}-text", filters.prefix)
            kind="search"
            placeholder="Search id or goal"
            label="Search"
        />
    }
}

/// The filters only review has: review state, fallbacks, confidence bound.
#[component]
pub fn ReviewFilters(filters: Filters) -> impl IntoView {
    let states = || {
        std::iter::once(("all", "all decisions"))
            .chain(
                ReviewState::ALL
                    .into_iter()
                    .map(|s| (s.as_str(), s.as_str())),
            )
            .map(|(v, l)| option(v.to_owned(), l, None))
            .collect_view()
    };
    view! {
        {select(format!("{}-review", filters.prefix), "Review", filters.review, states)}
        <BoundCheck
            checked=filters.fallback
            testid=format!("{}-fallback", filters.prefix)
            text="Single-judge fallbacks only"
        />
        <label class="inline-field">
            "Confidence below"
            <BoundInput
                value=filters.below
                testid=format!("{}-below", filters.prefix)
                kind="number"
                min="0"
                max="1"
                step="0.05"
                inputmode="decimal"
            />
        </label>
    }
}
