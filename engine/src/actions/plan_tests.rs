//! The design-document pipeline against the real cargo, with a scripted stand-in for the model: it answers
//! per target file, so each test says what the "model" writes for which file.
use super::plan_context::{gather, is_schema};
use super::*;
use crate::syntax::design_doc;
use std::collections::HashMap;
use std::fs;
use std::path::Path;
use std::sync::Mutex;

const MANIFEST: &str = "[package]\nname = \"tiny\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\n";
const LIB: &str = "/// Twice the input.\npub fn double(x: u32) -> u32 {\n    x * 2\n}\n";
const DOC: &str = "# Design: initials\n\nNames are shown as initials in the sidebar.\n\n## Initials\n\nFile: src/initials.rs\n\n`pub fn initials(name: &str) -> String` returns the first letter of each word, upper-cased.\n\n## Declare it\n\nFile: src/lib.rs\n\nDeclare the module: `pub mod initials;`.\n";
const GOOD_INITIALS: &str = "pub fn initials(name: &str) -> String {\n    name.split_whitespace().filter_map(|w| w.chars().next()).flat_map(char::to_uppercase).collect()\n}\n";

fn crate_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir_all(dir.path().join("src")).unwrap();
    fs::write(dir.path().join("Cargo.toml"), MANIFEST).unwrap();
    fs::write(dir.path().join("src/lib.rs"), LIB).unwrap();
    dir
}

fn target_of(req: &GenerateRequest) -> String {
    req.user.lines().find_map(|l| l.strip_prefix("File to write: ")).expect("the prompt names its file").to_string()
}

struct Ran {
    result: Result<PlanRun, PlanError>,
    asked: Vec<GenerateRequest>,
}

impl Ran {
    fn asked_for(&self, path: &str) -> Vec<&GenerateRequest> {
        self.asked.iter().filter(|r| target_of(r) == path).collect()
    }

    fn run(&self) -> &PlanRun {
        self.result.as_ref().unwrap_or_else(|e| panic!("{e:?}"))
    }
}

/// Runs the pipeline on `doc` in a fresh crate; `answers[path]` are the stand-in model's answers for that
/// file, in order (the last repeats).
fn run(doc: &str, answers: &[(&str, &[&str])], settings: ActionSettings, cancel: CancelToken) -> Ran {
    let ws = crate_dir();
    let state = tempfile::tempdir().unwrap();
    let verifier = Arc::new(Verifier::new(crate::verify::Toolbox::from_env(), state.path()));
    let answers: HashMap<&str, &[&str]> = answers.iter().copied().collect();
    let asked = Mutex::new(Vec::<GenerateRequest>::new());
    let job = PlanJob {
        workspace: ws.path().to_path_buf(),
        doc: doc.into(),
        section: None,
        open: HashMap::new(),
        key: "k".into(),
        context_tokens: 800,
    };
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let result = rt.block_on(implement_plan(
        verifier,
        &job,
        &settings,
        &cancel,
        |req| {
            let mut a = asked.lock().unwrap();
            let path = target_of(&req);
            let n = a.iter().filter(|r| target_of(r) == path).count();
            let list = answers.get(path.as_str()).copied().unwrap_or(&[]);
            let answer =
                list.get(n).or(list.last()).map(|s| s.to_string()).ok_or_else(|| format!("no answer for {path}"));
            a.push(req);
            async move { answer }
        },
        |_| {},
    ));
    assert_eq!(fs::read_to_string(ws.path().join("src/lib.rs")).unwrap(), LIB, "the user's file was touched");
    assert!(!ws.path().join("src/initials.rs").exists(), "the checks wrote into the user's tree");
    Ran { result, asked: asked.into_inner().unwrap() }
}

fn refused(r: &PlanRun) -> &str {
    match &r.outcome {
        PlanOutcome::Refused(m) => m,
        PlanOutcome::Passed(files) => panic!("expected a refusal, got {files:?}"),
    }
}

#[test]
fn a_plan_that_builds_comes_back_whole_new_file_and_append() {
    let r = run(
        DOC,
        // lib.rs: the block closes and prose follows; before it, a doc comment the token limit cut off.
        &[("src/initials.rs", &[GOOD_INITIALS]), ("src/lib.rs", &["pub mod initials;\n\n/// Returns the\n```\nmore"])],
        ActionSettings::default(),
        CancelToken::new(),
    );
    let run = r.run();
    let PlanOutcome::Passed(files) = &run.outcome else { panic!("{:?}", run.outcome) };
    assert_eq!(files.len(), 2);
    let new = files.iter().find(|f| f.path == Path::new("src/initials.rs")).unwrap();
    assert!(new.create && new.before.is_empty() && new.text == GOOD_INITIALS, "{new:?}");
    let lib = files.iter().find(|f| f.path == Path::new("src/lib.rs")).unwrap();
    assert!(!lib.create);
    assert_eq!((lib.at, lib.insert.as_str()), (LIB.len(), "\npub mod initials;\n"));
    assert_eq!(lib.text, format!("{LIB}\npub mod initials;\n"));
    assert_eq!((run.report.tried, run.report.passed, run.report.generations), (1, 1, 2));
    assert!(run.report.time_to_pass_ms.is_some());
    assert_eq!(run.report.checks, "cargo check");
    assert!(run.diff.contains("+++ b/src/initials.rs") && run.diff.contains("+pub mod initials;"), "{}", run.diff);
    // The existing file is the start of the answer (the model continues it); the new one starts empty.
    let lib_req = r.asked_for("src/lib.rs")[0];
    assert!(
        lib_req.answer_prefix.ends_with("    x * 2\n}\n\n// Declare the module: `pub mod initials;`.\n"),
        "{lib_req:?}"
    );
    assert_eq!(r.asked_for("src/initials.rs")[0].answer_prefix, "```rust\n");
    // Phase 2 sees the design, the plan's files and the workspace's current files.
    let new_req = r.asked_for("src/initials.rs")[0];
    assert!(new_req.user.contains("Names are shown as initials") && new_req.user.contains("- src/initials.rs (new)"));
    assert!(new_req.user.contains("--- src/lib.rs\n/// Twice the input."), "{}", new_req.user);
}

#[test]
fn one_failing_file_refuses_the_whole_plan_and_its_errors_are_fed_back() {
    // lib.rs declares the module (fine) and adds a type error, every time; initials.rs is fine.
    let bad_lib = "pub mod initials;\n\npub fn broken() -> u32 {\n    \"not a number\"\n}\n";
    let settings = ActionSettings { candidates: 2, ..ActionSettings::default() };
    let r =
        run(DOC, &[("src/initials.rs", &[GOOD_INITIALS]), ("src/lib.rs", &[bad_lib])], settings, CancelToken::new());
    let run = r.run();
    let message = refused(run);
    assert!(message.contains("nothing applied") && message.contains("src/lib.rs: cargo check failed"), "{message}");
    assert!(message.contains("E0308"), "{message}");
    assert_eq!((run.report.tried, run.report.passed, run.report.time_to_pass_ms), (2, 0, None));
    let lib = run.report.files.iter().find(|f| f.path == "src/lib.rs").unwrap();
    assert_eq!(lib.check, "cargo check");
    assert!(lib.errors[0].contains("E0308"), "{lib:?}");
    assert!(run.report.files.iter().find(|f| f.path == "src/initials.rs").unwrap().errors.is_empty());
    // Only the blamed file is generated again, told the compiler's error and its own previous attempt.
    assert_eq!((r.asked_for("src/initials.rs").len(), r.asked_for("src/lib.rs").len()), (1, 2));
    let retry = r.asked_for("src/lib.rs")[1];
    assert!(retry.user.contains("E0308") && retry.user.contains("\"not a number\""), "{}", retry.user);
    assert!(!r.asked_for("src/lib.rs")[0].user.contains("E0308"));
    assert_eq!((r.asked_for("src/lib.rs")[0].temperature, retry.temperature), (0.0, 0.7));
    assert_eq!(run.report.generations, 3);
}

#[test]
fn a_module_declared_without_its_file_is_refused() {
    // The design names only lib.rs; the model declares a module nobody writes (E0583 in rustc).
    let doc = "# Extra\n\n## Declare\n\nFile: src/lib.rs\n\nAdd the extra module.\n";
    let settings = ActionSettings { candidates: 1, ..ActionSettings::default() };
    let r = run(doc, &[("src/lib.rs", &["pub mod extra;\n"])], settings, CancelToken::new());
    let message = refused(r.run());
    assert!(message.contains("E0583") && message.contains("cargo check"), "{message}");
    assert!(!r.run().diff.is_empty(), "the preview still shows what was tried");
}

#[test]
fn a_retry_with_the_errors_can_pass_and_the_plan_then_lands_whole() {
    let settings = ActionSettings { candidates: 3, ..ActionSettings::default() };
    let r = run(
        DOC,
        &[
            ("src/initials.rs", &["pub fn initials(name: &str) -> String {\n    name.len()\n}\n", GOOD_INITIALS]),
            ("src/lib.rs", &["pub mod initials;\n"]),
        ],
        settings,
        CancelToken::new(),
    );
    let run = r.run();
    assert!(matches!(&run.outcome, PlanOutcome::Passed(f) if f.len() == 2), "{:?}", run.outcome);
    assert_eq!((run.report.tried, run.report.passed), (2, 1));
    assert!(r.asked_for("src/initials.rs")[1].user.contains("E0308"));
    assert_eq!(r.asked_for("src/lib.rs").len(), 1, "a file the checker did not blame is kept");
}

#[test]
fn code_that_does_not_parse_is_regenerated_before_any_check_and_empty_answers_never_land() {
    let settings = ActionSettings { candidates: 2, ..ActionSettings::default() };
    let r = run(
        DOC,
        &[("src/initials.rs", &["   \n"]), ("src/lib.rs", &["pub mod initials;\n"])],
        settings,
        CancelToken::new(),
    );
    let run = r.run();
    let message = refused(run);
    assert!(message.contains("src/initials.rs") && message.contains("wrote no code"), "{message}");
    assert_eq!(run.report.checks, "none (no whole plan reached a check)");
    assert_eq!(r.asked_for("src/lib.rs").len(), 1);
}

#[test]
fn a_cancelled_run_returns_nothing() {
    let cancel = CancelToken::new();
    cancel.cancel();
    let r = run(
        DOC,
        &[("src/initials.rs", &[GOOD_INITIALS]), ("src/lib.rs", &["pub mod initials;\n"])],
        ActionSettings::default(),
        cancel,
    );
    assert!(matches!(r.result, Err(PlanError::Cancelled)), "{:?}", r.result.as_ref().map(|r| &r.outcome));
    assert!(r.asked.is_empty());
}

#[test]
fn a_document_without_targets_is_invalid() {
    let r = run("# Ideas\n\nNothing yet.\n", &[], ActionSettings::default(), CancelToken::new());
    assert!(matches!(&r.result, Err(PlanError::Invalid(m)) if m.contains("File:")), "{:?}", r.result.is_ok());
}

#[test]
fn context_holds_named_files_schema_and_signatures_within_the_budget() {
    let dir = tempfile::tempdir().unwrap();
    let w = dir.path();
    for (p, t) in [
        ("src/lib.rs", "pub mod db;\n"),
        ("src/db.rs", "pub struct Conn;\nimpl Conn {\n    pub fn query(&self, sql: &str) -> Vec<String> {\n        vec![]\n    }\n}\n"),
        ("migrations/001_users.sql", "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL);\n"),
        ("api/user.proto", "message User { int64 id = 1; string name = 2; }\n"),
        ("docs/user.json", "{\"$schema\": \"https://json-schema.org/draft/2020-12/schema\", \"type\": \"object\"}\n"),
        ("docs/other.json", "{\"a\": 1}\n"),
        ("src/big.rs", &"pub fn filler() {}\n".repeat(2000)),
    ] {
        fs::create_dir_all(w.join(p).parent().unwrap()).unwrap();
        fs::write(w.join(p), t).unwrap();
    }
    let doc = "# Users\n\nSee src/db.rs for the connection.\n\n## src/users.rs\n\nList users.\n\n## Declare\n\nFile: src/lib.rs\n";
    let plan = design_doc::plan(doc, None).unwrap();
    let open = HashMap::from([(PathBuf::from("src/lib.rs"), "pub mod db; // unsaved\n".to_string())]);
    let ctx = gather(w, &plan, doc, &open, 600);
    let files: Vec<&str> = ctx.files.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(files, ["src/lib.rs", "src/db.rs"], "targets that exist, then the paths the doc mentions");
    assert_eq!(ctx.files[0].1, "pub mod db; // unsaved", "the editor's text wins over the disk");
    assert!(ctx.schema.contains("CREATE TABLE users") && ctx.schema.contains("message User"), "{}", ctx.schema);
    assert!(ctx.schema.contains("docs/user.json") && !ctx.schema.contains("docs/other.json"), "{}", ctx.schema);
    assert!(!ctx.signatures.contains("src/db.rs"), "a file shown whole is not repeated as signatures");
    assert!(!ctx.signatures.contains("filler"), "a file over the budget is left out: {}", ctx.signatures);
    assert!(ctx.tokens() <= 600, "{}", ctx.tokens());
    let rendered = ctx.render("src/lib.rs");
    assert!(!rendered.contains("// unsaved") && rendered.contains("--- src/db.rs"), "{rendered}");

    // Signatures come from the syntax tree, not the bodies.
    fs::write(w.join("src/util.rs"), "pub fn helper(x: u32) -> u32 {\n    x + 41\n}\n").unwrap();
    let ctx = gather(w, &plan, doc, &open, 2000);
    assert!(ctx.signatures.contains("--- src/util.rs") && ctx.signatures.contains("pub fn helper(x: u32) -> u32"));
    assert!(!ctx.signatures.contains("x + 41"), "{}", ctx.signatures);
    assert!(is_schema(Path::new("db/schema.rb")) && is_schema(Path::new("migrations/2024_add.py")));
    assert!(!is_schema(Path::new("src/main.rs")));
}
