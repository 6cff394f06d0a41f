//! Code actions whose edits are checked by the language's own compiler, with the real small model over the
//! real binary. Small budgets: these run on loaded machines.
use lokal_bench::client::LspClient;
use lokal_bench::testing;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

const MANIFEST: &str = "[package]\nname = \"tiny\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\n";
const LIB: &str = "/// Returns twice the input.\npub fn double(x: u32) -> u32 {\n    todo!()\n}\n\n/// Returns the input plus one.\npub fn inc(x: u32) -> u32 {\n    x + 1\n}\n";

/// A fresh crate per test, outside the repository.
fn small_crate(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("lokal-verified-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(dir.join("Cargo.toml"), MANIFEST).unwrap();
    std::fs::write(dir.join("src/lib.rs"), LIB).unwrap();
    dir
}

fn start(root: &Path, settings: Value) -> LspClient {
    let mut c = LspClient::spawn(
        Path::new(env!("CARGO_BIN_EXE_lokal")),
        &["--stdio"],
        &[("LOKAL_NO_DAEMON", "1"), ("LOKAL_LOG", "warn")],
        Stdio::null(),
    )
    .unwrap();
    // One model thread: on a shared 2-core machine (and with this file's two servers side by side) two
    // spinning llama.cpp threads stall each other. Seen: one 96-token file took over 40 s with two threads,
    // a whole 3-round plan 23 s with one; the stub test's 60 s budget ran out in its first candidate.
    let mut opts = json!({"modelPath": testing::test_model().display().to_string(), "threads": 1});
    opts.as_object_mut().unwrap().extend(settings.as_object().unwrap().clone());
    c.initialize(Some(&testing::file_uri(root)), opts, false).unwrap();
    testing::wait_ready(&mut c, testing::READY_TIMEOUT).unwrap();
    c
}

/// Applies LSP text edits (UTF-16 = bytes here: the fixture is ASCII) to `text`.
fn apply(text: &str, edits: &[Value]) -> String {
    let offset = |p: &Value| {
        let line = p["line"].as_u64().unwrap() as usize;
        let col = p["character"].as_u64().unwrap() as usize;
        text.split_inclusive('\n').take(line).map(str::len).sum::<usize>() + col
    };
    let mut spans: Vec<(usize, usize, &str)> = edits
        .iter()
        .map(|e| (offset(&e["range"]["start"]), offset(&e["range"]["end"]), e["newText"].as_str().unwrap()))
        .collect();
    spans.sort_by_key(|s| std::cmp::Reverse(s.0));
    let mut out = text.to_string();
    for (a, b, t) in spans {
        out.replace_range(a..b, t);
    }
    out
}

fn cargo_check(dir: &Path) -> std::process::Output {
    Command::new("cargo")
        .args(["check", "--quiet", "--offline"])
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", dir.join("target-test"))
        .output()
        .unwrap()
}

#[test]
fn a_stub_gets_a_body_that_passes_cargo_check_or_a_refusal_naming_the_check() {
    let root = small_crate("stub");
    let uri = testing::file_uri(&root.join("src/lib.rs"));
    let mut c = start(&root, json!({"actionCandidates": 2, "actionBudgetSeconds": 60}));
    c.open(&uri, "rust", LIB);
    let actions = c
        .request(
            "textDocument/codeAction",
            json!({"textDocument": {"uri": uri}, "range": {"start": {"line": 2, "character": 4}, "end": {"line": 2, "character": 4}}, "context": {"diagnostics": []}}),
        )
        .unwrap();
    let implement = actions
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["title"].as_str().unwrap().contains("implement `double`"))
        .cloned()
        .expect("implement offered");
    match c.request("codeAction/resolve", implement) {
        Ok(resolved) => {
            let report = &resolved["data"]["report"];
            assert_eq!(report["passed"], 1, "{report}");
            assert!(report["tried"].as_u64().unwrap() >= 1 && report["timeToPassMs"].is_u64(), "{report}");
            assert_eq!(report["checks"], "cargo check", "{report}");
            let change = &resolved["edit"]["documentChanges"][0];
            assert_eq!(change["textDocument"]["version"], 1);
            let new = apply(LIB, change["edits"].as_array().unwrap());
            assert!(!new.contains("todo!()"), "{new}");
            std::fs::write(root.join("src/lib.rs"), &new).unwrap();
            let out = cargo_check(&root);
            assert!(out.status.success(), "{new}\n{}", String::from_utf8_lossy(&out.stderr));
            // A retry's prompt holds what the compiler said about the candidate before it.
            let (prompts, refusals) = (report["prompts"].as_array().unwrap(), report["refusals"].as_array().unwrap());
            if prompts.len() > 1 {
                let first = refusals[0].as_str().unwrap().lines().next().unwrap();
                assert!(prompts[1].as_str().unwrap().contains(first), "{report}");
            }
        }
        Err(e) => {
            assert_eq!(e.code, -32803, "{e}");
            assert!(e.message.contains("no candidate passed") && e.message.contains("cargo check"), "{e}");
            assert!(e.message.contains("candidate(s) tried, 0 passed"), "{e}");
            let shown = c.wait_for(Duration::from_secs(5), |m| {
                m["method"] == "window/showMessage"
                    && m["params"]["message"].as_str().is_some_and(|s| s.contains("no candidate passed"))
            });
            assert!(shown.is_some_and(|m| m["params"]["message"].as_str().unwrap().contains("cargo check")));
        }
    }
    // Progress per candidate, and the user's file untouched by the checks.
    assert!(c.received.iter().any(|m| m["method"] == "$/progress"
        && m["params"]["value"]["message"].as_str().is_some_and(|s| s.contains("candidate 1/2"))));
    assert!(!root.join("target").exists(), "the check built in the user's tree");
    c.shutdown();
    let _ = std::fs::remove_dir_all(&root);
}

const DESIGN: &str = "# Design: initials\n\nThe sidebar shows people by their initials.\n\n## Initials\n\nFile: src/initials.rs\n\n```rust\n/// The first letter of each word of `name`, upper-cased: \"ada lovelace\" gives \"AL\".\npub fn initials(name: &str) -> String;\n```\n\n## Declare the module\n\nFile: src/lib.rs\n\nDeclare the new module: `pub mod initials;`.\n";

/// Applies a `workspace/applyEdit`'s document changes to the files under `root`, as an editor would.
fn apply_to_disk(edit: &Value) {
    let path = |u: &Value| PathBuf::from(u.as_str().unwrap().strip_prefix("file://").unwrap());
    for op in edit["documentChanges"].as_array().unwrap() {
        if op["kind"] == "create" {
            assert!(!path(&op["uri"]).exists(), "the plan overwrites {op}");
            std::fs::write(path(&op["uri"]), "").unwrap();
        } else {
            let p = path(&op["textDocument"]["uri"]);
            let old = std::fs::read_to_string(&p).unwrap();
            std::fs::write(&p, apply(&old, op["edits"].as_array().unwrap())).unwrap();
        }
    }
}

#[test]
fn a_design_doc_plan_lands_whole_and_builds_or_lands_not_at_all() {
    let root = small_crate("plan");
    std::fs::create_dir_all(root.join("docs")).unwrap();
    std::fs::write(root.join("docs/initials.md"), DESIGN).unwrap();
    let (doc, lib) = (testing::file_uri(&root.join("docs/initials.md")), testing::file_uri(&root.join("src/lib.rs")));
    // Short by default; LOKAL_PLAN_BUDGET_S="seconds candidates tokens" measures with more room (a loaded
    // machine spends the default budget on the first file).
    let knobs = std::env::var("LOKAL_PLAN_BUDGET_S").unwrap_or_else(|_| "30 2 96".into());
    let k: Vec<u64> = knobs.split_whitespace().map(|n| n.parse().expect("LOKAL_PLAN_BUDGET_S: numbers")).collect();
    let settings = json!({"actionBudgetSeconds": k[0], "actionCandidates": k[1], "actionMaxTokens": k[2]});
    let mut c = start(&root, settings);
    c.open(&doc, "markdown", DESIGN);
    c.open(&lib, "rust", LIB);
    let args = json!([{"uri": doc}]);
    let r = c
        .request("workspace/executeCommand", json!({"command": "lokal.implementFromDesignDoc", "arguments": args}))
        .unwrap();
    let report = &r["report"];
    eprintln!("design-doc run: applied {} | {}", r["applied"], report["summary"].as_str().unwrap_or(""));
    eprintln!("files: {}\nmessage: {}", r["files"], r["message"]);
    assert_eq!(r["targets"], json!(["src/initials.rs", "src/lib.rs"]));
    let edits: Vec<Value> = c.received.iter().filter(|m| m["method"] == "workspace/applyEdit").cloned().collect();
    if r["applied"] == true {
        // One edit holding the whole plan, and the crate builds after it.
        assert_eq!(edits.len(), 1, "{edits:?}");
        let edit = &edits[0]["params"]["edit"];
        let ops = edit["documentChanges"].as_array().unwrap();
        assert!(ops.iter().any(|o| o["kind"] == "create" && o["uri"].as_str().unwrap().ends_with("src/initials.rs")));
        let lib_edit = ops.iter().find(|o| o["textDocument"]["uri"] == lib).expect("lib.rs edited");
        assert_eq!(lib_edit["textDocument"]["version"], 1, "pinned to the version the plan was checked against");
        assert_eq!((report["passed"].as_u64(), report["timeToPassMs"].is_u64()), (Some(1), true), "{report}");
        assert_eq!(report["checks"], "cargo check", "{report}");
        apply_to_disk(edit);
        let out = cargo_check(&root);
        let lib_now = std::fs::read_to_string(root.join("src/lib.rs")).unwrap();
        assert!(out.status.success(), "{lib_now}\n{}", String::from_utf8_lossy(&out.stderr));
    } else {
        // Nothing applied, and each file says which check judged it and what it found.
        assert!(edits.is_empty(), "a refused plan applied an edit: {edits:?}");
        let message = r["message"].as_str().unwrap();
        assert!(message.starts_with("lokal: nothing applied"), "{message}");
        let files = r["files"].as_array().unwrap();
        let judged: Vec<&Value> = files.iter().filter(|f| !f["errors"].as_array().unwrap().is_empty()).collect();
        assert!(
            judged.iter().all(|f| message.contains(&format!(
                "{}: {} failed",
                f["path"].as_str().unwrap(),
                f["check"].as_str().unwrap()
            ))) && (!judged.is_empty() || message.contains("stopped:")),
            "{r}"
        );
        let shown = c.wait_for(Duration::from_secs(5), |m| {
            m["method"] == "window/showMessage"
                && m["params"]["message"].as_str().is_some_and(|s| s.starts_with("lokal: nothing applied"))
        });
        assert!(shown.is_some(), "the user is told why nothing was applied");
        assert_eq!(std::fs::read_to_string(root.join("src/lib.rs")).unwrap(), LIB);
    }
    assert!(!root.join("src/initials.rs").exists() || r["applied"] == true, "a file appeared without the edit");
    assert!(!root.join("target").exists(), "the check built in the user's tree");
    // Progress per step of the plan.
    assert!(c.received.iter().any(|m| m["method"] == "$/progress"
        && m["params"]["value"]["message"]
            .as_str()
            .is_some_and(|s| s.contains("plan 1/") && s.contains(": generating src/initials.rs"))));
    c.shutdown();
    let _ = std::fs::remove_dir_all(&root);
}
