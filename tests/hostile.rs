//! Hostile input through the real binary: every frame of fixtures/hostile/frames/*.bin (broken framing,
//! JSON that is not JSON-RPC, wrong lengths, NUL bytes, lone surrogates) and every message of
//! fixtures/hostile/messages.jsonl (params of the wrong type, positions far past the end, edits outside the
//! document, versions going backwards, unknown methods and commands), then a 3 MB one-line file. After
//! each one the server must still answer a real request.
mod rawlsp;
use rawlsp::*;
use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;

const URI: &str = "file:///tmp/lokal-hostile/main.rs";
const TEXT: &str = "fn main() {\n    let x = 1;\n}\n";

fn corpus() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/hostile")
}

/// A real request answered after `what`: the server is not deaf.
fn still_answers(s: &mut Raw, n: usize, what: &str) {
    let id = format!("probe-{n}");
    let r = s.ask(&id, "lokal/stats", json!({}), Duration::from_secs(30));
    assert!(r.as_ref().is_some_and(|r| r.get("result").is_some()), "no answer to a real request after {what}: {r:?}");
}

#[test]
fn no_hostile_frame_or_message_deafens_the_server() {
    let mut s = spawn();
    s.initialize(json!({"maxTokens": 8}));
    s.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": URI, "languageId": "rust", "version": 1, "text": TEXT}}),
    );
    let mut n = 0;

    let mut frames: Vec<_> = std::fs::read_dir(corpus().join("frames")).unwrap().map(|e| e.unwrap().path()).collect();
    frames.sort();
    assert!(frames.len() >= 30, "the frame corpus is missing");
    for f in &frames {
        s.send_raw(&std::fs::read(f).unwrap());
        n += 1;
        still_answers(&mut s, n, &f.file_name().unwrap().to_string_lossy());
    }
    // Every request the broken frames carried under a readable id was answered, with an error.
    for id in [json!("x"), json!(3), json!(4), json!(1.5), json!(5), json!(6), json!("h2")] {
        let r = s.response(&id, Duration::from_secs(5)).unwrap_or_else(|| panic!("no answer for id {id}"));
        assert!(r["error"]["code"].as_i64().is_some(), "id {id}: {r}");
    }
    // Lone surrogates cost a character, not the message.
    for id in [json!(11), json!(12)] {
        let r = s.response(&id, Duration::from_secs(5)).unwrap_or_else(|| panic!("no answer for id {id}"));
        assert!(r.get("result").is_some(), "id {id}: {r}");
    }
    // Answers with id null for what had no readable id.
    assert!(
        s.received.iter().any(|m| m["id"].is_null() && m["error"]["code"] == -32600),
        "no Invalid Request with id null"
    );
    assert!(
        s.received.iter().any(|m| m["id"].is_null() && m["error"]["code"] == -32700),
        "no Parse error with id null"
    );

    let messages = std::fs::read_to_string(corpus().join("messages.jsonl")).unwrap();
    let mut ids = Vec::new();
    for line in messages.lines().filter(|l| !l.trim().is_empty()) {
        // Sent as bytes, not re-encoded: lone surrogates must reach the server as the client wrote them.
        let line = line.replace("$URI", URI);
        if let Some(id) = line.strip_prefix(r#"{"jsonrpc":"2.0","id":""#).and_then(|r| r.split('"').next()) {
            ids.push(id.to_string());
        }
        s.send_raw(&frame(line.as_bytes()));
        n += 1;
        still_answers(&mut s, n, &line);
    }
    assert!(ids.len() >= 15, "the message corpus is missing");
    for id in &ids {
        let r =
            s.response(&json!(id), Duration::from_secs(60)).unwrap_or_else(|| panic!("request {id} never answered"));
        assert!(r.get("result").is_some() || r["error"]["code"].is_i64(), "{id}: {r}");
    }
    // Edits outside the document clamp, the document stays usable.
    let r = s.ask(
        "pos",
        "textDocument/inlineCompletion",
        json!({"textDocument": {"uri": URI}, "position": {"line": 0, "character": 0}, "context": {"triggerKind": 2}}),
        Duration::from_secs(120),
    );
    assert!(r.as_ref().is_some_and(|r| r.get("result").is_some() || r["error"]["code"] == -32800), "{r:?}");

    // A 3 MB file on one line, then a completion at its end and one past it.
    let big = format!("let s = \"{}\";", "abcdefghij".repeat(300_000));
    let big_uri = "file:///tmp/lokal-hostile/big.rs";
    s.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": big_uri, "languageId": "rust", "version": 1, "text": big}}),
    );
    n += 1;
    still_answers(&mut s, n, "a 3 MB one-line file");
    let end = big.encode_utf16().count();
    s.request("big-end", "textDocument/inlineCompletion", json!({"textDocument": {"uri": big_uri}, "position": {"line": 0, "character": end}, "context": {"triggerKind": 2}}));
    s.request("big-past", "textDocument/inlineCompletion", json!({"textDocument": {"uri": big_uri}, "position": {"line": 0, "character": end + 1}, "context": {"triggerKind": 2}}));
    let past = s.response(&json!("big-past"), Duration::from_secs(30)).expect("answered");
    assert_eq!(past["error"]["code"], -32602, "{past}");
    // Only a window of the line goes to the model (lokal/stats waits for the model thread, so ask after).
    let at_end = s.response(&json!("big-end"), Duration::from_secs(300)).expect("answered");
    assert!(at_end.get("result").is_some(), "{at_end}");
    n += 1;
    still_answers(&mut s, n, "a completion at the end of a 3 MB line");
    let stats = s.ask("big-stats", "lokal/stats", json!({}), Duration::from_secs(30)).unwrap();
    let held = stats["result"]["documents"][big_uri]["tokensHeld"]
        .as_u64()
        .or_else(|| stats["result"]["documents"][big_uri]["tokens"].as_u64());
    eprintln!("3 MB line: prompt held {held:?} tokens");

    // And it still shuts down cleanly.
    let r = s.ask("bye", "shutdown", Value::Null, Duration::from_secs(30));
    assert!(r.is_some_and(|r| r.get("result").is_some()));
    s.notify("exit", Value::Null);
    let (code, _) = s.wait_exit(Duration::from_secs(5)).expect("exits after exit");
    assert_eq!(code, Some(0));
}
