//! Models that outgrow one machine, reached through an existing engine's HTTP endpoint on the client's own
//! network: llama.cpp's llama-server (`/infill` for fill-in-the-middle, `/completion` for base models), or an
//! OpenAI-compatible server (vLLM, EXO, llama-server's `/v1`). Never a home-made cluster.
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
use crate::policy::egress::{EgressDenied, EgressError, Permit};
use crate::postprocess::{self, StopRules};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Instant;

/// The per-request policy check: given the URL a request is about to go to, a permit for it or the refusal.
/// The server builds it over its live workspace policy.
pub type RemoteGate = Arc<dyn Fn(&str) -> std::result::Result<Permit, EgressDenied> + Send + Sync>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RemoteKind {
    /// llama.cpp's llama-server: `/infill` with its prompt cache, `/completion` for models without FIM.
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
    /// llama-server only: use `/infill` (the model has FIM tokens) rather than `/completion`.
    #[serde(default = "yes")]
    pub fim: bool,
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

#[derive(Clone)]
pub struct RemoteBackend {
    cfg: RemoteConfig,
    gate: RemoteGate,
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
        Self { cfg, gate }
    }

    pub fn config(&self) -> &RemoteConfig {
        &self.cfg
    }

    async fn post(&self, path: &str, body: Value, cancel: &CancelToken) -> Result<Value> {
        let url = format!("{}{}", self.cfg.url.trim_end_matches('/'), path);
        // The choke point, per request: no permit, no socket.
        let permit = (self.gate)(&url).map_err(|e| EngineError::Denied(e.message))?;
        let mut headers = Vec::new();
        if let Some(var) = &self.cfg.api_key_env {
            if let Ok(k) = std::env::var(var) {
                headers.push(("authorization", format!("Bearer {k}")));
            }
        }
        permit.post_json(&headers, &body, cancel).await.map_err(|e| match e {
            EgressError::Cancelled => EngineError::Cancelled,
            EgressError::Denied(d) => EngineError::Denied(d.message),
            other => EngineError::Llama(format!("{url}: {other}")),
        })
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
        let (path, body) = match (self.cfg.kind, self.cfg.fim) {
            (RemoteKind::LlamaServer, true) => (
                "/infill",
                json!({"input_prefix": before, "input_suffix": after, "input_extra": [], "n_predict": max_tokens,
                       "cache_prompt": true, "temperature": 0.0, "top_k": 1, "stream": false}),
            ),
            (RemoteKind::LlamaServer, false) => (
                "/completion",
                json!({"prompt": before, "n_predict": max_tokens, "cache_prompt": true, "temperature": 0.0, "top_k": 1, "stream": false}),
            ),
            (RemoteKind::Openai, _) => (
                "/v1/completions",
                json!({"model": self.cfg.model, "prompt": before, "suffix": after, "max_tokens": max_tokens, "temperature": 0.0, "stream": false}),
            ),
        };
        let v = self.post(path, body, cancel).await?;
        let raw = v["content"].as_str().or_else(|| v["choices"][0]["text"].as_str()).unwrap_or("");
        let rules = StopRules::new(&req.after, max_lines, postprocess::is_mid_line(&req.after));
        let t = &v["timings"];
        let ms = t0.elapsed().as_secs_f64() * 1e3;
        Ok(Completion {
            text: postprocess::finalize(raw, &req.after, &rules),
            timings: Timings {
                total_ms: ms,
                ttft_ms: t["prompt_ms"].as_f64().unwrap_or(ms),
                prompt_ms: t["prompt_ms"].as_f64().unwrap_or(0.0),
                prompt_tokens: t["prompt_n"].as_u64().unwrap_or(0) as usize
                    + t["cache_n"].as_u64().unwrap_or(0) as usize,
                reused_tokens: t["cache_n"].as_u64().unwrap_or(0) as usize,
                redecoded_tokens: t["prompt_n"].as_u64().unwrap_or(0) as usize,
                generated_tokens: t["predicted_n"].as_u64().unwrap_or(0) as usize,
                gen_tokens_per_s: t["predicted_per_second"].as_f64().unwrap_or(0.0),
                ..Default::default()
            },
        })
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::egress;
    use crate::policy::tier::{FolderPolicy, HostPattern, Tier};
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpListener;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::mpsc;
    use std::sync::RwLock;
    use std::time::Duration;

    /// A loopback HTTP server speaking just enough of the protocol: records each request's path and body and
    /// answers with `reply` after `delay`; reports whether the client hung up before the answer.
    fn fake(reply: Value, delay: Duration) -> (String, mpsc::Receiver<(String, Value, bool)>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", l.local_addr().unwrap());
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for s in l.incoming().take(4) {
                let mut s = s.unwrap();
                let mut r = BufReader::new(s.try_clone().unwrap());
                let mut first = String::new();
                r.read_line(&mut first).unwrap();
                let path = first.split_whitespace().nth(1).unwrap_or("").to_string();
                let mut len = 0;
                loop {
                    let mut h = String::new();
                    r.read_line(&mut h).unwrap();
                    if h.trim().is_empty() {
                        break;
                    }
                    if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                        len = v.trim().parse().unwrap();
                    }
                }
                let mut body = vec![0; len];
                r.read_exact(&mut body).unwrap();
                std::thread::sleep(delay);
                // A peer that went away shows as EOF on a non-blocking peek.
                s.set_nonblocking(true).unwrap();
                let mut b = [0u8; 1];
                let closed = matches!(s.peek(&mut b), Ok(0));
                s.set_nonblocking(false).unwrap();
                let out = serde_json::to_vec(&reply).unwrap();
                let _ = write!(s, "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n", out.len());
                let _ = s.write_all(&out);
                tx.send((path, serde_json::from_slice(&body).unwrap_or(Value::Null), closed)).unwrap();
            }
        });
        (url, rx)
    }

    fn req() -> CompletionRequest {
        CompletionRequest {
            doc: "a".into(),
            before: "fn add(a: i32, b: i32) -> i32 {\n    ".into(),
            first_line: 0,
            after: "\n}\n".into(),
            max_tokens: None,
            max_lines: None,
            context: None,
        }
    }

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
    }

    #[test]
    fn llama_server_infill_request_and_answer() {
        let (url, rx) = fake(
            json!({"content": "a + b\n}\nfn more() {}", "timings": {"prompt_n": 3, "cache_n": 20, "predicted_n": 5}}),
            Duration::ZERO,
        );
        let b = RemoteBackend::new(
            RemoteConfig { url, kind: RemoteKind::LlamaServer, model: None, fim: true, api_key_env: None },
            tier1_gate(),
        );
        let c = rt().block_on(b.complete(&req(), 16, 4, &CancelToken::new())).unwrap();
        assert_eq!(c.text.as_deref(), Some("a + b"), "stops where the suffix repeats");
        assert_eq!(c.timings.reused_tokens, 20);
        let (path, body, _) = rx.recv().unwrap();
        assert_eq!(path, "/infill");
        assert_eq!(body["input_prefix"], req().before);
        assert_eq!(body["input_suffix"], req().after);
        assert_eq!(body["cache_prompt"], true);
    }

    #[test]
    fn openai_compatible_completions_and_chat() {
        let (url, rx) =
            fake(json!({"choices": [{"text": "a + b", "message": {"content": "done.\nEND more"}}]}), Duration::ZERO);
        let b = RemoteBackend::new(
            RemoteConfig { url, kind: RemoteKind::Openai, model: Some("qwen".into()), fim: true, api_key_env: None },
            tier1_gate(),
        );
        let c = rt().block_on(b.complete(&req(), 16, 4, &CancelToken::new())).unwrap();
        assert_eq!(c.text.as_deref(), Some("a + b"));
        let (path, body, _) = rx.recv().unwrap();
        assert_eq!((path.as_str(), body["model"].as_str()), ("/v1/completions", Some("qwen")));
        let g = GenerateRequest {
            key: "k".into(),
            system: None,
            user: "hi".into(),
            answer_prefix: String::new(),
            max_tokens: 8,
            stop: vec!["END".into()],
            temperature: 0.0,
            seed: 0,
            priority: Default::default(),
        };
        let out = rt().block_on(b.generate(&g, &CancelToken::new())).unwrap();
        assert_eq!(out.text, "done.\n");
        assert_eq!(rx.recv().unwrap().0, "/v1/chat/completions");
    }

    #[test]
    fn cancelling_closes_the_connection() {
        let (url, rx) = fake(json!({"content": "late"}), Duration::from_millis(600));
        let b = RemoteBackend::new(
            RemoteConfig { url, kind: RemoteKind::LlamaServer, model: None, fim: true, api_key_env: None },
            tier1_gate(),
        );
        let cancel = CancelToken::new();
        let c2 = cancel.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(150));
            c2.cancel();
        });
        let r = rt().block_on(b.complete(&req(), 16, 4, &cancel));
        assert_eq!(r.unwrap_err(), EngineError::Cancelled);
        let (_, _, closed) = rx.recv().unwrap();
        assert!(closed, "the remote engine sees the client hang up");
    }

    /// A Tier-1 workspace: loopback is local there, so the fake engine is allowed.
    fn tier1_gate() -> RemoteGate {
        let mut f = FolderPolicy::outside(std::path::Path::new("/work/client"));
        f.tier = Tier::Cloud;
        Arc::new(move |url: &str| egress::check(Some(&f), url, "remote engine", false))
    }

    /// The policy is decided per request: a tier file that stops listing the engine after the backend was
    /// set up refuses the very next request, before any socket is opened (the old backend checked once, when
    /// the setting was applied, and kept sending).
    #[test]
    fn every_request_asks_the_policy_and_a_refusal_sends_nothing() {
        let (url, rx) = fake(json!({"content": "a + b", "choices": [{"message": {"content": "ok"}}]}), Duration::ZERO);
        let listed = HostPattern::parse(&url).unwrap();
        let policy = Arc::new(RwLock::new(FolderPolicy::outside(std::path::Path::new("/work/client"))));
        policy.write().unwrap().local_hosts = vec![listed];
        let asked = Arc::new(AtomicUsize::new(0));
        let gate: RemoteGate = {
            let (policy, asked) = (policy.clone(), asked.clone());
            Arc::new(move |u: &str| {
                asked.fetch_add(1, Ordering::SeqCst);
                egress::check(Some(&policy.read().unwrap()), u, "remote engine", false)
            })
        };
        let b = RemoteBackend::new(
            RemoteConfig { url, kind: RemoteKind::LlamaServer, model: None, fim: true, api_key_env: None },
            gate,
        );
        let c = rt().block_on(b.complete(&req(), 16, 4, &CancelToken::new())).unwrap();
        assert_eq!(c.text.as_deref(), Some("a + b"), "Tier 3 with the engine listed: allowed");
        assert_eq!(rx.recv().unwrap().0, "/infill");
        assert_eq!(asked.load(Ordering::SeqCst), 1);

        // The tier file changes: the engine is no longer listed. Same backend, next request.
        policy.write().unwrap().local_hosts.clear();
        let e = rt().block_on(b.complete(&req(), 16, 4, &CancelToken::new())).unwrap_err();
        assert!(matches!(&e, EngineError::Denied(m) if m.contains("Tier 3")), "{e:?}");
        let g = GenerateRequest {
            key: "k".into(),
            system: None,
            user: "hi".into(),
            answer_prefix: String::new(),
            max_tokens: 8,
            stop: vec![],
            temperature: 0.0,
            seed: 0,
            priority: Default::default(),
        };
        let e = rt().block_on(b.generate(&g, &CancelToken::new())).unwrap_err();
        assert!(matches!(e, EngineError::Denied(_)), "{e:?}");
        assert_eq!(asked.load(Ordering::SeqCst), 3, "one check per request");
        assert!(rx.recv_timeout(Duration::from_millis(300)).is_err(), "nothing reached the engine after the refusal");
    }

    /// The daemon shares one engine between editor windows: a remote engine set by one session serves only
    /// that session's documents, through that session's gate; another session stays on the local model.
    #[test]
    fn remote_engines_are_per_session() {
        let (url, rx) = fake(json!({"content": "a + b"}), Duration::ZERO);
        let cfg = crate::EngineConfig { model_path: Some("/nonexistent/model.gguf".into()), ..Default::default() };
        let engine = crate::Engine::start(cfg, |_| {});
        let cfg = RemoteConfig { url, kind: RemoteKind::LlamaServer, model: None, fim: true, api_key_env: None };
        engine.set_remote("s1:", Some((cfg, tier1_gate())));
        assert!(engine.remote("s1:").is_some() && engine.remote("s2:").is_none());
        let mut r = req();
        r.doc = "s1:file:///a.rs".into();
        let c = rt().block_on(engine.complete(r, CancelToken::new())).unwrap();
        assert_eq!(c.text.as_deref(), Some("a + b"));
        assert_eq!(rx.recv().unwrap().0, "/infill");
        // Session 2 (and session 10, whose prefix starts like session 1's) never reach session 1's engine.
        for doc in ["s2:file:///b.rs", "s10:file:///c.rs"] {
            let mut r = req();
            r.doc = doc.into();
            let _ = rt().block_on(async {
                tokio::time::timeout(Duration::from_secs(3), engine.complete(r, CancelToken::new())).await
            });
        }
        assert!(rx.recv_timeout(Duration::from_millis(300)).is_err(), "other sessions stayed local");
        engine.set_remote("s1:", None);
        assert!(engine.remote("s1:").is_none());
        engine.shutdown();
    }

    #[test]
    fn host_of_url() {
        let c = RemoteConfig {
            url: "http://gpu.internal:8080/v1".into(),
            kind: RemoteKind::Openai,
            model: None,
            fim: true,
            api_key_env: None,
        };
        assert_eq!(c.host().as_deref(), Some("gpu.internal:8080"));
    }
}
