//! A typing storm with the real model: 300+ completion requests 30 ms apart, half of them cancelled, edits
//! in between. Every request gets an answer (a result or -32800 RequestCancelled), and the process's memory
//! and descriptors come back to where they were.
mod rawlsp;
use rawlsp::*;
use serde_json::{json, Value};
use std::path::Path;
use std::time::{Duration, Instant};

#[test]
fn a_storm_of_cancelled_and_superseded_requests_is_answered_in_full_and_leaks_nothing() {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/workspaces/tiny/src/lib.rs").canonicalize().unwrap();
    let uri = format!("file://{}", path.display());
    let text = std::fs::read_to_string(&path).unwrap();
    let mut line = text.lines().position(|l| l.starts_with("pub fn sum_of_squares")).unwrap() as u32 + 1;
    let mut col = 0u32;
    let mut s = spawn();
    s.initialize(json!({"maxTokens": 16}));
    s.wait_ready();
    s.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": uri, "languageId": "rust", "version": 1, "text": text}}),
    );
    let complete = |s: &mut Raw, id: &str, line: u32, col: u32| {
        s.request(id, "textDocument/inlineCompletion", json!({"textDocument": {"uri": uri}, "position": {"line": line, "character": col}, "context": {"triggerKind": 1}}));
    };
    // Warm up: what the first request allocates (KV cells, buffers) is not a leak.
    complete(&mut s, "warm", line, col);
    assert!(s.response(&json!("warm"), Duration::from_secs(120)).is_some_and(|r| r.get("result").is_some()));
    std::thread::sleep(Duration::from_millis(500));
    let (rss0, fds0) = (rss_mb(s.pid()), open_fds(s.pid()));

    let typed = "    let v = xs.iter().map(|x| x * x).sum::<i64>();\n".repeat(7);
    let mut ids = Vec::new();
    let mut version = 1;
    let t0 = Instant::now();
    for (i, ch) in typed.chars().enumerate() {
        version += 1;
        s.notify("textDocument/didChange", json!({"textDocument": {"uri": uri, "version": version},
            "contentChanges": [{"range": {"start": {"line": line, "character": col}, "end": {"line": line, "character": col}}, "text": ch.to_string()}]}));
        if ch == '\n' {
            line += 1;
            col = 0;
        } else {
            col += 1;
        }
        let id = format!("k{i}");
        complete(&mut s, &id, line, col);
        std::thread::sleep(Duration::from_millis(30));
        if i % 2 == 0 {
            s.notify("$/cancelRequest", json!({"id": id}));
        }
        ids.push(id);
        s.pump();
    }
    let typing = t0.elapsed();
    let (mut results, mut cancelled) = (0, 0);
    for id in &ids {
        let r =
            s.response(&json!(id), Duration::from_secs(120)).unwrap_or_else(|| panic!("request {id} never answered"));
        if r.get("result").is_some() {
            results += 1;
        } else {
            assert_eq!(r["error"]["code"], -32800, "{id}: neither a result nor RequestCancelled: {r}");
            cancelled += 1;
        }
    }
    // The session is still in step with the editor: the document holds what was typed.
    let after = s.ask("after", "lokal/stats", json!({}), Duration::from_secs(30)).unwrap();
    assert!(after.get("result").is_some(), "{after}");
    std::thread::sleep(Duration::from_millis(1000));
    let (rss1, fds1) = (rss_mb(s.pid()), open_fds(s.pid()));
    eprintln!(
        "storm: {} requests typed over {:.1} s: {results} results, {cancelled} cancelled; RSS {rss0:.0} -> {rss1:.0} MB; fds {fds0} -> {fds1}",
        ids.len(),
        typing.as_secs_f64()
    );
    assert!(ids.len() >= 300);
    assert_eq!(results + cancelled, ids.len());
    assert!(cancelled > 0, "the client cancelled half of them");
    assert!(results > 0, "some requests must complete");
    assert!(fds1 <= fds0 + 5, "descriptors {fds0} -> {fds1}");
    assert!(rss1 <= rss0 + 200.0, "resident memory {rss0:.0} -> {rss1:.0} MB");
    let r = s.ask("bye", "shutdown", Value::Null, Duration::from_secs(30));
    assert!(r.is_some());
}
