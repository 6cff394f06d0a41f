//! Code actions as engine work: picking the span, building the prompt, generating candidates, verifying
//! them with the language's own tools and splicing the one that passes. The server only converts
//! positions and edits. [`implement_stub`] is best-of-N over [`crate::verify::best_of`];
//! [`implement_plan`] implements a design document all or nothing.
mod plan;
pub mod plan_context;
#[cfg(test)]
#[path = "plan_tests.rs"]
mod plan_tests;
mod prompt;
#[cfg(test)]
mod tests;

pub use plan::{
    implement_plan, FileReport, PlanError, PlanJob, PlanOutcome, PlanReport, PlanRun, PlannedFile, PLAN_CONTEXT_TOKENS,
    PLAN_MAX_TOKENS,
};
pub use prompt::{cut_body, StubPrompt};

use crate::api::GenerateRequest;
use crate::cancel::CancelToken;
use crate::syntax::Lang;
use crate::verify::{best_of, Attempt, BestOf, BestOfSettings, Change, Progress, Verifier, VerifyError};
use serde::Serialize;
use std::future::Future;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// The settings `actionCandidates`, `actionTemperature`, `actionBudgetSeconds` and `actionMaxTokens`.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionSettings {
    pub candidates: usize,
    /// For candidates after the first (the first is greedy).
    pub temperature: f32,
    /// For one action: every candidate's generation and checks.
    pub budget: Duration,
    /// Tokens generated per file of a design-document plan (a stub's body takes at most 160 of them).
    pub max_tokens: usize,
}

impl Default for ActionSettings {
    fn default() -> Self {
        ActionSettings { candidates: 3, temperature: 0.7, budget: Duration::from_secs(60), max_tokens: PLAN_MAX_TOKENS }
    }
}

impl ActionSettings {
    pub fn best_of(&self) -> BestOfSettings {
        BestOfSettings {
            candidates: self.candidates,
            temperature: self.temperature,
            budget: self.budget,
            ..BestOfSettings::default()
        }
    }
}

/// "Implement" on one stub of a file inside `workspace`.
#[derive(Debug, Clone)]
pub struct StubJob {
    pub workspace: PathBuf,
    /// Relative to `workspace`.
    pub path: PathBuf,
    pub text: String,
    pub lang: Lang,
    /// The stub's body as [`crate::syntax::Stub::replace`] gives it.
    pub replace: Range<usize>,
    /// Where the stub's item starts.
    pub item_start: usize,
    /// Engine cache key.
    pub key: String,
}

/// What one action did, for the user and for tests: the closing note of issue 16.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ActionReport {
    pub tried: usize,
    pub passed: usize,
    pub time_to_pass_ms: Option<u64>,
    /// Which checks ran on the last verified candidate ("cargo check", "tree-sitter parse (…)").
    pub checks: String,
    /// Each attempt's prompt, in order: a retry's shows the errors fed back.
    pub prompts: Vec<String>,
    /// Why each refused candidate was refused.
    pub refusals: Vec<String>,
    pub summary: String,
}

impl ActionReport {
    fn of(b: &BestOf, prompts: Vec<String>) -> Self {
        ActionReport {
            tried: b.tried.len(),
            passed: usize::from(b.chosen.is_some()),
            time_to_pass_ms: b.time_to_pass.map(|t| t.as_millis() as u64),
            checks: b
                .tried
                .iter()
                .rev()
                .find_map(|t| t.verdict.as_ref())
                .map_or("none (no candidate reached a check)".into(), |v| v.checks_label()),
            prompts,
            refusals: b.tried.iter().filter_map(|t| t.refused.clone()).collect(),
            summary: b.summary(),
        }
    }
}

/// The stub's new body: replace `range` of the file with `new_text`.
#[derive(Debug, Clone)]
pub struct Implemented {
    pub range: Range<usize>,
    pub new_text: String,
    pub report: ActionReport,
}

#[derive(Debug, Clone)]
pub enum ActionError {
    Cancelled,
    /// Nothing passed: the message names the check and its first errors.
    Refused {
        message: String,
        report: ActionReport,
    },
    Failed(String),
}

/// Generates up to N bodies for the stub (the first greedy, the rest at the set temperature, each retry
/// told the previous candidate's errors), verifies each spliced into its file on the workspace's overlay
/// and keeps the first that adds no error. `generate` is the model (the server passes the engine's
/// `generate`); `progress` hears each candidate's step.
pub async fn implement_stub<G, Fut>(
    verifier: Arc<Verifier>,
    job: &StubJob,
    settings: &ActionSettings,
    cancel: &CancelToken,
    mut generate: G,
    mut progress: impl FnMut(String),
) -> Result<Implemented, ActionError>
where
    G: FnMut(GenerateRequest) -> Fut,
    Fut: Future<Output = Result<String, String>>,
{
    let p = StubPrompt::new(job);
    let mut prompts = Vec::new();
    let gen = |a: Attempt| {
        let user = a.feedback.as_ref().map_or_else(|| p.user.clone(), |f| f.prompt(&p.user));
        prompts.push(user.clone());
        let req = GenerateRequest {
            key: format!("{}#implement", job.key),
            system: None,
            user,
            answer_prefix: p.answer_prefix.clone(),
            max_tokens: settings.max_tokens.min(160),
            stop: vec!["```".into()],
            temperature: a.temperature,
            seed: a.index as u64 + 1,
            priority: crate::sched::Priority::Action,
        };
        let fut = generate(req);
        // The budget bounds generation too: on a loaded machine one candidate can outlast it.
        async move {
            match tokio::time::timeout_at(a.deadline.into(), fut).await {
                Ok(r) => r,
                Err(_) => Err("the time budget ran out while generating".to_string()),
            }
        }
    };
    let to_plan = |candidate: &str| -> Result<Vec<Change>, String> {
        let body = cut_body(job.lang, candidate, &p.body_indent)
            .ok_or_else(|| "the model wrote no body (nothing before the closing brace)".to_string())?;
        Ok(vec![Change::new(&job.path, p.splice(&job.text, job.replace.clone(), &body))])
    };
    let report_progress = |pr: Progress| {
        tracing::info!(target: "lokal::actions", "{pr:?}");
        progress(match pr {
            Progress::Generating { index, of } => format!("candidate {}/{of}: generating", index + 1),
            Progress::Verifying { index, of } => format!("candidate {}/{of}: checking", index + 1),
            Progress::Refused { index, of, why } => {
                format!("candidate {}/{of} refused: {}", index + 1, why.lines().next().unwrap_or(""))
            }
            Progress::Passed { index, of } => format!("candidate {}/{of} passed", index + 1),
        })
    };
    let r = best_of(verifier, job.workspace.clone(), &settings.best_of(), cancel, gen, to_plan, report_progress).await;
    let b = match r {
        Ok(b) => b,
        Err(VerifyError::Cancelled) => return Err(ActionError::Cancelled),
        Err(e) => return Err(ActionError::Failed(format!("lokal: {e}"))),
    };
    let report = ActionReport::of(&b, prompts);
    tracing::info!(target: "lokal::actions", "implement {}: {}", job.path.display(), report.summary);
    match &b.chosen {
        Some((candidate, _, _)) => {
            let body = cut_body(job.lang, candidate, &p.body_indent).unwrap_or_default();
            Ok(Implemented { range: job.replace.clone(), new_text: p.new_text(&body), report })
        }
        None => Err(ActionError::Refused { message: refusal(&b), report }),
    }
}

/// Names the check that refused the last candidate and its first errors.
fn refusal(b: &BestOf) -> String {
    let last = b.tried.iter().rev().find_map(|t| t.verdict.as_ref());
    let why = match last {
        Some(v) => format!("{} failed:\n{}", v.checks_label(), v.errors_text(3)),
        None => b
            .tried
            .last()
            .and_then(|t| t.refused.clone())
            .or_else(|| b.stopped.clone())
            .unwrap_or_else(|| "no candidate was generated".into()),
    };
    format!("lokal: nothing inserted; no candidate passed ({}). {why}", b.summary())
}
