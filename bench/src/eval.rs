//! `lokal eval`: completion quality on cut cases, asked of the real binary over LSP as an editor would
//! (open the files the user visited, then the file with the span cut out, then complete at the cut), with
//! and without workspace context.
use crate::client::LspClient;
use crate::testing;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Deserialize)]
pub struct Case {
    pub class: String,
    pub file: String,
    #[serde(default)]
    pub visited: Vec<String>,
    /// The text right before the cursor (its first occurrence in `file`).
    pub at: String,
    /// The span cut out after `at`.
    pub expected: String,
}

#[derive(Debug, Deserialize)]
struct CaseFile {
    cases: Vec<Case>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub class: String,
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
    pub context: bool,
    pub outcomes: Vec<Outcome>,
}

impl Run {
    pub fn exact(&self, class: &str) -> usize {
        self.outcomes.iter().filter(|o| o.class == class && o.exact).count()
    }
}

pub fn load_cases(dir: &Path) -> Result<Vec<Case>, String> {
    let p = dir.join("cases.json");
    let text = std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))?;
    let f: CaseFile = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", p.display()))?;
    Ok(f.cases)
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
        Some("ts" | "tsx") => "typescript",
        Some("js" | "jsx") => "javascript",
        Some("go") => "go",
        _ => "rust",
    }
}

/// Run every case in one session of `exe` rooted at `root`, with the context setting as given.
pub fn run(exe: &Path, root: &Path, model: &Path, cases: &[Case], context: bool) -> Result<Run, String> {
    let root = root.canonicalize().map_err(|e| format!("{}: {e}", root.display()))?;
    let mut c = LspClient::spawn(exe, &["--stdio"], &[("LOKAL_LOG", "warn"), ("LOKAL_NO_DAEMON", "1")], Stdio::null())
        .map_err(|e| e.to_string())?;
    let options = json!({"modelPath": model, "contextEnabled": context, "maxLines": 1, "maxTokens": 12});
    c.initialize(Some(&testing::file_uri(&root)), options, false).map_err(|e| format!("{e:?}"))?;
    testing::wait_ready(&mut c, testing::READY_TIMEOUT)?;
    let uri = |f: &str| testing::file_uri(&root.join(f));
    let read = |f: &str| std::fs::read_to_string(root.join(f)).map_err(|e| format!("{f}: {e}"));
    let mut outcomes = Vec::new();
    for case in cases {
        for v in &case.visited {
            c.open(&uri(v), language(v), &read(v)?);
        }
        let full = read(&case.file)?;
        let at = full.find(&case.at).ok_or_else(|| format!("{:?} not in {}", case.at, case.file))? + case.at.len();
        if !full[at..].starts_with(&case.expected) {
            return Err(format!("{}: {:?} does not follow {:?}", case.file, case.expected, case.at));
        }
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
        outcomes.push(Outcome {
            class: case.class.clone(),
            at: case.at.clone(),
            expected: case.expected.clone(),
            exact: got.starts_with(&case.expected),
            similarity: similarity(&got, &case.expected),
            got,
            ttft_ms,
            latency_ms,
        });
    }
    c.shutdown();
    Ok(Run { context, outcomes })
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

/// The table: per context setting and case class, exact matches, mean similarity, median ttft and latency.
pub fn table(model: &Path, runs: &[Run]) -> String {
    let name = model.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let mut out = format!(
        "{:<28} {:<8} {:<12} {:>7} {:>10} {:>9} {:>11}\n",
        "model", "context", "class", "exact", "similarity", "ttft ms", "latency ms"
    );
    for r in runs {
        let mut classes: Vec<&str> = r.outcomes.iter().map(|o| o.class.as_str()).collect();
        classes.sort();
        classes.dedup();
        for class in classes {
            let os: Vec<&Outcome> = r.outcomes.iter().filter(|o| o.class == class).collect();
            let sim = os.iter().map(|o| o.similarity).sum::<f64>() / os.len() as f64;
            out += &format!(
                "{:<28} {:<8} {:<12} {:>3}/{:<3} {:>10.2} {:>9.0} {:>11.0}\n",
                name,
                if r.context { "on" } else { "off" },
                class,
                r.exact(class),
                os.len(),
                sim,
                median(os.iter().map(|o| o.ttft_ms).collect()),
                median(os.iter().map(|o| o.latency_ms).collect()),
            );
        }
    }
    out
}

/// `lokal eval [DIR]`: the cases in DIR/cases.json (default: the shipped fixtures/eval), with and without
/// context.
pub fn main(exe: &Path, dir: Option<PathBuf>, model: Option<PathBuf>, json_out: bool) -> Result<String, String> {
    let dir = dir.unwrap_or_else(|| testing::fixture("eval"));
    let model = model.unwrap_or_else(testing::test_model);
    let cases = load_cases(&dir)?;
    let runs = vec![run(exe, &dir, &model, &cases, false)?, run(exe, &dir, &model, &cases, true)?];
    if json_out {
        return serde_json::to_string_pretty(&runs).map_err(|e| e.to_string());
    }
    Ok(table(&model, &runs))
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
}
