//! End-to-end tests: the built `lokal` binary over stdio, with the real small model.
//!
//! The model comes from `scripts/fetch-model.sh` (or `LOKAL_MODEL`). These tests assert behaviour, not
//! timings: speed lives in `lokal bench`.
use lokal_bench::client::LspClient;
use lokal_bench::testing;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

fn exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_lokal"))
}

fn model_path() -> PathBuf {
    testing::test_model()
}

fn fixture_root() -> PathBuf {
    testing::fixture("workspaces/tiny")
}

fn uri(file: &str) -> String {
    testing::file_uri(&fixture_root().join(file))
}

fn read(file: &str) -> String {
    std::fs::read_to_string(fixture_root().join(file)).unwrap()
}

/// (line, utf-16 column) of the end of `marker` in `text`.
fn pos_after(text: &str, marker: &str) -> (u32, u32) {
    let byte = text.find(marker).unwrap_or_else(|| panic!("{marker:?} not in fixture")) + marker.len();
    let before = &text[..byte];
    let line = before.matches('\n').count() as u32;
    let start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    (line, before[start..].encode_utf16().count() as u32)
}

struct Session {
    c: LspClient,
}

impl Session {
    fn start(options: Value) -> Session {
        Self::start_with(options, true)
    }

    fn start_with(mut options: Value, wait_ready: bool) -> Session {
        if options.get("modelPath").is_none() {
            options["modelPath"] = json!(model_path());
        }
        let mut c =
            LspClient::spawn(&exe(), &["--stdio"], &[("LOKAL_LOG", "warn"), ("LOKAL_NO_DAEMON", "1")], Stdio::null())
                .unwrap();
        c.initialize(Some(&format!("file://{}", fixture_root().display())), options, false).unwrap();
        let mut s = Session { c };
        if wait_ready {
            s.wait_state(&["ready"]);
        }
        s
    }

    fn wait_state(&mut self, want: &[&str]) -> Value {
        testing::wait_state(&mut self.c, want, testing::READY_TIMEOUT).unwrap()
    }

    fn stats(&mut self) -> Value {
        self.c.request("lokal/stats", json!({})).unwrap()
    }

    fn doc_stats(&mut self, file: &str) -> Value {
        self.stats()["documents"][uri(file)].clone()
    }

    fn open(&mut self, file: &str) -> String {
        let text = read(file);
        self.c.open(&uri(file), "rust", &text);
        text
    }

    fn inline(&mut self, file: &str, (line, col): (u32, u32)) -> Result<Option<String>, lokal_bench::client::RpcError> {
        let r = self.c.request(
            "textDocument/inlineCompletion",
            json!({"textDocument": {"uri": uri(file)}, "position": {"line": line, "character": col}, "context": {"triggerKind": 2}}),
        )?;
        Ok(r.as_array().and_then(|a| a.first()).and_then(|i| i["insertText"].as_str()).map(str::to_string))
    }

    /// Wait until the model thread has no job: work queued ahead (a prefetch) has finished or stopped.
    fn settle(&mut self) {
        let idle = |st: &Value| st["runningJobs"] == 0 && st["queuedJobs"] == 0;
        while !idle(&self.stats()) {
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn insert(&mut self, file: &str, version: i32, (line, col): (u32, u32), text: &str) {
        self.c.notify(
            "textDocument/didChange",
            json!({
                "textDocument": {"uri": uri(file), "version": version},
                "contentChanges": [{"range": {"start": {"line": line, "character": col}, "end": {"line": line, "character": col}}, "text": text}]
            }),
        );
    }
}

const BODY: &str = "pub fn sum_of_squares(xs: &[i64]) -> i64 {\n    ";

/// A character that cannot be the start of `suggestion`, so the next request must go to the model
/// instead of being served from the previous suggestion.
fn other_char(suggestion: &str) -> &'static str {
    if suggestion.starts_with('z') {
        "q"
    } else {
        "z"
    }
}

#[test]
fn suggests_at_a_fixture_cursor_through_both_completion_requests() {
    let mut s = Session::start(json!({"maxTokens": 16}));
    let text = s.open("src/lib.rs");
    let at = pos_after(&text, BODY);
    let inline = s.inline("src/lib.rs", at).unwrap().expect("a suggestion");
    assert!(!inline.trim().is_empty(), "suggestion must not be blank: {inline:?}");

    // Plain completion returns the same suggestion as one item for clients without inline completion.
    let r =
        s.c.request(
            "textDocument/completion",
            json!({"textDocument": {"uri": uri("src/lib.rs")}, "position": {"line": at.0, "character": at.1}}),
        )
        .unwrap();
    let items = r.as_array().expect("completion items");
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["textEdit"]["newText"].as_str().unwrap(), inline);
    let st = s.doc_stats("src/lib.rs");
    assert!(st["lastPromptTokens"].as_u64().unwrap() > 50, "the prompt carries the file's prefix: {st}");
    s.c.shutdown();
}

#[test]
fn a_one_character_edit_redecodes_only_a_small_tail() {
    let mut s = Session::start(json!({"maxTokens": 8, "profileSync": true}));
    let text = s.open("src/lib.rs");
    let at = pos_after(&text, BODY);
    let first = s.inline("src/lib.rs", at).unwrap().unwrap_or_default();
    let cold = s.doc_stats("src/lib.rs");
    let prompt = cold["lastPromptTokens"].as_u64().unwrap();
    assert_eq!(cold["lastRedecodedTokens"].as_u64().unwrap(), prompt, "first request decodes everything");

    s.insert("src/lib.rs", 2, at, other_char(&first));
    s.inline("src/lib.rs", (at.0, at.1 + 1)).unwrap();
    let warm = s.doc_stats("src/lib.rs");
    let redecoded = warm["lastRedecodedTokens"].as_u64().unwrap();
    assert!(redecoded <= 4, "one typed character re-decoded {redecoded} tokens of {prompt}: {warm}");
    assert!(warm["lastReusedTokens"].as_u64().unwrap() + 4 >= prompt);
    assert_eq!(warm["hits"].as_u64().unwrap(), 1);
    // The phase record accounts for exactly the tokens decoded, and for no more time than the ttft.
    for (st, decoded) in [(&cold, prompt), (&warm, redecoded)] {
        let ph = &st["lastPhases"];
        assert_eq!(ph["synced"], json!(true), "{ph}");
        let passes = ph["passes"].as_array().expect("passes");
        assert_eq!(passes.iter().map(|p| p["tokens"].as_u64().unwrap()).sum::<u64>(), decoded, "{ph}");
        assert!(passes.iter().all(|p| p["ms"].as_f64().unwrap() > 0.0), "{ph}");
        let parts = ph["planMs"].as_f64().unwrap()
            + passes.iter().map(|p| p["ms"].as_f64().unwrap()).sum::<f64>()
            + ph["firstSampleMs"].as_f64().unwrap();
        let ttft = st["lastTtftMs"].as_f64().unwrap();
        assert!(parts <= ttft + 0.01 && parts >= 0.5 * ttft, "phases {parts} ms against ttft {ttft} ms: {ph}");
    }
    s.c.shutdown();
}

#[test]
fn switching_to_another_file_and_back_redecodes_only_the_edit() {
    // One sequence: the switch evicts the first file. The embedded model has sliding-window layers, and
    // llama.cpp saves a sequence without its cells outside the window, so a restored one would attend to
    // holes once cut back: such a model's evicted document is decoded again, not restored (llama_kv.rs).
    // With workspace context, the visit to the other file must not change this file's block either.
    for (sequences, context) in [(4, false), (1, false), (4, true), (1, true)] {
        let mut s = Session::start(json!({"maxTokens": 8, "sequences": sequences, "contextEnabled": context}));
        let lib = s.open("src/lib.rs");
        let shapes = s.open("src/shapes.rs");
        let at = pos_after(&lib, BODY);
        let first = s.inline("src/lib.rs", at).unwrap().unwrap_or_default();
        let other = pos_after(&shapes, "pub fn contains(&self, p: Point) -> bool {\n        ");
        s.inline("src/shapes.rs", other).unwrap();
        s.insert("src/lib.rs", 2, at, other_char(&first));
        s.inline("src/lib.rs", (at.0, at.1 + 1)).unwrap();
        let st = s.doc_stats("src/lib.rs");
        let redecoded = st["lastRedecodedTokens"].as_u64().unwrap();
        let case = format!("sequences={sequences} context={context}");
        assert_eq!(st["lastRestored"].as_bool(), Some(false), "{case}: {st}");
        if sequences > 1 {
            assert!(redecoded <= 4, "{case}: switching back re-decoded {redecoded} tokens: {st}");
        } else {
            let prompt = st["lastPromptTokens"].as_u64().unwrap();
            assert_eq!(redecoded, prompt, "{case}: an evicted document is decoded afresh: {st}");
        }
        // With context on the prompt carries a block (shapes.rs, visited), which the edit in lib.rs, now a
        // recent edit, must not have changed.
        assert_eq!(st["lastContextTokens"].as_u64().unwrap() > 0, context, "{case}: {st}");
        s.c.shutdown();
    }
}

#[test]
fn typing_the_start_of_a_suggestion_is_served_without_model_work() {
    let mut s = Session::start(json!({"maxTokens": 12}));
    let text = s.open("src/lib.rs");
    let at = pos_after(&text, BODY);
    let first = s.inline("src/lib.rs", at).unwrap().expect("a suggestion");
    let ch: String = first.chars().take(1).collect();
    if first.chars().count() < 2 || ch == "\n" {
        return; // nothing to type ahead into
    }
    // The suggestion's sequel, prefetched in the background, may still be decoding.
    s.settle();
    let calls = s.stats()["decodeCalls"].as_u64().unwrap();
    s.insert("src/lib.rs", 2, at, &ch);
    let rest = s.inline("src/lib.rs", (at.0, at.1 + ch.encode_utf16().count() as u32)).unwrap().unwrap();
    assert_eq!(format!("{ch}{rest}"), first);
    let st = s.stats();
    assert_eq!(st["decodeCalls"].as_u64().unwrap(), calls, "no model pass for a typed-ahead suggestion");
    assert_eq!(st["documents"][uri("src/lib.rs")]["servedFromSuggestion"].as_u64().unwrap(), 1);
    s.c.shutdown();
}

/// (line, utf-16 column) where the cursor ends after inserting `inserted` at `at`.
fn pos_after_insert((line, col): (u32, u32), inserted: &str) -> (u32, u32) {
    match inserted.rfind('\n') {
        Some(i) => (line + inserted.matches('\n').count() as u32, inserted[i + 1..].encode_utf16().count() as u32),
        None => (line, col + inserted.encode_utf16().count() as u32),
    }
}

/// Accepting a suggestion and asking at the new cursor: with `prefetch` on, that answer was computed in the
/// background and is served from there. Returns both suggestions and the document's statistics.
fn accept_and_ask_again(prefetch: bool) -> (String, Option<String>, Value) {
    let mut s = Session::start(json!({"maxTokens": 8, "prefetch": prefetch}));
    let text = s.open("src/lib.rs");
    let at = pos_after(&text, BODY);
    let first = s.inline("src/lib.rs", at).unwrap().expect("a suggestion");
    s.settle();
    s.insert("src/lib.rs", 2, at, &first);
    let next = s.inline("src/lib.rs", pos_after_insert(at, &first)).unwrap();
    let st = s.doc_stats("src/lib.rs");
    s.c.shutdown();
    (first, next, st)
}

#[test]
fn the_completion_after_an_accept_is_served_from_the_prefetch_with_the_same_text() {
    let (first, next, st) = accept_and_ask_again(true);
    assert_eq!(st["prefetchStarted"], 2, "one after each answer: {st}");
    assert_eq!(st["prefetchUsed"], 1, "{st}");
    assert!(st["prefetchDone"].as_u64().unwrap() >= 1, "{st}");
    // The model answered once; the second answer came from the prefetch.
    assert_eq!(st["hits"].as_u64().unwrap() + st["misses"].as_u64().unwrap(), 1, "{st}");
    let (first_off, next_off, st_off) = accept_and_ask_again(false);
    assert_eq!(st_off["prefetchStarted"], 0, "{st_off}");
    assert_eq!(first, first_off);
    assert_eq!(next, next_off, "a prefetched answer is the answer the model gives when asked");
}

#[test]
fn an_edit_other_than_the_accept_drops_the_prefetch() {
    let mut s = Session::start(json!({"maxTokens": 8}));
    let text = s.open("src/lib.rs");
    let at = pos_after(&text, BODY);
    let first = s.inline("src/lib.rs", at).unwrap().expect("a suggestion");
    s.settle();
    assert_eq!(s.doc_stats("src/lib.rs")["prefetchDone"], 1);
    // The same text as the accept, typed elsewhere first: the document is not the one the prefetch was for.
    s.insert("src/lib.rs", 2, (0, 0), " ");
    s.insert("src/lib.rs", 3, (at.0, at.1), &first);
    let next = pos_after_insert(at, &first);
    s.inline("src/lib.rs", next).unwrap();
    let st = s.doc_stats("src/lib.rs");
    assert_eq!(st["prefetchCancelled"], 1, "{st}");
    assert_eq!(st["prefetchUsed"], 0, "{st}");
    assert_eq!(st["hits"].as_u64().unwrap() + st["misses"].as_u64().unwrap(), 2, "the model answered: {st}");
    s.c.shutdown();
}

#[test]
fn a_cancelled_request_answers_32800_stops_the_model_and_the_next_is_served() {
    // A long generation, so the cancel arrives while the model is working.
    let mut s = Session::start(json!({"maxTokens": 400, "maxLines": 200, "ctxPerSequence": 4096}));
    let text = s.open("src/lib.rs");
    let at = pos_after(&text, BODY);
    let id = s.c.request_async(
        "textDocument/inlineCompletion",
        json!({"textDocument": {"uri": uri("src/lib.rs")}, "position": {"line": at.0, "character": at.1}, "context": {"triggerKind": 2}}),
    );
    std::thread::sleep(Duration::from_millis(300));
    s.c.cancel(id);
    let err = s.c.wait(id, Duration::from_secs(60)).expect_err("cancelled request must fail");
    assert_eq!(err.code, -32800, "{err}");
    // The model thread stopped: no decode happens after the cancellation has been answered.
    std::thread::sleep(Duration::from_millis(100));
    let a = s.stats()["decodeCalls"].as_u64().unwrap();
    std::thread::sleep(Duration::from_millis(700));
    let b = s.stats()["decodeCalls"].as_u64().unwrap();
    assert_eq!(a, b, "model work continued after the cancel");
    // And the server serves the next request normally.
    // (Shorter generations from here on, through a settings change that reloads the engine.)
    s.c.notify("workspace/didChangeConfiguration", json!({"settings": {"lokal": {"maxTokens": 8, "maxLines": 2}}}));
    let next = s.inline("src/lib.rs", at);
    assert!(next.is_ok(), "{next:?}");
    assert!(s.doc_stats("src/lib.rs")["lastGeneratedTokens"].as_u64().unwrap() <= 8, "new settings applied");
    s.c.shutdown();
}

#[test]
fn a_missing_model_gives_a_clear_error_and_the_server_keeps_answering() {
    let mut s = Session::start_with(json!({"modelPath": "/nonexistent/model.gguf"}), false);
    let st = s.wait_state(&["failed"]);
    assert!(st["error"].as_str().unwrap().contains("/nonexistent/model.gguf"), "{st}");
    let msg =
        s.c.wait_for(Duration::from_secs(10), |m| m["method"] == "window/showMessage" && m["params"]["type"] == 1)
            .expect("the user is told through an error window/showMessage");
    assert!(msg["params"]["message"].as_str().unwrap().contains("could not be loaded"));

    let text = s.open("src/lib.rs");
    let err = s.inline("src/lib.rs", pos_after(&text, BODY)).expect_err("no model, no completion");
    assert!(err.message.contains("model is not available"), "{err}");
    // Still serving: other requests are answered.
    assert_eq!(s.stats()["state"], "failed");
    assert_eq!(s.c.shutdown(), Some(0));
}

#[test]
fn a_corrupt_model_file_is_reported_not_crashed_on() {
    let dir = std::env::temp_dir().join(format!("lokal-e2e-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let truncated = dir.join("truncated.gguf");
    let bytes = std::fs::read(model_path()).unwrap();
    std::fs::write(&truncated, &bytes[..4096]).unwrap();
    let not_gguf = dir.join("notes.gguf");
    std::fs::write(&not_gguf, b"this is not a model").unwrap();
    for (path, says) in [(truncated, "corrupt"), (not_gguf, "not a GGUF")] {
        let mut s = Session::start_with(json!({"modelPath": path}), false);
        let st = s.wait_state(&["failed"]);
        assert!(st["error"].as_str().unwrap().contains(says), "{st}");
        assert_eq!(s.c.shutdown(), Some(0));
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn bad_positions_unopened_documents_and_malformed_messages_get_errors_not_crashes() {
    let mut s = Session::start(json!({"maxTokens": 4}));
    let text = s.open("src/lib.rs");
    let lines = text.lines().count() as u32;
    let past_end = s.inline("src/lib.rs", (lines + 10, 0)).expect_err("past the last line");
    assert_eq!(past_end.code, -32602, "{past_end}");
    let past_line = s.inline("src/lib.rs", (0, 500)).expect_err("past the end of a line");
    assert_eq!(past_line.code, -32602);
    let unopened = s.inline("src/never_opened.rs", (0, 0)).expect_err("unopened document");
    assert!(unopened.message.contains("not open"), "{unopened}");
    // A frame whose body is not JSON, then a request with the wrong params shape.
    s.c.send_raw(b"Content-Length: 9\r\n\r\n{not json");
    let wrong = s.c.request("textDocument/inlineCompletion", json!({"textDocument": 42}));
    assert!(wrong.is_err());
    // A binary document is refused with a reason.
    s.c.open(&uri("src/blob.bin"), "plaintext", "\u{0}\u{1}\u{2}binary");
    let bin = s.inline("src/blob.bin", (0, 0)).expect_err("binary file");
    assert!(bin.message.contains("binary"), "{bin}");
    // After all that, a good request still works.
    assert!(s.inline("src/lib.rs", pos_after(&text, BODY)).is_ok());
    assert_eq!(s.c.shutdown(), Some(0));
}

#[test]
fn model_loading_reports_progress_and_utf8_positions_are_negotiated() {
    let mut c =
        LspClient::spawn(&exe(), &["--stdio"], &[("LOKAL_LOG", "warn"), ("LOKAL_NO_DAEMON", "1")], Stdio::null())
            .unwrap();
    let caps = c.initialize(None, json!({"modelPath": model_path()}), true).unwrap();
    assert_eq!(caps["capabilities"]["positionEncoding"], "utf-8");
    assert_eq!(caps["capabilities"]["inlineCompletionProvider"], true);
    let begin =
        c.wait_for(Duration::from_secs(60), |m| m["method"] == "$/progress" && m["params"]["value"]["kind"] == "begin");
    assert!(begin.is_some(), "progress begin while the model loads");
    let end =
        c.wait_for(Duration::from_secs(60), |m| m["method"] == "$/progress" && m["params"]["value"]["kind"] == "end");
    assert!(end.is_some(), "progress end once loaded");
    c.shutdown();
}

#[test]
fn the_whole_billing_trace_runs_with_a_sliding_window_model_and_several_documents() {
    // Gemma 3 has sliding-window layers: llama.cpp gave a cell outside its sequence's window to another
    // sequence, and the prefix cache, cutting that sequence back later, decoded after a hole ("inconsistent
    // sequence positions" or "n_tokens == 0" at the trace's jump back into invoice.rs). Guard sequences keep
    // such cells (worker.rs `swa_guards`): every request of the trace is answered.
    let trace = testing::fixture("traces/billing.json");
    let opts = json!({"modelPath": model_path(), "maxTokens": 16, "threads": 1});
    let run = lokal_bench::bench::run_trace(&exe(), &trace, opts, false).expect("every request of the trace answered");
    let answered: usize = run.kinds.values().map(|k| k.count).sum();
    assert!(answered >= 60, "{answered} requests answered");
}
