//! `lokal eval`: completion quality on cut cases, asked of the real binary over LSP as an editor would
//! (open the files the user visited, then the file with the span cut out, then complete at the cut), with
//! and without workspace context.
//!
//! Where the cases come from: a case file (`cases.json` in a fixture folder, as shipped in fixtures/eval, or
//! one written by `--write-cases`), or a repository, cut by [`crate::cases`]. Each run's summary is kept per
//! model file for `lokal models` ([`lokal_engine::catalog::measured`]).
use crate::cases;
use crate::client::LspClient;
use crate::testing;
use lokal_engine::catalog::measured::{self, ClassScore, Measured};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Case {
    pub class: String,
    pub file: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub visited: Vec<String>,
    /// The text right before the cursor: its first occurrence in `file`, unless `offset` is given.
    pub at: String,
    /// The span cut out after `at`.
    pub expected: String,
    /// The cursor's byte offset in `file`, where `at` ends (cases cut from a repository: `at` may occur
    /// earlier in the file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<usize>,
}

#[derive(Debug, Serialize, Deserialize)]
struct CaseFile {
    /// The folder `file` and `visited` are relative to (relative to the case file's folder); default: the
    /// case file's folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    root: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    seed: Option<u64>,
    cases: Vec<Case>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub class: String,
    pub file: String,
    /// The cursor's byte offset in `file`.
    pub offset: usize,
    pub at: String,
    pub expected: String,
    pub got: String,
    pub exact: bool,
    pub similarity: f64,
    pub ttft_ms: f64,
    pub latency_ms: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Run {
    /// The model's file name.
    pub model: String,
    pub context: bool,
    pub outcomes: Vec<Outcome>,
}

impl Run {
    pub fn exact(&self, class: &str) -> usize {
        self.outcomes.iter().filter(|o| o.class == class && o.exact).count()
    }
}

pub fn load_cases(dir: &Path) -> Result<Vec<Case>, String> {
    Ok(load_case_file(&dir.join("cases.json"))?.1)
}

/// A case file and the folder its cases are cut from.
pub fn load_case_file(p: &Path) -> Result<(PathBuf, Vec<Case>), String> {
    let text = std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
    let f: CaseFile = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", p.display()))?;
    let here = p.parent().unwrap_or(Path::new("."));
    Ok((f.root.map(|r| here.join(r)).unwrap_or_else(|| here.to_path_buf()), f.cases))
}

/// Save `cases` so that `lokal eval FILE` repeats the run (`root` is written as given).
pub fn write_case_file(p: &Path, root: &Path, seed: u64, cases: &[Case]) -> Result<(), String> {
    let f = CaseFile { root: Some(root.to_path_buf()), seed: Some(seed), cases: cases.to_vec() };
    let text = serde_json::to_string_pretty(&f).map_err(|e| e.to_string())?;
    std::fs::write(p, text + "\n").map_err(|e| format!("{}: {e}", p.display()))
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

/// Edit similarity of the suggestion's start (as long as the expected span) to the span, 0 to 1.
pub fn similarity(got: &str, expected: &str) -> f64 {
    let head: String = got.chars().take(expected.chars().count()).collect();
    let n = head.chars().count().max(expected.chars().count()).max(1);
    1.0 - levenshtein(&head, expected) as f64 / n as f64
}

fn position(text: &str, byte: usize) -> (u32, u32) {
    let before = &text[..byte];
    let line = before.matches('\n').count() as u32;
    let start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    (line, before[start..].encode_utf16().count() as u32)
}

fn language(file: &str) -> &'static str {
    match Path::new(file).extension().and_then(|e| e.to_str()) {
        Some("py") => "python",
        Some("ts" | "mts" | "cts") => "typescript",
        Some("tsx") => "typescriptreact",
        Some("js" | "mjs" | "cjs") => "javascript",
        Some("jsx") => "javascriptreact",
        Some("go") => "go",
        _ => "rust",
    }
}

/// How far the server may generate for a class: a name ends within a line and a dozen tokens, the rest of
/// a line within a line, a block body within [`cases::BLOCK_LINES`] lines. One budget for all would let name
/// cases run on to the end of their lines (slower, and scored on their start anyway) or cut bodies short.
pub fn budget(class: &str) -> (usize, usize) {
    match class {
        "line" => (1, 32),
        "block" => (cases::BLOCK_LINES, 64),
        _ => (1, 12),
    }
}

/// Run every case with the context setting as given: one session of `exe` rooted at `root` per generation
/// budget ([`budget`]; a settings change would reload the model as well), outcomes in the cases' order.
pub fn run(exe: &Path, root: &Path, model: &Path, cases: &[Case], context: bool) -> Result<Run, String> {
    run_with(exe, root, model, cases, context, None)
}

/// [`run`], with the model's threads set where given.
pub fn run_with(
    exe: &Path,
    root: &Path,
    model: &Path,
    cases: &[Case],
    context: bool,
    threads: Option<u32>,
) -> Result<Run, String> {
    let mut budgets: Vec<(usize, usize)> = cases.iter().map(|c| budget(&c.class)).collect();
    budgets.sort();
    budgets.dedup();
    let mut outcomes: Vec<(usize, Outcome)> = Vec::new();
    for b in budgets {
        let group: Vec<(usize, &Case)> = cases.iter().enumerate().filter(|(_, c)| budget(&c.class) == b).collect();
        outcomes.extend(session(exe, root, model, &group, context, threads, b)?);
    }
    outcomes.sort_by_key(|(i, _)| *i);
    let name = model.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    Ok(Run { model: name, context, outcomes: outcomes.into_iter().map(|(_, o)| o).collect() })
}

/// Where the cursor is in `full` (the file before the cut), checked against the case.
fn cursor(case: &Case, full: &str) -> Result<usize, String> {
    let at = match case.offset {
        Some(o) => {
            if !full.is_char_boundary(o) || !full[..o].ends_with(&case.at) {
                return Err(format!("{}: {:?} does not end at byte {o}", case.file, case.at));
            }
            o
        }
        None => full.find(&case.at).ok_or_else(|| format!("{:?} not in {}", case.at, case.file))? + case.at.len(),
    };
    if !full[at..].starts_with(&case.expected) {
        return Err(format!("{}: {:?} does not follow {:?}", case.file, case.expected, case.at));
    }
    Ok(at)
}

fn session(
    exe: &Path,
    root: &Path,
    model: &Path,
    cases: &[(usize, &Case)],
    context: bool,
    threads: Option<u32>,
    (max_lines, max_tokens): (usize, usize),
) -> Result<Vec<(usize, Outcome)>, String> {
    let root = root.canonicalize().map_err(|e| format!("{}: {e}", root.display()))?;
    let mut c = LspClient::spawn(exe, &["--stdio"], &[("LOKAL_LOG", "warn"), ("LOKAL_NO_DAEMON", "1")], Stdio::null())
        .map_err(|e| e.to_string())?;
    let mut options =
        json!({"modelPath": model, "contextEnabled": context, "maxLines": max_lines, "maxTokens": max_tokens});
    if let Some(t) = threads {
        options["threads"] = json!(t);
    }
    c.initialize(Some(&testing::file_uri(&root)), options, false).map_err(|e| format!("{e:?}"))?;
    testing::wait_ready(&mut c, testing::READY_TIMEOUT)?;
    let uri = |f: &str| testing::file_uri(&root.join(f));
    let read = |f: &str| std::fs::read_to_string(root.join(f)).map_err(|e| format!("{f}: {e}"));
    let mut outcomes = Vec::new();
    for &(index, case) in cases {
        for v in &case.visited {
            c.open(&uri(v), language(v), &read(v)?);
        }
        let full = read(&case.file)?;
        let at = cursor(case, &full)?;
        let text = format!("{}{}", &full[..at], &full[at + case.expected.len()..]);
        c.open(&uri(&case.file), language(&case.file), &text);
        // didOpen is indexed off the handler path: give it a moment, as an editor's user would.
        std::thread::sleep(Duration::from_millis(300));
        let (line, col) = position(&text, at);
        let t = Instant::now();
        let r = c
            .request(
                "textDocument/inlineCompletion",
                json!({"textDocument": {"uri": uri(&case.file)}, "position": {"line": line, "character": col},
                       "context": {"triggerKind": 2}}),
            )
            .map_err(|e| format!("{e:?}"))?;
        let latency_ms = t.elapsed().as_secs_f64() * 1e3;
        let got = r.as_array().and_then(|a| a.first()).and_then(|i| i["insertText"].as_str()).unwrap_or("").to_string();
        let stats = c.request("lokal/stats", json!({})).map_err(|e| format!("{e:?}"))?;
        let ttft_ms = stats["documents"][uri(&case.file)]["lastTtftMs"].as_f64().unwrap_or(f64::NAN);
        c.notify("textDocument/didClose", json!({"textDocument": {"uri": uri(&case.file)}}));
        for v in &case.visited {
            c.notify("textDocument/didClose", json!({"textDocument": {"uri": uri(v)}}));
        }
        outcomes.push((
            index,
            Outcome {
                class: case.class.clone(),
                file: case.file.clone(),
                offset: at,
                at: case.at.clone(),
                expected: case.expected.clone(),
                exact: got.starts_with(&case.expected),
                similarity: similarity(&got, &case.expected),
                got,
                ttft_ms,
                latency_ms,
            },
        ));
    }
    c.shutdown();
    Ok(outcomes)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.retain(|x| x.is_finite());
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() {
        f64::NAN
    } else {
        v[v.len() / 2]
    }
}

/// Per case class of one run: exact matches, mean similarity, median ttft and latency.
pub fn class_scores(r: &Run) -> Vec<ClassScore> {
    let mut classes: Vec<&str> = r.outcomes.iter().map(|o| o.class.as_str()).collect();
    classes.sort();
    classes.dedup();
    classes
        .into_iter()
        .map(|class| {
            let os: Vec<&Outcome> = r.outcomes.iter().filter(|o| o.class == class).collect();
            ClassScore {
                class: class.to_string(),
                cases: os.len(),
                exact: r.exact(class),
                similarity: os.iter().map(|o| o.similarity).sum::<f64>() / os.len() as f64,
                ttft_p50_ms: median(os.iter().map(|o| o.ttft_ms).collect()),
                latency_p50_ms: median(os.iter().map(|o| o.latency_ms).collect()),
            }
        })
        .collect()
}

/// The table: per context setting and case class, exact matches, mean similarity, median ttft and latency.
pub fn table(model: &Path, runs: &[Run]) -> String {
    let name = model.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let mut out = format!(
        "{:<28} {:<8} {:<12} {:>7} {:>10} {:>9} {:>11}\n",
        "model", "context", "class", "exact", "similarity", "ttft ms", "latency ms"
    );
    for r in runs {
        for s in class_scores(r) {
            out += &format!(
                "{:<28} {:<8} {:<12} {:>3}/{:<3} {:>10.2} {:>9.0} {:>11.0}\n",
                if r.model.is_empty() { &name } else { &r.model },
                if r.context { "on" } else { "off" },
                s.class,
                s.exact,
                s.cases,
                s.similarity,
                s.ttft_p50_ms,
                s.latency_p50_ms,
            );
        }
    }
    out
}

/// `lokal eval`'s options.
#[derive(Debug, Clone, Default)]
pub struct EvalArgs {
    /// A fixture folder with cases.json, a case file, or a repository (default: the current directory).
    pub dir: Option<PathBuf>,
    /// Each model is evaluated on the same cases (default: the test model).
    pub models: Vec<PathBuf>,
    pub json: bool,
    pub cut: cases::Options,
    pub write_cases: Option<PathBuf>,
    pub threads: Option<u32>,
    /// Where run summaries go (None: not kept).
    pub results: Option<PathBuf>,
}

/// Where the cases come from, and the cases.
pub fn choose_cases(dir: &Path, cut: &cases::Options) -> Result<(PathBuf, Vec<Case>, String), String> {
    if dir.is_file() {
        let (root, cases) = load_case_file(dir)?;
        return Ok((root, cases, format!("the case file {}", dir.display())));
    }
    if dir.join("cases.json").is_file() {
        return Ok((dir.to_path_buf(), load_cases(dir)?, format!("{}/cases.json", dir.display())));
    }
    let root = dir.canonicalize().map_err(|e| format!("{}: {e}", dir.display()))?;
    let cases = cases::generate(&root, cut)?;
    if cases.is_empty() {
        return Err(format!("{}: no place to cut a case found", root.display()));
    }
    let mut counts = String::new();
    for class in cases::CLASSES {
        let n = cases.iter().filter(|c| c.class == class).count();
        counts += &format!(", {class} {n}");
    }
    let about = format!("{} cases cut from {} (seed {}{counts})", cases.len(), root.display(), cut.seed);
    Ok((root, cases, about))
}

/// The summary kept for `lokal models`.
pub fn summary(model: &Path, repo: &Path, seed: u64, off: &Run, on: &Run) -> Result<Measured, String> {
    let (model_file, model_bytes, model_mtime) = measured::identify(model)?;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    Ok(Measured {
        model_file,
        model_bytes,
        model_mtime,
        repo: repo.display().to_string(),
        date: measured::date(now),
        seed,
        with_context: class_scores(on),
        without_context: class_scores(off),
    })
}

/// `lokal eval [DIR]`: the cases (see [`choose_cases`]) with and without context, per model; each model's
/// summary saved under `args.results`. Returns the table (or the runs as JSON) and notes for stderr.
pub fn main(exe: &Path, args: EvalArgs) -> Result<(String, Vec<String>), String> {
    let dir = match args.dir {
        Some(d) => d,
        None => std::env::current_dir().map_err(|e| e.to_string())?,
    };
    let (root, cases, about) = choose_cases(&dir, &args.cut)?;
    let mut notes = vec![about];
    if let Some(p) = &args.write_cases {
        write_case_file(p, &root, args.cut.seed, &cases)?;
        notes.push(format!("cases written to {} (`lokal eval {}` repeats them)", p.display(), p.display()));
    }
    let models = if args.models.is_empty() { vec![testing::test_model()] } else { args.models.clone() };
    let mut runs = Vec::new();
    let mut text = String::new();
    for model in &models {
        let off = run_with(exe, &root, model, &cases, false, args.threads)?;
        let on = run_with(exe, &root, model, &cases, true, args.threads)?;
        if let Some(dir) = &args.results {
            let p = measured::save(dir, &summary(model, &root, args.cut.seed, &off, &on)?)?;
            notes.push(format!("summary for `lokal models`: {}", p.display()));
        }
        let pair = [off, on];
        if !text.is_empty() {
            text.push('\n');
        }
        text += &table(model, &pair);
        runs.extend(pair);
    }
    if args.json {
        text = serde_json::to_string_pretty(&runs).map_err(|e| e.to_string())? + "\n";
    }
    Ok((text, notes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn similarity_counts_edits_over_the_expected_length() {
        assert_eq!(similarity("hecksum_v2(x)", "hecksum_v2"), 1.0);
        assert!((similarity("heckzum_v2", "hecksum_v2") - 0.9).abs() < 1e-9);
        assert_eq!(similarity("", "abc"), 0.0);
    }

    #[test]
    fn shipped_cases_cut_real_spans() {
        let dir = testing::fixture("eval");
        let cases = load_cases(&dir).unwrap();
        assert!(cases.iter().filter(|c| c.class == "cross-file").count() >= 5);
        for c in &cases {
            let text = std::fs::read_to_string(dir.join(&c.file)).unwrap();
            let at = text.find(&c.at).unwrap() + c.at.len();
            assert!(text[at..].starts_with(&c.expected), "{:?}", c.at);
            // The name is not in the prefix the single-file prompt sees.
            let name =
                format!("{}{}", c.at.rsplit(|ch: char| !ch.is_alphanumeric() && ch != '_').next().unwrap(), c.expected);
            assert!(!text[..at].contains(&name), "{name} already in the prefix");
        }
    }

    #[test]
    fn an_offset_places_the_cursor_where_at_also_occurs_earlier() {
        let full = "let a = total(x);\nlet b = total(y);\n";
        let case = |at: &str, expected: &str, offset| Case {
            class: "identifier".into(),
            file: "f.rs".into(),
            visited: vec![],
            at: at.into(),
            expected: expected.into(),
            offset,
        };
        // `at` alone finds the first line; the offset names the second.
        assert_eq!(cursor(&case("= to", "tal(x", None), full), Ok(10));
        assert_eq!(cursor(&case("= to", "tal(y", Some(28)), full), Ok(28));
        assert!(cursor(&case("= to", "tal(x", Some(28)), full).is_err());
        assert!(cursor(&case("= xx", "tal(y", Some(28)), full).is_err());
        assert!(cursor(&case("= to", "tal(y", Some(400)), full).is_err());
        // Case files without offsets (fixtures/eval) still read.
        let c: Case =
            serde_json::from_str(r#"{"class": "line", "file": "f.rs", "at": "= to", "expected": "tal"}"#).unwrap();
        assert_eq!(c.offset, None);
    }
}
