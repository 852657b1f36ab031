//! The workspace's steps (Data, Endpoint, Run, Review, Export): what each one says about
//! where the user stands and what to do next, and the endpoint presets that fill the base
//! URL. Plain data, tested on the host; the UI only shows it.

use crate::progress::{format_count, plural};

/// One step of the workspace, in the order a user goes through them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Data,
    Endpoint,
    Run,
    Review,
    Export,
}

impl Step {
    pub const ALL: [Step; 5] = [
        Step::Data,
        Step::Endpoint,
        Step::Run,
        Step::Review,
        Step::Export,
    ];

    /// The step's name in the stepper.
    pub fn label(self) -> &'static str {
        match self {
            Step::Data => "Data",
            Step::Endpoint => "Endpoint",
            Step::Run => "Run",
            Step::Review => "Review",
            Step::Export => "Export",
        }
    }

    /// The id of the step's section on the page (the stepper links to it).
    pub fn anchor(self) -> &'static str {
        match self {
            Step::Data => "step-data",
            Step::Endpoint => "step-endpoint",
            Step::Run => "step-run",
            Step::Review => "step-review",
            Step::Export => "step-export",
        }
    }
}

/// What the connection check said last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    Unchecked,
    Checking,
    Ok,
    Failed,
}

/// The facts the steps are worked out from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Facts {
    /// Trajectories loaded (failures and successes).
    pub trajectories: usize,
    /// Failed trajectories, the ones a run works on.
    pub failures: usize,
    pub link: Link,
    pub running: bool,
    /// Failed trajectories with a result.
    pub done: usize,
    /// Results accepted by the gates and the judges.
    pub accepted: usize,
}

impl Facts {
    /// The step's state in a few words, under its name in the stepper.
    pub fn status(&self, step: Step) -> String {
        match step {
            Step::Data => match self.trajectories {
                0 => "no files yet".into(),
                n => format!("{} loaded", plural(n, "trajectory", "trajectories")),
            },
            Step::Endpoint => match self.link {
                Link::Ok => "connected".into(),
                Link::Checking => "checking…".into(),
                Link::Failed => "check failed".into(),
                Link::Unchecked => "not checked".into(),
            },
            Step::Run if self.running => format!(
                "running: {} of {}",
                format_count(self.done),
                format_count(self.failures)
            ),
            Step::Run => match self.done {
                0 => "not run yet".into(),
                d => format!(
                    "{} of {} done",
                    format_count(d),
                    format_count(self.failures)
                ),
            },
            Step::Review => match self.done {
                0 => "nothing to review".into(),
                _ => format!("{} accepted", format_count(self.accepted)),
            },
            Step::Export => match self.accepted {
                0 => "nothing to export".into(),
                n => format!("{} ready", plural(n, "row", "rows")),
            },
        }
    }

    /// Whether the step is finished (a check mark in the stepper).
    pub fn complete(&self, step: Step) -> bool {
        match step {
            Step::Data => self.trajectories > 0,
            Step::Endpoint => self.link == Link::Ok,
            Step::Run => !self.running && self.failures > 0 && self.done >= self.failures,
            Step::Review | Step::Export => false,
        }
    }

    /// The step to go to next and what to do there, in one sentence.
    pub fn next(&self) -> (Step, String) {
        if self.trajectories == 0 {
            return (
                Step::Data,
                "Load trajectory files (or try the example) to begin.".into(),
            );
        }
        if self.failures == 0 {
            return (
                Step::Data,
                "Every loaded trajectory succeeded: load failed runs to relabel.".into(),
            );
        }
        if self.running {
            return (
                Step::Run,
                "The run is going on: follow its progress, or Stop it.".into(),
            );
        }
        // The relabeling stage always calls the endpoint.
        if self.link != Link::Ok && self.done == 0 {
            return (
                Step::Endpoint,
                "Pick a preset or enter the endpoint and model, then Check connection.".into(),
            );
        }
        if self.done == 0 {
            return (
                Step::Run,
                "Look at the estimate, then Run (or a pilot of the first few).".into(),
            );
        }
        if self.done < self.failures {
            return (
                Step::Run,
                format!(
                    "{} not run yet: Run goes on with them.",
                    plural(self.failures - self.done, "trajectory", "trajectories")
                ),
            );
        }
        if self.accepted == 0 {
            return (
                Step::Review,
                "No relabel was accepted: open rows to see why, change the settings, run again."
                    .into(),
            );
        }
        (
            Step::Review,
            "Review the accepted relabels, then download the training files under Export.".into(),
        )
    }
}

/// A kind of server the base URL can be filled in for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Preset {
    pub id: &'static str,
    pub name: &'static str,
    pub base_url: &'static str,
    /// What to start on the server (or where to get a key), shown under the presets.
    pub start: &'static str,
    /// Whether the endpoint needs an API key.
    pub needs_key: bool,
}

/// The presets offered, with each server's default port.
pub const PRESETS: [Preset; 5] = [
    Preset {
        id: "ollama",
        name: "Ollama",
        base_url: "http://localhost:11434/v1",
        start: "Start it with OLLAMA_ORIGINS=* ollama serve (the origin setting lets this page \
                call it), then ollama pull a model.",
        needs_key: false,
    },
    Preset {
        id: "llama-cpp",
        name: "llama.cpp",
        base_url: "http://localhost:8080/v1",
        start: "Start llama-server -m model.gguf --port 8080 (it answers browsers' \
                cross-origin requests by default).",
        needs_key: false,
    },
    Preset {
        id: "vllm",
        name: "vLLM",
        base_url: "http://localhost:8000/v1",
        start: "Start vllm serve MODEL (port 8000; it allows calls from other origins by default).",
        needs_key: false,
    },
    Preset {
        id: "lm-studio",
        name: "LM Studio",
        base_url: "http://localhost:1234/v1",
        start: "In LM Studio's Developer tab, load a model, turn on Enable CORS and start the \
                server (port 1234).",
        needs_key: false,
    },
    Preset {
        id: "openai",
        name: "OpenAI",
        base_url: "https://api.openai.com/v1",
        start: "Enter an API key from platform.openai.com; calls are billed, so enter the \
                prices under Advanced settings to see the cost before a run.",
        needs_key: true,
    },
];

impl Preset {
    /// The preset whose base URL `url` is (trailing slashes ignored).
    pub fn matching(url: &str) -> Option<&'static Preset> {
        let url = url.trim().trim_end_matches('/');
        PRESETS.iter().find(|p| p.base_url == url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> Facts {
        Facts {
            trajectories: 0,
            failures: 0,
            link: Link::Unchecked,
            running: false,
            done: 0,
            accepted: 0,
        }
    }

    #[test]
    fn an_empty_workspace_asks_for_data() {
        let f = facts();
        assert_eq!(f.next().0, Step::Data);
        assert!(f.next().1.contains("Load trajectory files"));
        assert_eq!(f.status(Step::Data), "no files yet");
        assert!(Step::ALL.iter().all(|s| !f.complete(*s)));
    }

    #[test]
    fn loaded_data_leads_to_the_endpoint_until_it_answers() {
        let mut f = Facts {
            trajectories: 12,
            failures: 10,
            ..facts()
        };
        assert_eq!(f.status(Step::Data), "12 trajectories loaded");
        assert!(f.complete(Step::Data));
        assert_eq!(f.next().0, Step::Endpoint);
        assert_eq!(f.status(Step::Endpoint), "not checked");
        f.link = Link::Failed;
        assert_eq!(f.next().0, Step::Endpoint);
        assert_eq!(f.status(Step::Endpoint), "check failed");
        f.link = Link::Ok;
        assert_eq!(f.next().0, Step::Run);
        assert!(f.complete(Step::Endpoint));
    }

    #[test]
    fn only_successes_ask_for_failed_runs() {
        let f = Facts {
            trajectories: 3,
            ..facts()
        };
        assert_eq!(f.next().0, Step::Data);
        assert!(f.next().1.contains("failed runs"));
    }

    #[test]
    fn a_run_in_progress_and_a_partial_run() {
        let mut f = Facts {
            trajectories: 10,
            failures: 10,
            link: Link::Ok,
            running: true,
            done: 4,
            ..facts()
        };
        assert_eq!(f.next().0, Step::Run);
        assert_eq!(f.status(Step::Run), "running: 4 of 10");
        assert!(!f.complete(Step::Run));
        f.running = false;
        assert_eq!(f.status(Step::Run), "4 of 10 done");
        assert_eq!(
            f.next().1,
            "6 trajectories not run yet: Run goes on with them."
        );
    }

    #[test]
    fn a_finished_run_leads_to_review_and_export() {
        let mut f = Facts {
            trajectories: 10,
            failures: 10,
            done: 10,
            accepted: 1,
            ..facts()
        };
        assert!(f.complete(Step::Run));
        assert_eq!(f.next().0, Step::Review);
        assert_eq!(f.status(Step::Export), "1 row ready");
        f.accepted = 0;
        assert!(f.next().1.contains("No relabel was accepted"));
        assert_eq!(f.status(Step::Export), "nothing to export");
    }

    #[test]
    fn presets_are_found_by_their_url() {
        assert_eq!(
            Preset::matching("http://localhost:11434/v1/").map(|p| p.id),
            Some("ollama")
        );
        assert_eq!(Preset::matching("http://example.test/v1"), None);
        assert!(PRESETS
            .iter()
            .filter(|p| p.needs_key)
            .all(|p| p.id == "openai"));
        let mut ids: Vec<_> = PRESETS.iter().map(|p| p.id).collect();
        ids.dedup();
        assert_eq!(ids.len(), PRESETS.len());
    }
}
