//! Which checker covers which changed file, and running it on the overlay.
use super::overlay::Overlay;
use super::run::run;
use super::{diag, Change, Check, Diagnostic, Toolbox, VerifyError};
use crate::cancel::CancelToken;
use crate::syntax::Lang;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// One checker invocation that covers a set of changed files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Unit {
    Cargo {
        cargo: PathBuf,
        manifest: PathBuf,
    },
    Python {
        python: PathBuf,
        ruff: Option<PathBuf>,
        pyright: Option<PathBuf>,
    },
    Tsc {
        tsc: PathBuf,
        project: PathBuf,
    },
    Go {
        go: PathBuf,
        module: PathBuf,
    },
    /// Parse only: the language's own tools are not installed, or could not check this workspace.
    Syntax {
        lang: Lang,
        why: String,
    },
}

impl Unit {
    /// File names whose content the checker's result depends on (the baseline cache key).
    pub fn inputs(&self, rel: &Path) -> bool {
        let ext = rel.extension().and_then(|e| e.to_str()).unwrap_or("");
        let name = rel.file_name().and_then(|n| n.to_str()).unwrap_or("");
        match self {
            Unit::Cargo { .. } => matches!(ext, "rs" | "toml" | "lock"),
            Unit::Python { .. } => matches!(ext, "py" | "pyi" | "toml" | "cfg" | "ini"),
            Unit::Tsc { .. } => matches!(ext, "ts" | "tsx" | "mts" | "cts" | "js" | "jsx" | "mjs" | "cjs" | "json"),
            Unit::Go { .. } => ext == "go" || name == "go.mod" || name == "go.sum",
            Unit::Syntax { .. } => false,
        }
    }

    pub fn checks(&self) -> Vec<Check> {
        match self {
            Unit::Cargo { .. } => vec![Check::CargoCheck],
            Unit::Python { ruff, pyright, .. } => {
                let mut c = vec![Check::PyCompile];
                c.extend(ruff.as_ref().map(|_| Check::Ruff));
                c.extend(pyright.as_ref().map(|_| Check::Pyright));
                c
            }
            Unit::Tsc { .. } => vec![Check::Tsc],
            Unit::Go { .. } => vec![Check::GoBuild, Check::GoVet],
            Unit::Syntax { .. } => vec![Check::TreeSitter],
        }
    }
}

/// The nearest directory at or above `rel`'s directory (inside the workspace) holding `marker`, in the
/// overlay or among the plan's new files.
fn nearest(overlay: &Path, changes: &[Change], rel: &Path, marker: &str) -> Option<PathBuf> {
    let mut dir = rel.parent();
    while let Some(d) = dir {
        let m = d.join(marker);
        if overlay.join(&m).is_file() || changes.iter().any(|c| c.path == m) {
            return Some(d.to_path_buf());
        }
        dir = d.parent();
    }
    None
}

/// Groups the plan's files into checker invocations: one per Cargo package, tsconfig project or Go
/// module, one for all Python files, one tree-sitter pass per file where no tool applies. Files in no
/// known language (documentation, data) get no check.
pub(crate) fn units(tools: &Toolbox, overlay: &Overlay, changes: &[Change]) -> Vec<(Unit, Vec<PathBuf>)> {
    let mut out: Vec<(Unit, Vec<PathBuf>)> = Vec::new();
    let mut add = |unit: Unit, file: &Path| match out.iter_mut().find(|(u, _)| *u == unit) {
        Some((_, files)) => files.push(file.to_path_buf()),
        None => out.push((unit, vec![file.to_path_buf()])),
    };
    let root = &overlay.root;
    for c in changes {
        let path = c.path.as_path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let lang = Lang::from_id_or_path("", &path.to_string_lossy());
        let syntax = |lang: Lang, why: &str| Unit::Syntax { lang, why: why.to_string() };
        let unit = match lang {
            Some(Lang::Rust) => cargo_unit(tools, root, changes, path).unwrap_or_else(|why| syntax(Lang::Rust, &why)),
            None if name == "Cargo.toml" => match cargo_unit(tools, root, changes, path) {
                Ok(u) => u,
                Err(_) => continue,
            },
            Some(Lang::Python) => match tools.find("python3") {
                Some(python) => Unit::Python { python, ruff: tools.find("ruff"), pyright: tools.find("pyright") },
                None => syntax(Lang::Python, "python3 not found"),
            },
            Some(l @ (Lang::TypeScript | Lang::Tsx)) => match nearest(root, changes, path, "tsconfig.json") {
                None => syntax(l, "no tsconfig.json"),
                Some(project) => match tsc_for(tools, root, &project) {
                    Some(tsc) => Unit::Tsc { tsc, project },
                    None => syntax(l, "tsc not found"),
                },
            },
            Some(Lang::Go) => match (tools.find("go"), nearest(root, changes, path, "go.mod")) {
                (Some(go), Some(module)) => Unit::Go { go, module },
                (None, _) => syntax(Lang::Go, "go not found"),
                (_, None) => syntax(Lang::Go, "no go.mod"),
            },
            None => continue,
        };
        add(unit, path);
    }
    out
}

fn cargo_unit(tools: &Toolbox, root: &Path, changes: &[Change], file: &Path) -> Result<Unit, String> {
    let cargo = tools.find("cargo").ok_or("cargo not found")?;
    let dir = nearest(root, changes, file, "Cargo.toml").ok_or("no Cargo.toml")?;
    Ok(Unit::Cargo { cargo, manifest: dir.join("Cargo.toml") })
}

/// The project's own compiler first (its version is the one the project builds with), else one on PATH.
fn tsc_for(tools: &Toolbox, root: &Path, project: &Path) -> Option<PathBuf> {
    let mut dir = Some(project);
    while let Some(d) = dir {
        let local = root.join(d).join("node_modules/.bin/tsc");
        if local.is_file() {
            return Some(local);
        }
        dir = d.parent();
    }
    tools.find("tsc")
}

/// Drives py_compile so errors come back as data rather than a traceback to scrape.
const PY_COMPILE: &str = r#"
import json, py_compile, sys
out = []
for f in sys.argv[1:]:
    try:
        py_compile.compile(f, doraise=True)
    except py_compile.PyCompileError as e:
        v = e.exc_value
        out.append({"file": f, "line": getattr(v, "lineno", None) or 0, "message": getattr(v, "msg", None) or str(v), "code": e.exc_type_name})
print(json.dumps(out))
"#;

/// A checker that ran but could not say anything about the code (a manifest it cannot read, a
/// dependency it may not fetch, a crash): the text says why.
pub(crate) struct ToolFailure(pub String);

pub(crate) enum Outcome {
    Ran(Vec<(Check, Vec<Diagnostic>)>),
    Failed(ToolFailure),
}

/// Runs `unit` over the overlay as it is now. `files` are the plan's files the unit covers; a per-file
/// checker (Python) looks only at those that exist.
pub(crate) fn run_unit(
    tools: &Toolbox,
    overlay: &Overlay,
    target_dir: &Path,
    unit: &Unit,
    files: &[PathBuf],
    cancel: &CancelToken,
    deadline: Instant,
) -> Result<Outcome, VerifyError> {
    let root = &overlay.root;
    let failed = |what: &str, out: &super::run::Output| {
        let tail: Vec<&str> = out.stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        let tail = tail[tail.len().saturating_sub(6)..].join("\n");
        Ok(Outcome::Failed(ToolFailure(format!("{what} failed ({}): {tail}", out.status))))
    };
    match unit {
        Unit::Cargo { cargo, manifest } => {
            let mut cmd = tools.command(cargo);
            let dir = root.join(manifest.parent().unwrap_or(Path::new("")));
            cmd.args(["check", "--message-format=json", "--offline", "--all-targets", "--manifest-path"])
                .arg(root.join(manifest))
                .current_dir(&dir)
                .env("CARGO_TARGET_DIR", target_dir)
                .env("CARGO_TERM_COLOR", "never");
            let out = run(cmd, cancel, deadline)?;
            let resolve = |f: &str| resolve_in(root, &dir, f);
            let diags = diag::cargo(&out.stdout, resolve);
            if !out.status.success() && diags.is_empty() {
                return failed("cargo check", &out);
            }
            Ok(Outcome::Ran(vec![(Check::CargoCheck, diags)]))
        }
        Unit::Python { python, ruff, pyright } => {
            let present: Vec<&PathBuf> = files.iter().filter(|f| root.join(f).is_file()).collect();
            let mut ran = Vec::new();
            if present.is_empty() {
                return Ok(Outcome::Ran(unit.checks().into_iter().map(|c| (c, Vec::new())).collect()));
            }
            let mut cmd = tools.command(python);
            cmd.arg("-c").arg(PY_COMPILE).args(&present).current_dir(root);
            let out = run(cmd, cancel, deadline)?;
            if !out.status.success() {
                return failed("python3 -m py_compile", &out);
            }
            ran.push((Check::PyCompile, diag::py_compile(&out.stdout)));
            if let Some(ruff) = ruff {
                // Only the rule groups that are errors whatever the project's style: syntax errors and
                // undefined names.
                let mut cmd = tools.command(ruff);
                cmd.args([
                    "check",
                    "--output-format=json",
                    "--no-cache",
                    "--isolated",
                    "--exit-zero",
                    "--select",
                    "E9,F63,F7,F82",
                ])
                .args(&present)
                .current_dir(root);
                let out = run(cmd, cancel, deadline)?;
                if !out.status.success() {
                    return failed("ruff", &out);
                }
                ran.push((Check::Ruff, diag::ruff(&out.stdout, root)));
            }
            if let Some(pyright) = pyright {
                let mut cmd = tools.command(pyright);
                cmd.arg("--outputjson").args(&present).current_dir(root);
                let out = run(cmd, cancel, deadline)?;
                // 1 means "errors found"; anything else is pyright itself failing.
                if !matches!(out.status.code(), Some(0 | 1)) {
                    return failed("pyright", &out);
                }
                ran.push((Check::Pyright, diag::pyright(&out.stdout, root)));
            }
            Ok(Outcome::Ran(ran))
        }
        Unit::Tsc { tsc, project } => {
            let mut cmd = tools.command(tsc);
            cmd.args(["--noEmit", "--pretty", "false", "-p", "."]).current_dir(root.join(project));
            let out = run(cmd, cancel, deadline)?;
            let diags = diag::tsc(&out.stdout, project);
            if !out.status.success() && diags.is_empty() {
                return failed("tsc", &out);
            }
            Ok(Outcome::Ran(vec![(Check::Tsc, diags)]))
        }
        Unit::Go { go, module } => {
            let mut ran = Vec::new();
            for (check, args) in [(Check::GoBuild, ["build", "./..."]), (Check::GoVet, ["vet", "./..."])] {
                let mut cmd = tools.command(go);
                // Never fetch modules (a check must not reach the network), and leave go.mod as it is
                // (the user's GOFLAGS might say -mod=mod).
                cmd.args(args).current_dir(root.join(module)).env("GOPROXY", "off").env("GOFLAGS", "");
                let out = run(cmd, cancel, deadline)?;
                let diags = diag::go(&out.stderr, module);
                if !out.status.success() && diags.is_empty() {
                    return failed(if check == Check::GoBuild { "go build" } else { "go vet" }, &out);
                }
                ran.push((check, diags));
            }
            Ok(Outcome::Ran(ran))
        }
        Unit::Syntax { .. } => Ok(Outcome::Ran(Vec::new())),
    }
}

/// rustc names files relative to the directory it ran in: the package's or, in a Cargo workspace, the
/// workspace root above it. The first ancestor under which the file exists is the one.
fn resolve_in(root: &Path, dir: &Path, file: &str) -> PathBuf {
    let p = Path::new(file);
    if p.is_absolute() {
        return p.strip_prefix(root).map(Path::to_path_buf).unwrap_or_else(|_| p.to_path_buf());
    }
    let mut d = Some(dir);
    while let Some(cur) = d {
        if cur.join(p).exists() {
            if let Ok(rel) = cur.join(p).strip_prefix(root) {
                return rel.to_path_buf();
            }
        }
        if cur == root {
            break;
        }
        d = cur.parent();
    }
    p.to_path_buf()
}

/// Tree-sitter's verdict on one file: an error when the candidate parses worse than the file did.
pub(crate) fn syntax_errors(lang: Lang, path: &Path, before: &str, after: &str) -> Vec<Diagnostic> {
    if crate::syntax::no_new_errors(lang, before, after) {
        return Vec::new();
    }
    let line = crate::syntax::first_error(lang, after).map_or(0, |(row, _)| row as u32 + 1);
    vec![Diagnostic { file: path.to_path_buf(), line, message: "the code does not parse".into(), code: None }]
}
