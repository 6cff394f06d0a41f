//! Code actions and implement-from-design-doc with the real small model, over the real binary.
use lokal_bench::client::LspClient;
use lokal_bench::testing;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

fn model() -> String {
    testing::test_model().display().to_string()
}

fn root() -> PathBuf {
    testing::fixture("workspaces/tiny")
}

fn uri(rel: &str) -> String {
    testing::file_uri(&root().join(rel))
}

fn start() -> LspClient {
    let mut c = LspClient::spawn(
        Path::new(env!("CARGO_BIN_EXE_lokal")),
        &["--stdio"],
        &[("LOKAL_NO_DAEMON", "1"), ("LOKAL_LOG", "warn")],
        Stdio::null(),
    )
    .unwrap();
    c.initialize(Some(&format!("file://{}", root().display())), json!({"modelPath": model(), "maxTokens": 16}), false)
        .unwrap();
    testing::wait_ready(&mut c, testing::READY_TIMEOUT).unwrap();
    c
}

fn open(c: &mut LspClient, rel: &str, lang: &str) -> String {
    let text = std::fs::read_to_string(root().join(rel)).unwrap();
    c.open(&uri(rel), lang, &text);
    text
}

fn line_of(text: &str, needle: &str) -> u32 {
    text.lines().position(|l| l.contains(needle)).unwrap_or_else(|| panic!("{needle:?}")) as u32
}

fn list(c: &mut LspClient, rel: &str, range: Value, diagnostics: Value) -> Vec<Value> {
    c.request(
        "textDocument/codeAction",
        json!({"textDocument": {"uri": uri(rel)}, "range": range, "context": {"diagnostics": diagnostics}}),
    )
    .unwrap()
    .as_array()
    .unwrap()
    .clone()
}

fn at(line: u32, ch: u32) -> Value {
    json!({"start": {"line": line, "character": ch}, "end": {"line": line, "character": ch}})
}

fn titles(actions: &[Value]) -> Vec<String> {
    actions.iter().map(|a| a["title"].as_str().unwrap().to_string()).collect()
}

#[test]
fn actions_are_offered_per_context_and_listing_never_runs_the_model() {
    let mut c = start();
    let text = open(&mut c, "src/lib.rs", "rust");
    let stub_line = line_of(&text, "pub fn sum_of_squares") + 1;
    let t = titles(&list(&mut c, "src/lib.rs", at(stub_line, 4), json!([])));
    assert!(t.iter().any(|x| x == "lokal: implement `sum_of_squares`"), "{t:?}");
    assert!(t.iter().any(|x| x == "lokal: write tests for `sum_of_squares`"), "{t:?}");
    let plain = line_of(&text, "let mut total = 0.0;");
    let t = titles(&list(&mut c, "src/lib.rs", at(plain, 8), json!([])));
    assert!(!t.iter().any(|x| x.contains("implement")), "a written function is no stub: {t:?}");
    assert!(t.iter().any(|x| x.contains("write tests for `perimeter`")), "{t:?}");
    let diag =
        json!([{"range": at(plain, 8), "message": "mismatched types: expected `f64`, found `i32`", "severity": 1}]);
    let t = titles(&list(&mut c, "src/lib.rs", at(plain, 8), diag));
    assert!(t.iter().any(|x| x.starts_with("lokal: fix `mismatched types")), "{t:?}");
    open(&mut c, "docs/design/stats.md", "markdown");
    let t = titles(&list(&mut c, "docs/design/stats.md", at(0, 0), json!([])));
    assert_eq!(
        t,
        vec!["lokal: implement this design document", "lokal: preview this design document's plan (diff, checked)"]
    );

    let before = c.request("lokal/stats", json!({})).unwrap()["decodeCalls"].as_u64().unwrap();
    for i in 0..1000 {
        list(&mut c, "src/lib.rs", at(i % 30, 0), json!([]));
    }
    let after = c.request("lokal/stats", json!({})).unwrap()["decodeCalls"].as_u64().unwrap();
    assert_eq!(before, after, "listing 1000 times did model work");
    c.shutdown();
}

/// didChange only records edits on the syntax tree; listing parses them first, so a stub typed a keystroke
/// at a time is offered, and one typed away is no longer.
#[test]
fn listing_sees_what_was_typed_since_the_last_parse() {
    let mut c = start();
    let text = open(&mut c, "src/lib.rs", "rust");
    let end = text.lines().count() as u32;
    let typed = "\npub fn typed_later() -> u32 {\n    todo!()\n}\n";
    let (mut line, mut col) = (end, 0u32);
    for (v, ch) in typed.chars().enumerate() {
        let p = json!({"line": line, "character": col});
        c.notify(
            "textDocument/didChange",
            json!({"textDocument": {"uri": uri("src/lib.rs"), "version": 2 + v},
                   "contentChanges": [{"range": {"start": p, "end": p}, "text": ch.to_string()}]}),
        );
        if ch == '\n' {
            (line, col) = (line + 1, 0);
        } else {
            col += 1;
        }
    }
    let t = titles(&list(&mut c, "src/lib.rs", at(end + 2, 4), json!([])));
    assert!(t.iter().any(|x| x == "lokal: implement `typed_later`"), "{t:?}");
    let body = json!({"start": {"line": end + 2, "character": 4}, "end": {"line": end + 2, "character": 11}});
    c.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": uri("src/lib.rs"), "version": 1000},
               "contentChanges": [{"range": body, "text": "7"}]}),
    );
    let t = titles(&list(&mut c, "src/lib.rs", at(end + 2, 4), json!([])));
    assert!(!t.iter().any(|x| x.contains("implement `typed_later`")), "a written function is no stub: {t:?}");
    assert!(t.iter().any(|x| x == "lokal: write tests for `typed_later`"), "{t:?}");
    c.shutdown();
}

#[test]
fn resolve_returns_a_versioned_edit_and_refuses_a_stale_version() {
    let mut c = start();
    let text = open(&mut c, "src/lib.rs", "rust");
    let line = line_of(&text, "pub fn perimeter");
    let actions = list(&mut c, "src/lib.rs", at(line + 2, 8), json!([]));
    let doc = actions.iter().find(|a| a["title"].as_str().unwrap().contains("doc comment")).cloned();
    // perimeter is documented already; distance too. Use a fresh undocumented function instead.
    assert!(doc.is_none(), "documented items are not offered a doc comment");
    let src = "pub fn half(x: f64) -> f64 {\n    x / 2.0\n}\n";
    c.open(&uri("src/half.rs"), "rust", src);
    let actions = list(&mut c, "src/half.rs", at(1, 4), json!([]));
    let doc = actions
        .iter()
        .find(|a| a["title"].as_str().unwrap().contains("doc comment"))
        .cloned()
        .expect("doc comment offered");
    let resolved = c.request("codeAction/resolve", doc.clone()).unwrap();
    let change = &resolved["edit"]["documentChanges"][0];
    assert_eq!(change["textDocument"]["version"], 1, "edit pinned to the version seen");
    let edit = &change["edits"][0];
    assert_eq!(edit["range"], json!({"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 0}}));
    assert!(edit["newText"].as_str().unwrap().starts_with("/// "), "{edit}");

    // The document changes after listing: resolving the old action is refused.
    c.notify("textDocument/didChange", json!({"textDocument": {"uri": uri("src/half.rs"), "version": 2},
        "contentChanges": [{"range": at(1, 4)["start"].clone().as_object().map(|_| json!({"start": {"line": 1, "character": 4}, "end": {"line": 1, "character": 4}})).unwrap(), "text": "// halve\n    "}]}));
    let err = c.request("codeAction/resolve", doc).expect_err("stale version");
    assert_eq!(err.code, -32801, "{err}");
    c.shutdown();
}

#[test]
fn implement_from_design_doc_lands_whole_or_not_at_all_reports_progress_and_cancel_applies_nothing() {
    let mut c = start();
    open(&mut c, "docs/design/stats.md", "markdown");
    let r = c
        .request(
            "workspace/executeCommand",
            json!({"command": "lokal.implementFromDesignDoc", "arguments": [{"uri": uri("docs/design/stats.md")}]}),
        )
        .unwrap();
    assert_eq!(r["targets"], json!(["src/stats.rs", "src/lib.rs"]));
    // All or nothing: one edit holding both files, or no edit and a reason per file.
    let edits: Vec<&Value> = c.received.iter().filter(|m| m["method"] == "workspace/applyEdit").collect();
    if r["applied"] == true {
        assert_eq!(edits.len(), 1);
        let ops = edits[0]["params"]["edit"]["documentChanges"].as_array().unwrap();
        assert!(ops.iter().any(|o| o["kind"] == "create" && o["uri"].as_str().unwrap().ends_with("src/stats.rs")));
        assert!(ops.iter().any(|o| o["textDocument"]["uri"].as_str().is_some_and(|u| u.ends_with("src/lib.rs"))));
    } else {
        assert!(edits.is_empty(), "{edits:?}");
        assert!(r["message"].as_str().unwrap().starts_with("lokal: nothing applied"), "{r}");
        assert_eq!(r["files"].as_array().unwrap().iter().filter(|f| f["target"] == true).count(), 2, "{r}");
    }
    let is_work = |m: &Value| m["method"] == "$/progress" && m["params"]["token"] != "lokal/model-load";
    c.wait_for(Duration::from_secs(10), |m| is_work(m) && m["params"]["value"]["kind"] == "end")
        .expect("progress ends");
    let kinds: Vec<String> = c
        .received
        .iter()
        .filter(|m| is_work(m))
        .map(|m| m["params"]["value"]["kind"].as_str().unwrap().to_string())
        .collect();
    assert!(
        kinds.contains(&"begin".to_string())
            && kinds.contains(&"report".to_string())
            && kinds.last() == Some(&"end".to_string()),
        "{kinds:?}"
    );

    // Cancel as soon as the work reports progress: nothing may be applied.
    c.received.clear();
    let id = c.request_async(
        "workspace/executeCommand",
        json!({"command": "lokal.implementFromDesignDoc", "arguments": [{"uri": uri("docs/design/stats.md")}]}),
    );
    let begin = c
        .wait_for(Duration::from_secs(60), |m| m["method"] == "$/progress" && m["params"]["value"]["kind"] == "report")
        .expect("progress");
    c.notify("window/workDoneProgress/cancel", json!({"token": begin["params"]["token"]}));
    let err = c.wait(id, Duration::from_secs(120)).expect_err("cancelled");
    assert_eq!(err.code, -32800, "{err}");
    assert!(!c.received.iter().any(|m| m["method"] == "workspace/applyEdit"), "a cancelled run applied an edit");

    // A design document without targets says how to name one.
    c.open(&uri("docs/design/no-target.md"), "markdown", "# Ideas\n\nNo files yet.\n");
    let e = c
        .request(
            "workspace/executeCommand",
            json!({"command": "lokal.implementFromDesignDoc", "arguments": [{"uri": uri("docs/design/no-target.md")}]}),
        )
        .expect_err("no target");
    assert!(e.message.contains("File: src/billing/invoice.rs"), "{e}");
    c.shutdown();
}
