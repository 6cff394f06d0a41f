//! One resident model for several editor windows: `lokal daemon` plus `lokal --stdio` sessions that forward
//! to it, with the real small model.
use lokal_bench::client::LspClient;
use lokal_bench::testing;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_lokal"))
}

fn model() -> PathBuf {
    testing::test_model()
}

fn fixture(file: &str) -> (String, String) {
    let path = testing::fixture("workspaces/tiny").join(file);
    (testing::file_uri(&path), std::fs::read_to_string(path).unwrap())
}

fn rss_mb(pid: u32) -> f64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

struct Daemon(Child);
impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_daemon(sock: &Path) -> Daemon {
    let child = Command::new(exe())
        .args(["daemon", "--model"])
        .arg(model())
        .env("LOKAL_SOCKET", sock)
        .env("LOKAL_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let t = Instant::now();
    while !sock.exists() {
        assert!(t.elapsed() < Duration::from_secs(30), "daemon socket never appeared");
        std::thread::sleep(Duration::from_millis(20));
    }
    Daemon(child)
}

fn session(sock: &Path) -> LspClient {
    let mut c = LspClient::spawn(
        &exe(),
        &["--stdio"],
        &[("LOKAL_SOCKET", sock.to_str().unwrap()), ("LOKAL_LOG", "warn")],
        Stdio::null(),
    )
    .unwrap();
    c.initialize(None, json!({"maxTokens": 8}), false).unwrap();
    testing::wait_ready(&mut c, testing::READY_TIMEOUT).unwrap();
    c
}

fn complete(c: &mut LspClient, uri: &str, line: u32, col: u32) -> Result<Value, lokal_bench::client::RpcError> {
    c.request(
        "textDocument/inlineCompletion",
        json!({"textDocument": {"uri": uri}, "position": {"line": line, "character": col}, "context": {"triggerKind": 2}}),
    )
}

#[test]
fn two_windows_share_one_model_but_not_their_caches_and_survive_a_daemon_crash() {
    let dir = std::env::temp_dir().join(format!("lokal-daemon-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let sock = dir.join("d.sock");
    let mut daemon = start_daemon(&sock);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&sock).unwrap().permissions().mode() & 0o777, 0o600, "owner-only socket");

    let (uri, text) = fixture("src/lib.rs");
    let line = text.lines().position(|l| l.starts_with("pub fn sum_of_squares")).unwrap() as u32 + 1;
    let mut a = session(&sock);
    let mut b = session(&sock);
    a.open(&uri, "rust", &text);
    b.open(&uri, "rust", &text);
    complete(&mut a, &uri, line, 4).unwrap();
    // B's view holds only B's documents, and its first request cannot reuse A's cells.
    assert_eq!(b.request("lokal/stats", json!({})).unwrap()["documents"].as_object().unwrap().len(), 0);
    complete(&mut b, &uri, line, 4).unwrap();
    let sb = b.request("lokal/stats", json!({})).unwrap();
    assert_eq!(sb["documents"][&uri]["lastReusedTokens"], 0, "sessions never share a cache: {sb}");
    // The editor-side processes only forward: the model lives once, in the daemon.
    let (ra, rd) = (rss_mb(a.pid()), rss_mb(daemon.0.id()));
    assert!(ra < 64.0 && rd > 4.0 * ra, "session process {ra:.0} MB vs daemon {rd:.0} MB");

    // The daemon dies: the session falls back to an in-process engine, restores its document, says so.
    daemon.0.kill().unwrap();
    daemon.0.wait().unwrap();
    let _ = std::fs::remove_file(&sock);
    let note = a.wait_for(Duration::from_secs(30), |m| m["method"] == "window/showMessage").expect("the user is told");
    assert!(note["params"]["message"].as_str().unwrap().contains("in-process"), "{note}");
    let mut served = None;
    for _ in 0..200 {
        match complete(&mut a, &uri, line, 4) {
            Ok(v) => {
                served = Some(v);
                break;
            }
            Err(e) => {
                eprintln!("after fallback: {e}");
                std::thread::sleep(Duration::from_millis(50))
            }
        }
    }
    assert!(served.is_some(), "completions work again after the fallback");
    let sa = a.request("lokal/stats", json!({})).unwrap();
    assert!(sa["documents"][&uri]["lastPromptTokens"].as_u64().unwrap() > 50, "the document was replayed: {sa}");
    a.shutdown();
    b.shutdown();
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_window_whose_model_path_differs_from_the_daemons_gets_its_own_engine_and_is_told() {
    let dir = std::env::temp_dir().join(format!("lokal-daemon-model-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let sock = dir.join("d.sock");
    let _daemon = start_daemon(&sock);
    // Another file name for the same weights: a different modelPath as far as the daemon can tell.
    let other = dir.join("another-model.gguf");
    if std::fs::hard_link(model(), &other).is_err() {
        std::fs::copy(model(), &other).unwrap();
    }
    let env = [("LOKAL_SOCKET", sock.to_str().unwrap()), ("LOKAL_LOG", "warn")];

    let mut own = LspClient::spawn(&exe(), &["--stdio"], &env, Stdio::null()).unwrap();
    own.initialize(None, json!({"modelPath": other, "maxTokens": 8}), false).unwrap();
    let note =
        own.wait_for(Duration::from_secs(10), |m| m["method"] == "window/showMessage").expect("the user is told");
    let text = note["params"]["message"].as_str().unwrap();
    assert!(text.contains("engine of its own") && text.contains("another-model.gguf"), "{note}");
    let st = testing::status_when_loaded(&mut own);
    assert_eq!((st["engine"].as_str(), st["model"]["state"].as_str()), (Some("daemon-own"), Some("ready")), "{st}");
    assert_eq!((&st["model"]["path"], st["model"]["source"].as_str()), (&json!(other), Some("modelPath")), "{st}");

    // A window that names the daemon's own model (or none) shares the daemon's engine, and says so.
    let mut same = LspClient::spawn(&exe(), &["--stdio"], &env, Stdio::null()).unwrap();
    same.initialize(None, json!({"modelPath": model(), "maxTokens": 8}), false).unwrap();
    let st = testing::status_when_loaded(&mut same);
    assert_eq!((st["engine"].as_str(), st["model"]["source"].as_str()), (Some("daemon"), Some("daemon")), "{st}");
    assert_eq!(st["model"]["path"], json!(model().display().to_string()), "{st}");
    assert!(st["model"]["why"].as_str().unwrap().contains("--model"), "{st}");
    assert!(
        !same
            .received
            .iter()
            .any(|m| m["method"] == "window/showMessage"
                && m["params"]["message"].as_str().unwrap_or("").contains("own")),
        "{:?}",
        same.received
    );

    // Both serve completions, each from its own engine.
    let (uri, text) = fixture("src/lib.rs");
    let line = text.lines().position(|l| l.starts_with("pub fn sum_of_squares")).unwrap() as u32 + 1;
    for c in [&mut own, &mut same] {
        c.open(&uri, "rust", &text);
        complete(c, &uri, line, 4).unwrap();
    }
    own.shutdown();
    same.shutdown();
    let _ = std::fs::remove_dir_all(dir);
}
