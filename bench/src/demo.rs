//! `lokal demo`: type through a fixture file as a person would and show each suggestion as ghost text.
use crate::client::LspClient;
use crate::trace::{self, Replayer};
use serde_json::json;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

const GRAY: &str = "\x1b[90m";
const BOLD: &str = "\x1b[1m";
const RESET: &str = "\x1b[0m";

pub fn run(trace_path: &Path, model: Option<&Path>) -> Result<(), String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let (tr, root) = trace::load(trace_path)?;
    println!("{BOLD}lokal demo{RESET}: {}", tr.description);
    println!("workspace: {}", root.display());
    let client =
        LspClient::spawn(&exe, &["--stdio"], &[("LOKAL_NO_DAEMON", "1")], Stdio::null()).map_err(|e| e.to_string())?;
    let mut r = Replayer::new(client, root.clone());
    let mut opts = json!({"maxTokens": 48, "maxLines": 4});
    if let Some(m) = model {
        opts["modelPath"] = json!(m);
    }
    let started = std::time::Instant::now();
    r.client.initialize(Some(&trace::uri_of(&root, "")), opts, false).map_err(|e| e.to_string())?;
    let s = crate::testing::wait_ready(&mut r.client, Duration::from_secs(600))?;
    let m = &s["model"];
    println!(
        "model: {} ({}, {} layers, {:.0} MB) ready in {:.0} ms\n",
        m["name"].as_str().unwrap_or("?"),
        m["architecture"].as_str().unwrap_or("?"),
        m["nLayer"],
        m["sizeBytes"].as_f64().unwrap_or(0.0) / 1e6,
        started.elapsed().as_secs_f64() * 1e3
    );
    for step in &tr.steps {
        r.step(step, true, &mut |rep, s| {
            let _ = rep;
            let how = if s.from_suggestion {
                "typed ahead, served without model work".to_string()
            } else {
                format!("re-decoded {} of {} prompt tokens", s.redecoded_tokens, s.prompt_tokens)
            };
            let sugg = s.suggestion.as_deref().unwrap_or("");
            // The first line with text, marked ↵ when the suggestion starts on a new line.
            let lead = if sugg.starts_with('\n') { "↵ " } else { "" };
            let first = format!("{lead}{}", sugg.split('\n').find(|l| !l.trim().is_empty()).unwrap_or("").trim_start());
            let more = match sugg.trim_end().matches('\n').count() {
                0 => String::new(),
                n => format!(" …(+{n} lines)"),
            };
            println!(
                "{:<13} {:<18} {:>7.0} ms  {}{}{}{}   [{how}]",
                s.kind.name(),
                s.file,
                s.latency_ms,
                GRAY,
                if first.is_empty() { "∅".to_string() } else { first },
                more,
                RESET
            );
        })?;
    }
    let stats = r.client.request("lokal/stats", json!({})).map_err(|e| e.to_string())?;
    let n = r.samples.len();
    let fast = r.samples.iter().filter(|s| s.from_suggestion).count();
    let mut lat: Vec<f64> = r.samples.iter().map(|s| s.latency_ms).collect();
    lat.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "\n{n} suggestions, {fast} served from the previous suggestion; median latency {:.0} ms; model passes {}",
        lat.get(n / 2).copied().unwrap_or(0.0),
        stats["decodeCalls"]
    );
    let Replayer { client, .. } = r;
    client.shutdown();
    Ok(())
}
