//! The remote engine against the real llama-server that scripts/fetch-peer.sh builds (found through
//! `LOKAL_PEER_BIN`, the binary or its directory, else the fetch-peer cache): completion, cancellation seen
//! by the server, the per-request egress check, and lokal's FIM layout on FIM-family files. Skips, saying
//! so, where no peer binary is found.
mod support;

use lokal_engine::policy::egress;
use lokal_engine::policy::tier::{FolderPolicy, Tier};
use lokal_engine::remote::{RemoteBackend, RemoteConfig, RemoteGate, RemoteKind};
use lokal_engine::{CancelToken, CompletionRequest, EngineError};
use serde_json::Value;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::families::{self, Keys};

fn peer_bin() -> Option<PathBuf> {
    let p = match std::env::var_os("LOKAL_PEER_BIN") {
        Some(p) => PathBuf::from(p),
        None => {
            let cache = std::env::var_os("LOKAL_PEER_DIR").map(PathBuf::from).unwrap_or_else(|| {
                lokal_engine::config::xdg_dir("XDG_CACHE_HOME", ".cache").join("lokal").join("peer")
            });
            cache.join("bin")
        }
    };
    let p = if p.is_dir() { p.join("llama-server") } else { p };
    p.is_file().then_some(p)
}

/// A llama-server on a free loopback port; killed on drop. Its log goes to a file, shown when a check fails.
struct Server {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

impl Server {
    fn start(bin: &Path, model: &Path, extra: &[&str]) -> Server {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let log = std::env::temp_dir().join(format!("lokal-peer-{}-{port}.log", std::process::id()));
        let child = Command::new(bin)
            .args(["--host", "127.0.0.1", "--port", &port.to_string(), "-t", "2", "-np", "2", "-c", "4096", "-m"])
            .arg(model)
            .args(extra)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let s = Server { child, port, log };
        let t = Instant::now();
        while s.get("/health").map(|(code, _)| code) != Some(200) {
            assert!(t.elapsed() < Duration::from_secs(120), "llama-server never became ready:\n{}", s.log_text());
            std::thread::sleep(Duration::from_millis(100));
        }
        s
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// A plain GET, outside lokal's egress path: the test's own look at the server.
    fn get(&self, path: &str) -> Option<(u16, Value)> {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        write!(s, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").ok()?;
        let mut raw = String::new();
        s.read_to_string(&mut raw).ok()?;
        let (head, body) = raw.split_once("\r\n\r\n")?;
        let code = head.split_whitespace().nth(1)?.parse().ok()?;
        Some((code, serde_json::from_str(body).unwrap_or(Value::Null)))
    }

    fn slots(&self) -> Vec<Value> {
        self.get("/slots").and_then(|(_, v)| v.as_array().cloned()).unwrap_or_default()
    }

    fn metric(&self, name: &str) -> f64 {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        write!(s, "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").unwrap();
        let mut raw = String::new();
        s.read_to_string(&mut raw).unwrap();
        raw.lines().find_map(|l| l.strip_prefix(name)?.trim().parse().ok()).unwrap_or(0.0)
    }
}

/// A Tier-1 workspace: an unlisted loopback engine is local there.
fn tier1() -> RemoteGate {
    let mut f = FolderPolicy::outside(Path::new("/work/client"));
    f.tier = Tier::Cloud;
    Arc::new(move |url: &str| egress::check(Some(&f), url, "remote engine", false))
}

/// A Tier-3 workspace whose tier file lists no engine: even loopback may be a tunnel elsewhere.
fn tier3() -> RemoteGate {
    let f = FolderPolicy::outside(Path::new("/work/client"));
    assert_eq!(f.tier, Tier::Local);
    Arc::new(move |url: &str| egress::check(Some(&f), url, "remote engine", false))
}

fn backend(url: String, gate: RemoteGate, infill: bool) -> RemoteBackend {
    RemoteBackend::new(
        RemoteConfig { url, kind: RemoteKind::LlamaServer, model: None, fim: true, infill, api_key_env: None },
        gate,
    )
}

fn req(doc: &str, before: &str, after: &str) -> CompletionRequest {
    CompletionRequest {
        doc: doc.into(),
        before: before.into(),
        first_line: 0,
        after: after.into(),
        max_tokens: None,
        max_lines: None,
        context: None,
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

fn skip() -> Option<PathBuf> {
    let bin = peer_bin();
    if bin.is_none() {
        eprintln!("SKIPPED: no llama-server (set LOKAL_PEER_BIN, or run scripts/fetch-peer.sh)");
    }
    bin
}

/// The embedded model (Gemma 3, no FIM tokens): prefix continuation through `/completion`, the server's
/// prompt cache reused by the next keystroke, a cancel that stops the server's generation, and a Tier-3
/// refusal that never reaches the server.
#[test]
fn completion_cancel_and_egress_against_the_real_llama_server() {
    let Some(bin) = skip() else { return };
    let model = PathBuf::from(std::env::var("LOKAL_MODEL").expect("LOKAL_MODEL: the embedded test model"));
    let server = Server::start(&bin, &model, &["--metrics", "--swa-full"]);
    let rt = rt();
    let b = backend(server.url(), tier1(), false);

    let before = "fn add(a: i32, b: i32) -> i32 {\n    ";
    let c = rt.block_on(b.complete(&req("a.rs", before, "\n}\n"), 16, 4, &CancelToken::new())).unwrap();
    assert!(c.timings.generated_tokens > 0 && c.timings.prompt_tokens > 0, "{:?}\n{}", c.timings, server.log_text());
    assert!(c.text.as_deref().is_some_and(|t| !t.is_empty()), "{c:?}");
    // The next keystroke in the same document reuses the server's cache in that document's slot.
    let typed = format!("{before}a");
    let c2 = rt.block_on(b.complete(&req("a.rs", &typed, "\n}\n"), 16, 4, &CancelToken::new())).unwrap();
    assert!(c2.timings.reused_tokens > 0, "the prompt cache was reused: {:?}", c2.timings);
    assert!(c2.timings.redecoded_tokens < c.timings.prompt_tokens, "{:?}", c2.timings);

    // A long generation, cancelled once the server is generating: the request ends as cancelled and the
    // server's slot stops long before its token budget.
    let budget = 4000;
    let counting = "1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20,";
    let cancel = CancelToken::new();
    let job = {
        let (b, cancel) = (b.clone(), cancel.clone());
        rt.spawn(async move { b.complete(&req("count.txt", counting, ""), budget, 10_000, &cancel).await })
    };
    let t = Instant::now();
    let busy = loop {
        if let Some(s) = server.slots().into_iter().find(|s| s["is_processing"] == true) {
            if s["next_token"][0]["n_decoded"].as_u64().unwrap_or(0) > 0 {
                break s;
            }
        }
        assert!(t.elapsed() < Duration::from_secs(60), "the server never started generating:\n{}", server.log_text());
        std::thread::sleep(Duration::from_millis(20));
    };
    cancel.cancel();
    assert_eq!(rt.block_on(job).unwrap().unwrap_err(), EngineError::Cancelled);
    let t = Instant::now();
    let idle = loop {
        let slot = server.slots().into_iter().find(|s| s["id"] == busy["id"]).unwrap();
        if slot["is_processing"] == false {
            break slot;
        }
        assert!(t.elapsed() < Duration::from_secs(60), "the slot kept generating after the cancel:\n{slot}");
        std::thread::sleep(Duration::from_millis(20));
    };
    // /slots forgets a released task's counts; the server's log keeps them.
    let task = busy["id_task"].as_i64().unwrap();
    let log = server.log_text();
    assert!(log.contains(&format!("cancel task, id_task = {task}")), "the server saw the cancel:\n{log}");
    let held = log
        .lines()
        .find(|l| l.contains(&format!("task {task} | stop processing")))
        .and_then(|l| l.split("n_tokens = ").nth(1)?.split(',').next()?.trim().parse::<usize>().ok())
        .unwrap_or_else(|| panic!("no release of task {task}:\n{log}"));
    eprintln!("cancelled with {held} tokens in slot {} (prompt and generated), budget {budget}", idle["id"]);
    assert!(held < budget, "the server stopped generating at the cancel, not at its budget");

    // Tier 3 with the engine unlisted: refused before any socket is opened; the server sees no prompt.
    let tokens_before = server.metric("llamacpp:prompt_tokens_total");
    let denied = backend(server.url(), tier3(), false);
    let e = rt.block_on(denied.complete(&req("a.rs", before, ""), 16, 4, &CancelToken::new())).unwrap_err();
    assert!(matches!(&e, EngineError::Denied(m) if m.contains("Tier 3")), "{e:?}");
    assert_eq!(server.metric("llamacpp:prompt_tokens_total"), tokens_before, "nothing reached the server");
    // The permitted backend still works on the same server (the refusal was the policy's, per request).
    rt.block_on(b.complete(&req("a.rs", before, ""), 4, 4, &CancelToken::new())).unwrap();
    assert!(server.metric("llamacpp:prompt_tokens_total") >= tokens_before);
}

/// FIM families on the real server: tiny files in the families' layouts (tests/support) that always write
/// "x". The server finds their FIM tokens by lokal's probe, accepts lokal's mixed prompt, fills the middle,
/// and a keystroke on the cursor's line re-processes a few tokens, not the suffix.
#[test]
fn fim_families_through_completion_against_the_real_llama_server() {
    let Some(bin) = skip() else { return };
    let rt = rt();
    let suffix: String = (0..12).map(|i| format!("    let y{i} = x + {i};\n")).collect::<String>() + "}\n";
    for m in [families::qwen_coder(Keys::None), families::codestral(Keys::Fim), families::codellama(Keys::Legacy)] {
        let f = m.emitting("x").write_temp(&format!("peer-{}.gguf", m.name));
        let server = Server::start(&bin, f.path(), &[]);
        let b = backend(server.url(), tier1(), false);
        let before = "fn main() {\n    let x = 1;\n    let z = ";
        let c = rt.block_on(b.complete(&req("m.rs", before, &format!("\n{suffix}")), 4, 1, &CancelToken::new()));
        let c = c.unwrap_or_else(|e| panic!("{}: {e}\n{}", m.name, server.log_text()));
        assert!(c.text.as_deref().unwrap_or("").starts_with('x'), "{}: {c:?}", m.name);
        let suffix_tokens = c.timings.prompt_tokens / 2;
        for typed in ["a", "ab"] {
            let r = req("m.rs", &format!("{before}{typed}"), &format!("\n{suffix}"));
            let k = rt.block_on(b.complete(&r, 4, 1, &CancelToken::new())).unwrap();
            eprintln!(
                "{}: keystroke re-processed {} of {} tokens",
                m.name, k.timings.redecoded_tokens, k.timings.prompt_tokens
            );
            assert!(
                k.timings.redecoded_tokens > 0 && k.timings.redecoded_tokens < suffix_tokens,
                "{}: a keystroke re-processes the typed tokens, not the suffix: {:?}",
                m.name,
                k.timings
            );
        }
    }
}

/// Figures, not a check (`--ignored`; no assertion on time): typing one line of a real file, keystroke by
/// keystroke, through `/completion` with lokal's layout and through the stock `/infill`, each on a fresh
/// server with the FIM model in `LOKAL_PEER_FIM_MODEL`. Prints, per path, the median tokens the server
/// re-processed per keystroke, its prompt time, and the client's time to first piece / whole answer.
#[test]
#[ignore]
fn figures_keystrokes_through_completion_vs_infill() {
    let Some(bin) = skip() else { return };
    let Some(model) = std::env::var_os("LOKAL_PEER_FIM_MODEL").map(PathBuf::from) else {
        eprintln!("SKIPPED: set LOKAL_PEER_FIM_MODEL to a FIM model's GGUF");
        return;
    };
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/workspaces/tiny/src/lib.rs"))
        .unwrap();
    // The cursor at the start of an empty line a third of the way down; the line typed is a statement.
    let at = text.char_indices().filter(|(_, c)| *c == '\n').nth(text.lines().count() / 3).unwrap().0 + 1;
    let (head, tail) = text.split_at(at);
    let typed = "    let total = values.iter().sum::<i64>();";
    let median = |mut v: Vec<f64>| {
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    };
    let rt = rt();
    eprintln!("path         keystrokes  re-processed p50  prompt ms p50  ttft ms p50  total ms p50");
    for infill in [false, true] {
        let server = Server::start(&bin, &model, &[]);
        let b = backend(server.url(), tier1(), infill);
        // The first request fills the cache; the keystrokes after it are what is measured.
        rt.block_on(b.complete(&req("lib.rs", head, &format!("\n{tail}")), 8, 1, &CancelToken::new())).unwrap();
        let (mut re, mut prompt, mut ttft, mut total) = (vec![], vec![], vec![], vec![]);
        for n in 1..=typed.len() {
            let before = format!("{head}{}", &typed[..n]);
            let c = rt.block_on(b.complete(&req("lib.rs", &before, &format!("\n{tail}")), 8, 1, &CancelToken::new()));
            let t = c.unwrap_or_else(|e| panic!("{e}\n{}", server.log_text())).timings;
            re.push(t.redecoded_tokens as f64);
            prompt.push(t.prompt_ms);
            ttft.push(t.ttft_ms);
            total.push(t.total_ms);
        }
        eprintln!(
            "{:<12} {:>10}  {:>16}  {:>13.1}  {:>11.1}  {:>12.1}",
            if infill { "/infill" } else { "/completion" },
            typed.len(),
            median(re),
            median(prompt),
            median(ttft),
            median(total)
        );
    }
}
