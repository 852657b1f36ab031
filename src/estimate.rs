//! What a run would take before it starts: calls, tokens, time and money per stage, and how
//! far that was from what the run then took.
//!
//! For each trajectory that would run:
//! - **Calls.** Stage 1 in LLM mode is one call. The gates come next: with rule-based
//!   detection the rules already say which trajectories a gate drops (no call at all); with
//!   LLM detection the share the gates let through is the one seen so far (all, before any
//!   result). Stage 2 in LLM mode is one call for what passes. Stage 3 (Algorithm 1) makes
//!   between 1 and K relabel calls: the expected number is `Σ_{k<K} (1 − p)^k` for a chance
//!   `p` that an attempt ends the loop, and each attempt whose candidate reaches θ adds a
//!   judge call (share `q`). Before any result `p` and `q` are the paper's: a multi-judge
//!   acceptance of 73.2 % over K = 3 attempts gives `p ≈ 0.35`, with `q = 0.6` of attempts
//!   reaching the judge. Once results exist, the calls per trajectory actually seen replace
//!   them, weighed against the prior as one trajectory's worth of evidence.
//! - **Prompt tokens** from the prompts themselves: each stage's prompt is rendered for the
//!   trajectory (the relabel prompt with the rule-based outcome, the judge prompt with the
//!   original goal standing in for the hindsight goal), counted as characters ÷ 4, then scaled
//!   by what the endpoint reported for the prompts it has seen (its tokenizer, and the LLM's
//!   own extraction feeding the relabel prompt).
//! - **Completion tokens**: a typical reply per stage before any result, then the mean of the
//!   replies seen; never more than max_tokens.
//! - **Time**: calls of one trajectory follow each other; trajectories run `concurrency` at a
//!   time (a browser opens at most 6 connections to one host), but the server may answer fewer
//!   requests at once (llama.cpp with one slot, Ollama with `OLLAMA_NUM_PARALLEL=1`). A run
//!   measures both its time per request and the round trip of a request the server answered
//!   alone ([`RoundTrips`]); their ratio is how many requests the server ran at once
//!   ([`Pace::parallelism`]). When it ran fewer than the run offered, that is its limit and
//!   the time at any concurrency follows; when it kept up, a higher concurrency may or may not
//!   help, and the time is a range ([`Pace::ms_per_call`]). Before any run a call takes the
//!   latency Check connection measured plus the time to read the prompt and write the reply,
//!   and the time is a range between every lane answered at once and one at a time.
//! - **Cost** from the prices per million input and output tokens the user entered.

use crate::llm::{CallKind, Templates, UsageByStage};
use crate::pipeline::{Mode, Settings, TrajectoryResult};
use crate::progress::format_count;
use crate::session::Session;
use serde::{Deserialize, Serialize};

/// Runs of more trajectories than this at a non-zero price ask for confirmation first.
pub const CONFIRM_ABOVE: usize = 200;

/// Chance that a relabel attempt ends Algorithm 1 (accepted by both judges), before results.
pub const PRIOR_ACCEPT_PER_ATTEMPT: f64 = 0.35;
/// Share of relabel attempts whose candidate reaches θ and goes to the judge, before results.
pub const PRIOR_JUDGED_PER_ATTEMPT: f64 = 0.6;
/// How many trajectories' worth of evidence the prior counts for against observed results.
const PRIOR_WEIGHT: f64 = 1.0;

/// Typical completion tokens per stage before any reply was seen: detect, extract, relabel,
/// judge (the structured replies of the four prompts).
const PRIOR_COMPLETION: [f64; 4] = [180.0, 260.0, 140.0, 90.0];

/// The browser's connections per host: more trajectories at once wait in its queue.
pub const BROWSER_CONNECTIONS: usize = 6;

/// Before a run measured it: time to read a prompt token and to write a reply token.
const PRIOR_MS_PER_PROMPT_TOKEN: f64 = 0.5;
const PRIOR_MS_PER_COMPLETION_TOKEN: f64 = 25.0;
/// The round trip when Check connection has not measured one.
const PRIOR_LATENCY_MS: f64 = 200.0;
/// A server that ran fewer than this share of the run's lanes at once was its bottleneck.
const SATURATED: f64 = 0.75;

/// The round trips of a run's requests to its endpoint, taken as they go out and come back.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RoundTrips {
    in_flight: u32,
    /// Requests begun so far.
    begun: u64,
    /// Round trips of requests that had the server to themselves.
    alone_ms: f64,
    alone: u32,
    fastest: Option<f64>,
}

/// A request on its way ([`RoundTrips::begin`]).
#[derive(Debug, Clone, Copy)]
pub struct Trip {
    at_ms: f64,
    /// Nothing else was in flight when it went out.
    first: bool,
    begun: u64,
}

impl RoundTrips {
    /// A request goes out at `now_ms`.
    pub fn begin(&mut self, now_ms: f64) -> Trip {
        let trip = Trip {
            at_ms: now_ms,
            first: self.in_flight == 0,
            begun: self.begun,
        };
        self.in_flight += 1;
        self.begun += 1;
        trip
    }

    /// `trip` came back at `now_ms`, `answered` or with an error (which says nothing of the
    /// server's speed).
    pub fn end(&mut self, trip: Trip, now_ms: f64, answered: bool) {
        self.in_flight = self.in_flight.saturating_sub(1);
        if !answered {
            return;
        }
        let ms = (now_ms - trip.at_ms).max(0.0);
        // Alone from start to end: nothing in flight before it, nothing begun after it.
        if trip.first && self.begun == trip.begun + 1 {
            self.alone_ms += ms;
            self.alone += 1;
        }
        self.fastest = Some(self.fastest.map_or(ms, |f| f.min(ms)));
    }

    /// The server's time for a request on its own: the mean of the round trips that had it to
    /// themselves, else the fastest (the first a busy server answered waited for nothing).
    pub fn single_ms(&self) -> Option<f64> {
        if self.alone > 0 {
            Some(self.alone_ms / f64::from(self.alone))
        } else {
            self.fastest
        }
    }
}

/// How fast a run went: what the estimate of the next run's time learns from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pace {
    /// Trajectories that ran at once.
    pub lanes: usize,
    /// Milliseconds of the run per request sent (elapsed ÷ requests).
    pub ms_between: f64,
    /// The server's time for one request on its own, when a round trip was measured.
    pub single_ms: Option<f64>,
}

impl Pace {
    /// How many requests the server ran at once: its throughput times its time for one
    /// request, between 1 and the lanes.
    pub fn parallelism(&self) -> Option<f64> {
        let lanes = self.lanes.max(1) as f64;
        self.single_ms
            .filter(|_| self.ms_between > 0.0)
            .map(|single| (single / self.ms_between).clamp(1.0, lanes))
    }

    /// Milliseconds per request at `lanes` trajectories at once, fastest and slowest (the same
    /// when the measurements settle it).
    pub fn ms_per_call(&self, lanes: usize) -> (f64, f64) {
        let measured = self.lanes.max(1) as f64;
        let target = lanes.max(1) as f64;
        let g = self.ms_between;
        match self.parallelism() {
            // The server was the limit: it runs `p` at once whatever the run offers.
            Some(p) if p < SATURATED * measured => {
                let v = g * p / target.min(p);
                (v, v)
            }
            // It kept up: fewer lanes are proportionally slower; more may or may not help.
            Some(_) if target <= measured => {
                let v = g * measured / target;
                (v, v)
            }
            Some(_) => (g * measured / target, g),
            // Without a round trip: only the lanes measured are known.
            None if target < measured => (g, g * measured / target),
            None => (g * measured / target, g),
        }
    }
}

fn slot(kind: CallKind) -> usize {
    match kind {
        CallKind::Detect => 0,
        CallKind::Extract => 1,
        CallKind::Relabel => 2,
        CallKind::Judge => 3,
    }
}

/// Prices per million tokens, in the user's currency (0 for a local endpoint).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Prices {
    pub input_per_million: f64,
    pub output_per_million: f64,
}

impl Prices {
    pub fn is_free(&self) -> bool {
        self.input_per_million <= 0.0 && self.output_per_million <= 0.0
    }

    /// What `prompt` input and `completion` output tokens cost.
    pub fn cost(&self, prompt: f64, completion: f64) -> f64 {
        (prompt * self.input_per_million + completion * self.output_per_million) / 1e6
    }
}

/// The characters of each stage's prompt for one trajectory (role and content of every
/// message, as [`estimate_prompt_tokens`] counts them): detect, extract, relabel, judge.
pub type PromptChars = [u64; 4];

/// The prompt sizes of a session's trajectories, rendered once each (when first needed) and
/// kept.
#[derive(Debug, Default)]
pub struct PromptSizes {
    sizes: std::collections::HashMap<usize, PromptChars>,
    /// The session length they were measured on: entries are only ever added at the end, so a
    /// shorter session is another one.
    measured_len: usize,
    templates: Option<Templates>,
}

fn chars(messages: &[crate::llm::ChatMessage]) -> u64 {
    messages
        .iter()
        .map(|m| (m.role.chars().count() + m.content.chars().count()) as u64)
        .sum()
}

impl PromptSizes {
    pub fn new() -> Self {
        Self::default()
    }

    /// Forgets the sizes measured on another session (entries are only ever added at the end,
    /// so a shorter session is another one).
    pub fn forget_other(&mut self, session: &Session) {
        if session.entries.len() < self.measured_len {
            self.sizes.clear();
        }
        self.measured_len = session.entries.len();
    }

    /// Renders the prompts of the entries at `items` not measured yet.
    pub fn ensure(&mut self, session: &Session, items: &[usize]) {
        self.forget_other(session);
        let templates = self.templates.get_or_insert_with(Templates::defaults);
        for &i in items {
            if self.sizes.contains_key(&i) {
                continue;
            }
            let Some(entry) = session.entries.get(i) else {
                continue;
            };
            let t = &entry.trajectory();
            let size = |m: Result<Vec<crate::llm::ChatMessage>, _>| m.map_or(0, |m| chars(&m));
            self.sizes.insert(
                i,
                [
                    size(templates.render_detect(t)),
                    size(templates.render_extract(t)),
                    size(templates.render_relabel(t, &entry.rules().extracted)),
                    size(templates.render_judge(t, &t.original_prompt)),
                ],
            );
        }
    }

    /// Renders every entry's prompts.
    pub fn update(&mut self, session: &Session) {
        let all: Vec<usize> = (0..session.entries.len()).collect();
        self.ensure(session, &all);
    }

    pub fn get(&self, index: usize) -> Option<&PromptChars> {
        self.sizes.get(&index)
    }

    pub fn len(&self) -> usize {
        self.sizes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sizes.is_empty()
    }
}

/// At most this many trajectories are rendered for one estimate: beyond it, an even sample
/// stands for all (and as many results for the calibration).
pub const SAMPLE: usize = 2_000;

/// Every `len / n`-th of `items` (all of them when there are at most `n`).
pub fn sample(items: &[usize], n: usize) -> Vec<usize> {
    if items.len() <= n || n == 0 {
        return items.to_vec();
    }
    (0..n).map(|k| items[k * items.len() / n]).collect()
}

/// The trajectories whose prompts an estimate of `items` measures: a sample of the results
/// (for the calibration) and a sample of `items`.
pub fn to_measure(session: &Session, items: &[usize]) -> Vec<usize> {
    let mut all = sample(&session.with_results(), SAMPLE);
    all.extend(sample(items, SAMPLE));
    all
}

/// The estimate for running `items` of `session`: renders (a sample of) their prompts and of
/// the results' prompts as needed, calibrates with the results, and scales a sample up to
/// all of `items`. `pace` is how fast the last run went, if one did.
pub fn estimate_run(
    session: &Session,
    sizes: &mut PromptSizes,
    items: &[usize],
    basis: Basis<'_>,
    pace: Option<Pace>,
) -> Estimate {
    sizes.ensure(session, &to_measure(session, items));
    estimate_measured(session, sizes, items, basis, pace)
}

/// As [`estimate_run`], with the prompts [`to_measure`] names already measured in `sizes`
/// (the page renders them in the background, with the templates loaded when first needed). A
/// trajectory not measured is left out.
pub fn estimate_measured(
    session: &Session,
    sizes: &PromptSizes,
    items: &[usize],
    basis: Basis<'_>,
    pace: Option<Pace>,
) -> Estimate {
    let done = sample(&session.with_results(), SAMPLE);
    let mut calibration = Calibration::default();
    for &i in &done {
        if let (Some(result), Some(size)) = (&session.entries[i].result, sizes.get(i)) {
            calibration.learn(result, size);
        }
    }
    calibration.pace = pace;
    let picked = sample(items, SAMPLE);
    let mut estimate = Estimate::new(session, sizes, &calibration, &picked, basis);
    if picked.len() < items.len() {
        let scale = items.len() as f64 / picked.len() as f64;
        for stage in &mut estimate.stages {
            stage.calls *= scale;
            stage.prompt_tokens *= scale;
            stage.completion_tokens *= scale;
        }
        estimate.skipped_by_rules = (estimate.skipped_by_rules as f64 * scale).round() as usize;
        estimate.trajectories = items.len();
        (estimate.ms, estimate.ms_max) =
            estimate.time_ms(basis.settings, &calibration, basis.latency_ms);
    }
    estimate
}

/// What the results so far say about the calls to come.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Calibration {
    /// Reported prompt tokens, and this estimate's chars ÷ 4 for the same calls, per stage.
    reported_prompt: [f64; 4],
    estimated_prompt: [f64; 4],
    /// Completion tokens reported, and the calls that reported them, per stage.
    completion: [f64; 4],
    replies: [f64; 4],
    /// Trajectories that went through detection, and how many of them the gates let through.
    detected: f64,
    passed_gates: f64,
    /// Trajectories that reached Stage 2 and Stage 3.
    extracted: f64,
    relabeled: f64,
    /// Relabel and judge calls of the trajectories that reached Stage 3.
    relabel_calls: f64,
    judge_calls: f64,
    /// How fast the last run went.
    pub pace: Option<Pace>,
}

impl Calibration {
    /// Learns from every result of `session` (sizes must cover it).
    pub fn from_session(session: &Session, sizes: &PromptSizes) -> Self {
        let mut c = Calibration::default();
        for (i, entry) in session.entries.iter().enumerate() {
            if let (Some(result), Some(size)) = (&entry.result, sizes.get(i)) {
                c.learn(result, size);
            }
        }
        c
    }

    /// Takes in one trajectory's result, whose prompts measure `size`.
    pub fn learn(&mut self, result: &TrajectoryResult, size: &PromptChars) {
        use crate::pipeline::{Outcome, Stage};
        if matches!(result.outcome, Outcome::Cancelled { .. }) {
            return;
        }
        for call in result.calls() {
            if call.not_sent() || call.failed() {
                continue;
            }
            let s = slot(call.kind);
            if call.usage.prompt_tokens > 0 {
                self.reported_prompt[s] += call.usage.prompt_tokens as f64;
                self.estimated_prompt[s] += size[s] as f64 / 4.0;
            }
            if call.usage.completion_tokens > 0 {
                self.completion[s] += call.usage.completion_tokens as f64;
                self.replies[s] += 1.0;
            }
        }
        let stage = result.outcome.stage();
        if result.analysis.is_some() {
            self.detected += 1.0;
            if !matches!(
                result.outcome,
                Outcome::Skipped {
                    stage: Stage::Gate,
                    ..
                }
            ) {
                self.passed_gates += 1.0;
            }
        }
        if matches!(stage, Stage::Extraction | Stage::Relabeling) {
            self.extracted += 1.0;
        }
        if let Some(report) = &result.relabel {
            let usage = report.usage();
            if usage.relabel.calls > 0 {
                self.relabeled += 1.0;
                self.relabel_calls += f64::from(usage.relabel.calls);
                self.judge_calls += f64::from(usage.judge.calls);
            }
        }
    }

    /// Whether any result was learnt from.
    pub fn has_data(&self) -> bool {
        self.detected > 0.0 || self.replies.iter().any(|n| *n > 0.0)
    }

    /// Prompt tokens per chars ÷ 4 of `kind` (1 until the endpoint reported some).
    pub fn prompt_scale(&self, kind: CallKind) -> f64 {
        let s = slot(kind);
        if self.estimated_prompt[s] > 0.0 {
            self.reported_prompt[s] / self.estimated_prompt[s]
        } else {
            1.0
        }
    }

    /// Expected completion tokens of a `kind` reply, at most `max_tokens`.
    pub fn completion(&self, kind: CallKind, max_tokens: u32) -> f64 {
        let s = slot(kind);
        let mean = if self.replies[s] > 0.0 {
            self.completion[s] / self.replies[s]
        } else {
            PRIOR_COMPLETION[s]
        };
        mean.min(f64::from(max_tokens))
    }

    /// Expected relabel calls and judge calls of a trajectory that reaches Stage 3, with K
    /// attempts at most.
    pub fn relabel_calls(&self, k: u32) -> (f64, f64) {
        let k = k.max(1);
        let miss = 1.0 - PRIOR_ACCEPT_PER_ATTEMPT;
        let prior_attempts: f64 = (0..k).map(|i| miss.powi(i as i32)).sum();
        let attempts = ((prior_attempts * PRIOR_WEIGHT + self.relabel_calls)
            / (PRIOR_WEIGHT + self.relabeled))
            .clamp(1.0, f64::from(k));
        let judged = (PRIOR_JUDGED_PER_ATTEMPT * prior_attempts * PRIOR_WEIGHT + self.judge_calls)
            / (prior_attempts * PRIOR_WEIGHT + self.relabel_calls);
        (attempts, attempts * judged.clamp(0.0, 1.0))
    }

    /// Share of the trajectories detected by LLM that the gates let through.
    fn gate_pass(&self) -> f64 {
        (PRIOR_WEIGHT + self.passed_gates) / (PRIOR_WEIGHT + self.detected)
    }

    /// Share of the trajectories past the gates whose extraction lets them reach Stage 3.
    fn reach_relabel(&self) -> f64 {
        (PRIOR_WEIGHT + self.relabeled) / (PRIOR_WEIGHT + self.extracted.max(self.relabeled))
    }
}

/// One stage's share of an estimate (or of an actual run).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct StageFigures {
    pub calls: f64,
    pub prompt_tokens: f64,
    pub completion_tokens: f64,
}

impl StageFigures {
    pub fn tokens(&self) -> f64 {
        self.prompt_tokens + self.completion_tokens
    }
}

/// What a run of some trajectories is expected to take.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Estimate {
    pub trajectories: usize,
    /// Of those, the ones the rule-based gates drop before any call.
    pub skipped_by_rules: usize,
    /// Detect, extract, relabel, judge.
    pub stages: [StageFigures; 4],
    /// The time, fastest and slowest (the same when the server's own concurrency is known).
    pub ms: f64,
    pub ms_max: f64,
    pub prices: Prices,
    /// Whether results of this session refined it.
    pub calibrated: bool,
}

/// Inputs of an estimate besides the trajectories.
#[derive(Debug, Clone, Copy)]
pub struct Basis<'a> {
    pub settings: &'a Settings,
    pub prices: Prices,
    /// The round trip Check connection measured, in milliseconds.
    pub latency_ms: Option<f64>,
}

impl Estimate {
    /// The estimate for running the session's entries at `items`.
    pub fn new(
        session: &Session,
        sizes: &PromptSizes,
        calibration: &Calibration,
        items: &[usize],
        basis: Basis<'_>,
    ) -> Self {
        let s = basis.settings;
        let (relabels, judges) = calibration.relabel_calls(s.max_attempts);
        let mut stages = [StageFigures::default(); 4];
        let mut skipped_by_rules = 0;
        let mut add = |kind: CallKind, calls: f64, chars: u64| {
            let figures = &mut stages[slot(kind)];
            figures.calls += calls;
            figures.prompt_tokens += calls * chars as f64 / 4.0 * calibration.prompt_scale(kind);
            figures.completion_tokens += calls * calibration.completion(kind, s.max_tokens);
        };
        for &i in items {
            let (Some(entry), Some(size)) = (session.entries.get(i), sizes.get(i)) else {
                continue;
            };
            let pass = match s.detection {
                Mode::Rules => {
                    if entry.skip_reason().is_some() {
                        skipped_by_rules += 1;
                        continue;
                    }
                    1.0
                }
                Mode::Llm => {
                    add(CallKind::Detect, 1.0, size[0]);
                    calibration.gate_pass()
                }
            };
            let reach = match s.extraction {
                Mode::Rules => pass,
                Mode::Llm => {
                    add(CallKind::Extract, pass, size[1]);
                    pass * calibration.reach_relabel()
                }
            };
            add(CallKind::Relabel, reach * relabels, size[2]);
            add(CallKind::Judge, reach * judges, size[3]);
        }
        let mut estimate = Estimate {
            trajectories: items.len(),
            skipped_by_rules,
            stages,
            ms: 0.0,
            ms_max: 0.0,
            prices: basis.prices,
            calibrated: calibration.has_data(),
        };
        (estimate.ms, estimate.ms_max) = estimate.time_ms(s, calibration, basis.latency_ms);
        estimate
    }

    /// The time of the run, fastest and slowest: its calls at the time per request the last
    /// run's pace gives for this concurrency, or before any run at the latency plus the
    /// tokens' time, between every lane answered at once and one at a time.
    pub fn time_ms(
        &self,
        s: &Settings,
        calibration: &Calibration,
        latency: Option<f64>,
    ) -> (f64, f64) {
        let calls = self.calls();
        if calls == 0.0 {
            return (0.0, 0.0);
        }
        let lanes = s
            .concurrency
            .clamp(1, BROWSER_CONNECTIONS)
            .min(self.trajectories.max(1));
        let (fast, slow) = calibration.pace.map_or_else(
            || {
                let single = latency.unwrap_or(PRIOR_LATENCY_MS)
                    + (self.prompt_tokens() * PRIOR_MS_PER_PROMPT_TOKEN
                        + self.completion_tokens() * PRIOR_MS_PER_COMPLETION_TOKEN)
                        / calls;
                (single / lanes as f64, single)
            },
            |p| p.ms_per_call(lanes),
        );
        (calls * fast, calls * slow)
    }

    /// Whether the time is a range: how many requests the server runs at once is not known.
    pub fn time_uncertain(&self) -> bool {
        self.ms_max > self.ms * 1.05
    }

    /// "0:45", or "0:20 to 1:40" while the server's own concurrency is not known.
    pub fn time(&self) -> String {
        let d = crate::progress::format_duration;
        if self.time_uncertain() {
            format!("{} to {}", d(self.ms), d(self.ms_max))
        } else {
            d(self.ms)
        }
    }

    pub fn stage(&self, kind: CallKind) -> &StageFigures {
        &self.stages[slot(kind)]
    }

    pub fn calls(&self) -> f64 {
        self.stages.iter().map(|s| s.calls).sum()
    }

    pub fn prompt_tokens(&self) -> f64 {
        self.stages.iter().map(|s| s.prompt_tokens).sum()
    }

    pub fn completion_tokens(&self) -> f64 {
        self.stages.iter().map(|s| s.completion_tokens).sum()
    }

    pub fn cost(&self) -> f64 {
        self.prices
            .cost(self.prompt_tokens(), self.completion_tokens())
    }

    /// Whether starting this run should ask first: more than `limit` trajectories at a price.
    pub fn needs_confirmation(&self, limit: usize) -> bool {
        self.trajectories > limit && !self.prices.is_free() && self.cost() > 0.0
    }

    /// One line: "12 trajectories: about 30 calls, 21,000 prompt + 3,000 completion tokens,
    /// 0:45, 0.02 at the prices entered".
    pub fn summary(&self) -> String {
        let cost = if self.prices.is_free() {
            "no cost (no prices entered)".to_string()
        } else {
            format!("cost about {}", format_money(self.cost()))
        };
        format!(
            "{} {}: about {} calls, {} prompt + {} completion tokens, {}, {}",
            format_count(self.trajectories),
            if self.trajectories == 1 {
                "trajectory"
            } else {
                "trajectories"
            },
            format_count(self.calls().round() as usize),
            format_count(self.prompt_tokens().round() as usize),
            format_count(self.completion_tokens().round() as usize),
            self.time(),
            cost
        )
    }
}

/// An amount with the precision it needs: 0.0042, 0.42, 12.30, 1,234.
pub fn format_money(v: f64) -> String {
    if !v.is_finite() || v <= 0.0 {
        "0".into()
    } else if v < 0.01 {
        format!("{v:.4}")
    } else if v < 1000.0 {
        format!("{v:.2}")
    } else {
        format_count(v.round() as usize)
    }
}

/// How far an estimate was from the run, per stage and in all.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Deviation {
    pub estimated: [StageFigures; 4],
    pub actual: [StageFigures; 4],
    pub prices: Prices,
}

/// `(actual − estimated) / estimated`, or `None` when nothing was estimated.
pub fn relative_error(estimated: f64, actual: f64) -> Option<f64> {
    (estimated > 0.0).then(|| (actual - estimated) / estimated)
}

/// "+12%", "−3%", "–" when there is nothing to compare.
pub fn format_error(error: Option<f64>) -> String {
    match error {
        None => "–".into(),
        Some(e) => {
            let pct = (e * 100.0).round();
            if pct > 0.0 {
                format!("+{pct}%")
            } else if pct < 0.0 {
                format!("−{}%", -pct)
            } else {
                "0%".into()
            }
        }
    }
}

impl Deviation {
    /// `usage`: what the run's results recorded (calls answered from the exchange log cost
    /// nothing and are left out).
    pub fn new(estimate: &Estimate, usage: &UsageByStage) -> Self {
        let mut actual = [StageFigures::default(); 4];
        for kind in CallKind::ALL {
            let u = usage.stage(kind);
            actual[slot(kind)] = StageFigures {
                calls: f64::from(u.calls.saturating_sub(u.from_log)),
                prompt_tokens: u.prompt_tokens as f64,
                completion_tokens: u.completion_tokens as f64,
            };
        }
        Deviation {
            estimated: estimate.stages,
            actual,
            prices: estimate.prices,
        }
    }

    fn sum(figures: &[StageFigures; 4], f: fn(&StageFigures) -> f64) -> f64 {
        figures.iter().map(f).sum()
    }

    pub fn calls_error(&self) -> Option<f64> {
        relative_error(
            Self::sum(&self.estimated, |s| s.calls),
            Self::sum(&self.actual, |s| s.calls),
        )
    }

    pub fn tokens_error(&self) -> Option<f64> {
        relative_error(
            Self::sum(&self.estimated, StageFigures::tokens),
            Self::sum(&self.actual, StageFigures::tokens),
        )
    }

    pub fn actual_cost(&self) -> f64 {
        self.prices.cost(
            Self::sum(&self.actual, |s| s.prompt_tokens),
            Self::sum(&self.actual, |s| s.completion_tokens),
        )
    }

    pub fn estimated_cost(&self) -> f64 {
        self.prices.cost(
            Self::sum(&self.estimated, |s| s.prompt_tokens),
            Self::sum(&self.estimated, |s| s.completion_tokens),
        )
    }

    pub fn stage(&self, kind: CallKind) -> (&StageFigures, &StageFigures) {
        (&self.estimated[slot(kind)], &self.actual[slot(kind)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::testing::ScriptedClient;
    use crate::llm::{estimate_prompt_tokens, ChatRequest, Usage};
    use crate::pipeline::{process, Outcome};
    use crate::stages::detect::rules::Lexicon;
    use futures::executor::block_on;

    const RELABEL_OK: &str = r#"{"hindsight_prompt": "Find the Dell XPS 13 price", "is_valid_replay": true, "rationale": "found it", "confidence": 0.9}"#;
    const JUDGE_OK: &str = r#"{"is_valid": true, "confidence": 0.8, "rejection_reason": ""}"#;

    fn line(id: &str, obs: &str, reason: &str) -> String {
        format!(
            r#"{{"trajectory_id":"{id}","original_prompt":"Find a laptop under $500 with 16 GB of memory","steps":[{{"thought":"look","action_name":"search","action_input":{{"q":"laptop"}},"observation":"{obs}"}}],"failure_reason":"{reason}"}}"#
        )
    }

    /// Six runs: four pass the rule-based gates, one is not recoverable, one is a tool error.
    fn session() -> Session {
        let good = "Found Dell XPS 13 for $899 with 16 GB RAM and 512 GB SSD";
        let mut lines: Vec<String> = (0..4)
            .map(|i| line(&format!("t{i}"), good, "The laptop exceeds the budget"))
            .collect();
        lines.push(line("short", "ok", "The laptop exceeds the budget"));
        lines.push(line(
            "tool",
            "error: 500 internal",
            "tool error: the API failed",
        ));
        let text = lines.join("\n");
        let mut s = Session::new(Lexicon::default(), 0.3);
        s.add_report(crate::reader::read_all("f.jsonl", text.as_bytes()));
        s
    }

    fn settings() -> Settings {
        Settings {
            model: "m".into(),
            ..Settings::default()
        }
    }

    fn basis(settings: &Settings) -> Basis<'_> {
        Basis {
            settings,
            prices: Prices {
                input_per_million: 0.15,
                output_per_million: 0.60,
            },
            latency_ms: Some(100.0),
        }
    }

    /// A client that answers every call as accepted, reporting chars ÷ 4 prompt tokens as the
    /// scripted end-to-end endpoint does, and 40 completion tokens.
    fn accepting() -> ScriptedClient {
        ScriptedClient::from_fn(|req: &ChatRequest| {
            let format = serde_json::to_string(&req.response_format).unwrap();
            Ok(if format.contains("judge_reply") {
                JUDGE_OK.to_string()
            } else if format.contains("relabel_reply") {
                RELABEL_OK.to_string()
            } else {
                r#"{"actual_achievements": ["Found a Dell XPS 13 for $899"], "key_observations": ["16 GB RAM"], "limitations": "over budget"}"#.to_string()
            })
        })
    }

    fn run_all(session: &mut Session, client: &ScriptedClient, s: &Settings, items: &[usize]) {
        for &i in items {
            let t = session.entries[i].trajectory();
            let r = block_on(process(
                client,
                &Templates::defaults(),
                s,
                &Lexicon::default(),
                &t,
            ));
            session.set_result(i, r);
        }
    }

    fn usage_of(session: &Session, items: &[usize]) -> UsageByStage {
        let mut u = UsageByStage::default();
        for &i in items {
            u.merge(&session.entries[i].result.as_ref().unwrap().usage());
        }
        u
    }

    #[test]
    fn rules_gates_cost_no_call_and_algorithm_1_is_between_1_and_k_calls() {
        let s = session();
        let mut sizes = PromptSizes::new();
        sizes.update(&s);
        assert_eq!(sizes.len(), 6);
        assert!(sizes.get(0).unwrap().iter().all(|c| *c > 200), "{sizes:?}");
        let settings = settings();
        let all: Vec<usize> = (0..6).collect();
        let e = Estimate::new(&s, &sizes, &Calibration::default(), &all, basis(&settings));
        assert_eq!((e.trajectories, e.skipped_by_rules), (6, 2));
        assert!(!e.calibrated);
        assert_eq!(e.stage(CallKind::Detect).calls, 0.0, "rule-based detection");
        assert_eq!(e.stage(CallKind::Extract).calls, 4.0);
        // 1 + 0.65 + 0.65² relabel calls, 60 % of them judged.
        let relabels = e.stage(CallKind::Relabel).calls / 4.0;
        assert!(
            (relabels - (1.0 + 0.65 + 0.65 * 0.65)).abs() < 1e-9,
            "{relabels}"
        );
        assert!((e.stage(CallKind::Judge).calls / 4.0 - relabels * 0.6).abs() < 1e-9);
        // K bounds it.
        let k1 = Settings {
            max_attempts: 1,
            ..settings.clone()
        };
        let e1 = Estimate::new(&s, &sizes, &Calibration::default(), &all, basis(&k1));
        assert_eq!(e1.stage(CallKind::Relabel).calls, 4.0);
        // LLM detection: a call for every trajectory, and all of them may pass.
        let llm = Settings {
            detection: Mode::Llm,
            ..settings.clone()
        };
        let e2 = Estimate::new(&s, &sizes, &Calibration::default(), &all, basis(&llm));
        assert_eq!(e2.stage(CallKind::Detect).calls, 6.0);
        assert_eq!(e2.stage(CallKind::Extract).calls, 6.0);
        // Rule-based extraction: no extract call.
        let rules = Settings {
            extraction: Mode::Rules,
            ..settings
        };
        let e3 = Estimate::new(&s, &sizes, &Calibration::default(), &all, basis(&rules));
        assert_eq!(e3.stage(CallKind::Extract).calls, 0.0);
        // Tokens come from the rendered prompts; completion at most max_tokens.
        let prompt = e.stage(CallKind::Extract).prompt_tokens;
        let want: f64 = (0..4).map(|i| sizes.get(i).unwrap()[1] as f64 / 4.0).sum();
        assert_eq!(prompt, want);
        let capped = Settings {
            max_tokens: 10,
            model: "m".into(),
            ..Settings::default()
        };
        let e4 = Estimate::new(&s, &sizes, &Calibration::default(), &all, basis(&capped));
        assert_eq!(e4.stage(CallKind::Extract).completion_tokens, 40.0);
    }

    #[test]
    fn a_pilot_calibrates_the_rest_within_the_tolerances() {
        let mut s = session();
        let mut sizes = PromptSizes::new();
        sizes.update(&s);
        let settings = settings();
        // Prompt tokens reported as chars ÷ 4, as the scripted end-to-end endpoint does.
        let client = accepting().with_usage_fn(|req| Usage::new(estimate_prompt_tokens(req), 40));
        // Pilot: the first two.
        run_all(&mut s, &client, &settings, &[0, 1]);
        let calibration = Calibration::from_session(&s, &sizes);
        assert!(calibration.has_data());
        let (relabels, judges) = calibration.relabel_calls(3);
        assert!((relabels - (2.0 + (1.0 + 0.65 + 0.4225)) / 3.0).abs() < 1e-9);
        assert!(judges > 0.0 && judges <= relabels);
        let rest = [2, 3, 4, 5];
        let e = Estimate::new(&s, &sizes, &calibration, &rest, basis(&settings));
        assert!(e.calibrated);
        run_all(&mut s, &client, &settings, &rest);
        let d = Deviation::new(&e, &usage_of(&s, &rest));
        let calls = d.calls_error().unwrap();
        let tokens = d.tokens_error().unwrap();
        assert!(calls.abs() <= 0.25, "calls off by {calls}");
        assert!(tokens.abs() <= 0.25, "tokens off by {tokens}");
        assert_eq!(d.actual[slot(CallKind::Extract)].calls, 2.0);
        // Cost follows the prices.
        let cost = d.actual_cost();
        let want = (d.actual.iter().map(|s| s.prompt_tokens).sum::<f64>() * 0.15
            + d.actual.iter().map(|s| s.completion_tokens).sum::<f64>() * 0.60)
            / 1e6;
        assert!((cost - want).abs() < 1e-12);
        let double = Deviation {
            prices: Prices {
                input_per_million: 0.30,
                output_per_million: 1.20,
            },
            ..d.clone()
        };
        assert!((double.actual_cost() - 2.0 * cost).abs() < 1e-12);
    }

    #[test]
    fn observed_usage_scales_prompts_and_replies() {
        let mut s = session();
        let mut sizes = PromptSizes::new();
        sizes.update(&s);
        let settings = settings();
        // An endpoint whose tokenizer gives twice chars ÷ 4, and replies of 300 tokens.
        let client =
            accepting().with_usage_fn(|req| Usage::new(2 * estimate_prompt_tokens(req), 300));
        run_all(&mut s, &client, &settings, &[0]);
        let c = Calibration::from_session(&s, &sizes);
        let scale = c.prompt_scale(CallKind::Extract);
        assert!((scale - 2.0).abs() < 0.01, "{scale}");
        assert_eq!(c.completion(CallKind::Relabel, 2048), 300.0);
        assert_eq!(c.completion(CallKind::Relabel, 100), 100.0);
        // Cancelled results teach nothing.
        let mut cancelled = s.entries[0].result.clone().unwrap();
        cancelled.outcome = Outcome::Cancelled {
            stage: crate::pipeline::Stage::Relabeling,
        };
        let mut c2 = Calibration::default();
        c2.learn(&cancelled, sizes.get(0).unwrap());
        assert!(!c2.has_data());
    }

    #[test]
    fn time_cost_and_confirmation() {
        let s = session();
        let mut sizes = PromptSizes::new();
        sizes.update(&s);
        let settings = Settings {
            concurrency: 2,
            ..settings()
        };
        let all: Vec<usize> = (0..6).collect();
        // A run at 2 lanes that the server kept up with: a request every 500 ms, each 1 s.
        let mut c = Calibration {
            pace: Some(Pace {
                lanes: 2,
                ms_between: 500.0,
                single_ms: Some(1000.0),
            }),
            ..Calibration::default()
        };
        let e = Estimate::new(&s, &sizes, &c, &all, basis(&settings));
        assert!((e.ms - e.calls() * 1000.0 / 2.0).abs() < 1e-6);
        assert!(!e.time_uncertain());
        // Concurrency beyond the browser's connections per host does not help; whether the
        // server takes 6 at once is not known: a range.
        let wide = Settings {
            concurrency: 64,
            ..settings.clone()
        };
        let e64 = Estimate::new(&s, &sizes, &c, &all, basis(&wide));
        assert!((e64.ms - e64.calls() * 1000.0 / 6.0).abs() < 1e-6);
        assert!((e64.ms_max - e64.calls() * 500.0).abs() < 1e-6);
        assert!(e64.time_uncertain());
        assert!(e64.summary().contains(" to "), "{}", e64.summary());
        c.pace = None;
        let cold = Estimate::new(&s, &sizes, &c, &all, basis(&settings));
        assert!(cold.ms > e.calls() * 100.0 / 2.0, "latency plus generation");
        assert!(
            (cold.ms_max - 2.0 * cold.ms).abs() < 1e-6,
            "one at a time or two"
        );
        let one = Settings {
            concurrency: 1,
            ..settings.clone()
        };
        let cold1 = Estimate::new(&s, &sizes, &c, &all, basis(&one));
        assert!(!cold1.time_uncertain(), "one lane is one at a time");
        let want = (e.prompt_tokens() * 0.15 + e.completion_tokens() * 0.60) / 1e6;
        assert!((e.cost() - want).abs() < 1e-12);
        assert!(!e.needs_confirmation(200));
        assert!(e.needs_confirmation(5));
        let free = Estimate {
            prices: Prices::default(),
            ..e.clone()
        };
        assert!(!free.needs_confirmation(5), "a local endpoint never asks");
        assert!(free.summary().contains("no cost"), "{}", free.summary());
        assert!(
            e.summary().starts_with("6 trajectories: about "),
            "{}",
            e.summary()
        );
    }

    /// A server with `slots` answering each request in `service` ms, first come first served;
    /// `trajectories` of `calls` requests each, one after the other, `lanes` at a time. Returns
    /// the time the run took, its requests and their round trips.
    fn simulate(
        slots: usize,
        service: f64,
        lanes: usize,
        trajectories: usize,
        calls: usize,
    ) -> (f64, u64, RoundTrips) {
        let mut trips = RoundTrips::default();
        let mut queue: std::collections::VecDeque<(usize, Trip)> = Default::default();
        let mut serving: Vec<(f64, usize, Trip)> = Vec::new();
        let mut left = vec![0usize; lanes];
        let (mut now, mut sent, mut started) = (0.0, 0u64, 0usize);
        for (lane, l) in left.iter_mut().enumerate().take(trajectories) {
            *l = calls;
            started += 1;
            queue.push_back((lane, trips.begin(now)));
            sent += 1;
        }
        loop {
            while serving.len() < slots {
                let Some((lane, trip)) = queue.pop_front() else {
                    break;
                };
                serving.push((now + service, lane, trip));
            }
            let Some(k) = (0..serving.len()).min_by(|&a, &b| serving[a].0.total_cmp(&serving[b].0))
            else {
                break;
            };
            let (end, lane, trip) = serving.remove(k);
            now = end;
            trips.end(trip, now, true);
            left[lane] -= 1;
            if left[lane] == 0 && started < trajectories {
                left[lane] = calls;
                started += 1;
            }
            if left[lane] > 0 {
                queue.push_back((lane, trips.begin(now)));
                sent += 1;
            }
        }
        (now, sent, trips)
    }

    /// The pace a simulated run measured.
    fn pace(slots: usize, lanes: usize) -> Pace {
        let (ms, sent, trips) = simulate(slots, 800.0, lanes, 12, 3);
        Pace {
            lanes,
            ms_between: ms / sent as f64,
            single_ms: trips.single_ms(),
        }
    }

    /// Whether `pace` puts a run of 24 trajectories at `lanes` within 10 % of what it takes
    /// on the simulated server (in the range, when it gives one).
    fn predicts(pace: &Pace, slots: usize, lanes: usize) -> (bool, bool) {
        let (actual, sent, _) = simulate(slots, 800.0, lanes, 24, 3);
        let (fast, slow) = pace.ms_per_call(lanes);
        let (fast, slow) = (fast * sent as f64, slow * sent as f64);
        let within = fast <= actual * 1.1 && slow >= actual * 0.9;
        (within, slow <= fast * 1.05)
    }

    #[test]
    fn a_one_slot_server_is_timed_at_any_concurrency_once_a_run_saw_it_queue() {
        // A pilot at 3 lanes on a server that answers one request at a time.
        let p = pace(1, 3);
        assert!((p.single_ms.unwrap() - 800.0).abs() < 1e-9);
        assert!((p.parallelism().unwrap() - 1.0).abs() < 0.01, "{p:?}");
        for lanes in [1, 2, 3, 4, 6] {
            assert_eq!(
                predicts(&p, 1, lanes),
                (true, true),
                "at {lanes} lanes: {p:?}"
            );
        }
        // What the time per request was before: elapsed × lanes ÷ requests over the lanes,
        // the same at 6 lanes as at 3 times 3 ÷ 6: half the actual time.
        let (actual, sent, _) = simulate(1, 800.0, 6, 24, 3);
        let old = p.ms_between * 3.0 / 6.0 * sent as f64;
        assert!(old < actual * 0.6);
    }

    #[test]
    fn a_four_slot_server_is_timed_by_what_it_ran_at_once() {
        // Offered 6 at once, it ran 4: its limit is known.
        let p6 = pace(4, 6);
        let parallel = p6.parallelism().unwrap();
        assert!((parallel - 4.0).abs() < 0.5, "{p6:?}");
        for lanes in [1, 2, 3, 4, 6] {
            assert_eq!(
                predicts(&p6, 4, lanes),
                (true, true),
                "at {lanes} lanes: {p6:?}"
            );
        }
        // Offered 3, it kept up: fewer lanes are known, more are a range that holds the truth.
        let p3 = pace(4, 3);
        for lanes in [1, 2, 3] {
            assert_eq!(
                predicts(&p3, 4, lanes),
                (true, true),
                "at {lanes} lanes: {p3:?}"
            );
        }
        for lanes in [4, 6] {
            assert_eq!(
                predicts(&p3, 4, lanes),
                (true, false),
                "at {lanes} lanes: {p3:?}"
            );
        }
        // Measured one at a time, nothing tells a one-slot server from a four-slot one: a
        // range that holds both.
        let p1 = pace(4, 1);
        assert_eq!(p1, pace(1, 1));
        for slots in [1, 4] {
            assert_eq!(predicts(&p1, slots, 4), (true, false), "{slots} slots");
        }
    }

    #[test]
    fn round_trips_know_a_request_the_server_answered_alone() {
        let mut t = RoundTrips::default();
        assert_eq!(t.single_ms(), None);
        // Two at once: neither is alone; the fastest stands in.
        let a = t.begin(0.0);
        let b = t.begin(0.0);
        t.end(a, 300.0, true);
        t.end(b, 600.0, true);
        assert_eq!(t.single_ms(), Some(300.0));
        // One alone, then one that another joined, then one that failed.
        let c = t.begin(1000.0);
        t.end(c, 1400.0, true);
        let d = t.begin(2000.0);
        let e = t.begin(2100.0);
        t.end(d, 2900.0, true);
        t.end(e, 3000.0, true);
        let f = t.begin(4000.0);
        t.end(f, 4001.0, false);
        assert_eq!(t.single_ms(), Some(400.0));
        let g = t.begin(5000.0);
        t.end(g, 5600.0, true);
        assert_eq!(t.single_ms(), Some(500.0));
    }

    #[test]
    fn an_estimate_from_sizes_measured_beforehand_is_the_same_and_renders_nothing() {
        let s = session();
        let settings = settings();
        let items = [0, 1, 2, 3];
        let mut rendered = PromptSizes::new();
        let direct = estimate_run(&s, &mut rendered, &items, basis(&settings), None);
        // The page measures what `to_measure` names first (in the background), then estimates.
        let mut sizes = PromptSizes::new();
        sizes.ensure(&s, &to_measure(&s, &items));
        let measured_len = sizes.len();
        let later = estimate_measured(&s, &sizes, &items, basis(&settings), None);
        assert_eq!(later, direct);
        assert_eq!(sizes.len(), measured_len);
        // What was not measured is left out, which is why the page measures first.
        let bare = estimate_measured(&s, &PromptSizes::new(), &items, basis(&settings), None);
        assert_eq!(bare.calls(), 0.0);
        assert!(direct.calls() > 0.0);
    }

    #[test]
    fn a_sample_stands_for_a_large_run() {
        assert_eq!(sample(&[1, 2, 3], 5), [1, 2, 3]);
        assert_eq!(sample(&(0..10).collect::<Vec<_>>(), 5), [0, 2, 4, 6, 8]);
        let s = session();
        let settings = settings();
        // The first four pass the gates: a sample of every other one, scaled, estimates all.
        let items = [0, 1, 2, 3];
        let mut sizes = PromptSizes::new();
        let full = estimate_run(&s, &mut sizes, &items, basis(&settings), None);
        assert_eq!(sizes.len(), 4, "only what the estimate needs is rendered");
        let picked = sample(&items, 2);
        let mut sizes = PromptSizes::new();
        sizes.ensure(&s, &picked);
        let half = Estimate::new(
            &s,
            &sizes,
            &Calibration::default(),
            &picked,
            basis(&settings),
        );
        assert!((full.calls() - 2.0 * half.calls()).abs() < 1e-9);
        assert_eq!(full.trajectories, 4);
    }

    #[test]
    fn errors_and_money_read_well() {
        assert_eq!(format_error(relative_error(100.0, 112.0)), "+12%");
        assert_eq!(format_error(relative_error(100.0, 97.0)), "−3%");
        assert_eq!(format_error(relative_error(0.0, 5.0)), "–");
        assert_eq!(format_error(Some(0.001)), "0%");
        assert_eq!(format_money(0.0042), "0.0042");
        assert_eq!(format_money(0.4249), "0.42");
        assert_eq!(format_money(12.3), "12.30");
        assert_eq!(format_money(1234.4), "1,234");
        assert_eq!(format_money(f64::NAN), "0");
    }
}
