//! The stub pipeline against the real cargo, with scripted candidates in place of the model.
use super::*;
use crate::syntax::SyntaxTree;
use std::fs;
use std::sync::Mutex;

const MANIFEST: &str = "[package]\nname = \"tiny\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\n";
const LIB: &str =
    "/// Twice the input.\npub fn double(x: u32) -> u32 {\n    todo!()\n}\n\npub fn other() -> u8 {\n    1\n}\n";

fn crate_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir_all(dir.path().join("src")).unwrap();
    fs::write(dir.path().join("Cargo.toml"), MANIFEST).unwrap();
    fs::write(dir.path().join("src/lib.rs"), LIB).unwrap();
    dir
}

fn job(ws: &std::path::Path) -> StubJob {
    let stub = SyntaxTree::new(Lang::Rust, LIB).stubs(LIB).remove(0);
    StubJob {
        workspace: ws.to_path_buf(),
        path: "src/lib.rs".into(),
        text: LIB.into(),
        lang: Lang::Rust,
        replace: stub.replace,
        item_start: stub.item.range.start,
        key: "k".into(),
    }
}

/// Runs the pipeline with `answers` as the model's candidates, in order; returns the requests it made.
fn run(answers: &[&str], settings: ActionSettings) -> (Result<Implemented, ActionError>, Vec<GenerateRequest>) {
    let ws = crate_dir();
    let state = tempfile::tempdir().unwrap();
    let verifier = Arc::new(Verifier::new(crate::verify::Toolbox::from_env(), state.path()));
    let asked = Mutex::new(Vec::new());
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let r = rt.block_on(implement_stub(
        verifier,
        &job(ws.path()),
        &settings,
        &CancelToken::new(),
        |req| {
            let mut a = asked.lock().unwrap();
            let answer = answers.get(a.len()).map(|s| s.to_string()).ok_or_else(|| "no more".to_string());
            a.push(req);
            async move { answer }
        },
        |_| {},
    ));
    assert_eq!(fs::read_to_string(ws.path().join("src/lib.rs")).unwrap(), LIB, "the user's file was touched");
    (r, asked.into_inner().unwrap())
}

#[test]
fn a_compiler_error_is_fed_back_and_the_first_passing_body_is_kept() {
    // The first candidate has a type error, the second compiles; the model's text runs on past the body.
    let answers = ["let s: u32 = \"two\";\n    s * x\n}\n\npub fn more() {}\n", "x * 2\n}\n\nfn junk( {"];
    let (r, asked) = run(&answers, ActionSettings::default());
    let done = r.unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(done.new_text, "\n    x * 2\n");
    assert_eq!(&LIB[done.range.clone()], "\n    todo!()\n");
    assert_eq!((done.report.tried, done.report.passed), (2, 1));
    assert!(done.report.time_to_pass_ms.is_some());
    assert_eq!(done.report.checks, "cargo check");
    assert!(done.report.refusals[0].contains("E0308"), "{:?}", done.report.refusals);
    // The retry's prompt carries the compiler's error and the refused body; the first was greedy.
    assert!(asked[1].user.contains("E0308") && asked[1].user.contains("\"two\""), "{}", asked[1].user);
    assert!(!asked[0].user.contains("E0308"));
    assert_eq!((asked[0].temperature, asked[1].temperature), (0.0, 0.7));
    assert_ne!(asked[0].seed, asked[1].seed);
    assert_eq!(done.report.prompts, asked.iter().map(|r| r.user.clone()).collect::<Vec<_>>());
    // The model continues real code: the signature and doc comment, then the opened body.
    assert!(asked[0].answer_prefix.ends_with("/// Twice the input.\npub fn double(x: u32) -> u32 {\n    "));
    assert!(asked[0].user.contains("pub fn other() -> u8"), "{}", asked[0].user);
}

#[test]
fn when_nothing_passes_the_refusal_names_the_check_and_its_errors() {
    let settings = ActionSettings { candidates: 2, ..ActionSettings::default() };
    let (r, asked) = run(&["undefined_thing(x)\n}", "x + \"1\"\n}"], settings);
    assert_eq!(asked.len(), 2);
    match r {
        Err(ActionError::Refused { message, report }) => {
            assert!(message.contains("cargo check failed"), "{message}");
            assert!(message.contains("E0277") || message.contains("E0425"), "{message}");
            assert_eq!((report.tried, report.passed, report.time_to_pass_ms), (2, 0, None));
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn bodies_are_cut_at_their_closing_brace_or_their_dedent() {
    assert_eq!(cut_body(Lang::Rust, "if x { 1 } else { 2 }\n}\nfn f() {}", "    ").unwrap(), "if x { 1 } else { 2 }");
    assert_eq!(cut_body(Lang::Rust, "   \n}", "    "), None);
    let py = "return a + b\n        # done\n\ndef other():\n    pass\n";
    assert_eq!(cut_body(Lang::Python, py, "        ").unwrap(), "return a + b\n        # done");
}
