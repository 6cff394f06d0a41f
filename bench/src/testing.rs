//! What the end-to-end tests, `lokal bench` and `lokal demo` share: waiting until the model is ready, the
//! test model, fixture paths and their URIs. One copy each, so a change in how readiness is reported is made
//! once.
use crate::client::LspClient;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Long enough for the embedded model on a loaded 2-core machine; a test that needs less says so.
pub const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// Ask `lokal/stats` until the engine's state is one of `want`; its answer then. A load that failed when
/// "failed" is not wanted ends the wait at once with the server's reason.
pub fn wait_state(c: &mut LspClient, want: &[&str], timeout: Duration) -> Result<Value, String> {
    let deadline = Instant::now() + timeout;
    // Short at first (a warm daemon is ready at once); never longer than 20 ms, which `lokal bench` counts in
    // the model-load time it reports.
    let mut pause = Duration::from_millis(5);
    loop {
        let s = c.request("lokal/stats", json!({})).map_err(|e| format!("lokal/stats: {e}"))?;
        let state = s["state"].as_str().unwrap_or("");
        if want.contains(&state) {
            return Ok(s);
        }
        if state == "failed" {
            return Err(format!("the model could not be loaded: {}", s["error"]));
        }
        if Instant::now() >= deadline {
            return Err(format!("the engine was still {state:?} after {timeout:?}, not {want:?}"));
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

/// [`wait_state`] for "ready".
pub fn wait_ready(c: &mut LspClient, timeout: Duration) -> Result<Value, String> {
    wait_state(c, &["ready"], timeout)
}

/// `lokal/status` once the model has finished loading (ready or failed).
pub fn status_when_loaded(c: &mut LspClient) -> Value {
    wait_state(c, &["ready", "failed"], READY_TIMEOUT).expect("the model finished loading");
    c.request("lokal/status", json!({})).expect("lokal/status answers")
}

/// The model the tests run on (`LOKAL_MODEL`, else the embedded default in the model cache).
pub fn test_model() -> PathBuf {
    let p = lokal_engine::EngineConfig::default().resolved_model_path();
    assert!(p.exists(), "test model missing at {}: run scripts/fetch-model.sh (or set LOKAL_MODEL)", p.display());
    p
}

/// A path under the repository's `fixtures/`, resolved.
pub fn fixture(rel: &str) -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures").join(rel);
    p.canonicalize().unwrap_or_else(|e| panic!("fixture {}: {e}", p.display()))
}

/// The `file://` URI the tests and the trace replayer send for a path.
pub fn file_uri(p: &Path) -> String {
    format!("file://{}", p.display())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Stdio;

    /// A stand-in server that answers `lokal/stats` with the given states in turn (the last one repeats).
    fn server(states: &[&str]) -> LspClient {
        let script = format!(
            r#"
import json, sys
states = {states:?}
n = 0
while True:
    line = sys.stdin.buffer.readline()
    if not line:
        break
    length = int(line.split(b":")[1])
    sys.stdin.buffer.readline()
    msg = json.loads(sys.stdin.buffer.read(length))
    s = states[min(n, len(states) - 1)]
    n += 1
    body = json.dumps({{"jsonrpc": "2.0", "id": msg["id"], "result": {{"state": s, "error": "bad magic"}}}}).encode()
    sys.stdout.buffer.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
    sys.stdout.buffer.flush()
"#
        );
        LspClient::spawn(Path::new("python3"), &["-c", &script], &[], Stdio::null()).unwrap()
    }

    #[test]
    fn waits_through_loading_until_ready() {
        let mut c = server(&["loading", "loading", "loading", "ready"]);
        let s = wait_ready(&mut c, Duration::from_secs(10)).unwrap();
        assert_eq!(s["state"], "ready");
    }

    #[test]
    fn a_failed_load_ends_the_wait_with_the_reason_unless_failed_is_wanted() {
        let mut c = server(&["loading", "failed"]);
        let e = wait_ready(&mut c, Duration::from_secs(10)).unwrap_err();
        assert!(e.contains("bad magic"), "{e}");
        let mut c = server(&["loading", "failed"]);
        assert_eq!(wait_state(&mut c, &["failed"], Duration::from_secs(10)).unwrap()["state"], "failed");
    }

    #[test]
    fn a_load_that_never_ends_times_out() {
        let mut c = server(&["loading"]);
        let e = wait_ready(&mut c, Duration::from_millis(200)).unwrap_err();
        assert!(e.contains("still \"loading\""), "{e}");
    }

    #[test]
    fn fixtures_resolve_inside_the_repository() {
        let root = fixture("workspaces/tiny");
        assert!(root.is_absolute() && root.is_dir(), "{}", root.display());
        assert_eq!(file_uri(Path::new("/a/b.rs")), "file:///a/b.rs");
    }
}
