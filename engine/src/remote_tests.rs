//! The remote engine against loopback fakes: request bodies, answers, cancellation, the per-request policy.
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
/// answers as llama-server or an OpenAI-compatible server would ([`answer`]), after `delay` for completion
/// requests; reports whether the client hung up before the answer.
fn fake(reply: Value, delay: Duration) -> (String, mpsc::Receiver<(String, Value, bool)>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for s in l.incoming().take(16) {
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
            if !matches!(path.as_str(), "/props" | "/tokenize") {
                std::thread::sleep(delay);
            }
            // A peer that went away shows as EOF on a non-blocking peek.
            s.set_nonblocking(true).unwrap();
            let mut b = [0u8; 1];
            let closed = matches!(s.peek(&mut b), Ok(0));
            s.set_nonblocking(false).unwrap();
            let (kind, out) = answer(&path, &reply);
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\ncontent-type: {kind}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                out.len()
            );
            let _ = s.write_all(&out);
            tx.send((path, serde_json::from_slice(&body).unwrap_or(Value::Null), closed)).unwrap();
        }
    });
    (url, rx)
}

/// Qwen2.5-Coder's FIM token ids.
const QWEN_FIM: [i64; 3] = [151659, 151661, 151660];

/// llama-server's answers: four slots, a vocabulary with Qwen's FIM tokens (the probe's other markers come
/// back as pieces of text), `/completion` as server-sent events (the reply's content in two pieces, then the
/// timings); anything else gets `reply` as it is.
fn answer(path: &str, reply: &Value) -> (&'static str, Vec<u8>) {
    match path {
        "/props" => ("application/json", serde_json::to_vec(&json!({"total_slots": 4})).unwrap()),
        "/tokenize" => {
            let [pre, suf, mid] = QWEN_FIM;
            let tokens = json!({"tokens": [{"id": 27, "piece": "<"}, {"id": pre, "piece": "<|fim_prefix|>"},
                {"id": 198, "piece": "\n"}, {"id": suf, "piece": "<|fim_suffix|>"}, {"id": mid, "piece": "<|fim_middle|>"},
                {"id": 9, "piece": "PRE"}]});
            ("application/json", serde_json::to_vec(&tokens).unwrap())
        }
        "/completion" => {
            let content = reply["content"].as_str().unwrap_or("");
            let cut = content.len() / 2;
            let mut out = String::new();
            for piece in [&content[..cut], &content[cut..]] {
                out += &format!("data: {}\n\n", json!({"content": piece, "stop": false}));
            }
            out += &format!("data: {}\n\n", json!({"content": "", "stop": true, "timings": reply["timings"]}));
            ("text/event-stream", out.into_bytes())
        }
        _ => ("application/json", serde_json::to_vec(reply).unwrap()),
    }
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

/// A FIM model on llama-server: asked once for its slots and FIM tokens, then lokal's own layout through
/// `/completion` (token ids and texts), the prompt cache on, each document in a slot of its own.
#[test]
fn llama_server_fim_through_completion_with_lokals_layout_and_a_slot_per_document() {
    let (url, rx) = fake(
        json!({"content": "a + b\n}\nfn more() {}", "timings": {"prompt_n": 3, "cache_n": 20, "predicted_n": 5}}),
        Duration::ZERO,
    );
    let b = RemoteBackend::new(
        RemoteConfig { url, kind: RemoteKind::LlamaServer, model: None, fim: true, infill: false, api_key_env: None },
        tier1_gate(),
    );
    let rt = rt();
    let c = rt.block_on(b.complete(&req(), 16, 4, &CancelToken::new())).unwrap();
    assert_eq!(c.text.as_deref(), Some("a + b"), "pieces joined; stops where the suffix repeats");
    assert_eq!((c.timings.reused_tokens, c.timings.redecoded_tokens), (20, 3));
    let paths: Vec<_> = (0..3).map(|_| rx.recv().unwrap()).collect();
    assert_eq!(paths.iter().map(|p| p.0.as_str()).collect::<Vec<_>>(), ["/props", "/tokenize", "/completion"]);
    let body = &paths[2].1;
    let [pre, suf, mid] = QWEN_FIM;
    assert_eq!(
        body["prompt"],
        json!(["", pre, "fn add(a: i32, b: i32) -> i32 {\n", suf, "\n}\n", mid, "    "]),
        "the cursor's line goes after the middle marker, so typing only appends"
    );
    assert_eq!((&body["cache_prompt"], &body["stream"], &body["id_slot"]), (&json!(true), &json!(true), &json!(0)));
    // Another document gets another slot; the first keeps its own. The server was asked only once.
    for (doc, slot) in [("b", 1), ("a", 0)] {
        let r = CompletionRequest { doc: doc.into(), ..req() };
        rt.block_on(b.complete(&r, 16, 4, &CancelToken::new())).unwrap();
        let (path, body, _) = rx.recv().unwrap();
        assert_eq!((path.as_str(), &body["id_slot"]), ("/completion", &json!(slot)));
    }
}

/// `infill: true` keeps llama-server's own `/infill` (for a server with the fix, or to compare).
#[test]
fn llama_server_infill_on_request() {
    let (url, rx) = fake(json!({"content": "a + b", "timings": {"prompt_n": 40}}), Duration::ZERO);
    let b = RemoteBackend::new(
        RemoteConfig { url, kind: RemoteKind::LlamaServer, model: None, fim: true, infill: true, api_key_env: None },
        tier1_gate(),
    );
    let c = rt().block_on(b.complete(&req(), 16, 4, &CancelToken::new())).unwrap();
    assert_eq!((c.text.as_deref(), c.timings.redecoded_tokens), (Some("a + b"), 40));
    let (path, body, _) = rx.recv().unwrap();
    assert_eq!(path, "/infill");
    assert_eq!((&body["input_prefix"], &body["input_suffix"]), (&json!(req().before), &json!(req().after)));
    assert_eq!(body["cache_prompt"], true);
}

#[test]
fn openai_compatible_completions_and_chat() {
    let (url, rx) =
        fake(json!({"choices": [{"text": "a + b", "message": {"content": "done.\nEND more"}}]}), Duration::ZERO);
    let b = RemoteBackend::new(
        RemoteConfig {
            url,
            kind: RemoteKind::Openai,
            model: Some("qwen".into()),
            fim: true,
            infill: false,
            api_key_env: None,
        },
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
        RemoteConfig { url, kind: RemoteKind::LlamaServer, model: None, fim: true, infill: false, api_key_env: None },
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
    let (_, _, closed) = rx.iter().find(|(path, _, _)| path == "/completion").unwrap();
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
        RemoteConfig { url, kind: RemoteKind::LlamaServer, model: None, fim: true, infill: false, api_key_env: None },
        gate,
    );
    let c = rt().block_on(b.complete(&req(), 16, 4, &CancelToken::new())).unwrap();
    assert_eq!(c.text.as_deref(), Some("a + b"), "Tier 3 with the engine listed: allowed");
    let paths: Vec<_> = (0..3).map(|_| rx.recv().unwrap().0).collect();
    assert_eq!(paths, ["/props", "/tokenize", "/completion"]);
    assert_eq!(asked.load(Ordering::SeqCst), 3, "asking the server what it is takes permits too");

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
    assert_eq!(asked.load(Ordering::SeqCst), 5, "one check per request");
    assert!(rx.recv_timeout(Duration::from_millis(300)).is_err(), "nothing reached the engine after the refusal");
}

/// The daemon shares one engine between editor windows: a remote engine set by one session serves only
/// that session's documents, through that session's gate; another session stays on the local model.
#[test]
fn remote_engines_are_per_session() {
    let (url, rx) = fake(json!({"content": "a + b"}), Duration::ZERO);
    let cfg = crate::EngineConfig { model_path: Some("/nonexistent/model.gguf".into()), ..Default::default() };
    let engine = crate::Engine::start(cfg, |_| {});
    let cfg =
        RemoteConfig { url, kind: RemoteKind::LlamaServer, model: None, fim: true, infill: false, api_key_env: None };
    engine.set_remote("s1:", Some((cfg, tier1_gate())));
    assert!(engine.remote("s1:").is_some() && engine.remote("s2:").is_none());
    let mut r = req();
    r.doc = "s1:file:///a.rs".into();
    let c = rt().block_on(engine.complete(r, CancelToken::new())).unwrap();
    assert_eq!(c.text.as_deref(), Some("a + b"));
    let paths: Vec<_> = (0..3).map(|_| rx.recv().unwrap().0).collect();
    assert_eq!(paths, ["/props", "/tokenize", "/completion"]);
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
        infill: false,
        api_key_env: None,
    };
    assert_eq!(c.host().as_deref(), Some("gpu.internal:8080"));
}
