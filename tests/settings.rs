//! Settings through the real binary: one bad value is reported (window/showMessage, lokal/status problems)
//! and does not take the others down; lokal/status says where the settings and the model come from.
use lokal_bench::client::LspClient;
use lokal_bench::testing;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

fn exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_lokal"))
}

fn model() -> PathBuf {
    let p = lokal_engine::EngineConfig::default().resolved_model_path();
    assert!(p.exists(), "test model missing at {}: run scripts/fetch-model.sh (or set LOKAL_MODEL)", p.display());
    p
}

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("lokal-settings-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The test model under another name (a hard link, else a copy), so that loading it proves `modelPath` was
/// read rather than LOKAL_MODEL or the default.
fn model_under_another_name(dir: &Path) -> PathBuf {
    let p = dir.join("renamed-model.gguf");
    if std::fs::hard_link(model(), &p).is_err() {
        std::fs::copy(model(), &p).unwrap();
    }
    p
}

fn start(root: &Path, options: Value) -> LspClient {
    let mut c =
        LspClient::spawn(&exe(), &["--stdio"], &[("LOKAL_LOG", "warn"), ("LOKAL_NO_DAEMON", "1")], Stdio::null())
            .unwrap();
    c.initialize(Some(&format!("file://{}", root.display())), options, false).unwrap();
    c
}

fn warnings_naming(c: &LspClient, key: &str) -> usize {
    c.received
        .iter()
        .filter(|m| {
            m["method"] == "window/showMessage"
                && m["params"]["type"] == 2
                && m["params"]["message"].as_str().unwrap_or("").contains(key)
        })
        .count()
}

fn problem_keys(st: &Value) -> Vec<String> {
    st["problems"].as_array().unwrap().iter().map(|p| p["key"].as_str().unwrap().to_string()).collect()
}

#[test]
fn a_bad_max_tokens_beside_a_good_model_path_loads_that_model_and_is_reported() {
    let dir = temp_dir("bad-value");
    let renamed = model_under_another_name(&dir);
    let mut c = start(
        &dir,
        json!({"lokal": {"maxTokens": "lots", "modelPath": renamed, "maxLines": 2, "modelpath": "/elsewhere.gguf"}}),
    );
    let st = testing::status_when_loaded(&mut c);
    assert_eq!(st["model"]["state"], "ready", "{st}");
    assert_eq!(st["model"]["path"], json!(renamed), "the good modelPath applied: {st}");
    assert_eq!(st["model"]["source"], "modelPath", "{st}");
    assert_eq!(
        (st["engine"].as_str(), st["settings"]["source"].as_str()),
        (Some("in-process"), Some("settings")),
        "{st}"
    );
    assert_eq!(problem_keys(&st), vec!["maxTokens".to_string(), "modelpath".to_string()], "{st}");
    let p = &st["problems"][0];
    assert!(p["value"] == "\"lots\"" && p["message"].as_str().unwrap().contains("using 64"), "{p}");
    assert!(st["problems"][1]["message"].as_str().unwrap().contains("did you mean \"modelPath\""), "{st}");
    assert!(c
        .wait_for(Duration::from_secs(10), |m| m["method"] == "window/showMessage"
            && m["params"]["message"].as_str().unwrap_or("").contains("maxTokens"))
        .is_some());
    assert_eq!(warnings_naming(&c, "maxTokens"), 1);

    // The same settings again: nothing new to say. Fixed: the problem leaves the status.
    c.notify("workspace/didChangeConfiguration", json!({"settings": {"lokal": {"maxTokens": "lots", "modelPath": renamed, "maxLines": 2, "modelpath": "/elsewhere.gguf"}}}));
    c.notify(
        "workspace/didChangeConfiguration",
        json!({"settings": {"lokal": {"maxTokens": 8, "modelPath": renamed, "maxLines": 2}}}),
    );
    let st = c.request("lokal/status", json!({})).unwrap();
    assert_eq!(problem_keys(&st), Vec::<String>::new(), "{st}");
    assert_eq!(warnings_naming(&c, "maxTokens"), 1, "shown once per change, not once per message");
    assert_eq!(st["model"]["path"], json!(renamed), "the budget change did not reload another model: {st}");
    c.shutdown();
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_minimum_tier_written_as_text_fails_closed_and_status_says_why() {
    let dir = temp_dir("tier-text");
    // No tag file: the folder would take defaultTier 1; the floor cannot be read, so it is Tier 3.
    let mut c = start(&dir, json!({"modelPath": model(), "defaultTier": 1, "minimumTier": "2"}));
    let st = c.request("lokal/status", json!({})).unwrap();
    assert_eq!(
        (st["folders"][0]["tier"].as_u64(), st["folders"][0]["source"].as_str()),
        (Some(3), Some("user")),
        "{st}"
    );
    assert_eq!(problem_keys(&st), vec!["minimumTier".to_string()], "{st}");
    assert!(st["problems"][0]["message"].as_str().unwrap().contains("Tier 3"), "{st}");
    assert!(c
        .wait_for(Duration::from_secs(10), |m| m["method"] == "window/showMessage"
            && m["params"]["type"] == 2
            && m["params"]["message"].as_str().unwrap_or("").contains("minimumTier"))
        .is_some());
    // Pulled configuration goes through the same reading: a number now, and the floor applies as asked.
    c.answers
        .insert("workspace/configuration".into(), json!({"modelPath": model(), "defaultTier": 1, "minimumTier": 2}));
    c.notify("workspace/didChangeConfiguration", json!({"settings": null}));
    let mut st = Value::Null;
    for _ in 0..250 {
        st = c.request("lokal/status", json!({})).unwrap();
        if st["folders"][0]["tier"] == 2 {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!((st["folders"][0]["tier"].as_u64(), problem_keys(&st).len()), (Some(2), 0), "{st}");
    c.shutdown();

    // No settings at all: the status says the defaults are in force and where the model comes from.
    let mut c = start(&dir, Value::Null);
    let st = c.request("lokal/status", json!({})).unwrap();
    assert_eq!(st["settings"]["source"], "default", "{st}");
    let expected = if std::env::var_os("LOKAL_MODEL").is_some() { "LOKAL_MODEL" } else { "default" };
    assert_eq!(st["model"]["source"], expected, "{st}");
    assert_eq!(
        (st["folders"][0]["tier"].as_u64(), st["folders"][0]["source"].as_str()),
        (Some(3), Some("default")),
        "{st}"
    );
    c.shutdown();
    let _ = std::fs::remove_dir_all(dir);
}
