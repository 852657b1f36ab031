//! Section 6: downloads. The native envelopes, the layouts of training tools (each file built
//! and checked row by row by the core's exporters), LLaMA-Factory's `dataset_info.json`, the
//! manifest of the download set and the run report.

use super::browser;
use super::filters::select;
use super::state::{AppState, Phase, RunView};
use crate::export::{self, ExportFile, ExportOptions, RunContext, Target};
use crate::model::SampleFormat;
use crate::prefs;
use crate::progress::{self, format_count};
use leptos::prelude::*;

/// The name under which `dataset_info.json` registers the LLaMA-Factory file.
pub const DATASET_NAME: &str = "agenther_hindsight";

/// What the last build of a target found: shown under the buttons.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportCheck {
    pub target: Target,
    pub name: String,
    pub rows: usize,
    pub left_out: usize,
    /// Every violation, as `line N (id): field: message`.
    pub violations: Vec<String>,
    /// Every value written differently from the source so that the tools can load it, as
    /// `line N: id: field: what was done`.
    pub rewrites: Vec<String>,
}

impl ExportCheck {
    fn of(file: &ExportFile) -> Self {
        ExportCheck {
            target: file.target,
            name: file.name.clone(),
            rows: file.rows,
            left_out: file.left_out,
            violations: file.violations.iter().map(ToString::to_string).collect(),
            rewrites: file.rewrites.iter().map(ToString::to_string).collect(),
        }
    }
}

/// The download section's own signals.
#[derive(Clone, Copy)]
pub struct Downloads {
    pub options: RwSignal<ExportOptions>,
    /// One entry per target, in [`Target::ALL`] order, for the targets built so far.
    pub checks: RwSignal<Vec<ExportCheck>>,
}

impl Downloads {
    pub fn new() -> Self {
        Downloads {
            options: RwSignal::new(ExportOptions::default()),
            checks: RwSignal::new(Vec::new()),
        }
    }

    /// The stamp of this download set: the last change of what the files hold, the start of
    /// the last run or a later load of files (the successes can be downloaded before any run),
    /// so that every file of one set carries the same stamp, however far apart the clicks, and
    /// `dataset_info.json` and the manifest name the files as they were saved.
    fn stamp(state: &AppState) -> String {
        let started = state.running.run.with_untracked(|r| r.started_ms);
        let at = started.max(state.loaded_ms.get_value());
        let at = if at > 0.0 { at } else { browser::now_ms() };
        progress::file_stamp(at)
    }

    fn record(&self, file: &ExportFile) {
        let check = ExportCheck::of(file);
        self.checks.update(|checks| {
            checks.retain(|c| c.target != check.target);
            checks.push(check);
            checks.sort_by_key(|c| Target::ALL.iter().position(|t| *t == c.target));
        });
    }

    /// The export options, with the near-duplicate similarity of the settings.
    fn options(&self, state: &AppState) -> ExportOptions {
        let mut options = self.options.get_untracked();
        if let Ok(p) = state.prefs() {
            options.duplicate_threshold = p.duplicate_threshold;
        }
        options
    }

    /// Builds `target`, its rows written to `out` as they are made.
    fn build(&self, state: &AppState, target: Target, out: &mut dyn export::Out) -> ExportFile {
        let options = self.options(state);
        let stamp = Self::stamp(state);
        state
            .session
            .with_untracked(|s| export::build_into(s, target, &options, &stamp, out))
    }

    /// Builds `target`, shows what its check found and downloads the rows that passed.
    pub fn download(self, state: AppState, target: Target) {
        let mut parts = browser::Parts::new();
        let file = self.build(&state, target, &mut parts);
        self.record(&file);
        if file.left_out > 0 {
            state.notice.set(Some(format!(
                "{}: {} row(s) broke the layout's rules and were left out; see the check below.",
                file.name, file.left_out
            )));
        }
        if file.rows == 0 {
            state.notice.set(Some(format!(
                "{}: no row to write (nothing accepted{}).",
                file.name,
                if file.left_out > 0 {
                    ", or every row broke a rule"
                } else {
                    ""
                }
            )));
            return;
        }
        report(&state, parts.download(&file.name, "application/x-ndjson"));
    }

    /// Builds and checks every target without downloading.
    pub fn check_all(self, state: AppState) {
        for target in Target::ALL {
            let file = self.build(&state, target, &mut export::Discard);
            self.record(&file);
        }
    }

    /// LLaMA-Factory's `dataset_info.json`, registering this set's LLaMA-Factory file.
    pub fn download_dataset_info(self, state: AppState) {
        let name = Target::LlamaFactory.file_name(&Self::stamp(&state));
        let text = export::llamafactory::dataset_info(DATASET_NAME, &name);
        report(
            &state,
            browser::download("dataset_info.json", "application/json", &text),
        );
    }

    /// The manifest of the whole set: every target built now, with its counts.
    pub fn download_manifest(self, state: AppState) {
        let files: Vec<ExportFile> = Target::ALL
            .into_iter()
            .map(|t| self.build(&state, t, &mut export::Discard))
            .collect();
        for f in &files {
            self.record(f);
        }
        let options = self.options(&state);
        let refs: Vec<&ExportFile> = files.iter().collect();
        let value = with_context(&state, |ctx| export::manifest(ctx, &options, &refs));
        let text = serde_json::to_string_pretty(&value).expect("a manifest serializes");
        let name = export::manifest_file_name(&Self::stamp(&state));
        report(&state, browser::download(&name, "application/json", &text));
    }

    /// The run report.
    pub fn download_report(self, state: AppState) {
        let mut parts = browser::Parts::new();
        with_context(&state, |ctx| {
            state.session.with_untracked(|s| {
                serde_json::to_writer_pretty(&mut parts, &export::RunReport::new(s, ctx))
            })
        })
        .expect("a report serializes");
        let name = export::file_name("report", &Self::stamp(&state), "json");
        report(&state, parts.download(&name, "application/json"));
    }
}

impl Default for Downloads {
    fn default() -> Self {
        Self::new()
    }
}

/// Calls `f` with what the report and the manifest say about the run (never the API key).
fn with_context<R>(state: &AppState, f: impl FnOnce(&RunContext) -> R) -> R {
    let prefs = state.prefs().unwrap_or_default();
    let settings = prefs.to_pipeline_settings();
    let templates = prefs.template_sources();
    let lexicon = prefs.lexicon();
    let created_at = progress::iso_time(browser::now_ms());
    let endpoint = prefs::endpoint_for_report(&prefs.base_url);
    let elapsed_ms = state.running.run.with_untracked(RunView::elapsed_ms);
    let review = state
        .session
        .with_untracked(crate::session::Session::review_counts);
    f(&RunContext {
        endpoint: &endpoint,
        settings: &settings,
        templates: &templates,
        lexicon: &lexicon,
        created_at: &created_at,
        elapsed_ms,
        review,
    })
}

fn report(state: &AppState, result: Result<(), wasm_bindgen::JsValue>) {
    if result.is_err() {
        state
            .notice
            .set(Some("The browser refused to start the download.".into()));
    }
}

/// The label of a target's button.
fn label(target: Target) -> &'static str {
    match target {
        Target::Native(SampleFormat::Sft) => "SFT JSONL",
        Target::Native(SampleFormat::Dpo) => "DPO JSONL",
        Target::Native(SampleFormat::Sharegpt) => "ShareGPT JSONL",
        Target::LlamaFactory => "LLaMA-Factory ShareGPT",
        Target::TrlSft => "TRL SFT (messages)",
        Target::TrlPreference => "TRL preference (chosen / rejected)",
        Target::OpenAi => "OpenAI chat fine-tuning",
    }
}

#[component]
pub fn DownloadSection() -> impl IntoView {
    let state = expect_context::<AppState>();
    let downloads = Downloads::new();
    let options = downloads.options;
    // The relabeled samples the files hold: accepted by the run, less what review rejected
    // (and what it has not seen, with "reviewed rows only").
    let accepted = move || {
        let o = options.get();
        state.session.with(|s| export::sample_count(s, &o))
    };
    let review = move || state.session.with(crate::session::Session::review_counts);
    let successes = move || {
        state
            .session
            .with(|s| s.entries.iter().filter(|e| e.succeeded()).count())
    };
    let has_entries = move || state.session.with(|s| !s.files.is_empty());
    let running = move || state.running.run.with(|r| r.phase == Phase::Running);
    let has_samples =
        move || accepted() > 0 || (options.with(|o| o.include_successes) && successes() > 0);
    let button = move |target: Target| {
        // The native envelopes and the preference pairs hold relabeled samples only (a success
        // has no second goal to contrast); the other layouts can also take the successes.
        let relabeled_only = matches!(target, Target::Native(_) | Target::TrlPreference);
        view! {
            <button
                data-testid=format!("download-{}", target.id())
                disabled=move || {
                    running() || if relabeled_only { accepted() == 0 } else { !has_samples() }
                }
                on:click=move |_| downloads.download(state, target)
            >
                {label(target)}
            </button>
        }
    };
    // A button over the whole session, available once something is loaded.
    let session_button =
        move |testid: &'static str, label: &'static str, action: fn(Downloads, AppState)| {
            view! {
                <button
                    data-testid=testid
                    disabled=move || running() || !has_entries()
                    on:click=move |_| action(downloads, state)
                >
                    {label}
                </button>
            }
        };
    let checkbox = move |testid: &'static str,
                         text: &'static str,
                         get: fn(&ExportOptions) -> bool,
                         set: fn(&mut ExportOptions, bool)| {
        view! {
            <label class="check">
                <input
                    type="checkbox"
                    data-testid=testid
                    prop:checked=move || options.with(get)
                    on:change=move |ev| {
                        let on = event_target_checked(&ev);
                        options.update(|o| set(o, on));
                    }
                />
                {text}
            </label>
        }
    };
    view! {
        <section class="card step-section" id="step-export" aria-labelledby="download-title">
            <h2 id="download-title">"Export"</h2>
            <h3 class="subtle">"For training tools"</h3>
            <div class="buttons">
                {Target::TOOLS.into_iter().map(button).collect_view()}
                <button
                    data-testid="download-dataset-info"
                    disabled=move || running() || !has_samples()
                    on:click=move |_| downloads.download_dataset_info(state)
                >
                    "dataset_info.json (LLaMA-Factory)"
                </button>
            </div>
            <div class="options">
                {checkbox(
                    "export-successes",
                    "Add the runs the source marked successful, unchanged",
                    |o| o.include_successes,
                    |o, v| o.include_successes = v,
                )}
                {checkbox(
                    "export-thoughts",
                    "Keep the agent's reasoning",
                    |o| o.thoughts,
                    |o, v| o.thoughts = v,
                )}
                {checkbox(
                    "export-provenance",
                    "Weight and provenance columns (where the layout allows)",
                    |o| o.provenance,
                    |o, v| o.provenance = v,
                )}
                {checkbox(
                    "export-one-per-cluster",
                    "One per cluster of near-duplicate goals (the most confident), in every file",
                    |o| o.one_per_cluster,
                    |o, v| o.one_per_cluster = v,
                )}
                {checkbox(
                    "export-reviewed-only",
                    "Reviewed rows only (accepted or edited in review)",
                    |o| o.reviewed_only,
                    |o, v| o.reviewed_only = v,
                )}
            </div>
            <h3 class="subtle">"Native envelopes, report and manifest"</h3>
            <div class="buttons">
                {[SampleFormat::Sft, SampleFormat::Dpo, SampleFormat::Sharegpt]
                    .into_iter()
                    .map(|f| button(Target::Native(f)))
                    .collect_view()}
                {session_button("download-manifest", "Manifest (JSON)", Downloads::download_manifest)}
                {session_button("download-report", "Run report (JSON)", Downloads::download_report)}
                {session_button("check-exports", "Check every format", Downloads::check_all)}
            </div>
            <p class="muted">
                {move || {
                    if running() {
                        "Downloads are available when the run ends.".to_string()
                    } else if !has_entries() {
                        "Nothing to download yet: load trajectories and run.".to_string()
                    } else {
                        let r = review();
                        let mut text = if r.reviewable == 0 {
                            "No accepted samples yet: the sample files need a run that accepts \
                             some. The report is available."
                                .to_string()
                        } else {
                            format!(
                                "{} samples to write: {} accepted by the run; review accepted {}, edited {}, rejected {}, {} unreviewed.",
                                format_count(accepted()),
                                format_count(r.reviewable),
                                format_count(r.accepted),
                                format_count(r.edited),
                                format_count(r.rejected),
                                format_count(r.unreviewed()),
                            )
                        };
                        if successes() > 0 {
                            text.push_str(&format!(
                                " {} successful runs can be added to the training-tool files.",
                                format_count(successes()),
                            ));
                        }
                        text
                    }
                }}
            </p>
            <Preview downloads=downloads />
            <Show when=move || downloads.checks.with(|c| !c.is_empty())>
                <table class="export-checks" data-testid="export-checks">
                    <thead>
                        <tr>
                            <th>"File"</th>
                            <th>"Rows written"</th>
                            <th>"Left out"</th>
                            <th>"Rule violations"</th>
                            <th>"Written as strings"</th>
                        </tr>
                    </thead>
                    <tbody>
                        {move || {
                            downloads
                                .checks
                                .get()
                                .into_iter()
                                .map(|c| {
                                    let ok = c.violations.is_empty();
                                    view! {
                                        <tr
                                            data-testid="export-check"
                                            data-target=c.target.id()
                                            data-rows=c.rows.to_string()
                                            data-left-out=c.left_out.to_string()
                                            class=if ok { "ok" } else { "bad" }
                                        >
                                            <td>{c.name.clone()}</td>
                                            <td>{format_count(c.rows)}</td>
                                            <td>{format_count(c.left_out)}</td>
                                            <td>{findings(c.violations, "violation")}</td>
                                            <td>{findings(c.rewrites, "rewrite")}</td>
                                        </tr>
                                    }
                                })
                                .collect_view()
                        }}
                    </tbody>
                </table>
            </Show>
        </section>
    }
}

/// Rows shown by the preview.
const PREVIEW_ROWS: usize = 3;

/// A look at the first rows a layout would write, with the options chosen, before downloading.
#[component]
fn Preview(downloads: Downloads) -> impl IntoView {
    let state = expect_context::<AppState>();
    let target = RwSignal::new(String::new());
    let lines = Memo::new(move |_| {
        let target = Target::parse(&target.get())?;
        let options = downloads.options.get();
        Some(
            state
                .session
                .with(|s| export::preview(s, target, &options, PREVIEW_ROWS)),
        )
    });
    let pretty = |line: &str| {
        serde_json::from_str::<serde_json::Value>(line)
            .ok()
            .and_then(|v| serde_json::to_string_pretty(&v).ok())
            .unwrap_or_else(|| line.to_owned())
    };
    view! {
        <div class="preview">
            <label class="inline-field">
                "Preview the first rows of"
                {select(
                    "preview-target".into(),
                    "Layout to preview",
                    target,
                    || {
                        view! {
                            <option value="">"— choose a layout —"</option>
                            {Target::ALL
                                .into_iter()
                                .map(|t| view! { <option value=t.id()>{label(t)}</option> })
                                .collect_view()}
                        }
                    },
                )}
            </label>
            {move || {
                lines
                    .get()
                    .map(|lines| {
                        if lines.is_empty() {
                            view! {
                                <p class="muted" data-testid="preview-empty">
                                    "No row to write with these options."
                                </p>
                            }
                                .into_any()
                        } else {
                            lines
                                .iter()
                                .enumerate()
                                .map(|(i, line)| {
                                    view! {
                                        <details class="fold" open=i == 0>
                                            <summary>{format!("Row {}", i + 1)}</summary>
                                            <pre class="raw" data-testid="preview-row" tabindex="0">
                                                {pretty(line)}
                                            </pre>
                                        </details>
                                    }
                                })
                                .collect_view()
                                .into_any()
                        }
                    })
            }}
        </div>
    }
}

/// A cell of the check table: "none", or one list item per finding.
fn findings(items: Vec<String>, testid: &'static str) -> AnyView {
    if items.is_empty() {
        return view! { <span>"none"</span> }.into_any();
    }
    view! {
        <ul>
            {items
                .into_iter()
                .map(|v| view! { <li data-testid=testid>{v}</li> })
                .collect_view()}
        </ul>
    }
    .into_any()
}
