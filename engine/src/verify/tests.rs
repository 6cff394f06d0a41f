//! Verification against the real toolchains of this machine (cargo, python3), on crates made in temp dirs.
use super::*;
use std::fs;
use std::sync::{Arc, Mutex as StdMutex};

const MANIFEST: &str = "[package]\nname = \"tiny\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\n";
const LIB: &str = "/// Initials of a name, upper case.\npub fn initials_of(name: &str) -> String {\n    todo!()\n}\n";

struct Ws {
    dir: tempfile::TempDir,
    state: tempfile::TempDir,
}

impl Ws {
    fn new(files: &[(&str, &str)]) -> Ws {
        let dir = tempfile::tempdir().unwrap();
        for (path, text) in files {
            let p = dir.path().join(path);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, text).unwrap();
        }
        Ws { dir, state: tempfile::tempdir().unwrap() }
    }
    fn rust() -> Ws {
        Ws::new(&[("Cargo.toml", MANIFEST), ("src/lib.rs", LIB)])
    }
    fn path(&self) -> &Path {
        self.dir.path()
    }
    fn verifier(&self, tools: Toolbox) -> Verifier {
        Verifier::new(tools, self.state.path())
    }
    fn verify(&self, v: &Verifier, changes: &[Change]) -> Verdict {
        v.verify(self.path(), changes, &CancelToken::new(), Duration::from_secs(120)).unwrap()
    }
}

fn with_body(body: &str) -> Change {
    Change::new("src/lib.rs", LIB.replace("    todo!()\n", body))
}

fn labels(v: &Verdict) -> Vec<Check> {
    v.checks.iter().map(|c| c.check).collect()
}

#[test]
fn a_good_body_passes_cargo_check_and_the_users_files_stay_as_they_were() {
    let ws = Ws::rust();
    let v = ws.verifier(Toolbox::from_env());
    let verdict = ws.verify(
        &v,
        &[with_body(
            "    name.split_whitespace().filter_map(|w| w.chars().next()).flat_map(char::to_uppercase).collect()\n",
        )],
    );
    assert!(verdict.passed(), "{:?}", verdict.new_errors);
    assert_eq!(labels(&verdict), vec![Check::CargoCheck]);
    assert_eq!(verdict.checks[0].fallback, None);
    assert_eq!(fs::read_to_string(ws.path().join("src/lib.rs")).unwrap(), LIB);
    assert!(!ws.path().join("target").exists(), "the check built into the user's tree");
}

#[test]
fn a_body_with_a_type_error_is_refused_with_the_compilers_message() {
    let ws = Ws::rust();
    let v = ws.verifier(Toolbox::from_env());
    let verdict = ws.verify(&v, &[with_body("    name.len()\n")]);
    assert!(!verdict.passed());
    let e = &verdict.new_errors[0];
    assert_eq!((e.file.as_path(), e.code.as_deref()), (Path::new("src/lib.rs"), Some("E0308")));
    assert_eq!(e.line, 3);
    assert!(e.message.contains("mismatched types"), "{e}");
    assert!(
        verdict.errors_text(5).contains("src/lib.rs:3: error[E0308]: mismatched types"),
        "{}",
        verdict.errors_text(5)
    );
}

#[test]
fn errors_the_workspace_already_had_do_not_count_against_a_candidate() {
    // `helper` is broken before the plan; the plan implements another function and inserts lines above it.
    let broken = "pub fn helper() -> u32 {\n    \"not a number\"\n}\n";
    let ws = Ws::new(&[("Cargo.toml", MANIFEST), ("src/lib.rs", &format!("{LIB}{broken}"))]);
    let v = ws.verifier(Toolbox::from_env());
    let good = format!(
        "{}{broken}",
        LIB.replace("    todo!()\n", "    let mut s = String::new();\n    s.push_str(name);\n    s\n")
    );
    let verdict = ws.verify(&v, &[Change::new("src/lib.rs", good)]);
    assert!(verdict.passed(), "{:?}", verdict.new_errors);
    let bad = format!("{}{broken}", LIB.replace("    todo!()\n", "    name.len()\n"));
    let verdict = ws.verify(&v, &[Change::new("src/lib.rs", bad)]);
    assert_eq!(verdict.new_errors.len(), 1, "{:?}", verdict.new_errors);
    assert_eq!(verdict.new_errors[0].line, 3);
}

#[test]
fn a_plan_declaring_a_module_is_refused_without_its_file_and_passes_with_it() {
    let ws = Ws::rust();
    let v = ws.verifier(Toolbox::from_env());
    let lib = Change::new("src/lib.rs", format!("pub mod initials;\n{LIB}"));
    let verdict = ws.verify(&v, std::slice::from_ref(&lib));
    assert!(!verdict.passed());
    let by_file = verdict.by_file();
    let errs = &by_file[Path::new("src/lib.rs")];
    assert_eq!(errs[0].code.as_deref(), Some("E0583"), "{errs:?}");
    assert!(errs[0].message.contains("initials"), "{errs:?}");

    let file =
        Change::new("src/initials.rs", "pub fn of(name: &str) -> String {\n    name.chars().take(1).collect()\n}\n");
    let verdict = ws.verify(&v, &[lib.clone(), file.clone()]);
    assert!(verdict.passed(), "{:?}", verdict.new_errors);
    assert!(!ws.path().join("src/initials.rs").exists());

    // The new file itself broken: the failure is reported against it, not against lib.rs.
    let broken = Change::new("src/initials.rs", "pub fn of(name: &str) -> String {\n    name\n}\n");
    let verdict = ws.verify(&v, &[lib, broken]);
    assert_eq!(verdict.by_file().keys().collect::<Vec<_>>(), vec![Path::new("src/initials.rs")]);
}

#[test]
fn python_is_checked_by_py_compile() {
    let ws = Ws::new(&[("pkg/names.py", "def initials(name):\n    pass\n")]);
    let v = ws.verifier(Toolbox::from_env());
    let good = ws.verify(
        &v,
        &[Change::new("pkg/names.py", "def initials(name):\n    return ''.join(w[0] for w in name.split())\n")],
    );
    assert!(good.passed(), "{:?}", good.new_errors);
    assert!(labels(&good).contains(&Check::PyCompile));
    let bad = ws.verify(
        &v,
        &[Change::new("pkg/names.py", "def initials(name):\n    return ''.join(w[0] for w in name.split()\n")],
    );
    assert!(!bad.passed());
    assert_eq!(bad.new_errors[0].file, Path::new("pkg/names.py"));
    assert_eq!(bad.new_errors[0].code.as_deref(), Some("SyntaxError"));
    // A new file is checked too.
    let new = ws.verify(&v, &[Change::new("pkg/more.py", "def f(:\n")]);
    assert_eq!(new.new_errors.len(), 1, "{:?}", new.new_errors);
    assert!(!ws.path().join("pkg/__pycache__").exists());
}

#[test]
fn without_the_toolchain_tree_sitter_checks_and_says_so() {
    let ws = Ws::rust();
    let empty = tempfile::tempdir().unwrap();
    let v = ws.verifier(Toolbox::with_path(empty.path()));
    // Type errors get through a parse; that is why the verdict names the check.
    let typed_wrong = ws.verify(&v, &[with_body("    name.len()\n")]);
    assert!(typed_wrong.passed());
    assert_eq!(
        typed_wrong.checks,
        vec![CheckRun {
            check: Check::TreeSitter,
            files: vec!["src/lib.rs".into()],
            fallback: Some("cargo not found".into())
        }]
    );
    assert_eq!(typed_wrong.checks_label(), "tree-sitter parse (cargo not found)");
    let broken = ws.verify(&v, &[with_body("    name.len(\n")]);
    assert!(!broken.passed());
    assert_eq!(broken.new_errors[0].file, Path::new("src/lib.rs"));
}

#[test]
fn a_checker_that_cannot_check_the_workspace_falls_back_to_tree_sitter() {
    // A dependency that is not in the local registry: `--offline` cannot resolve it before or after.
    let manifest = format!("{MANIFEST}no-such-crate-lokal-test = \"1\"\n");
    let ws = Ws::new(&[("Cargo.toml", &manifest), ("src/lib.rs", LIB)]);
    let v = ws.verifier(Toolbox::from_env());
    let verdict = ws.verify(&v, &[with_body("    name.len()\n")]);
    assert_eq!(labels(&verdict), vec![Check::TreeSitter]);
    assert!(verdict.checks[0].fallback.as_deref().unwrap().starts_with("cargo check failed"), "{:?}", verdict.checks);
}

#[test]
fn plan_paths_must_stay_inside_the_workspace() {
    let ws = Ws::rust();
    let v = ws.verifier(Toolbox::from_env());
    for bad in ["../escape.rs", "/etc/passwd", "src/../../x.rs", ""] {
        let r = v.verify(ws.path(), &[Change::new(bad, "x")], &CancelToken::new(), Duration::from_secs(5));
        assert!(matches!(r, Err(VerifyError::BadPath(_))), "{bad}: {r:?}");
    }
}

/// A `cargo` that starts a grandchild and waits: cancelling must kill both.
fn slow_cargo(dir: &Path, pidfile: &Path) -> Toolbox {
    use std::os::unix::fs::PermissionsExt;
    let script = dir.join("cargo");
    fs::write(&script, format!("#!/bin/sh\nsleep 60 &\necho $! > {}\nwait\n", pidfile.display())).unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    Toolbox::with_path(
        std::env::join_paths([dir.to_path_buf(), PathBuf::from("/bin"), PathBuf::from("/usr/bin")]).unwrap(),
    )
}

fn alive(pid: i32) -> bool {
    // A zombie still answers kill(0); its state letter says it is gone.
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|s| !s.rsplit(')').next().unwrap_or("").trim_start().starts_with('Z'))
}

#[test]
fn cancelling_kills_a_slow_check_and_its_children() {
    let ws = Ws::rust();
    let bin = tempfile::tempdir().unwrap();
    let pidfile = bin.path().join("pid");
    let v = Arc::new(ws.verifier(slow_cargo(bin.path(), &pidfile)));
    let cancel = CancelToken::new();
    let (v2, c2, p) = (v.clone(), cancel.clone(), ws.path().to_path_buf());
    let t = std::thread::spawn(move || {
        let t0 = Instant::now();
        (v2.verify(&p, &[with_body("    String::new()\n")], &c2, Duration::from_secs(120)), t0.elapsed())
    });
    let t0 = Instant::now();
    while !pidfile.exists() || fs::read_to_string(&pidfile).unwrap().trim().is_empty() {
        assert!(t0.elapsed() < Duration::from_secs(20), "the fake cargo never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    let grandchild: i32 = fs::read_to_string(&pidfile).unwrap().trim().parse().unwrap();
    assert!(alive(grandchild));
    cancel.cancel();
    let (result, took) = t.join().unwrap();
    assert_eq!(result.unwrap_err(), VerifyError::Cancelled);
    assert!(took < Duration::from_secs(30));
    let t0 = Instant::now();
    while alive(grandchild) {
        assert!(t0.elapsed() < Duration::from_secs(5), "the checker's child survived the cancel");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_check_past_its_budget_is_stopped() {
    let ws = Ws::rust();
    let bin = tempfile::tempdir().unwrap();
    let v = ws.verifier(slow_cargo(bin.path(), &bin.path().join("pid")));
    let t0 = Instant::now();
    let r = v.verify(ws.path(), &[with_body("    String::new()\n")], &CancelToken::new(), Duration::from_millis(500));
    assert_eq!(r.unwrap_err(), VerifyError::TimedOut);
    assert!(t0.elapsed() < Duration::from_secs(20));
}

#[tokio::test]
async fn best_of_feeds_the_compilers_error_into_the_next_attempt() {
    let ws = Ws::rust();
    let v = Arc::new(ws.verifier(Toolbox::from_env()));
    let prompts = Arc::new(StdMutex::new(Vec::new()));
    let seen = prompts.clone();
    // Stand-in model: returns a length until the prompt shows it a type mismatch.
    let generate = move |a: Attempt| {
        let prompt = match &a.feedback {
            Some(f) => f.prompt("Implement initials_of."),
            None => "Implement initials_of.".to_string(),
        };
        seen.lock().unwrap().push((a.index, a.temperature, prompt.clone()));
        async move {
            Ok(if prompt.contains("mismatched types") {
                "    name.split_whitespace().filter_map(|w| w.chars().next()).collect()\n".to_string()
            } else {
                "    name.len()\n".to_string()
            })
        }
    };
    let events = Arc::new(StdMutex::new(Vec::new()));
    let ev = events.clone();
    let settings =
        BestOfSettings { candidates: 3, temperature: 0.7, budget: Duration::from_secs(120), feedback_lines: 4 };
    let r = best_of(
        v,
        ws.path().to_path_buf(),
        &settings,
        &CancelToken::new(),
        generate,
        |c| Ok(vec![with_body(c)]),
        move |p| ev.lock().unwrap().push(p),
    )
    .await
    .unwrap();
    let (chosen, plan, verdict) = r.chosen.clone().expect("the second attempt passes");
    assert!(chosen.contains("split_whitespace"));
    assert!(verdict.passed());
    assert_eq!(plan[0].path, Path::new("src/lib.rs"));
    assert_eq!(r.tried.len(), 2);
    assert!(r.tried[0].refused.as_deref().unwrap().contains("E0308"));
    let prompts = prompts.lock().unwrap();
    assert_eq!((prompts[0].0, prompts[0].1), (0, 0.0));
    assert_eq!((prompts[1].0, prompts[1].1), (1, 0.7));
    assert!(
        prompts[1].2.contains("name.len()") && prompts[1].2.contains("src/lib.rs:3: error[E0308]"),
        "{}",
        prompts[1].2
    );
    let events = events.lock().unwrap();
    assert!(
        matches!(
            events[..],
            [
                Progress::Generating { index: 0, of: 3 },
                Progress::Verifying { index: 0, .. },
                Progress::Refused { index: 0, .. },
                Progress::Generating { index: 1, .. },
                Progress::Verifying { index: 1, .. },
                Progress::Passed { index: 1, of: 3 }
            ]
        ),
        "{events:?}"
    );
    assert!(r.summary().starts_with("2 candidate(s) tried, 1 passed after"), "{}", r.summary());
    assert!(r.summary().ends_with("checks: cargo check"), "{}", r.summary());
}

#[tokio::test]
async fn best_of_gives_up_after_n_and_says_why() {
    let ws = Ws::rust();
    let v = Arc::new(ws.verifier(Toolbox::from_env()));
    let settings = BestOfSettings { candidates: 2, ..Default::default() };
    let r = best_of(
        v,
        ws.path().to_path_buf(),
        &settings,
        &CancelToken::new(),
        |_| async { Ok("no code here".to_string()) },
        |_| Err("no code block in the answer".to_string()),
        |_| {},
    )
    .await
    .unwrap();
    assert!(r.chosen.is_none());
    assert_eq!(r.tried.len(), 2);
    assert_eq!(r.tried[1].refused.as_deref(), Some("no code block in the answer"));
    let r = best_of(
        Arc::new(ws.verifier(Toolbox::from_env())),
        ws.path().to_path_buf(),
        &settings,
        &CancelToken::new(),
        |_| async { Err("the model is not available".to_string()) },
        |c| Ok(vec![with_body(c)]),
        |_| {},
    )
    .await
    .unwrap();
    assert_eq!(r.stopped.as_deref(), Some("the model is not available"));
    assert!(r.tried.is_empty());
}

#[test]
fn a_plan_diff_shows_new_and_changed_files() {
    let ws = Ws::rust();
    let d = plan_diff(
        ws.path(),
        &[
            Change::new("src/lib.rs", format!("pub mod initials;\n{LIB}")),
            Change::new("src/initials.rs", "pub fn of() {}\n"),
            Change::new("Cargo.toml", MANIFEST),
        ],
    );
    assert!(
        d.contains("--- a/src/lib.rs\n+++ b/src/lib.rs\n@@ -1,3 +1,4 @@\n+pub mod initials;\n /// Initials of a name"),
        "{d}"
    );
    assert!(
        d.contains("new file mode 100644\n--- /dev/null\n+++ b/src/initials.rs\n@@ -0,0 +1 @@\n+pub fn of() {}\n"),
        "{d}"
    );
    assert!(!d.contains("Cargo.toml"), "unchanged files are left out: {d}");
}
