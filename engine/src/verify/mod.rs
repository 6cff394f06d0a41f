//! Whether generated code holds, asked of the language's own tools: a plan (new files and new texts of
//! existing files) is written onto a scratch mirror of the workspace ([`overlay`]) and checked there with
//! `cargo check`, py_compile (plus ruff and pyright), `tsc --noEmit` or `go build`/`go vet`; where none
//! applies, tree-sitter. A plan is refused when it adds errors: the same check on the workspace before the
//! plan (cached per content) is the baseline, so the user's own broken code does not count against it.
//! [`best_of`] drives generation against it; [`plan_diff`] previews a plan.
pub mod best_of;
mod check;
mod diag;
mod diff;
pub mod grammar;
mod overlay;
mod run;
#[cfg(test)]
mod tests;

pub use best_of::{best_of, Attempt, BestOf, BestOfSettings, Progress};
pub use diff::plan_diff;

use crate::cancel::CancelToken;
use check::{Outcome, Unit};
use lru::LruCache;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One error a checker reported; `file` relative to the workspace, `line` 1-based (0: no line).
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
pub struct Diagnostic {
    pub file: PathBuf,
    pub line: u32,
    pub message: String,
    pub code: Option<String>,
}

impl std::fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: ", self.file.display(), self.line)?;
        if let Some(code) = &self.code {
            write!(f, "error[{code}]: ")?;
        }
        f.write_str(&self.message)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum Check {
    CargoCheck,
    PyCompile,
    Ruff,
    Pyright,
    Tsc,
    GoBuild,
    GoVet,
    TreeSitter,
}

impl Check {
    pub fn label(self) -> &'static str {
        match self {
            Check::CargoCheck => "cargo check",
            Check::PyCompile => "python3 -m py_compile",
            Check::Ruff => "ruff",
            Check::Pyright => "pyright",
            Check::Tsc => "tsc --noEmit",
            Check::GoBuild => "go build",
            Check::GoVet => "go vet",
            Check::TreeSitter => "tree-sitter parse",
        }
    }
}

/// Which check looked at which files; `fallback` says why it was tree-sitter rather than the language's
/// own tool.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CheckRun {
    pub check: Check,
    pub files: Vec<PathBuf>,
    pub fallback: Option<String>,
}

/// One file of a plan: its whole new text. `path` is relative to the workspace; a file that does not
/// exist yet is created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub path: PathBuf,
    pub text: String,
}

impl Change {
    pub fn new(path: impl Into<PathBuf>, text: impl Into<String>) -> Self {
        Change { path: path.into(), text: text.into() }
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Verdict {
    pub checks: Vec<CheckRun>,
    /// Errors the plan adds (empty: it passes). Their files may lie outside the plan: a changed signature
    /// breaks its callers.
    pub new_errors: Vec<Diagnostic>,
    pub elapsed: Duration,
}

impl Verdict {
    pub fn passed(&self) -> bool {
        self.new_errors.is_empty()
    }

    /// The added errors per file, for "applied nothing, because: ..." per file.
    pub fn by_file(&self) -> BTreeMap<PathBuf, Vec<Diagnostic>> {
        let mut m: BTreeMap<PathBuf, Vec<Diagnostic>> = BTreeMap::new();
        for d in &self.new_errors {
            m.entry(d.file.clone()).or_default().push(d.clone());
        }
        m
    }

    /// "cargo check, tree-sitter parse (go not found)": what a user is told ran.
    pub fn checks_label(&self) -> String {
        let parts: Vec<String> = self
            .checks
            .iter()
            .map(|c| match &c.fallback {
                Some(why) => format!("{} ({why})", c.check.label()),
                None => c.check.label().to_string(),
            })
            .collect();
        if parts.is_empty() {
            "no check applies".into()
        } else {
            parts.join(", ")
        }
    }

    /// The added errors as compiler-style lines, at most `max`, for a retry's prompt and for messages.
    pub fn errors_text(&self, max: usize) -> String {
        let mut lines: Vec<String> = self.new_errors.iter().take(max).map(|d| d.to_string()).collect();
        if self.new_errors.len() > max {
            lines.push(format!("... and {} more", self.new_errors.len() - max));
        }
        lines.join("\n")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("verification cancelled")]
    Cancelled,
    #[error("verification ran out of time")]
    TimedOut,
    #[error("verification failed: {0}")]
    Io(String),
    #[error("not a path inside the workspace: {0}")]
    BadPath(String),
}

/// Where checkers are looked up: `PATH` by default; tests hand in another to simulate a machine without
/// a toolchain.
#[derive(Debug, Clone)]
pub struct Toolbox {
    path: OsString,
}

impl Toolbox {
    pub fn from_env() -> Self {
        Toolbox { path: std::env::var_os("PATH").unwrap_or_default() }
    }

    pub fn with_path(path: impl Into<OsString>) -> Self {
        Toolbox { path: path.into() }
    }

    pub fn find(&self, name: &str) -> Option<PathBuf> {
        use std::os::unix::fs::PermissionsExt;
        std::env::split_paths(&self.path)
            .map(|d| d.join(name))
            .find(|p| p.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0))
    }

    /// The checker sees the same PATH it was found on (cargo finds rustc, tsc finds node through it).
    fn command(&self, program: &Path) -> Command {
        let mut c = Command::new(program);
        c.env("PATH", &self.path);
        c
    }
}

type Baseline = Vec<(Check, Vec<Diagnostic>)>;

pub struct Verifier {
    tools: Toolbox,
    state_dir: PathBuf,
    baselines: Mutex<LruCache<[u8; 32], Baseline>>,
}

impl Verifier {
    /// `state_dir` holds one overlay and one Cargo target directory per workspace.
    pub fn new(tools: Toolbox, state_dir: impl Into<PathBuf>) -> Self {
        Verifier {
            tools,
            state_dir: state_dir.into(),
            baselines: Mutex::new(LruCache::new(NonZeroUsize::new(64).unwrap())),
        }
    }

    /// `$XDG_CACHE_HOME/lokal/verify` (else `~/.cache/lokal/verify`).
    pub fn default_state_dir() -> PathBuf {
        crate::config::xdg_dir("XDG_CACHE_HOME", ".cache").join("lokal").join("verify")
    }

    /// Checks `changes` together, as one plan: either all of it holds or the verdict says, per file, which
    /// errors it adds. Blocking (it runs compilers): call it from `spawn_blocking` on async paths.
    pub fn verify(
        &self,
        workspace: &Path,
        changes: &[Change],
        cancel: &CancelToken,
        budget: Duration,
    ) -> Result<Verdict, VerifyError> {
        let start = Instant::now();
        let deadline = start + budget;
        for c in changes {
            overlay::checked_rel(&c.path)?;
        }
        let workspace =
            workspace.canonicalize().map_err(|e| VerifyError::Io(format!("{}: {e}", workspace.display())))?;
        let state = self.state_dir.join(hex(&Sha256::digest(workspace.as_os_str().as_encoded_bytes())[..8]));
        let overlay = overlay::build(&workspace, &state, cancel, deadline)?;
        let target_dir = state.join("target");
        let before: HashMap<&Path, String> = changes
            .iter()
            .map(|c| (c.path.as_path(), std::fs::read_to_string(workspace.join(&c.path)).unwrap_or_default()))
            .collect();

        let mut units = check::units(&self.tools, &overlay, changes);
        let mut checks = Vec::new();
        let mut baselines = HashMap::new();
        for (i, (unit, files)) in units.iter_mut().enumerate() {
            if matches!(unit, Unit::Syntax { .. }) {
                continue;
            }
            let key = self.baseline_key(&overlay, unit, files);
            let cached = self.baselines.lock().unwrap().get(&key).cloned();
            let base = match cached {
                Some(b) => b,
                None => match check::run_unit(&self.tools, &overlay, &target_dir, unit, files, cancel, deadline)? {
                    Outcome::Ran(b) => {
                        self.baselines.lock().unwrap().put(key, b.clone());
                        b
                    }
                    // A checker that cannot check the workspace as it is cannot judge the plan either.
                    Outcome::Failed(why) => {
                        tracing::info!(reason = %why.0, "checker unusable here; falling back to tree-sitter");
                        let lang = crate::syntax::Lang::from_id_or_path("", &files[0].to_string_lossy());
                        *unit = match lang {
                            Some(lang) => Unit::Syntax { lang, why: why.0 },
                            None => Unit::Syntax { lang: crate::syntax::Lang::Rust, why: why.0 },
                        };
                        continue;
                    }
                },
            };
            baselines.insert(i, base);
        }

        for c in changes {
            overlay.write(&c.path, &c.text)?;
        }
        let maps: HashMap<&Path, Vec<Option<u32>>> =
            changes.iter().map(|c| (c.path.as_path(), line_map(&before[c.path.as_path()], &c.text))).collect();
        let mut new_errors = Vec::new();
        for (i, (unit, files)) in units.iter().enumerate() {
            if let Unit::Syntax { lang, why } = unit {
                let mut parsed = Vec::new();
                for f in files {
                    // A manifest has no grammar; its checker's failure is the message.
                    if crate::syntax::Lang::from_id_or_path("", &f.to_string_lossy()) != Some(*lang) {
                        continue;
                    }
                    let after = changes.iter().find(|c| &c.path == f).map_or("", |c| c.text.as_str());
                    new_errors.extend(check::syntax_errors(*lang, f, before.get(f.as_path()).map_or("", |s| s), after));
                    parsed.push(f.clone());
                }
                checks.push(CheckRun { check: Check::TreeSitter, files: parsed, fallback: Some(why.clone()) });
                continue;
            }
            let base = &baselines[&i];
            match check::run_unit(&self.tools, &overlay, &target_dir, unit, files, cancel, deadline)? {
                Outcome::Ran(after) => {
                    for (check, diags) in after {
                        let old = base.iter().find(|(c, _)| *c == check).map_or(&[][..], |(_, d)| d.as_slice());
                        new_errors.extend(added(old, diags, |f, l| match maps.get(f) {
                            Some(map) => map.get(l as usize).copied().flatten(),
                            None => Some(l),
                        }));
                        checks.push(CheckRun { check, files: files.clone(), fallback: None });
                    }
                }
                // It checked the workspace before, so the plan broke it (a manifest that does not parse).
                Outcome::Failed(why) => {
                    let check = unit.checks()[0];
                    new_errors.push(Diagnostic { file: files[0].clone(), line: 0, message: why.0, code: None });
                    checks.push(CheckRun { check, files: files.clone(), fallback: None });
                }
            }
        }
        Ok(Verdict { checks, new_errors, elapsed: start.elapsed() })
    }

    /// The unit and the content of every file its result can depend on.
    fn baseline_key(&self, overlay: &overlay::Overlay, unit: &Unit, files: &[PathBuf]) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(format!("{unit:?}\n{files:?}\n").as_bytes());
        for f in overlay.files.iter().filter(|f| unit.inputs(f)) {
            h.update(f.as_os_str().as_encoded_bytes());
            h.update([0]);
            h.update(std::fs::read(overlay.root.join(f)).unwrap_or_default());
            h.update([0]);
        }
        h.finalize().into()
    }
}

/// The errors of `after` that `before` did not have. An error that stays where it was (its line carried
/// through the edit by `moved`) is old; so is one the edit only moved within changed lines, matched by
/// file, code and message against the errors not yet accounted for.
fn added(before: &[Diagnostic], after: Vec<Diagnostic>, moved: impl Fn(&Path, u32) -> Option<u32>) -> Vec<Diagnostic> {
    let same = |a: &Diagnostic, b: &Diagnostic| a.file == b.file && a.code == b.code && a.message == b.message;
    let mut used = vec![false; before.len()];
    let mut open = Vec::new();
    for d in after {
        match before
            .iter()
            .enumerate()
            .position(|(i, b)| !used[i] && same(b, &d) && moved(&b.file, b.line) == Some(d.line))
        {
            Some(i) => used[i] = true,
            None => open.push(d),
        }
    }
    let mut out = Vec::new();
    for d in open {
        match before.iter().enumerate().position(|(i, b)| !used[i] && same(b, &d)) {
            Some(i) => used[i] = true,
            None => out.push(d),
        }
    }
    out
}

/// Where each line of `before` is in `after` (1-based; `None` for lines the edit replaced).
fn line_map(before: &str, after: &str) -> Vec<Option<u32>> {
    let mut map = vec![None; before.lines().count() + 1];
    for op in similar::TextDiff::from_lines(before, after).ops() {
        if let similar::DiffOp::Equal { old_index, new_index, len } = *op {
            for k in 0..len {
                if let Some(slot) = map.get_mut(old_index + k + 1) {
                    *slot = Some((new_index + k + 1) as u32);
                }
            }
        }
    }
    map
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
