//! Cloud models for design help (Tier 1, and Tier 2 with anonymized structure only): the Anthropic
//! Messages API, or an OpenAI-compatible chat endpoint. Every call goes through an egress [`Permit`]; a
//! failure is reported, never retried elsewhere or answered by another model, because a silent fallback
//! would send the same data to a destination the user did not choose.
use super::audit::AuditLog;
use super::egress::{Destination, Egress, EgressDenied, EgressError, Permit};
use super::tier::FolderPolicy;
use crate::cancel::CancelToken;
use serde_json::{json, Value};

pub const ANTHROPIC_DEFAULT_BASE: &str = "https://api.anthropic.com";
pub const ANTHROPIC_VERSION: &str = "2023-06-01";
const ANTHROPIC_DEFAULT_MODEL: &str = "claude-sonnet-4-5";
const OPENAI_DEFAULT_MODEL: &str = "gpt-4o";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloudProvider {
    Anthropic,
    OpenAiCompatible,
}

#[derive(Clone, PartialEq, Eq)]
pub struct CloudConfig {
    pub provider: CloudProvider,
    /// Without the API path: `https://host` or `https://host/v1`.
    pub base_url: String,
    pub model: String,
    pub api_key: Option<String>,
    /// Why the configured key file was refused: every request fails with it, and none is sent keyless.
    pub key_problem: Option<String>,
}

impl std::fmt::Debug for CloudConfig {
    // The key must not end up in a log line through a `{:?}`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CloudConfig")
            .field("provider", &self.provider)
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "<set>"))
            .field("key_problem", &self.key_problem)
            .finish()
    }
}

impl CloudConfig {
    /// `LOKAL_CLOUD_PROVIDER` (anthropic | openai), `LOKAL_CLOUD_BASE_URL`, `LOKAL_CLOUD_MODEL`, and the key
    /// from `ANTHROPIC_API_KEY` or `OPENAI_API_KEY`, else from the file `LOKAL_CLOUD_API_KEY_FILE`.
    pub fn from_env() -> Self {
        Self::from_vars(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
    }

    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Self {
        let openai = var("LOKAL_CLOUD_PROVIDER")
            .is_some_and(|p| p.eq_ignore_ascii_case("openai") || p.eq_ignore_ascii_case("openai-compatible"));
        let base = var("LOKAL_CLOUD_BASE_URL");
        let (file_key, key_problem) = match var("LOKAL_CLOUD_API_KEY_FILE") {
            Some(p) => match key_from_file(std::path::Path::new(&p)) {
                Ok(k) => (Some(k), None),
                Err(e) => (None, Some(e)),
            },
            None => (None, None),
        };
        if openai {
            CloudConfig {
                provider: CloudProvider::OpenAiCompatible,
                base_url: base.unwrap_or_default(),
                model: var("LOKAL_CLOUD_MODEL").unwrap_or_else(|| OPENAI_DEFAULT_MODEL.into()),
                api_key: var("OPENAI_API_KEY").or(file_key),
                key_problem,
            }
        } else {
            CloudConfig {
                provider: CloudProvider::Anthropic,
                base_url: base.unwrap_or_else(|| ANTHROPIC_DEFAULT_BASE.into()),
                model: var("LOKAL_CLOUD_MODEL").unwrap_or_else(|| ANTHROPIC_DEFAULT_MODEL.into()),
                api_key: var("ANTHROPIC_API_KEY").or(file_key),
                key_problem,
            }
        }
    }

    /// The request URL: `{base}/v1/messages` or `{base}/v1/chat/completions` (a base ending in `/v1` is
    /// not doubled).
    pub fn endpoint(&self) -> String {
        let base = self.base_url.trim().trim_end_matches('/');
        let base = base.strip_suffix("/v1").unwrap_or(base);
        match self.provider {
            CloudProvider::Anthropic => format!("{base}/v1/messages"),
            CloudProvider::OpenAiCompatible => format!("{base}/v1/chat/completions"),
        }
    }
}

/// A key kept in a file, which like an ssh private key must be readable by its owner only: a key that
/// others on the machine can read is refused, not used.
pub fn key_from_file(path: &std::path::Path) -> Result<String, String> {
    let shown = path.display();
    let meta = std::fs::metadata(path).map_err(|e| format!("the cloud API key file {shown} cannot be read: {e}"))?;
    if !meta.is_file() {
        return Err(format!("the cloud API key file {shown} is not a file"));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(format!(
                "the cloud API key file {shown} is readable by others (mode {mode:03o}); it is not used: run `chmod 600 {shown}`"
            ));
        }
    }
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("the cloud API key file {shown} cannot be read: {e}"))?;
    let key = text.trim();
    if key.is_empty() || key.contains(char::is_whitespace) {
        return Err(format!("the cloud API key file {shown} must hold the key alone, on one line"));
    }
    Ok(key.to_string())
}

/// One question to the cloud model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloudRequest {
    pub system: Option<String>,
    pub user: String,
    pub max_tokens: u32,
    /// The anonymizer's per-detector counts, for the audit record; not sent.
    pub counts: std::collections::BTreeMap<String, usize>,
}

impl CloudRequest {
    pub fn new(user: impl Into<String>) -> Self {
        CloudRequest { system: None, user: user.into(), max_tokens: 4096, counts: Default::default() }
    }
}

/// The JSON body for the provider's API.
pub fn request_body(provider: CloudProvider, model: &str, rq: &CloudRequest, stream: bool) -> Value {
    let system = rq.system.as_deref().filter(|s| !s.trim().is_empty());
    let mut body = match provider {
        CloudProvider::Anthropic => {
            let mut b = json!({"model": model, "max_tokens": rq.max_tokens, "messages": [{"role": "user", "content": rq.user}]});
            if let Some(s) = system {
                b["system"] = json!(s);
            }
            b
        }
        CloudProvider::OpenAiCompatible => {
            let mut messages = Vec::new();
            if let Some(s) = system {
                messages.push(json!({"role": "system", "content": s}));
            }
            messages.push(json!({"role": "user", "content": rq.user}));
            json!({"model": model, "max_tokens": rq.max_tokens, "messages": messages})
        }
    };
    if stream {
        body["stream"] = json!(true);
    }
    body
}

#[derive(Debug, thiserror::Error)]
pub enum CloudError {
    #[error(transparent)]
    Denied(#[from] EgressDenied),
    #[error("lokal: {0}")]
    Config(String),
    #[error(transparent)]
    Egress(#[from] EgressError),
    #[error("lokal: the cloud model's answer: {0}")]
    Answer(String),
}

/// A server-sent event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    pub event: Option<String>,
    pub data: String,
}

/// Splits a byte stream into server-sent events; a chunk may end anywhere, even inside a UTF-8 character.
#[derive(Debug, Default)]
pub struct SseParser {
    buf: Vec<u8>,
}

impl SseParser {
    pub fn push(&mut self, chunk: &[u8]) -> Vec<SseEvent> {
        self.buf.extend_from_slice(chunk);
        let mut out = Vec::new();
        loop {
            let lf = self.buf.windows(2).position(|w| w == b"\n\n").map(|i| (i, 2));
            let crlf = self.buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| (i, 4));
            let Some((end, sep)) = [lf, crlf].into_iter().flatten().min_by_key(|(i, _)| *i) else { break };
            let block: Vec<u8> = self.buf.drain(..end + sep).take(end).collect();
            let text = String::from_utf8_lossy(&block);
            let mut ev = SseEvent { event: None, data: String::new() };
            let mut has_data = false;
            for line in text.lines() {
                if let Some(v) = line.strip_prefix("event:") {
                    ev.event = Some(v.trim().to_string());
                } else if let Some(v) = line.strip_prefix("data:") {
                    if has_data {
                        ev.data.push('\n');
                    }
                    ev.data.push_str(v.strip_prefix(' ').unwrap_or(v));
                    has_data = true;
                }
            }
            if has_data || ev.event.is_some() {
                out.push(ev);
            }
        }
        out
    }
}

/// Text of one streamed event; `Err` for an error event.
fn stream_text(provider: CloudProvider, ev: &SseEvent) -> Result<Option<String>, String> {
    if provider == CloudProvider::OpenAiCompatible && ev.data.trim() == "[DONE]" {
        return Ok(None);
    }
    let Ok(v) = serde_json::from_str::<Value>(&ev.data) else {
        return Ok(None); // keep-alives and comments
    };
    if ev.event.as_deref() == Some("error") || v["type"] == "error" || v.get("error").is_some_and(|e| !e.is_null()) {
        let msg = v["error"]["message"].as_str().map(str::to_string).unwrap_or_else(|| v["error"].to_string());
        return Err(msg);
    }
    Ok(match provider {
        CloudProvider::Anthropic => {
            (v["type"] == "content_block_delta").then(|| v["delta"]["text"].as_str().map(str::to_string)).flatten()
        }
        CloudProvider::OpenAiCompatible => v["choices"][0]["delta"]["content"].as_str().map(str::to_string),
    })
}

/// Text of a whole (non-streamed) answer.
fn answer_text(provider: CloudProvider, v: &Value) -> Result<String, CloudError> {
    let text = match provider {
        CloudProvider::Anthropic => v["content"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|c| c["type"] == "text" || c["type"].is_null())
            .filter_map(|c| c["text"].as_str())
            .collect::<String>(),
        CloudProvider::OpenAiCompatible => {
            v["choices"][0]["message"]["content"].as_str().unwrap_or_default().to_string()
        }
    };
    if text.is_empty() {
        let shown: String = v.to_string().chars().take(300).collect();
        return Err(CloudError::Answer(format!("no text in {shown}")));
    }
    Ok(text)
}

type Headers = Vec<(&'static str, String)>;

/// A cloud model reached only through the egress choke point.
#[derive(Debug, Clone)]
pub struct CloudClient {
    cfg: CloudConfig,
    egress: Egress,
}

impl CloudClient {
    pub fn new(cfg: CloudConfig, egress: Egress) -> Self {
        CloudClient { cfg, egress }
    }

    /// Configuration and audit log from the environment.
    pub fn from_env() -> Self {
        CloudClient::new(CloudConfig::from_env(), Egress::from_env())
    }

    pub fn config(&self) -> &CloudConfig {
        &self.cfg
    }

    /// The tier decides first, so a refusal never depends on the configuration being complete.
    fn permit(
        &self,
        folder: Option<&FolderPolicy>,
        action: &str,
        anonymized: bool,
    ) -> Result<(Permit, Headers), CloudError> {
        if self.cfg.base_url.trim().is_empty() {
            return Err(CloudError::Config(
                "LOKAL_CLOUD_BASE_URL is not set; an OpenAI-compatible provider has no default".into(),
            ));
        }
        let dest = Destination::cloud(&self.cfg.endpoint())?;
        if let Some(problem) = &self.cfg.key_problem {
            return Err(CloudError::Config(problem.clone()));
        }
        let permit = self.egress.check(folder, &dest, action, anonymized)?;
        let headers = match (self.cfg.provider, &self.cfg.api_key) {
            (CloudProvider::Anthropic, Some(k)) => {
                vec![("x-api-key", k.clone()), ("anthropic-version", ANTHROPIC_VERSION.to_string())]
            }
            (CloudProvider::Anthropic, None) => {
                return Err(CloudError::Config("ANTHROPIC_API_KEY is not set (nor LOKAL_CLOUD_API_KEY_FILE)".into()))
            }
            (CloudProvider::OpenAiCompatible, Some(k)) => vec![("authorization", format!("Bearer {k}"))],
            // Self-hosted OpenAI-compatible servers often want no key.
            (CloudProvider::OpenAiCompatible, None) => vec![],
        };
        Ok((permit, headers))
    }

    /// Ask and wait for the whole answer.
    pub async fn complete(
        &self,
        folder: Option<&FolderPolicy>,
        action: &str,
        anonymized: bool,
        rq: &CloudRequest,
        cancel: &CancelToken,
    ) -> Result<String, CloudError> {
        let (permit, headers) = self.permit(folder, action, anonymized)?;
        let permit = permit.with_counts(rq.counts.clone());
        let body = request_body(self.cfg.provider, &self.cfg.model, rq, false);
        let v = permit.post_json(&headers, &body, cancel).await?;
        answer_text(self.cfg.provider, &v)
    }

    /// Ask with a streamed answer: `on_text` gets each piece as it arrives; the whole text is returned.
    /// The cancel flag is checked between chunks.
    pub async fn stream(
        &self,
        folder: Option<&FolderPolicy>,
        action: &str,
        anonymized: bool,
        rq: &CloudRequest,
        cancel: &CancelToken,
        mut on_text: impl FnMut(&str),
    ) -> Result<String, CloudError> {
        let (permit, headers) = self.permit(folder, action, anonymized)?;
        let permit = permit.with_counts(rq.counts.clone());
        let body = request_body(self.cfg.provider, &self.cfg.model, rq, true);
        let provider = self.cfg.provider;
        let mut parser = SseParser::default();
        let mut text = String::new();
        permit
            .post_json_streaming(&headers, &body, cancel, |chunk| {
                for ev in parser.push(chunk) {
                    if let Some(t) = stream_text(provider, &ev)? {
                        on_text(&t);
                        text.push_str(&t);
                    }
                }
                Ok(())
            })
            .await?;
        if text.is_empty() {
            return Err(CloudError::Answer("the stream ended without text".into()));
        }
        Ok(text)
    }
}

/// Ask the cloud model and wait for the answer, with errors as text for the editor. The tier decides
/// first: a refusal happens before any connection is made. The body is [`request_body`] of `rq`, so a
/// caller that showed the user that body for approval sends exactly what was approved.
pub async fn ask(
    folder: Option<&FolderPolicy>,
    cfg: &CloudConfig,
    action: &str,
    anonymized: bool,
    rq: &CloudRequest,
    cancel: &CancelToken,
    audit: &AuditLog,
) -> Result<String, String> {
    let client = CloudClient::new(cfg.clone(), Egress::new(audit.clone()));
    client.complete(folder, action, anonymized, rq, cancel).await.map_err(|e| e.to_string())
}

#[cfg(test)]
#[path = "cloud_tests.rs"]
mod tests;
