//! `lokal models pull`: download a catalog model (or any `hf://OWNER/REPO/FILE.gguf`) into the model
//! directory, checked against its sha256.
//!
//! Each file goes to `NAME.part` first and gets its final name only after its sha256 matched, so a model
//! under its final name is always a whole, verified file. An interrupted transfer resumes from the `.part`
//! with a Range request, a few times within one run and again on the next run. Wrong bytes delete the
//! `.part` (resuming from them cannot give the right file) and name both checksums.
//!
//! The download carries no workspace data (only a repository and file name go out), so it is not an
//! egress of the tier policy and does not ask for a permit; it follows redirects to the hub's storage host,
//! and reqwest drops the `Authorization` header (`HF_TOKEN`) when a redirect leaves the host.
use super::hub::{self, HubFile, HubSource};
use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct PullOptions {
    /// Hub endpoint, `https://huggingface.co` or a mirror (`HF_ENDPOINT`).
    pub endpoint: String,
    /// Bearer token for gated repositories (`HF_TOKEN`).
    pub token: Option<String>,
    /// Where the model goes (lokal's model directory).
    pub dir: PathBuf,
    /// The expected sha256 of a single-file model, for files without a pinned checksum (or to insist on one).
    pub sha256: Option<String>,
    /// Resumes after a broken transfer within one run.
    pub retries: u32,
    /// Wait before the first resume; doubles each time.
    pub retry_delay: Duration,
}

impl PullOptions {
    /// `HF_ENDPOINT`, `HF_TOKEN`, and lokal's model directory (`LOKAL_MODEL_DIR`, else the XDG cache).
    pub fn from_env() -> PullOptions {
        PullOptions {
            endpoint: hub::endpoint_from_env(),
            token: std::env::var("HF_TOKEN").ok().filter(|t| !t.trim().is_empty()),
            dir: crate::config::default_model_dir(),
            sha256: None,
            retries: 5,
            retry_delay: Duration::from_secs(1),
        }
    }
}

/// What a pull reports while it runs (the CLI draws a bar, prints lines, or JSON lines for the editor
/// extension: `{"event":"progress","file":..,"done":..,"total":..}`).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "event", rename_all = "camelCase", rename_all_fields = "camelCase")]
pub enum Event {
    /// A file's transfer starts (or resumes `from` bytes in).
    Start {
        file: String,
        total: Option<u64>,
        from: u64,
    },
    Progress {
        file: String,
        done: u64,
        total: Option<u64>,
    },
    /// The transfer broke; resuming after a pause.
    Retry {
        file: String,
        attempt: u32,
        error: String,
    },
    Verifying {
        file: String,
    },
    /// The file is in place under its final name (`cached`: it already was, with the right checksum).
    Done {
        file: String,
        path: PathBuf,
        cached: bool,
    },
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Pulled {
    /// The file to load (the first part of a split model).
    pub path: PathBuf,
    pub files: Vec<PathBuf>,
    /// Catalog id, when pulled by one.
    pub id: Option<String>,
}

/// What `what` names: a catalog id (case-insensitive) or an `hf://` URL.
pub fn resolve_source(what: &str) -> Result<(Option<String>, HubSource), String> {
    if what.starts_with("hf://") {
        return Ok((None, hub::parse_hf_url(what)?));
    }
    let id = what.to_lowercase();
    match hub::source(&id) {
        Some(s) => Ok((Some(id), s)),
        None if super::curated().iter().any(|e| e.id == id) => {
            Err(format!("{what} has no download in lokal's catalog (it is listed for sizing only); pull a GGUF with hf://OWNER/REPO/FILE.gguf"))
        }
        None => Err(format!("{what}: not a catalog id (see `lokal models`) and not hf://OWNER/REPO/FILE.gguf")),
    }
}

/// Download `what` (see [`resolve_source`]) as the options say.
pub async fn pull(what: &str, opts: &PullOptions, on: &mut (dyn FnMut(&Event) + Send)) -> Result<Pulled, String> {
    let (id, mut src) = resolve_source(what)?;
    if let Some(h) = &opts.sha256 {
        let h = normalize_sha(h)?;
        if src.files.len() != 1 {
            return Err(format!(
                "--sha256 names one file, but {what} has {} parts with their own checksums",
                src.files.len()
            ));
        }
        src.files[0].sha256 = Some(h);
    }
    if let Some(f) = src.files.iter().find(|f| f.sha256.is_none()) {
        return Err(format!(
            "no sha256 is pinned for {}/{}: lokal will not keep a model it cannot check. Pass --sha256 HEX with the checksum the repository shows for the file (its page lists it as the file's SHA256)",
            src.repo,
            f.path
        ));
    }
    std::fs::create_dir_all(&opts.dir).map_err(|e| format!("{}: {e}", opts.dir.display()))?;
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(30))
        .read_timeout(Duration::from_secs(60))
        .user_agent(concat!("lokal/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| e.to_string())?;
    let mut files = Vec::new();
    for f in &src.files {
        files.push(pull_file(&client, &src, f, opts, on).await?);
    }
    Ok(Pulled { path: files[0].clone(), files, id })
}

pub fn normalize_sha(h: &str) -> Result<String, String> {
    let h = h.trim().to_lowercase();
    if h.len() != 64 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("--sha256 wants 64 hex digits, got {h:?}"));
    }
    Ok(h)
}

/// What a response to a (ranged) GET means for the `.part` holding `have` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resume {
    /// 206 from `have`: append; the whole file is `total` bytes.
    Append { total: Option<u64> },
    /// 200: the server sends the whole file; start over.
    Restart { total: Option<u64> },
    /// 416 on a non-empty part: nothing more to send, the part is as long as the file (or longer).
    Complete,
}

/// Decide from a status and `Content-Range` / `Content-Length` how to continue (pure, for the tests).
pub fn resume_plan(
    status: u16,
    have: u64,
    content_range: Option<&str>,
    content_length: Option<u64>,
) -> Result<Resume, String> {
    match status {
        206 => {
            let cr = content_range.ok_or("206 without Content-Range")?;
            let (start, total) = parse_content_range(cr).ok_or_else(|| format!("unreadable Content-Range {cr:?}"))?;
            if start != have {
                return Err(format!("asked for bytes from {have}, the server sent from {start}"));
            }
            Ok(Resume::Append { total: total.or(content_length.map(|l| have + l)) })
        }
        200 => Ok(Resume::Restart { total: content_length }),
        416 if have > 0 => Ok(Resume::Complete),
        _ => Err(format!("HTTP {status}")),
    }
}

/// `bytes START-END/TOTAL` (TOTAL may be `*`) → (START, TOTAL).
pub fn parse_content_range(v: &str) -> Option<(u64, Option<u64>)> {
    let rest = v.trim().strip_prefix("bytes ")?;
    let (range, total) = rest.split_once('/')?;
    let (start, end) = range.split_once('-')?;
    let (start, end): (u64, u64) = (start.trim().parse().ok()?, end.trim().parse().ok()?);
    if end < start {
        return None;
    }
    let total = if total.trim() == "*" { None } else { Some(total.trim().parse().ok()?) };
    Some((start, total))
}

fn part_path(final_path: &Path) -> PathBuf {
    let mut s = final_path.as_os_str().to_owned();
    s.push(".part");
    PathBuf::from(s)
}

async fn pull_file(
    client: &reqwest::Client,
    src: &HubSource,
    f: &HubFile,
    opts: &PullOptions,
    on: &mut (dyn FnMut(&Event) + Send),
) -> Result<PathBuf, String> {
    let name = f.local_name().to_string();
    let want = f.sha256.clone().expect("checked by pull");
    let final_path = opts.dir.join(&name);
    let part = part_path(&final_path);
    if final_path.is_file() {
        on(&Event::Verifying { file: name.clone() });
        if sha256_file(&final_path).await? == want {
            on(&Event::Done { file: name, path: final_path.clone(), cached: true });
            return Ok(final_path);
        }
        tracing::warn!("{} exists with another checksum; downloading it again", final_path.display());
    }
    let url = hub::resolve_url(&opts.endpoint, &src.repo, &src.revision, &f.path);
    let mut attempt = 0;
    loop {
        match transfer(client, &url, &part, opts, &name, on).await {
            Ok(()) => {}
            Err(Failure::Fatal(e)) => return Err(e),
            Err(Failure::Transient(e)) => {
                attempt += 1;
                if attempt > opts.retries {
                    return Err(format!(
                        "{name}: {e}; gave up after {} resumes (run the same command again to continue from {})",
                        opts.retries,
                        part.display()
                    ));
                }
                on(&Event::Retry { file: name.clone(), attempt, error: e });
                tokio::time::sleep(opts.retry_delay * 2u32.saturating_pow(attempt - 1).min(16)).await;
                continue;
            }
        }
        on(&Event::Verifying { file: name.clone() });
        let got = sha256_file(&part).await?;
        if got != want {
            let _ = std::fs::remove_file(&part);
            return Err(format!(
                "{name}: sha256 mismatch: expected {want}, got {got}. The download was deleted; nothing was written to {}",
                final_path.display()
            ));
        }
        std::fs::rename(&part, &final_path).map_err(|e| format!("{}: {e}", final_path.display()))?;
        on(&Event::Done { file: name, path: final_path.clone(), cached: false });
        return Ok(final_path);
    }
}

enum Failure {
    /// Worth resuming: a broken connection, a timeout, a short body, a 5xx.
    Transient(String),
    Fatal(String),
}

/// One request: fetch what the `.part` lacks and append it.
async fn transfer(
    client: &reqwest::Client,
    url: &str,
    part: &Path,
    opts: &PullOptions,
    name: &str,
    on: &mut (dyn FnMut(&Event) + Send),
) -> Result<(), Failure> {
    let have = std::fs::metadata(part).map(|m| m.len()).unwrap_or(0);
    let mut req = client.get(url);
    if have > 0 {
        req = req.header(reqwest::header::RANGE, format!("bytes={have}-"));
    }
    if let Some(t) = &opts.token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.map_err(|e| Failure::Transient(format!("{url}: {e}")))?;
    let status = resp.status().as_u16();
    match status {
        401 | 403 => {
            let hint = if opts.token.is_some() {
                "HF_TOKEN was sent: does it have access to this repository?"
            } else {
                "a gated repository needs HF_TOKEN set to an access token"
            };
            return Err(Failure::Fatal(format!("{url}: HTTP {status} (not allowed): {hint}")));
        }
        404 => {
            return Err(Failure::Fatal(format!(
                "{url}: HTTP 404, not found: check the repository, revision and file name"
            )))
        }
        s if s >= 500 || s == 429 => return Err(Failure::Transient(format!("{url}: HTTP {s}"))),
        _ => {}
    }
    let header =
        |h: reqwest::header::HeaderName| resp.headers().get(h).and_then(|v| v.to_str().ok()).map(str::to_string);
    let plan = resume_plan(status, have, header(reqwest::header::CONTENT_RANGE).as_deref(), resp.content_length())
        .map_err(|e| Failure::Fatal(format!("{url}: {e}")))?;
    let (mut file, mut done, total) = match plan {
        Resume::Complete => return Ok(()),
        Resume::Append { total } => (
            std::fs::OpenOptions::new()
                .append(true)
                .open(part)
                .map_err(|e| Failure::Fatal(format!("{}: {e}", part.display())))?,
            have,
            total,
        ),
        Resume::Restart { total } => {
            (std::fs::File::create(part).map_err(|e| Failure::Fatal(format!("{}: {e}", part.display())))?, 0, total)
        }
    };
    if let Some(t) = total {
        check_space(part.parent().unwrap_or(Path::new(".")), t.saturating_sub(done)).map_err(Failure::Fatal)?;
    }
    on(&Event::Start { file: name.into(), total, from: done });
    let mut stream = resp.bytes_stream();
    let mut last = Instant::now();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| Failure::Transient(format!("transfer broke after {done} bytes: {e}")))?;
        file.write_all(&chunk).map_err(|e| Failure::Fatal(format!("{}: {e}", part.display())))?;
        done += chunk.len() as u64;
        if last.elapsed() >= Duration::from_millis(200) {
            last = Instant::now();
            on(&Event::Progress { file: name.into(), done, total });
        }
    }
    file.sync_all().map_err(|e| Failure::Fatal(format!("{}: {e}", part.display())))?;
    on(&Event::Progress { file: name.into(), done, total });
    match total {
        Some(t) if done < t => Err(Failure::Transient(format!("transfer ended after {done} of {t} bytes"))),
        _ => Ok(()),
    }
}

/// Refuse to start when the file cannot fit (with 1% or 64 MB to spare), instead of failing hours in.
pub fn check_space(dir: &Path, need: u64) -> Result<(), String> {
    let free = fs4::available_space(dir).map_err(|e| format!("free space of {}: {e}", dir.display()))?;
    let spare = (need / 100).max(64 << 20);
    if free < need + spare {
        return Err(format!(
            "not enough disk space in {}: the download needs {} more, {} is free",
            dir.display(),
            super::render::size(need),
            super::render::size(free)
        ));
    }
    Ok(())
}

async fn sha256_file(path: &Path) -> Result<String, String> {
    let p = path.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let mut f = std::fs::File::open(&p).map_err(|e| format!("{}: {e}", p.display()))?;
        let mut h = Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = f.read(&mut buf).map_err(|e| format!("{}: {e}", p.display()))?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
        Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
    })
    .await
    .map_err(|e| e.to_string())?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_range_and_resume_decisions() {
        assert_eq!(parse_content_range("bytes 100-199/1000"), Some((100, Some(1000))));
        assert_eq!(parse_content_range("bytes 0-0/*"), Some((0, None)));
        assert_eq!(parse_content_range("bytes 9-3/10"), None);
        assert_eq!(parse_content_range("items 0-1/2"), None);
        assert_eq!(
            resume_plan(206, 100, Some("bytes 100-999/1000"), Some(900)),
            Ok(Resume::Append { total: Some(1000) })
        );
        assert_eq!(resume_plan(206, 100, Some("bytes 100-999/*"), Some(900)), Ok(Resume::Append { total: Some(1000) }));
        assert!(
            resume_plan(206, 100, Some("bytes 0-999/1000"), None).unwrap_err().contains("from 0"),
            "a range we did not ask for"
        );
        assert!(resume_plan(206, 100, None, None).is_err());
        assert_eq!(
            resume_plan(200, 100, None, Some(1000)),
            Ok(Resume::Restart { total: Some(1000) }),
            "server ignored the range"
        );
        assert_eq!(resume_plan(416, 1000, None, None), Ok(Resume::Complete));
        assert!(resume_plan(416, 0, None, None).is_err());
        assert!(resume_plan(302, 0, None, None).is_err());
    }

    #[test]
    fn sources_and_checksums() {
        let (id, s) = resolve_source("Qwen2.5-Coder-1.5B-Q4_K_M").unwrap();
        assert_eq!(id.as_deref(), Some("qwen2.5-coder-1.5b-q4_k_m"));
        assert!(s.pinned());
        assert!(resolve_source("kimi-k2.5-fp8").unwrap_err().contains("sizing only"));
        assert!(resolve_source("no-such-model").unwrap_err().contains("not a catalog id"));
        assert_eq!(resolve_source("hf://o/r/x.gguf").unwrap().0, None);
        assert_eq!(normalize_sha(&"AB".repeat(32)).unwrap(), "ab".repeat(32));
        assert!(normalize_sha("abc").is_err());
        assert_eq!(part_path(Path::new("/m/x.gguf")), PathBuf::from("/m/x.gguf.part"));
    }

    #[test]
    fn a_download_that_cannot_fit_is_refused_up_front() {
        let dir = std::env::temp_dir();
        assert!(check_space(&dir, 1 << 20).is_ok());
        let e = check_space(&dir, u64::MAX / 4).unwrap_err();
        assert!(e.contains("not enough disk space") && e.contains("is free"), "{e}");
    }
}
