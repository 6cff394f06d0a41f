//! Best of N: ask for candidates until one passes verification, within a time budget. A refused
//! candidate's errors go into the next attempt's prompt, so a retry is not a blind re-roll.
use super::{Change, Verdict, Verifier, VerifyError};
use crate::cancel::CancelToken;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, PartialEq)]
pub struct BestOfSettings {
    /// Candidates at most.
    pub candidates: usize,
    /// For attempts after the first; the first is greedy, the model's single best guess.
    pub temperature: f32,
    /// For the whole search: generation and checks.
    pub budget: Duration,
    /// Error lines fed back into a retry's prompt.
    pub feedback_lines: usize,
}

impl Default for BestOfSettings {
    fn default() -> Self {
        BestOfSettings { candidates: 3, temperature: 0.6, budget: Duration::from_secs(60), feedback_lines: 8 }
    }
}

/// A refused candidate and why, for the next prompt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Feedback {
    pub candidate: String,
    pub errors: String,
}

impl Feedback {
    /// The retry's prompt: the original request, what was tried, what the compiler said.
    pub fn prompt(&self, base: &str) -> String {
        format!("{base}\n\nA previous attempt was:\n```\n{}\n```\nIt was rejected with these errors:\n{}\nWrite a corrected version.\n", self.candidate.trim_end(), self.errors)
    }
}

/// What the generator is asked for on one attempt.
#[derive(Debug, Clone)]
pub struct Attempt {
    /// 0-based.
    pub index: usize,
    pub temperature: f32,
    /// The last refused candidate and its errors (none on the first attempt).
    pub feedback: Option<Feedback>,
    /// The generator should stop by then; the driver stops waiting for verification at the same time.
    pub deadline: Instant,
}

/// Reported per candidate; the LSP layer turns these into `$/progress`.
#[derive(Debug, Clone, PartialEq)]
pub enum Progress {
    Generating { index: usize, of: usize },
    Verifying { index: usize, of: usize },
    Refused { index: usize, of: usize, why: String },
    Passed { index: usize, of: usize },
}

#[derive(Debug, Clone)]
pub struct Tried {
    pub candidate: String,
    /// `None` when the candidate could not even be made into a plan (`refused` says why).
    pub verdict: Option<Verdict>,
    pub refused: Option<String>,
    pub elapsed: Duration,
}

#[derive(Debug, Clone)]
pub struct BestOf {
    /// The first candidate that passed, its plan and its verdict.
    pub chosen: Option<(String, Vec<Change>, Verdict)>,
    pub tried: Vec<Tried>,
    /// From the start to the first passing candidate.
    pub time_to_pass: Option<Duration>,
    /// Why the search ended without a passing candidate before trying all N (budget, generator error).
    pub stopped: Option<String>,
}

impl BestOf {
    /// The closing note: candidates tried, how many passed, time to the first that did, which checks ran.
    pub fn summary(&self) -> String {
        let passed = usize::from(self.chosen.is_some());
        let checks =
            self.tried.iter().rev().find_map(|t| t.verdict.as_ref()).map_or("none".to_string(), Verdict::checks_label);
        let mut s = format!("{} candidate(s) tried, {passed} passed", self.tried.len());
        if let Some(t) = self.time_to_pass {
            s.push_str(&format!(" after {} ms", t.as_millis()));
        }
        s.push_str(&format!("; checks: {checks}"));
        if let Some(why) = &self.stopped {
            s.push_str(&format!("; stopped: {why}"));
        }
        s
    }
}

/// Asks `generate` for up to `settings.candidates` candidates, turns each into a plan with `to_plan`
/// (splicing a body into its file, say) and verifies it on the workspace's overlay; keeps the first that
/// passes. Cancelling `cancel` stops generation and kills a running check.
pub async fn best_of<G, Fut, P>(
    verifier: Arc<Verifier>,
    workspace: PathBuf,
    settings: &BestOfSettings,
    cancel: &CancelToken,
    mut generate: G,
    to_plan: P,
    mut progress: impl FnMut(Progress),
) -> Result<BestOf, VerifyError>
where
    G: FnMut(Attempt) -> Fut,
    Fut: Future<Output = Result<String, String>>,
    P: Fn(&str) -> Result<Vec<Change>, String>,
{
    let start = Instant::now();
    let deadline = start + settings.budget;
    let of = settings.candidates;
    let mut out = BestOf { chosen: None, tried: Vec::new(), time_to_pass: None, stopped: None };
    let mut feedback = None;
    for index in 0..of {
        if cancel.is_cancelled() {
            return Err(VerifyError::Cancelled);
        }
        if Instant::now() >= deadline {
            out.stopped = Some(format!("time budget of {} s spent", settings.budget.as_secs()));
            break;
        }
        let t0 = Instant::now();
        progress(Progress::Generating { index, of });
        let temperature = if index == 0 { 0.0 } else { settings.temperature };
        let candidate = match generate(Attempt { index, temperature, feedback: feedback.clone(), deadline }).await {
            Ok(c) => c,
            Err(_) if cancel.is_cancelled() => return Err(VerifyError::Cancelled),
            Err(e) => {
                out.stopped = Some(e);
                break;
            }
        };
        let plan = match to_plan(&candidate) {
            Ok(p) => p,
            Err(why) => {
                progress(Progress::Refused { index, of, why: why.clone() });
                feedback = Some(Feedback { candidate: candidate.clone(), errors: why.clone() });
                out.tried.push(Tried { candidate, verdict: None, refused: Some(why), elapsed: t0.elapsed() });
                continue;
            }
        };
        progress(Progress::Verifying { index, of });
        let (v, ws, p, c) = (verifier.clone(), workspace.clone(), plan.clone(), cancel.clone());
        let budget = deadline.saturating_duration_since(Instant::now());
        let verdict = tokio::task::spawn_blocking(move || v.verify(&ws, &p, &c, budget))
            .await
            .map_err(|e| VerifyError::Io(e.to_string()))?;
        let verdict = match verdict {
            Ok(v) => v,
            Err(VerifyError::TimedOut) => {
                out.tried.push(Tried {
                    candidate,
                    verdict: None,
                    refused: Some("verification ran out of time".into()),
                    elapsed: t0.elapsed(),
                });
                out.stopped = Some(format!("time budget of {} s spent", settings.budget.as_secs()));
                break;
            }
            Err(e) => return Err(e),
        };
        if verdict.passed() {
            progress(Progress::Passed { index, of });
            out.time_to_pass = Some(start.elapsed());
            out.tried.push(Tried {
                candidate: candidate.clone(),
                verdict: Some(verdict.clone()),
                refused: None,
                elapsed: t0.elapsed(),
            });
            out.chosen = Some((candidate, plan, verdict));
            break;
        }
        let errors = verdict.errors_text(settings.feedback_lines);
        progress(Progress::Refused { index, of, why: errors.clone() });
        feedback = Some(Feedback { candidate: candidate.clone(), errors: errors.clone() });
        out.tried.push(Tried { candidate, verdict: Some(verdict), refused: Some(errors), elapsed: t0.elapsed() });
    }
    Ok(out)
}
