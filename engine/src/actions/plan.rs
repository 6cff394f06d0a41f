//! A design document implemented all or nothing: every target file is generated, the WHOLE plan (new
//! files and edits together) is verified on the workspace's overlay against its baseline, and the files
//! the verifier blames are generated again with its errors in the prompt, within the candidates and time
//! budget. The result is either every change at once or none with the reason per file: never a
//! `mod x;` without its `x.rs`. The server only turns [`PlanOutcome::Passed`] into one `WorkspaceEdit`.
use super::plan_context::{gather, PlanContext};
use super::ActionSettings;
use crate::api::GenerateRequest;
use crate::cancel::CancelToken;
use crate::syntax::design_doc::{self, DesignPlan};
use crate::syntax::{longest_prefix_where, no_new_errors, Lang};
use crate::verify::best_of::Feedback;
use crate::verify::{plan_diff, Change, Verdict, Verifier, VerifyError};
use serde::Serialize;
use std::collections::HashMap;
use std::future::Future;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

/// Per file of the plan, generated tokens at most, unless `actionMaxTokens` says otherwise.
pub const PLAN_MAX_TOKENS: usize = 320;
/// Prompt tokens for the workspace context (named files, signatures, schema).
pub const PLAN_CONTEXT_TOKENS: usize = 1200;
/// The design document in the prompt, bytes at most.
const DOC_MAX: usize = 6000;
/// Errors per file fed back into a retry, and shown per file when nothing is applied.
const ERRORS_PER_FILE: usize = 6;

/// `implementFromDesignDoc` on one design document.
#[derive(Debug, Clone)]
pub struct PlanJob {
    pub workspace: PathBuf,
    pub doc: String,
    /// Only the targets of sections whose heading contains this.
    pub section: Option<String>,
    /// Texts of documents open in the editor, by workspace-relative path: what the user sees wins over
    /// the disk.
    pub open: HashMap<PathBuf, String>,
    /// Engine cache key.
    pub key: String,
    pub context_tokens: usize,
}

/// One file of a plan that passed. An existing file gets `insert` at byte `at` of `before`; a new one is
/// created with `text`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedFile {
    pub path: PathBuf,
    pub create: bool,
    pub before: String,
    pub at: usize,
    pub insert: String,
    /// The file's whole new text.
    pub text: String,
}

impl PlannedFile {
    pub fn edit(&self) -> (Range<usize>, &str) {
        (self.at..self.at, &self.insert)
    }
}

/// Per file: the check that ran on it and its first errors from the last verified plan (or why its
/// candidate never reached a check).
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct FileReport {
    pub path: String,
    /// A new file (not a target: a file the plan broke).
    pub new: bool,
    pub target: bool,
    pub generations: usize,
    pub check: String,
    pub errors: Vec<String>,
}

/// The closing note of issue 16 for one design-document run.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanReport {
    /// Whole-plan candidates tried (each a set of files; a round where a file did not parse counts).
    pub tried: usize,
    pub passed: usize,
    /// Model generations over all files and rounds.
    pub generations: usize,
    pub time_to_pass_ms: Option<u64>,
    /// Which checks ran on the last verified plan.
    pub checks: String,
    pub files: Vec<FileReport>,
    /// Every generation's prompt in order, as `path: prompt`: a retry's shows the errors fed back.
    pub prompts: Vec<String>,
    pub summary: String,
}

#[derive(Debug, Clone)]
pub enum PlanOutcome {
    /// Every change, verified together.
    Passed(Vec<PlannedFile>),
    /// Nothing to apply: the message names each file's check and first errors.
    Refused(String),
}

#[derive(Debug, Clone)]
pub struct PlanRun {
    pub targets: Vec<String>,
    pub outcome: PlanOutcome,
    /// The last plan tried as a unified diff (for the preview; also when refused).
    pub diff: String,
    pub report: PlanReport,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlanError {
    Cancelled,
    /// The document or the workspace cannot be worked on (no targets, a path outside the workspace).
    Invalid(String),
    Failed(String),
}

/// A file's generated candidate, spliced.
#[derive(Debug, Clone)]
struct Candidate {
    raw: String,
    file: PlannedFile,
}

/// One target as the prompts see it.
struct Target {
    path: String,
    lang: Option<Lang>,
    before: Option<String>,
    user: String,
    answer_prefix: String,
}

impl Target {
    /// The generated text as this file's change, or why it cannot be one.
    fn splice(&self, generated: &str) -> Result<PlannedFile, String> {
        let code = generated.split("```").next().unwrap_or("").trim_matches('\n').trim_end();
        let (before, create) = match &self.before {
            Some(b) => (b.clone(), false),
            None => (String::new(), true),
        };
        let sep = if create || before.is_empty() || before.ends_with("\n\n") {
            ""
        } else if before.ends_with('\n') {
            "\n"
        } else {
            "\n\n"
        };
        let whole = |c: &str| format!("{before}{sep}{c}\n");
        // Cut back to what parses: the model often runs on past its code until the token limit.
        let code = match self.lang {
            Some(l) => longest_prefix_where(code, |c| no_new_errors(l, &before, &whole(c))),
            None => Some(code.to_string()).filter(|c| !c.trim().is_empty()),
        }
        .ok_or_else(|| {
            if code.trim().is_empty() {
                "the model wrote no code for this file".to_string()
            } else {
                "the generated code does not parse (tree-sitter)".to_string()
            }
        })?;
        let code = drop_trailing_comments(&code, crate::context::render::comment_marker(&self.path));
        if code.trim().is_empty() {
            return Err("the model wrote only comments for this file".into());
        }
        let insert = format!("{sep}{code}\n");
        Ok(PlannedFile {
            path: PathBuf::from(&self.path),
            create,
            at: before.len(),
            text: format!("{before}{insert}"),
            before,
            insert,
        })
    }
}

fn prompts(job: &PlanJob, plan: &DesignPlan, ctx: &PlanContext) -> Vec<Target> {
    let doc: String = match job.doc.len() <= DOC_MAX {
        true => job.doc.clone(),
        false => {
            let mut end = DOC_MAX;
            while !job.doc.is_char_boundary(end) {
                end -= 1;
            }
            format!("{}\n[...]\n", &job.doc[..end])
        }
    };
    let read =
        |p: &str| job.open.get(Path::new(p)).cloned().or_else(|| std::fs::read_to_string(job.workspace.join(p)).ok());
    let listing: Vec<String> = plan
        .targets
        .iter()
        .map(|t| format!("- {} ({})", t.path, if read(&t.path).is_some() { "changed" } else { "new" }))
        .collect();
    plan.targets
        .iter()
        .map(|t| {
            let lang = Lang::from_id_or_path("", &t.path);
            let fence = lang.map(Lang::fence).unwrap_or("");
            let before = read(&t.path);
            let task = match &before {
                Some(_) => format!("Add to the end of {} what the design asks of it, as code only. The file so far is in the code block; continue it.", t.path),
                None => format!("Write the complete content of the new file {}, as the design asks.", t.path),
            };
            let user = format!(
                "Design document:\n{doc}\nThe plan changes these files together; they must compile together:\n{}\n\n{}File to write: {}\n{task}",
                listing.join("\n"),
                ctx.render(&t.path),
                t.path
            );
            // A base model continues real code best: an existing file is the start of the answer, and a
            // comment with the design's ask after it (left out of the edit) keeps the model from closing the
            // block at once, as a complete-looking file invites.
            let ask = match (crate::context::render::comment_marker(&t.path), first_sentence(&t.spec)) {
                (Some(marker), Some(s)) => format!("\n{marker} {s}\n"),
                _ => String::new(),
            };
            let answer_prefix = match &before {
                Some(b) if !b.is_empty() => format!("```{fence}\n{}\n{ask}", b.trim_end()),
                _ => format!("```{fence}\n"),
            };
            Target { path: t.path.clone(), lang, before, user, answer_prefix }
        })
        .collect()
}

/// A comment left dangling at the end is no code: a doc comment whose item the token limit cut off, which
/// tree-sitter accepts and rustc rejects ("expected item after doc comment").
fn drop_trailing_comments(code: &str, marker: Option<&str>) -> String {
    let Some(m) = marker else { return code.to_string() };
    let mut lines: Vec<&str> = code.lines().collect();
    while lines.last().is_some_and(|l| l.trim().is_empty() || l.trim_start().starts_with(m)) {
        lines.pop();
    }
    lines.join("\n")
}

/// The first line of prose in a target's section (not its heading, `File:` line or code), for a comment.
fn first_sentence(spec: &str) -> Option<String> {
    let mut fenced = false;
    for line in spec.lines() {
        let l = line.trim();
        if l.starts_with("```") {
            fenced = !fenced;
            continue;
        }
        let lower = l.to_ascii_lowercase();
        if fenced
            || l.is_empty()
            || l.starts_with('#')
            || ["file:", "path:", "target:"].iter().any(|k| lower.trim_start_matches(['-', '*', ' ']).starts_with(k))
        {
            continue;
        }
        return Some(l.chars().take(200).collect());
    }
    None
}

/// Generates, verifies and retries the plan of `job.doc`; see the module doc. `generate` is the model;
/// `progress` hears each step (`$/progress` in the server).
pub async fn implement_plan<G, Fut>(
    verifier: Arc<Verifier>,
    job: &PlanJob,
    settings: &ActionSettings,
    cancel: &CancelToken,
    mut generate: G,
    mut progress: impl FnMut(String),
) -> Result<PlanRun, PlanError>
where
    G: FnMut(GenerateRequest) -> Fut,
    Fut: Future<Output = Result<String, String>>,
{
    let plan = design_doc::plan(&job.doc, job.section.as_deref()).map_err(PlanError::Invalid)?;
    let start = Instant::now();
    let deadline = start + settings.budget;
    let (ws, doc, open, budget) = (job.workspace.clone(), job.doc.clone(), job.open.clone(), job.context_tokens);
    let plan2 = plan.clone();
    let ctx = tokio::task::spawn_blocking(move || gather(&ws, &plan2, &doc, &open, budget))
        .await
        .map_err(|e| PlanError::Failed(e.to_string()))?;
    tracing::info!(target: "lokal::actions", "design plan: {} target(s), context ~{} tokens", plan.targets.len(), ctx.tokens());
    let targets = prompts(job, &plan, &ctx);
    let n = targets.len();
    let rounds = settings.candidates.max(1);
    let mut current: Vec<Option<Candidate>> = vec![None; n];
    let mut feedback: Vec<Option<Feedback>> = vec![None; n];
    let mut refused: Vec<Option<String>> = vec![None; n];
    let mut generations = vec![0usize; n];
    let mut todo: Vec<usize> = (0..n).collect();
    let mut report = PlanReport::default();
    let mut last: Option<Verdict> = None;
    let mut stopped = None;
    let mut chosen = None;
    'rounds: for round in 0..rounds {
        for (k, &i) in todo.iter().enumerate() {
            if cancel.is_cancelled() {
                return Err(PlanError::Cancelled);
            }
            if Instant::now() >= deadline {
                stopped = Some(format!("time budget of {} s spent", settings.budget.as_secs()));
                break 'rounds;
            }
            let t = &targets[i];
            progress(format!("plan {}/{rounds}: generating {} ({}/{})", round + 1, t.path, k + 1, todo.len()));
            let user = feedback[i].as_ref().map_or_else(|| t.user.clone(), |f| f.prompt(&t.user));
            report.prompts.push(format!("{}: {user}", t.path));
            let req = GenerateRequest {
                key: format!("{}#plan", job.key),
                system: None,
                user,
                answer_prefix: t.answer_prefix.clone(),
                max_tokens: settings.max_tokens,
                stop: vec!["```".into()],
                temperature: if round == 0 { 0.0 } else { settings.temperature },
                seed: (round * n + i) as u64 + 1,
                // Long, and nobody waits on each token: behind keystrokes and single actions.
                priority: crate::sched::Priority::DesignDoc,
            };
            generations[i] += 1;
            let text = match tokio::time::timeout_at(deadline.into(), generate(req)).await {
                Ok(Ok(text)) => text,
                Ok(Err(_)) if cancel.is_cancelled() => return Err(PlanError::Cancelled),
                Ok(Err(e)) => {
                    stopped = Some(format!("generating {}: {e}", t.path));
                    break 'rounds;
                }
                Err(_) => {
                    stopped = Some(format!("the time budget ran out while generating {}", t.path));
                    break 'rounds;
                }
            };
            match t.splice(&text) {
                Ok(file) => {
                    current[i] = Some(Candidate { raw: text, file });
                    refused[i] = None;
                }
                Err(why) => {
                    feedback[i] = Some(Feedback { candidate: text, errors: why.clone() });
                    refused[i] = Some(why);
                }
            }
        }
        report.tried += 1;
        let unready: Vec<usize> = (0..n).filter(|&i| refused[i].is_some() || current[i].is_none()).collect();
        if !unready.is_empty() {
            for &i in &unready {
                let why = refused[i].clone().unwrap_or_default();
                progress(format!("plan {}/{rounds} refused: {}: {why}", round + 1, targets[i].path));
            }
            todo = unready;
            continue;
        }
        if cancel.is_cancelled() {
            return Err(PlanError::Cancelled);
        }
        progress(format!("plan {}/{rounds}: checking the whole plan", round + 1));
        let changes: Vec<Change> =
            current.iter().flatten().map(|c| Change::new(&c.file.path, c.file.text.clone())).collect();
        let (v, ws, c) = (verifier.clone(), job.workspace.clone(), cancel.clone());
        let left = deadline.saturating_duration_since(Instant::now());
        let verdict = tokio::task::spawn_blocking(move || v.verify(&ws, &changes, &c, left))
            .await
            .map_err(|e| PlanError::Failed(e.to_string()))?;
        let verdict = match verdict {
            Ok(v) => v,
            Err(VerifyError::Cancelled) => return Err(PlanError::Cancelled),
            Err(VerifyError::TimedOut) => {
                stopped = Some("the time budget ran out while checking".into());
                break;
            }
            Err(VerifyError::BadPath(p)) => {
                return Err(PlanError::Invalid(format!("not a path inside the workspace: {p}")))
            }
            Err(e) => return Err(PlanError::Failed(e.to_string())),
        };
        if verdict.passed() {
            progress(format!("plan {}/{rounds} passed ({})", round + 1, verdict.checks_label()));
            report.time_to_pass_ms = Some(start.elapsed().as_millis() as u64);
            chosen = Some(current.iter().flatten().map(|c| c.file.clone()).collect::<Vec<_>>());
            last = Some(verdict);
            break;
        }
        // Retry the files the verifier blames; an error elsewhere (a caller the plan broke) blames all.
        let by_file = verdict.by_file();
        let blamed: Vec<usize> = (0..n).filter(|&i| by_file.contains_key(Path::new(&targets[i].path))).collect();
        let elsewhere = by_file.keys().any(|f| !targets.iter().any(|t| Path::new(&t.path) == f));
        todo = if blamed.is_empty() || elsewhere { (0..n).collect() } else { blamed };
        for &i in &todo {
            let mine = by_file.get(Path::new(&targets[i].path));
            let errors = match mine {
                Some(d) if !elsewhere => {
                    d.iter().take(ERRORS_PER_FILE).map(|d| d.to_string()).collect::<Vec<_>>().join("\n")
                }
                _ => verdict.errors_text(ERRORS_PER_FILE),
            };
            let raw = current[i].as_ref().map(|c| c.raw.clone()).unwrap_or_default();
            feedback[i] = Some(Feedback { candidate: raw, errors });
        }
        let first = verdict.new_errors.first().map(|d| d.to_string()).unwrap_or_default();
        progress(format!("plan {}/{rounds} refused by {}: {first}", round + 1, verdict.checks_label()));
        last = Some(verdict);
    }
    let diff = plan_diff(
        &job.workspace,
        &current.iter().flatten().map(|c| Change::new(&c.file.path, c.file.text.clone())).collect::<Vec<_>>(),
    );
    report.passed = usize::from(chosen.is_some());
    report.generations = generations.iter().sum();
    report.checks = last.as_ref().map_or("none (no whole plan reached a check)".into(), Verdict::checks_label);
    report.files = file_reports(&targets, &generations, &refused, last.as_ref());
    report.summary = summary(&report, stopped.as_deref());
    tracing::info!(target: "lokal::actions", "design plan: {}", report.summary);
    let outcome = match chosen {
        Some(files) => PlanOutcome::Passed(files),
        None => PlanOutcome::Refused(refusal(&report, stopped.as_deref())),
    };
    Ok(PlanRun { targets: plan.targets.iter().map(|t| t.path.clone()).collect(), outcome, diff, report })
}

fn file_reports(
    targets: &[Target],
    generations: &[usize],
    refused: &[Option<String>],
    last: Option<&Verdict>,
) -> Vec<FileReport> {
    let by_file = last.map(Verdict::by_file).unwrap_or_default();
    let check_of = |p: &Path| -> String {
        last.and_then(|v| {
            v.checks
                .iter()
                .filter(|c| c.files.iter().any(|f| f == p))
                .map(|c| c.check.label().to_string())
                .reduce(|a, b| format!("{a}, {b}"))
        })
        .or_else(|| last.map(Verdict::checks_label))
        .unwrap_or_else(|| "none".into())
    };
    let errors_of = |p: &Path| -> Vec<String> {
        by_file.get(p).map(|d| d.iter().take(ERRORS_PER_FILE).map(|d| d.to_string()).collect()).unwrap_or_default()
    };
    let mut out: Vec<FileReport> = targets
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let p = Path::new(&t.path);
            let (check, errors) = match &refused[i] {
                Some(why) => ("tree-sitter parse".to_string(), vec![why.clone()]),
                None => (check_of(p), errors_of(p)),
            };
            FileReport {
                path: t.path.clone(),
                new: t.before.is_none(),
                target: true,
                generations: generations[i],
                check,
                errors,
            }
        })
        .collect();
    for (p, _) in by_file.iter().filter(|(p, _)| !targets.iter().any(|t| Path::new(&t.path) == p.as_path())) {
        out.push(FileReport {
            path: p.display().to_string(),
            new: false,
            target: false,
            generations: 0,
            check: check_of(p),
            errors: errors_of(p),
        });
    }
    out
}

fn summary(r: &PlanReport, stopped: Option<&str>) -> String {
    let mut s =
        format!("{} plan candidate(s) tried ({} file generation(s)), {} passed", r.tried, r.generations, r.passed);
    if let Some(ms) = r.time_to_pass_ms {
        s.push_str(&format!(" after {ms} ms"));
    }
    s.push_str(&format!("; checks: {}", r.checks));
    if let Some(why) = stopped {
        s.push_str(&format!("; stopped: {why}"));
    }
    s
}

/// "Nothing applied", then per file the check and its first errors.
fn refusal(r: &PlanReport, stopped: Option<&str>) -> String {
    let mut s = format!("lokal: nothing applied; no plan passed ({}).", r.summary);
    for f in r.files.iter().filter(|f| !f.errors.is_empty()) {
        s.push_str(&format!("\n{}: {} failed: {}", f.path, f.check, f.errors.join("; ")));
    }
    if r.files.iter().all(|f| f.errors.is_empty()) {
        if let Some(why) = stopped {
            s.push_str(&format!("\n{why}"));
        }
    }
    s
}
