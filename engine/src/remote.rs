//! Models that outgrow one machine, reached through an existing engine's HTTP endpoint on the client's own
//! network: llama.cpp's llama-server (`/completion` with lokal's own prompt layout, see remote_llama.rs), or
//! an OpenAI-compatible server (vLLM, EXO, llama-server's `/v1`). Never a home-made cluster.
//!
//! Whether a workspace may use an endpoint at all is the tier policy's decision (an on-premises endpoint
//! counts as local only where the workspace's tier file lists its host). That decision is taken for every
//! request, not once when the setting is applied: each request asks its [`RemoteGate`] for an egress
//! [`Permit`] and is sent through that permit (no redirects, no proxy, audited), so a tier file that changed
//! since, or a policy that no longer allows the host, stops the very next request.
//! Cancellation drops the request future, which closes the connection, so the remote engine stops too.
use crate::api::{Completion, CompletionRequest, GenerateRequest, Generation, Timings};
use crate::cancel::CancelToken;
use crate::error::{EngineError, Result};
use crate::policy::cloud::SseParser;
use crate::policy::egress::{EgressDenied, EgressError, Permit};
use crate::postprocess::{self, StopRules};
use crate::remote_llama::{self as llama, ServerInfo, SlotMap, StreamedAnswer};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// The per-request policy check: given the URL a request is about to go to, a permit for it or the refusal.
/// The server builds it over its live workspace policy.
pub type RemoteGate = Arc<dyn Fn(&str) -> std::result::Result<Permit, EgressDenied> + Send + Sync>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RemoteKind {
    /// llama.cpp's llama-server: `/completion` with lokal's prompt layout, its prompt cache and one slot per
    /// document.
    LlamaServer,
    /// `/v1/completions` and `/v1/chat/completions` (vLLM, EXO, …).
    Openai,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RemoteConfig {
    /// Base URL, e.g. `http://gpu-box.internal:8080`.
    pub url: String,
    pub kind: RemoteKind,
    /// Model name for OpenAI-compatible servers.
    #[serde(default)]
    pub model: Option<String>,
    /// llama-server only: fill in the middle where the model has FIM tokens (found by asking the server);
    /// `false` sends the prefix alone.
    #[serde(default = "yes")]
    pub fim: bool,
    /// llama-server only: send FIM requests through its `/infill` instead of `/completion` (a server whose
    /// `/infill` keeps the cursor's line after the middle marker, or a comparison).
    #[serde(default)]
    pub infill: bool,
    /// Name of an environment variable holding a bearer token, if the endpoint wants one.
    #[serde(default)]
    pub api_key_env: Option<String>,
}

fn yes() -> bool {
    true
}

impl RemoteConfig {
    pub fn host(&self) -> Option<String> {
        let rest = self.url.split_once("://").map(|(_, r)| r).unwrap_or(&self.url);
        let host = rest.split('/').next()?;
        (!host.is_empty()).then(|| host.to_string())
    }
}

/// Characters of context sent each way; the remote engine tokenizes and windows itself.
const BEFORE_CHARS: usize = 6000;
const AFTER_CHARS: usize = 1500;

type Headers = Vec<(&'static str, String)>;

#[derive(Clone)]
pub struct RemoteBackend {
    cfg: RemoteConfig,
    gate: RemoteGate,
    /// llama-server's FIM tokens and slots, asked once (again after a failure).
    server: Arc<tokio::sync::Mutex<Option<ServerInfo>>>,
    slots: Arc<Mutex<SlotMap>>,
}

fn tail_on_line(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut start = s.len() - max;
    while !s.is_char_boundary(start) {
        start += 1;
    }
    // Start on a line boundary so the remote prompt cache sees a stable beginning while the user types.
    match s[start..].find('\n') {
        Some(i) => &s[start + i + 1..],
        None => &s[start..],
    }
}

fn head(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

impl RemoteBackend {
    pub fn new(cfg: RemoteConfig, gate: RemoteGate) -> Self {
        Self { cfg, gate, server: Default::default(), slots: Default::default() }
    }

    pub fn config(&self) -> &RemoteConfig {
        &self.cfg
    }

    /// The choke point, per request (discovery requests too): no permit, no socket.
    fn permit(&self, path: &str) -> Result<(String, Permit, Headers)> {
        let url = format!("{}{}", self.cfg.url.trim_end_matches('/'), path);
        let permit = (self.gate)(&url).map_err(|e| EngineError::Denied(e.message))?;
        let mut headers = Vec::new();
        if let Some(var) = &self.cfg.api_key_env {
            if let Ok(k) = std::env::var(var) {
                headers.push(("authorization", format!("Bearer {k}")));
            }
        }
        Ok((url, permit, headers))
    }

    fn error(url: &str, e: EgressError) -> EngineError {
        match e {
            EgressError::Cancelled => EngineError::Cancelled,
            EgressError::Denied(d) => EngineError::Denied(d.message),
            other => EngineError::Llama(format!("{url}: {other}")),
        }
    }

    async fn post(&self, path: &str, body: Value, cancel: &CancelToken) -> Result<Value> {
        let (url, permit, headers) = self.permit(path)?;
        permit.post_json(&headers, &body, cancel).await.map_err(|e| Self::error(&url, e))
    }

    /// A streamed POST: cancelling drops the connection between two pieces, and llama-server notices at its
    /// next write (a whole answer it only notices at its next poll of the socket, up to a second later).
    async fn post_streaming(&self, path: &str, body: Value, cancel: &CancelToken) -> Result<StreamedAnswer> {
        let (url, permit, headers) = self.permit(path)?;
        let (mut sse, mut answer) = (SseParser::default(), StreamedAnswer::default());
        permit
            .post_json_streaming(&headers, &body, cancel, |chunk| {
                sse.push(chunk).iter().try_for_each(|ev| answer.push(&ev.data))
            })
            .await
            .map_err(|e| Self::error(&url, e))?;
        Ok(answer)
    }

    /// llama-server's FIM tokens and slot count, asked the first time they are needed. A server that does not
    /// answer `/props` or `/tokenize` counts as one slot without FIM; one that cannot be reached is asked
    /// again by the next request.
    async fn server_info(&self, cancel: &CancelToken) -> Result<ServerInfo> {
        let mut known = self.server.lock().await;
        if let Some(info) = &*known {
            return Ok(info.clone());
        }
        let (url, permit, headers) = self.permit("/props")?;
        let slots = match permit.get_json(&headers, cancel).await {
            Ok(props) => llama::slots_from_props(&props),
            Err(EgressError::Status { .. } | EgressError::Answer { .. }) => 1,
            Err(e) => return Err(Self::error(&url, e)),
        };
        let fim = if self.cfg.fim {
            let (url, permit, headers) = self.permit("/tokenize")?;
            match permit.post_json(&headers, &llama::fim_probe(), cancel).await {
                Ok(answer) => llama::fim_from_probe(&answer),
                Err(EgressError::Status { .. } | EgressError::Answer { .. }) => None,
                Err(e) => return Err(Self::error(&url, e)),
            }
        } else {
            None
        };
        tracing::info!(url = %self.cfg.url, slots, fim = ?fim.map(|f| f.family), "remote engine: llama-server");
        let info = ServerInfo { fim, slots };
        *known = Some(info.clone());
        Ok(info)
    }

    /// llama-server's `/completion`, streamed, in the document's own slot.
    async fn llama_completion(
        &self,
        doc: &str,
        before: &str,
        after: &str,
        max_tokens: usize,
        cancel: &CancelToken,
    ) -> Result<StreamedAnswer> {
        let info = self.server_info(cancel).await?;
        let prompt = match &info.fim {
            Some(fim) => llama::fim_prompt(fim, before, after),
            None => json!(before),
        };
        let mut body = json!({"prompt": prompt, "n_predict": max_tokens, "cache_prompt": true, "temperature": 0.0,
                              "top_k": 1, "stream": true});
        if let Some(slot) = self.slots.lock().unwrap().slot_for(doc, info.slots) {
            body["id_slot"] = json!(slot);
        }
        self.post_streaming("/completion", body, cancel).await
    }

    pub async fn complete(
        &self,
        req: &CompletionRequest,
        max_tokens: usize,
        max_lines: usize,
        cancel: &CancelToken,
    ) -> Result<Completion> {
        let t0 = Instant::now();
        let before = tail_on_line(&req.before, BEFORE_CHARS);
        let after = head(&req.after, AFTER_CHARS);
        let (path, body) = match (self.cfg.kind, self.cfg.fim && self.cfg.infill) {
            (RemoteKind::LlamaServer, false) => {
                let a = self.llama_completion(&req.doc, before, after, max_tokens, cancel).await?;
                let ttft = a.first_piece.map(|t| t.duration_since(t0).as_secs_f64() * 1e3);
                return Ok(answer(req, max_lines, &a.text, &a.timings, t0, ttft));
            }
            (RemoteKind::LlamaServer, true) => (
                "/infill",
                json!({"input_prefix": before, "input_suffix": after, "input_extra": [], "n_predict": max_tokens,
                       "cache_prompt": true, "temperature": 0.0, "top_k": 1, "stream": false}),
            ),
            (RemoteKind::Openai, _) => (
                "/v1/completions",
                json!({"model": self.cfg.model, "prompt": before, "suffix": after, "max_tokens": max_tokens, "temperature": 0.0, "stream": false}),
            ),
        };
        let v = self.post(path, body, cancel).await?;
        let raw = v["content"].as_str().or_else(|| v["choices"][0]["text"].as_str()).unwrap_or("");
        Ok(answer(req, max_lines, raw, &v["timings"], t0, None))
    }

    pub async fn generate(&self, req: &GenerateRequest, cancel: &CancelToken) -> Result<Generation> {
        let t0 = Instant::now();
        let mut messages = Vec::new();
        if let Some(s) = &req.system {
            messages.push(json!({"role": "system", "content": s}));
        }
        messages.push(json!({"role": "user", "content": req.user}));
        if !req.answer_prefix.is_empty() {
            messages.push(json!({"role": "assistant", "content": req.answer_prefix}));
        }
        let body = json!({"model": self.cfg.model, "messages": messages, "max_tokens": req.max_tokens, "temperature": req.temperature, "seed": req.seed,
                          "stop": req.stop, "stream": false});
        let v = self.post("/v1/chat/completions", body, cancel).await?;
        let mut text = v["choices"][0]["message"]["content"].as_str().unwrap_or("").to_string();
        if let Some(cut) = req.stop.iter().filter_map(|s| text.find(s.as_str())).min() {
            text.truncate(cut);
        }
        let ms = t0.elapsed().as_secs_f64() * 1e3;
        Ok(Generation { text, timings: Timings { total_ms: ms, ttft_ms: ms, ..Default::default() } })
    }
}

/// The trimmed suggestion and its timings (llama-server's own where it sent them).
fn answer(
    req: &CompletionRequest,
    max_lines: usize,
    raw: &str,
    t: &Value,
    t0: Instant,
    ttft: Option<f64>,
) -> Completion {
    let rules = StopRules::new(&req.after, max_lines, postprocess::is_mid_line(&req.after));
    let ms = t0.elapsed().as_secs_f64() * 1e3;
    Completion {
        text: postprocess::finalize(raw, &req.after, &rules),
        timings: Timings {
            total_ms: ms,
            ttft_ms: ttft.or(t["prompt_ms"].as_f64()).unwrap_or(ms),
            prompt_ms: t["prompt_ms"].as_f64().unwrap_or(0.0),
            prompt_tokens: t["prompt_n"].as_u64().unwrap_or(0) as usize + t["cache_n"].as_u64().unwrap_or(0) as usize,
            reused_tokens: t["cache_n"].as_u64().unwrap_or(0) as usize,
            redecoded_tokens: t["prompt_n"].as_u64().unwrap_or(0) as usize,
            generated_tokens: t["predicted_n"].as_u64().unwrap_or(0) as usize,
            gen_tokens_per_s: t["predicted_per_second"].as_f64().unwrap_or(0.0),
            ..Default::default()
        },
    }
}

#[cfg(test)]
#[path = "remote_tests.rs"]
mod tests;
