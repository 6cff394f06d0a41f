//! Where each catalog model is downloaded from: a Hugging Face repository, revision and file (or split
//! parts), with the sha256 of every file, and the hub URL rules `lokal models pull` follows.
//!
//! Checksums are pinned only where a public source lists them (LocalAI's model gallery, which records the
//! sha256 of every file it serves, is where the values below come from). A file without one says so, and
//! `pull` then asks for `--sha256` instead of trusting whatever arrives. Revisions are `main`: the sha256 is
//! what pins the bytes, so a repository that re-uploads a file fails the check instead of changing the model.
use std::path::Path;

/// One file of a model on the hub.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubFile {
    /// Path inside the repository (may hold a folder: `Q4_K_M/x-00001-of-00003.gguf`).
    pub path: String,
    pub sha256: Option<String>,
}

impl HubFile {
    /// The name it gets in the model directory (split parts must sit side by side under their own names,
    /// which llama.cpp derives from the first).
    pub fn local_name(&self) -> &str {
        self.path.rsplit('/').next().unwrap_or(&self.path)
    }
}

/// Where a model comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubSource {
    /// `OWNER/REPO`.
    pub repo: String,
    pub revision: String,
    /// One file, or the split parts in order (`-00001-of-0000N` first: the one llama.cpp is given).
    pub files: Vec<HubFile>,
}

impl HubSource {
    /// Every file has a pinned checksum.
    pub fn pinned(&self) -> bool {
        self.files.iter().all(|f| f.sha256.is_some())
    }
}

/// (catalog id, `OWNER/REPO`, files in order with their sha256 where a source lists it). Revision `main`.
type Row = (&'static str, &'static str, &'static [(&'static str, Option<&'static str>)]);

const TABLE: &[Row] = &[
    // bartowski's quantizations of Qwen's instruct models, as LocalAI's gallery lists them (2024-11).
    (
        "qwen2.5-coder-1.5b-q4_k_m",
        "bartowski/Qwen2.5-Coder-1.5B-Instruct-GGUF",
        &[(
            "Qwen2.5-Coder-1.5B-Instruct-Q4_K_M.gguf",
            Some("f530705d447660a4336c329981af164b471b60b974b1d808d57e8ec9fe23b239"),
        )],
    ),
    (
        "qwen2.5-coder-3b-q4_k_m",
        "bartowski/Qwen2.5-Coder-3B-Instruct-GGUF",
        &[(
            "Qwen2.5-Coder-3B-Instruct-Q4_K_M.gguf",
            Some("3da3afe6cf5c674ac195803ea0dd6fee7e1c228c2105c1ce8c66890d1d4ab460"),
        )],
    ),
    (
        "qwen2.5-coder-7b-q4_k_m",
        "bartowski/Qwen2.5-Coder-7B-Instruct-GGUF",
        &[(
            "Qwen2.5-Coder-7B-Instruct-Q4_K_M.gguf",
            Some("1664fccab734674a50763490a8c6931b70e3f2f8ec10031b54806d30e5f956b6"),
        )],
    ),
    (
        "qwen2.5-coder-14b-q4_k_m",
        "bartowski/Qwen2.5-Coder-14B-Instruct-GGUF",
        &[(
            "Qwen2.5-Coder-14B-Instruct-Q4_K_M.gguf",
            Some("2946d28c9e1bb2bcae6d42e8678863a31775df6f740315c7d7e6d6b6411f5937"),
        )],
    ),
    (
        "qwen2.5-coder-32b-q4_k_m",
        "bartowski/Qwen2.5-Coder-32B-Instruct-GGUF",
        &[(
            "Qwen2.5-Coder-32B-Instruct-Q4_K_M.gguf",
            Some("8e2fd78ff55e7cdf577fda257bac2776feb7d73d922613caf35468073807e815"),
        )],
    ),
    // Qwen's own repositories; no public list of their checksums was found.
    (
        "qwen2.5-coder-0.5b-q8_0",
        "Qwen/Qwen2.5-Coder-0.5B-Instruct-GGUF",
        &[("qwen2.5-coder-0.5b-instruct-q8_0.gguf", None)],
    ),
    (
        "qwen2.5-coder-1.5b-q8_0",
        "Qwen/Qwen2.5-Coder-1.5B-Instruct-GGUF",
        &[("qwen2.5-coder-1.5b-instruct-q8_0.gguf", None)],
    ),
    // unsloth's Qwen3-Coder / Qwen3.5 / 3.6 and ggml-org's / unsloth's Gemma 4, as LocalAI's gallery lists them (2026).
    // None: the gallery lists another quantization of the model, not this one.
    (
        "qwen3-coder-30b-a3b-q4_k_m",
        "unsloth/Qwen3-Coder-30B-A3B-Instruct-GGUF",
        &[(
            "Qwen3-Coder-30B-A3B-Instruct-Q4_K_M.gguf",
            Some("fadc3e5f8d42bf7e894a785b05082e47daee4df26680389817e2093056f088ad"),
        )],
    ),
    (
        "qwen3-coder-30b-a3b-q8_0",
        "unsloth/Qwen3-Coder-30B-A3B-Instruct-GGUF",
        &[("Qwen3-Coder-30B-A3B-Instruct-Q8_0.gguf", None)],
    ),
    (
        "qwen3.5-4b-q4_k_m",
        "unsloth/Qwen3.5-4B-GGUF",
        &[("Qwen3.5-4B-Q4_K_M.gguf", Some("00fe7986ff5f6b463e62455821146049db6f9313603938a70800d1fb69ef11a4"))],
    ),
    (
        "qwen3.5-9b-q4_k_m",
        "unsloth/Qwen3.5-9B-GGUF",
        &[("Qwen3.5-9B-Q4_K_M.gguf", Some("03b74727a860a56338e042c4420bb3f04b2fec5734175f4cb9fa853daf52b7e8"))],
    ),
    (
        "qwen3.5-27b-q4_k_m",
        "unsloth/Qwen3.5-27B-GGUF",
        &[("Qwen3.5-27B-Q4_K_M.gguf", Some("84b5f7f112156d63836a01a69dc3f11a6ba63b10a23b8ca7a7efaf52d5a2d806"))],
    ),
    ("qwen3.5-35b-a3b-q4_k_m", "unsloth/Qwen3.5-35B-A3B-GGUF", &[("Qwen3.5-35B-A3B-Q4_K_M.gguf", None)]),
    (
        "qwen3.5-35b-a3b-q8_0",
        "unsloth/Qwen3.5-35B-A3B-GGUF",
        &[("Qwen3.5-35B-A3B-Q8_0.gguf", Some("3808866c016ab02b4adb26b873f7008a2cdd2c0704a39704050119ab0631db46"))],
    ),
    ("qwen3.6-35b-a3b-q4_k_m", "unsloth/Qwen3.6-35B-A3B-GGUF", &[("Qwen3.6-35B-A3B-Q4_K_M.gguf", None)]),
    (
        "qwen3.6-35b-a3b-q8_0",
        "unsloth/Qwen3.6-35B-A3B-GGUF",
        &[("Qwen3.6-35B-A3B-Q8_0.gguf", Some("d1a395809f65a43a13ad119eb4e7acdef1ac6d68120f39902c8ab96e72794a59"))],
    ),
    (
        "qwen3.5-122b-a10b-q4_k_m",
        "unsloth/Qwen3.5-122B-A10B-GGUF",
        &[
            (
                "Q4_K_M/Qwen3.5-122B-A10B-Q4_K_M-00001-of-00003.gguf",
                Some("467c9bd92ea518539cf75bf5a5fbfbd35e9a0b40d766ccaa67bf120e12041df3"),
            ),
            (
                "Q4_K_M/Qwen3.5-122B-A10B-Q4_K_M-00002-of-00003.gguf",
                Some("90db14846413aebdac365b57206441437cac5f7e5037d94b325f0167f902e6e7"),
            ),
            (
                "Q4_K_M/Qwen3.5-122B-A10B-Q4_K_M-00003-of-00003.gguf",
                Some("e3c24b8ebec070bb4f69ea0aca25a16531da7440cd515529953e046882901f97"),
            ),
        ],
    ),
    (
        "gemma-4-e4b-q4_k_m",
        "ggml-org/gemma-4-E4B-it-GGUF",
        &[("gemma-4-E4B-it-Q4_K_M.gguf", Some("90ce98129eb3e8cc57e62433d500c97c624b1e3af1fcc85dd3b55ad7e0313e9f"))],
    ),
    ("gemma-4-e2b-q4_k_m", "ggml-org/gemma-4-E2B-it-GGUF", &[("gemma-4-E2B-it-Q4_K_M.gguf", None)]),
    (
        "gemma-4-26b-a4b-q4_k_m",
        "ggml-org/gemma-4-26B-A4B-it-GGUF",
        &[("gemma-4-26B-A4B-it-Q4_K_M.gguf", Some("88f4a13b0bb95f031a7fad973e10854122fb67ebc34d214d39a2f65053046abc"))],
    ),
    (
        "gemma-4-26b-a4b-q8_0",
        "unsloth/gemma-4-26B-A4B-it-GGUF",
        &[("gemma-4-26B-A4B-it-Q8_0.gguf", Some("5f7cbd0f4564e84342fc34321a09acb54b1a3da9215124e5bf444baa6dda152c"))],
    ),
    (
        "gemma-4-31b-q4_k_m",
        "unsloth/gemma-4-31B-it-GGUF",
        &[("gemma-4-31B-it-Q4_K_M.gguf", Some("38bd64c852c4b460434cc7162fa9bdcf242faf86502581a754cb72956bb17f84"))],
    ),
];

/// The pinned source of a catalog entry, by id. `None`: the catalog lists the model for sizing only (FP8
/// releases for vLLM, frontier models nobody runs from one download) or no source was found for it.
pub fn source(id: &str) -> Option<HubSource> {
    let (_, repo, files) = TABLE.iter().find(|(i, _, _)| *i == id)?;
    let files = files.iter().map(|(p, s)| HubFile { path: p.to_string(), sha256: s.map(str::to_string) }).collect();
    Some(HubSource { repo: repo.to_string(), revision: "main".into(), files })
}

/// `hf://OWNER/REPO/PATH/TO/FILE.gguf`, optionally `hf://OWNER/REPO@REVISION/FILE.gguf`.
pub fn parse_hf_url(s: &str) -> Result<HubSource, String> {
    let rest = s.strip_prefix("hf://").ok_or_else(|| format!("{s}: expected hf://OWNER/REPO/FILE.gguf"))?;
    let mut it = rest.splitn(3, '/');
    let (owner, repo, file) = (it.next().unwrap_or(""), it.next().unwrap_or(""), it.next().unwrap_or(""));
    let (repo, revision) = match repo.split_once('@') {
        Some((r, rev)) => (r, rev),
        None => (repo, "main"),
    };
    let ok = |p: &str| !p.is_empty() && p != "." && p != ".." && !p.contains(['\\', '?', '#']);
    if !ok(owner) || !ok(repo) || !ok(revision) || file.is_empty() || !file.split('/').all(ok) {
        return Err(format!("{s}: expected hf://OWNER/REPO/FILE.gguf"));
    }
    if !file.to_lowercase().ends_with(".gguf") {
        return Err(format!("{s}: lokal loads GGUF files; {file} is not one"));
    }
    Ok(HubSource {
        repo: format!("{owner}/{repo}"),
        revision: revision.into(),
        files: vec![HubFile { path: file.into(), sha256: None }],
    })
}

/// `HF_ENDPOINT` (an organisation's mirror), else the public hub; no trailing slash.
pub fn endpoint_from_env() -> String {
    std::env::var("HF_ENDPOINT")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| "https://huggingface.co".into())
        .trim_end_matches('/')
        .to_string()
}

/// The huggingface_hub download URL: `{endpoint}/{owner}/{repo}/resolve/{revision}/{file}`.
pub fn resolve_url(endpoint: &str, repo: &str, revision: &str, file: &str) -> String {
    // A branch name may hold a slash (`refs/pr/1`); the hub wants it escaped inside the path.
    let rev = revision.replace('/', "%2F");
    format!("{}/{repo}/resolve/{rev}/{file}", endpoint.trim_end_matches('/'))
}

/// A split GGUF's part name: `x-00001-of-00003.gguf` → Some((1, 3)).
pub fn split_part(name: &Path) -> Option<(u32, u32)> {
    let stem = name.file_name()?.to_str()?.strip_suffix(".gguf")?;
    let (head, total) = stem.rsplit_once("-of-")?;
    let (_, idx) = head.rsplit_once('-')?;
    if idx.len() != 5 || total.len() != 5 {
        return None;
    }
    Some((idx.parse().ok()?, total.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::curated;

    #[test]
    fn urls_follow_the_hub_convention() {
        assert_eq!(
            resolve_url("https://huggingface.co/", "bartowski/Qwen2.5-Coder-1.5B-Instruct-GGUF", "main", "Qwen2.5-Coder-1.5B-Instruct-Q4_K_M.gguf"),
            "https://huggingface.co/bartowski/Qwen2.5-Coder-1.5B-Instruct-GGUF/resolve/main/Qwen2.5-Coder-1.5B-Instruct-Q4_K_M.gguf"
        );
        assert_eq!(
            resolve_url("http://mirror.internal:8080/hf", "a/b", "refs/pr/1", "d/x.gguf"),
            "http://mirror.internal:8080/hf/a/b/resolve/refs%2Fpr%2F1/d/x.gguf"
        );
    }

    #[test]
    fn hf_urls_parse_or_say_why_not() {
        let s =
            parse_hf_url("hf://Qwen/Qwen2.5-Coder-0.5B-Instruct-GGUF/qwen2.5-coder-0.5b-instruct-q8_0.gguf").unwrap();
        assert_eq!(
            (s.repo.as_str(), s.revision.as_str(), s.files[0].path.as_str()),
            ("Qwen/Qwen2.5-Coder-0.5B-Instruct-GGUF", "main", "qwen2.5-coder-0.5b-instruct-q8_0.gguf")
        );
        assert!(s.files[0].sha256.is_none());
        let s = parse_hf_url("hf://o/r@v2/Q4/x-00001-of-00002.gguf").unwrap();
        assert_eq!((s.revision.as_str(), s.files[0].local_name()), ("v2", "x-00001-of-00002.gguf"));
        for bad in ["o/r/x.gguf", "hf://o/x.gguf", "hf://o/r/", "hf://o/r/../x.gguf", "hf:///r/x.gguf"] {
            assert!(parse_hf_url(bad).is_err(), "{bad}");
        }
        assert!(parse_hf_url("hf://o/r/model.safetensors").unwrap_err().contains("GGUF"));
    }

    #[test]
    fn split_part_names() {
        assert_eq!(split_part(Path::new("/m/Qwen3.5-122B-A10B-Q4_K_M-00001-of-00003.gguf")), Some((1, 3)));
        assert_eq!(split_part(Path::new("qwen2.5-coder-1.5b-instruct-q4_k_m.gguf")), None);
        assert_eq!(split_part(Path::new("x-1-of-3.gguf")), None);
    }

    #[test]
    fn sources_belong_to_catalog_entries_and_match_their_files() {
        let c = curated();
        for (id, _, _) in TABLE {
            let e = c.iter().find(|e| e.id == *id).unwrap_or_else(|| panic!("{id} is not a catalog id"));
            let s = source(id).unwrap();
            assert!(s.repo.contains('/') && !s.files.is_empty(), "{id}");
            // The registry finds a pulled catalog model by its usual file name, case-insensitively.
            if let (Some(f), 1) = (&e.file_name, s.files.len()) {
                assert!(s.files[0].local_name().eq_ignore_ascii_case(f), "{id}: {} vs {f}", s.files[0].local_name());
            }
            for f in &s.files {
                if let Some(h) = &f.sha256 {
                    assert!(
                        h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()),
                        "{id}: {h}"
                    );
                }
            }
            if s.files.len() > 1 {
                let n = s.files.len() as u32;
                for (i, f) in s.files.iter().enumerate() {
                    assert_eq!(split_part(Path::new(f.local_name())), Some((i as u32 + 1, n)), "{id}");
                }
            }
        }
        assert!(source("qwen2.5-coder-1.5b-q4_k_m").unwrap().pinned());
        assert!(!source("qwen2.5-coder-0.5b-q8_0").unwrap().pinned());
        assert!(source("kimi-k2.5-fp8").is_none());
    }
}
