//! Client tiers end to end: a fake cloud API on loopback records what arrives, per tier, and the audit log
//! must match it exactly. Runs the real binary with the real small model.
use lokal_bench::client::LspClient;
use lokal_bench::testing;
use lokal_engine::policy::testing::{FakeServer, Reply, Request};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

fn exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_lokal"))
}

fn model() -> String {
    testing::test_model().display().to_string()
}

/// A loopback HTTP server speaking the Anthropic Messages shape; it records every request.
fn fake_cloud() -> FakeServer {
    let answer = json!({"content": [{"type": "text", "text": "# Design: reminders\n\nFile: src/reminders.rs\n\nSend a reminder when an invoice is overdue.\n"}]}).to_string();
    FakeServer::start((0..20).map(|_| Reply::json(200, &answer)).collect())
}

fn body(r: &Request) -> String {
    String::from_utf8_lossy(&r.body).into()
}

fn write(root: &Path, rel: &str, text: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

const CANARIES: [&str; 7] = [
    "Erika Mustermann",
    "erika@bank.example",
    "DE89370400440532013000",
    "1234.56",
    "sk-live-CANARY",
    "+49 30 9876543",
    "TIER2_SOURCE_CANARY",
];

fn workspace(base: &Path) -> Vec<PathBuf> {
    let t1 = base.join("tier1");
    write(&t1, ".lokal.toml", "tier = 1\n");
    write(
        &t1,
        "src/billing.rs",
        "// Add overdue reminders for invoices.\npub fn total(items: &[i64]) -> i64 {\n    items.iter().sum()\n}\n",
    );
    let t2 = base.join("tier2");
    write(&t2, ".lokal.toml", "tier = 2\n");
    write(&t2, "docs/req.md", "# Requirement\n\nSend payment reminders for overdue invoices.\n");
    write(&t2, "src/secret.rs", "// TIER2_SOURCE_CANARY\nfn main() {}\n");
    write(
        &t2,
        "db/schema.sql",
        "CREATE TABLE customers (id integer PRIMARY KEY, full_name text, email text, iban text, phone text);\n\
         CREATE TABLE invoices (id integer PRIMARY KEY, customer_id integer REFERENCES customers(id), amount numeric(10,2));\n\
         INSERT INTO customers VALUES (4711, 'Erika Mustermann', 'erika@bank.example', 'DE89370400440532013000', '+49 30 9876543');\n\
         INSERT INTO invoices VALUES (9001, 4711, 1234.56);\n",
    );
    write(&t2, ".env", "PAYMENT_API_TOKEN=sk-live-CANARY\n");
    let t3 = base.join("tier3");
    write(&t3, ".lokal.toml", "tier = 3\n");
    write(&t3, "docs/req.md", "# Requirement\n\nSend payment reminders.\n");
    let broken = base.join("broken");
    write(&broken, ".lokal.toml", "tier = = 2\n");
    let strict = base.join("strict");
    write(&strict, ".lokal.toml", "tier = 1\n");
    vec![t1, t2, t3, broken, strict]
}

fn uri(p: &Path) -> String {
    testing::file_uri(p)
}

/// What an editor that can ask the user says it supports; the user's answer is "Send" unless a test says else.
fn asking_client() -> Value {
    json!({"workDoneProgress": true, "showMessage": {"messageActionItem": {"additionalPropertiesSupport": false}}, "showDocument": {"support": true}})
}

fn start(roots: &[PathBuf], cloud: &str, audit: &Path, options: Value) -> LspClient {
    let mut c = start_with(roots, cloud, audit, options, asking_client());
    c.answers.insert("window/showMessageRequest".into(), json!({"title": "Send"}));
    c.answers.insert("window/showDocument".into(), json!({"success": true}));
    c
}

fn start_with(roots: &[PathBuf], cloud: &str, audit: &Path, options: Value, window: Value) -> LspClient {
    let env = [
        ("LOKAL_CLOUD_BASE_URL", cloud.to_string()),
        ("ANTHROPIC_API_KEY", "test-key".to_string()),
        ("LOKAL_AUDIT_LOG", audit.display().to_string()),
        ("LOKAL_NO_DAEMON", "1".into()),
        ("LOKAL_LOG", "warn".into()),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut c = LspClient::spawn(&exe(), &["--stdio"], &env, Stdio::null()).unwrap();
    let folders: Vec<Value> =
        roots.iter().map(|r| json!({"uri": uri(r), "name": r.file_name().unwrap().to_str()})).collect();
    let mut init = json!({
        "processId": null, "rootUri": null, "workspaceFolders": folders,
        "capabilities": {"window": window, "workspace": {"applyEdit": true, "workspaceEdit": {"documentChanges": true}}},
        "initializationOptions": options
    });
    init["initializationOptions"]["modelPath"] = json!(model());
    init["initializationOptions"]["maxTokens"] = json!(8);
    c.request("initialize", init).unwrap();
    c.notify("initialized", json!({}));
    c
}

fn actions(c: &mut LspClient, file: &str, range: Value) -> Vec<String> {
    let r = c
        .request(
            "textDocument/codeAction",
            json!({"textDocument": {"uri": file}, "range": range, "context": {"diagnostics": []}}),
        )
        .unwrap();
    r.as_array()
        .unwrap()
        .iter()
        .map(|a| a["command"]["command"].as_str().or(a["data"]["kind"].as_str()).unwrap_or("").to_string())
        .collect()
}

fn design(c: &mut LspClient, file: &str, range: Value) -> Result<Value, lokal_bench::client::RpcError> {
    c.request(
        "workspace/executeCommand",
        json!({"command": "lokal.cloudDesign", "arguments": [{"uri": file, "range": range}]}),
    )
}

#[test]
fn what_crosses_the_boundary_per_tier_and_the_audit_log_matches() {
    let base = std::env::temp_dir().join(format!("lokal-tiers-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let roots = workspace(&base);
    let fake = fake_cloud();
    let cloud = fake.url("");
    let audit = base.join("audit.jsonl");
    let strict_override = json!({"overrides": {roots[4].display().to_string(): 2, roots[2].display().to_string(): 1}});
    let mut c = start(&roots, &cloud, &audit, strict_override);

    // Every folder keeps its own tier; broken fails closed; overrides only tighten.
    let st = c.request("lokal/status", json!({})).unwrap();
    let tiers: Vec<(u64, String)> = st["folders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["tier"].as_u64().unwrap(), f["source"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(
        tiers,
        vec![(1, "file".into()), (2, "file".into()), (3, "file".into()), (3, "fallback".into()), (2, "user".into())],
        "{st}"
    );
    let diag = c
        .wait_for(Duration::from_secs(10), |m| {
            m["method"] == "textDocument/publishDiagnostics"
                && m["params"]["uri"].as_str().unwrap_or("").contains("broken")
        })
        .expect("a diagnostic on the broken tag file");
    assert!(diag["params"]["diagnostics"][0]["message"].as_str().unwrap().contains("Tier 3"), "{diag}");

    // Tier 1: the requirement and its code context arrive.
    let f1 = uri(&roots[0].join("src/billing.rs"));
    c.open(&f1, "rust", &std::fs::read_to_string(roots[0].join("src/billing.rs")).unwrap());
    let sel = json!({"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 38}});
    assert!(actions(&mut c, &f1, sel.clone()).contains(&"lokal.cloudDesign".to_string()));
    let r = design(&mut c, &f1, sel).unwrap();
    assert!(r["uri"].as_str().unwrap().ends_with("docs/design/billing-design.md"), "{r}");
    let edit = c
        .received
        .iter()
        .find(|m| m["method"] == "workspace/applyEdit")
        .expect("the design is proposed as an edit")
        .clone();
    assert_eq!(edit["params"]["edit"]["documentChanges"][0]["kind"], "create");
    {
        let s = fake.requests();
        assert_eq!(s.len(), 1);
        assert_eq!((s[0].path.as_str(), s[0].header("x-api-key")), ("/v1/messages", Some("test-key")));
        let b = body(&s[0]);
        assert!(b.contains("Add overdue reminders") && b.contains("items.iter().sum()"), "tier 1 sends context: {b}");
    }

    // Tier 2: only the requirement and the anonymized schema.
    let f2 = uri(&roots[1].join("docs/req.md"));
    c.open(&f2, "markdown", &std::fs::read_to_string(roots[1].join("docs/req.md")).unwrap());
    let whole = json!({"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 0}});
    let preview = c
        .request(
            "workspace/executeCommand",
            json!({"command": "lokal.previewCloudPayload", "arguments": [{"uri": f2}]}),
        )
        .unwrap();
    design(&mut c, &f2, whole).unwrap();
    {
        let s = fake.requests();
        assert_eq!(s.len(), 2);
        let body = &body(&s[1]);
        for canary in CANARIES {
            assert!(!body.contains(canary), "{canary} crossed the boundary: {body}");
        }
        for structure in ["customers", "invoices", "full_name", "customer_id", "payment reminders"] {
            assert!(body.contains(structure), "{structure} missing: {body}");
        }
        assert!(
            body.contains(&serde_json::to_string(preview["user"].as_str().unwrap()).unwrap()),
            "the preview is exactly what was sent"
        );
    }

    // Tier 3: not offered, refused, nothing arrives.
    let f3 = uri(&roots[2].join("docs/req.md"));
    c.open(&f3, "markdown", "# Requirement\n\nSend payment reminders.\n");
    assert!(!actions(&mut c, &f3, json!({"start": {"line": 0, "character": 0}, "end": {"line": 2, "character": 5}}))
        .contains(&"lokal.cloudDesign".to_string()));
    let refused = design(&mut c, &f3, json!(null)).expect_err("Tier 3 refuses cloud help");
    assert!(refused.message.contains("Tier 3"), "{refused}");
    assert_eq!(fake.accepted(), 2, "nothing arrived from Tier 3");

    // The audit log holds exactly the requests the fake cloud received.
    let records: Vec<Value> =
        std::fs::read_to_string(&audit).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let bodies: Vec<String> = fake.requests().iter().map(|r| format!("{:x}", Sha256::digest(&r.body))).collect();
    let logged: Vec<String> = records.iter().map(|r| r["sha256"].as_str().unwrap().to_string()).collect();
    assert_eq!(logged, bodies);
    assert_eq!(
        records.iter().map(|r| (r["tier"].as_u64().unwrap(), r["anonymized"].as_bool().unwrap())).collect::<Vec<_>>(),
        vec![(1, false), (2, true)]
    );
    assert!(records.iter().all(|r| !r["workspace"].as_str().unwrap().contains("tier3")));

    // Changing a tag file takes effect without a restart.
    write(&roots[3], ".lokal.toml", "tier = 1\n");
    c.notify(
        "workspace/didChangeWatchedFiles",
        json!({"changes": [{"uri": uri(&roots[3].join(".lokal.toml")), "type": 2}]}),
    );
    std::thread::sleep(Duration::from_millis(300));
    let st = c.request("lokal/status", json!({})).unwrap();
    assert_eq!(st["folders"][3]["tier"], 1, "{st}");
    c.shutdown();
    let _ = std::fs::remove_dir_all(&base);
}

#[test]
fn a_tier_3_session_works_with_no_network_at_all() {
    if !std::process::Command::new("unshare").args(["-n", "true"]).status().is_ok_and(|s| s.success()) {
        eprintln!("SKIPPED: this machine does not allow `unshare -n`");
        return;
    }
    let base = std::env::temp_dir().join(format!("lokal-netns-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let root = base.join("client");
    write(&root, ".lokal.toml", "tier = 3\n");
    let src = "pub fn add(a: i32, b: i32) -> i32 {\n    \n}\n";
    write(&root, "src/lib.rs", src);
    let exe = exe();
    let args = ["-n", exe.to_str().unwrap(), "--stdio"];
    let mut c = LspClient::spawn(
        Path::new("unshare"),
        &args,
        &[("LOKAL_NO_DAEMON", "1"), ("LOKAL_LOG", "warn")],
        Stdio::null(),
    )
    .unwrap();
    c.initialize(Some(&uri(&root)), json!({"modelPath": model(), "maxTokens": 8}), false).unwrap();
    let f = uri(&root.join("src/lib.rs"));
    c.open(&f, "rust", src);
    testing::wait_ready(&mut c, Duration::from_secs(10)).expect("model loads without network");
    let r = c.request(
        "textDocument/inlineCompletion",
        json!({"textDocument": {"uri": f}, "position": {"line": 1, "character": 4}, "context": {"triggerKind": 1}}),
    );
    assert!(r.is_ok(), "completion works offline: {r:?}");
    let acts = c.request("textDocument/codeAction", json!({"textDocument": {"uri": f}, "range": {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 10}}, "context": {"diagnostics": []}}));
    assert!(acts.is_ok(), "code actions answer offline: {acts:?}");
    let st = c.request("lokal/status", json!({})).unwrap();
    assert_eq!(st["folders"][0]["tier"], 3);
    c.shutdown();
    let _ = std::fs::remove_dir_all(&base);
}

/// One canary per detector, planted in the requirement, the selection, the open file and the data files.
const T2_CANARIES: [(&str, &str); 12] = [
    ("e-mail in the requirement", "w.kowalczyk@klinik-ost.example"),
    ("phone in the requirement", "+49 341 5550199"),
    ("date in the requirement", "23.07.1961"),
    ("IBAN in the requirement", "GB82 WEST 1234 5698 7654 32"),
    ("card in the selection", "4111 1111 1111 1111"),
    ("token in the selection", "ghp_Zq8Lw2Rt5Yx9Pk3Mn7Bv4Cj6Hd1Fg0SaQe"),
    ("password value in the open file", "Winter#2025"),
    ("string literal in the open file", "Brunhilde Sauerbier"),
    ("data-file name (SQL)", "Wilhelmine"),
    ("data-file value (CSV)", "Kowalczyk"),
    ("data-file value (JSON)", "Quedlinburg"),
    ("data-file e-mail (SQL)", "wk@privat.example"),
];

#[test]
fn tier_2_canaries_of_every_kind_never_reach_the_cloud() {
    let base = std::env::temp_dir().join(format!("lokal-t2-canaries-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let root = base.join("clinic");
    write(&root, ".lokal.toml", "tier = 2\n");
    write(
        &root,
        "db/schema.sql",
        "CREATE TABLE patients (id integer PRIMARY KEY, full_name text, email text, born date);\n\
         INSERT INTO patients VALUES (90210, 'Wilhelmine Kowalczyk', 'wk@privat.example', '1961-07-23');\n",
    );
    write(&root, "data/contacts.csv", "patient_id,last_name,city\n90210,Kowalczyk,Quedlinburg\n");
    write(&root, "data/visits.json", "[{\"patient_id\": 90210, \"town\": \"Quedlinburg\", \"note\": \"Kontrolle\"}]\n");
    let req = "# Requirement\n\nSend payment reminders to Wilhelmine Kowalczyk (w.kowalczyk@klinik-ost.example, +49 341 5550199, \
               born 23.07.1961, IBAN GB82 WEST 1234 5698 7654 32) when an invoice is overdue.\n";
    write(&root, "docs/req.md", req);
    let code = "SMTP_PASSWORD = \"Winter#2025\"\nGREETING = \"Liebe Brunhilde Sauerbier\"\n\n\
                def send_payment_reminder(patient_id: int) -> bool:\n    card = \"4111 1111 1111 1111\"\n    token = \"ghp_Zq8Lw2Rt5Yx9Pk3Mn7Bv4Cj6Hd1Fg0SaQe\"\n    return notify(patient_id, card, token)\n";
    write(&root, "src/reminders.py", code);
    let fake = fake_cloud();
    let audit = base.join("audit.jsonl");
    let mut c = start(std::slice::from_ref(&root), &fake.url(""), &audit, json!({}));
    let f_req = uri(&root.join("docs/req.md"));
    let f_code = uri(&root.join("src/reminders.py"));
    c.open(&f_req, "markdown", req);
    c.open(&f_code, "python", code);
    let preview = c
        .request(
            "workspace/executeCommand",
            json!({"command": "lokal.previewCloudPayload", "arguments": [{"uri": f_req}]}),
        )
        .unwrap();
    design(&mut c, &f_req, json!({"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 0}})).unwrap();
    // The selection is the function; the open file around it holds the constants.
    design(&mut c, &f_code, json!({"start": {"line": 3, "character": 0}, "end": {"line": 7, "character": 0}})).unwrap();
    let bodies: Vec<String> = fake.requests().iter().map(body).collect();
    assert_eq!(bodies.len(), 2);
    for body in &bodies {
        for (what, canary) in T2_CANARIES {
            assert!(
                !body.to_lowercase().contains(&canary.to_lowercase()),
                "{what} ({canary}) crossed the boundary: {body}"
            );
        }
    }
    for structure in
        ["patients", "full_name", "patient_id", "last_name", "Send payment reminders to", "when an invoice is overdue"]
    {
        assert!(bodies[0].contains(structure), "{structure} missing from the requirement's request: {}", bodies[0]);
    }
    for structure in [
        "def send_payment_reminder(patient_id: int) -> bool:",
        "SMTP_PASSWORD = \\\"<redacted>\\\"",
        "return notify(patient_id, card, token)",
        "CREATE TABLE patients",
    ] {
        assert!(bodies[1].contains(structure), "{structure} missing from the code's request: {}", bodies[1]);
    }
    let records: Vec<Value> =
        std::fs::read_to_string(&audit).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(
        records.iter().map(|r| (r["tier"].as_u64().unwrap(), r["anonymized"].as_bool().unwrap())).collect::<Vec<_>>(),
        vec![(2, true), (2, true)]
    );
    // The per-detector counts reach the preview and the audit record alike.
    let counts = preview["counts"].as_object().unwrap();
    for d in ["e-mail", "phone", "date", "IBAN", "data-file value"] {
        assert!(counts.get(d).and_then(Value::as_u64).unwrap_or(0) >= 1, "{d} not counted: {preview}");
    }
    assert_eq!(records[0]["counts"], preview["counts"]);
    c.shutdown();
    let _ = std::fs::remove_dir_all(&base);
}

fn asked(c: &LspClient) -> Vec<Value> {
    c.received.iter().filter(|m| m["method"] == "window/showMessageRequest").cloned().collect()
}

fn audit_records(audit: &Path) -> Vec<Value> {
    std::fs::read_to_string(audit).unwrap_or_default().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn the_user_approves_what_leaves_sees_exactly_it_and_declining_sends_nothing() {
    let base = std::env::temp_dir().join(format!("lokal-t2-consent-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let roots = workspace(&base);
    let (t1, t2) = (roots[0].clone(), roots[1].clone());
    let fake = fake_cloud();
    let audit = base.join("audit.jsonl");
    // cloudConfirm: false lets Tier 1 go unasked; it must not switch off the question in Tier 2.
    let mut c = start(&roots[..2], &fake.url(""), &audit, json!({"cloudConfirm": false}));
    let req = uri(&t2.join("docs/req.md"));
    c.open(&req, "markdown", &std::fs::read_to_string(t2.join("docs/req.md")).unwrap());
    let whole = json!({"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 0}});

    // Cancel, then dismissing the question: nothing sent, nothing audited, no edit proposed.
    c.queued.insert("window/showMessageRequest".into(), [json!({"title": "Cancel"}), Value::Null].into());
    for _ in 0..2 {
        let r = design(&mut c, &req, whole.clone()).unwrap();
        assert_eq!(r["sent"], false, "{r}");
    }
    let q = asked(&c);
    assert_eq!(q.len(), 2);
    let titles: Vec<&str> =
        q[0]["params"]["actions"].as_array().unwrap().iter().map(|a| a["title"].as_str().unwrap()).collect();
    assert_eq!(titles, ["Send", "Show payload", "Cancel"]);
    assert_eq!(fake.accepted(), 0, "declining sends nothing");
    assert!(audit_records(&audit).is_empty(), "declining audits nothing");
    assert!(!c.received.iter().any(|m| m["method"] == "workspace/applyEdit"));

    // Show, then Send: the preview holds exactly the bytes that are sent, outside the workspace.
    c.queued.insert(
        "window/showMessageRequest".into(),
        [json!({"title": "Show payload"}), json!({"title": "Send"})].into(),
    );
    let r = design(&mut c, &req, whole.clone()).unwrap();
    assert_eq!(r["sent"], true, "{r}");
    assert_eq!(asked(&c).len(), 4, "asked again after showing the payload");
    let shown = c.received.iter().find(|m| m["method"] == "window/showDocument").expect("the payload is shown").clone();
    let preview = PathBuf::from(shown["params"]["uri"].as_str().unwrap().trim_start_matches("file://"));
    assert!(roots.iter().all(|r| !preview.starts_with(r)), "the preview is outside the workspace: {preview:?}");
    assert!(std::fs::metadata(&preview).unwrap().permissions().readonly());
    let sent = fake.requests();
    assert_eq!(sent.len(), 1, "Send sends once");
    assert_eq!(std::fs::read(&preview).unwrap(), sent[0].body, "the preview is byte for byte what was sent");
    let records = audit_records(&audit);
    assert_eq!(records.len(), 1, "one request, one audit record");
    assert_eq!(records[0]["sha256"].as_str().unwrap(), format!("{:x}", Sha256::digest(&sent[0].body)));

    // Phase 1 feeds phase 2: the design is proposed under docs/design/ and parses as a design document.
    assert_eq!(r["targets"], json!(["src/reminders.rs"]), "{r}");
    let edit = c.received.iter().find(|m| m["method"] == "workspace/applyEdit").expect("the design is an edit").clone();
    let ops = &edit["params"]["edit"]["documentChanges"];
    assert_eq!(ops[0]["kind"], "create");
    assert!(ops[0]["uri"].as_str().unwrap().ends_with("tier2/docs/design/req-design.md"), "{ops}");
    let text = ops[1]["edits"][0]["newText"].as_str().unwrap();
    let plan = lokal_engine::syntax::design_doc::plan(text, None).unwrap();
    assert_eq!(plan.targets.iter().map(|t| t.path.as_str()).collect::<Vec<_>>(), ["src/reminders.rs"]);

    // Tier 1 with cloudConfirm false goes without a question.
    let f1 = uri(&t1.join("src/billing.rs"));
    c.open(&f1, "rust", &std::fs::read_to_string(t1.join("src/billing.rs")).unwrap());
    let sel = json!({"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 38}});
    assert_eq!(design(&mut c, &f1, sel).unwrap()["sent"], true);
    assert_eq!(asked(&c).len(), 4, "Tier 1 was not asked");
    assert_eq!((fake.accepted(), audit_records(&audit).len()), (2, 2));
    c.shutdown();

    // An editor that cannot ask is refused, even in Tier 1 with the default settings; nothing leaves.
    let audit2 = base.join("audit2.jsonl");
    let mut c = start_with(&roots[..2], &fake.url(""), &audit2, json!({}), json!({"workDoneProgress": true}));
    c.open(&f1, "rust", &std::fs::read_to_string(t1.join("src/billing.rs")).unwrap());
    c.open(&req, "markdown", &std::fs::read_to_string(t2.join("docs/req.md")).unwrap());
    for (file, range) in
        [(&f1, json!({"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 38}})), (&req, whole)]
    {
        let e = design(&mut c, file, range).expect_err("an editor that cannot ask is refused");
        assert!(e.message.contains("cannot ask for approval"), "{e}");
    }
    assert!(asked(&c).is_empty());
    assert_eq!(fake.accepted(), 2, "nothing more arrived");
    assert!(audit_records(&audit2).is_empty());
    c.shutdown();
    let _ = std::fs::remove_dir_all(&base);
}

#[test]
fn tier_1_lets_the_cloud_implement_through_the_verifier_and_tiers_2_and_3_refuse() {
    let base = std::env::temp_dir().join(format!("lokal-t1-impl-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let stub = "pub fn total(items: &[i64]) -> i64 {\n    todo!()\n}\n";
    let mut roots = vec![];
    for (name, tier) in [("shop", 1), ("clinic", 2), ("vault", 3)] {
        let root = base.join(name);
        write(&root, ".lokal.toml", &format!("tier = {tier}\n"));
        write(&root, "Cargo.toml", &format!("[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n"));
        write(&root, "src/lib.rs", stub);
        roots.push(root);
    }
    let answer =
        |code: &str| json!({"content": [{"type": "text", "text": format!("```rust\n{code}```\n")}]}).to_string();
    let fake = FakeServer::start(vec![
        Reply::json(200, &answer("pub fn total(items: &[i64]) -> i64 {\n    \"not a number\"\n}\n")),
        Reply::json(200, &answer("pub fn total(items: &[i64]) -> i64 {\n    items.iter().sum()\n}\n")),
    ]);
    let audit = base.join("audit.jsonl");
    let mut c = start(&roots, &fake.url(""), &audit, json!({}));
    let files: Vec<String> = roots.iter().map(|r| uri(&r.join("src/lib.rs"))).collect();
    for f in &files {
        c.open(f, "rust", stub);
    }
    let sel = json!({"start": {"line": 0, "character": 0}, "end": {"line": 2, "character": 1}});
    let implement = |c: &mut LspClient, f: &str| {
        c.request(
            "workspace/executeCommand",
            json!({"command": "lokal.implementWithCloud", "arguments": [{"uri": f, "range": sel}]}),
        )
    };
    assert!(actions(&mut c, &files[0], sel.clone()).contains(&"lokal.implementWithCloud".to_string()));
    for f in &files[1..] {
        assert!(!actions(&mut c, f, sel.clone()).contains(&"lokal.implementWithCloud".to_string()));
        // Hidden is not enough: the handler refuses too, before anything is asked or sent.
        let e = implement(&mut c, f).expect_err("only Tier 1 may let the cloud implement");
        assert!(e.message.contains("Tier 1 folders only"), "{e}");
    }
    assert_eq!((fake.accepted(), asked(&c).len()), (0, 0));

    // Code the compiler rejects is not applied, and the user hears why.
    let e = implement(&mut c, &files[0]).expect_err("a type error is refused");
    assert!(e.message.contains("not applied") && e.message.contains("src/lib.rs"), "{e}");
    assert!(!c.received.iter().any(|m| m["method"] == "workspace/applyEdit"));

    // Code that checks becomes one versioned edit of the open document.
    let r = implement(&mut c, &files[0]).unwrap();
    assert_eq!(r["applied"], true, "{r}");
    let edit = c.received.iter().find(|m| m["method"] == "workspace/applyEdit").expect("an edit").clone();
    let change = &edit["params"]["edit"]["documentChanges"][0];
    assert_eq!(change["textDocument"]["uri"], files[0].as_str());
    assert!(change["textDocument"]["version"].is_i64(), "{change}");
    assert!(change["edits"][0]["newText"].as_str().unwrap().contains("items.iter().sum()"), "{change}");
    assert_eq!(change["edits"][0]["range"], sel);
    assert_eq!(fake.accepted(), 2);
    let records = audit_records(&audit);
    assert_eq!(records.iter().map(|r| r["tier"].as_u64().unwrap()).collect::<Vec<_>>(), [1, 1]);
    c.shutdown();
    let _ = std::fs::remove_dir_all(&base);
}
