//! Measured completion quality (`lokal eval`'s summaries) for `lokal models`.
//!
//! `lokal eval` writes one summary per model file to `<cache>/lokal/eval/<model file name>.json`
//! (`$XDG_CACHE_HOME`, else `~/.cache`); a later run of the same file replaces it. A summary names the file
//! by name, size and modification time: the catalog matches it to an entry by file name, and drops it when
//! the entry's file on disk has another size (a different quantization or download under the same name).
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// One case class of one run (context on or off).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClassScore {
    pub class: String,
    pub cases: usize,
    pub exact: usize,
    /// Mean edit similarity, 0 to 1.
    pub similarity: f64,
    pub ttft_p50_ms: f64,
    pub latency_p50_ms: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Measured {
    pub model_file: String,
    pub model_bytes: u64,
    /// Seconds since the epoch.
    pub model_mtime: u64,
    /// The repository (or case folder) the cases were cut from.
    pub repo: String,
    /// `YYYY-MM-DD` (UTC).
    pub date: String,
    pub seed: u64,
    pub with_context: Vec<ClassScore>,
    pub without_context: Vec<ClassScore>,
}

/// Exact matches, cases and mean similarity over all classes of one run.
pub fn totals(scores: &[ClassScore]) -> (usize, usize, f64) {
    let cases: usize = scores.iter().map(|s| s.cases).sum();
    let exact = scores.iter().map(|s| s.exact).sum();
    let sim = scores.iter().map(|s| s.similarity * s.cases as f64).sum::<f64>() / cases.max(1) as f64;
    (exact, cases, sim)
}

impl Measured {
    /// What the recommendation compares: the share of exact matches with context (how lokal runs), then the
    /// mean similarity. Shares, not counts: runs may have different numbers of cases.
    pub fn score(&self) -> (f64, f64) {
        let (exact, cases, sim) = totals(&self.with_context);
        (exact as f64 / cases.max(1) as f64, sim)
    }

    /// `6/10 exact with context (2/10 without), similarity 0.71, lokal eval on ~/src/app 2026-11-30`
    pub fn describe(&self) -> String {
        let (e, n, sim) = totals(&self.with_context);
        let (e0, n0, _) = totals(&self.without_context);
        format!(
            "{e}/{n} exact with context ({e0}/{n0} without), similarity {sim:.2}, lokal eval on {} {}",
            self.repo, self.date
        )
    }

    /// Whether this summary is about `entry`'s file: the same file name, and the same size where the file is
    /// on disk.
    pub fn is_for(&self, entry: &super::Entry) -> bool {
        let name = self.model_file.to_lowercase();
        let on_disk = entry.path.as_deref().and_then(Path::file_name).map(|f| f.to_string_lossy().to_lowercase());
        let same_name = on_disk.as_deref() == Some(name.as_str()) || entry.file_name.as_deref() == Some(name.as_str());
        if !same_name {
            return false;
        }
        match entry.path.as_deref().and_then(|p| std::fs::metadata(p).ok()) {
            Some(m) => m.len() == self.model_bytes,
            None => true,
        }
    }
}

/// `$XDG_CACHE_HOME/lokal/eval`, else `~/.cache/lokal/eval`.
pub fn dir() -> PathBuf {
    crate::config::xdg_dir("XDG_CACHE_HOME", ".cache").join("lokal").join("eval")
}

/// Write `m` as `<dir>/<model file>.json`, replacing an older run of the same file.
pub fn save(dir: &Path, m: &Measured) -> Result<PathBuf, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let p = dir.join(format!("{}.json", m.model_file));
    let text = serde_json::to_string_pretty(m).map_err(|e| e.to_string())?;
    // Write then rename: `lokal models` running meanwhile reads the old summary or the new one.
    let tmp = dir.join(format!(".{}.{}.tmp", m.model_file, std::process::id()));
    std::fs::write(&tmp, text).map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, &p).map_err(|e| format!("{}: {e}", p.display()))?;
    Ok(p)
}

/// Every summary in `dir` that parses, in file name order; a missing folder is none.
pub fn load_all(dir: &Path) -> Vec<Measured> {
    let Ok(rd) = std::fs::read_dir(dir) else { return vec![] };
    let mut files: Vec<PathBuf> =
        rd.filter_map(Result::ok).map(|e| e.path()).filter(|p| p.extension().is_some_and(|e| e == "json")).collect();
    files.sort();
    files.iter().filter_map(|p| serde_json::from_str(&std::fs::read_to_string(p).ok()?).ok()).collect()
}

/// The summary of `path`'s model file: its name, size and modification time (no hash: reading a model of
/// tens of gigabytes to name it would cost more than the evaluation).
pub fn identify(path: &Path) -> Result<(String, u64, u64), String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let mtime =
        meta.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()).map_or(0, |d| d.as_secs());
    Ok((name, meta.len(), mtime))
}

/// `YYYY-MM-DD` of a Unix time (UTC).
pub fn date(unix_secs: u64) -> String {
    crate::policy::audit::rfc3339(unix_secs as i64)[..10].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_from_unix_time() {
        assert_eq!(date(0), "1970-01-01");
        assert_eq!(date(951_782_400), "2000-02-29");
        assert_eq!(date(1_795_996_800), "2026-11-30");
    }

    #[test]
    fn saved_summaries_load_back_and_match_their_file_only() {
        let dir = std::env::temp_dir().join(format!("lokal-measured-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let model = dir.join("models").join("Tiny-Coder-Q4_K_M.gguf");
        std::fs::create_dir_all(model.parent().unwrap()).unwrap();
        std::fs::write(&model, b"GGUF and some weights").unwrap();
        let (model_file, model_bytes, model_mtime) = identify(&model).unwrap();
        let score = ClassScore {
            class: "block".into(),
            cases: 4,
            exact: 1,
            similarity: 0.5,
            ttft_p50_ms: 10.0,
            latency_p50_ms: 20.0,
        };
        let m = Measured {
            model_file,
            model_bytes,
            model_mtime,
            repo: "/src/app".into(),
            date: "2026-11-30".into(),
            seed: 1,
            with_context: vec![
                score.clone(),
                ClassScore { class: "line".into(), exact: 3, similarity: 1.0, ..score.clone() },
            ],
            without_context: vec![score],
        };
        let results = dir.join("eval");
        save(&results, &m).unwrap();
        std::fs::write(results.join("broken.json"), "{").unwrap();
        assert_eq!(load_all(&results), vec![m.clone()]);
        assert_eq!(m.score(), (0.5, 0.75));
        assert_eq!(
            m.describe(),
            "4/8 exact with context (1/4 without), similarity 0.75, lokal eval on /src/app 2026-11-30"
        );

        let mut entry =
            crate::catalog::entry_from_gguf(&model).unwrap_or_else(|_| crate::catalog::curated()[0].clone());
        entry.path = Some(model.clone());
        entry.file_name = None;
        assert!(m.is_for(&entry));
        // Another file under the same name (a new download, another quantization): not this measurement.
        std::fs::write(&model, b"GGUF and other, longer weights").unwrap();
        assert!(!m.is_for(&entry));
        // A catalog entry not on disk matches by its usual file name, whatever the case.
        let mut listed = entry.clone();
        listed.path = None;
        listed.file_name = Some("tiny-coder-q4_k_m.gguf".into());
        assert!(m.is_for(&listed));
        listed.file_name = Some("tiny-coder-q8_0.gguf".into());
        assert!(!m.is_for(&listed));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
