//! `lokal bench --sched`: the model thread's scheduler under load, on one in-process engine shared the way
//! the daemon shares it (one model, sessions told apart by the `s<N>:` prefix of their document keys).
//!
//! - keystrokes alone vs while a long generation (a design document) runs: by default (batched, the long job
//!   sitting out the keystrokes' steps), riding along in their batches, and one generation at a time;
//! - 1, 2 and 4 sessions typing through the trace at once: keystrokes answered per second in aggregate,
//!   batched vs one generation at a time (`batching: false`).
//!
//! The keystrokes are the trace's typing steps (a completion every `every` characters), sent straight to the
//! engine: the LSP layer adds the same small cost in every mode, so it is left out of the comparison.
use crate::bench::percentile;
use crate::trace::{self, Step};
use lokal_engine::stats::StepStats;
use lokal_engine::{CancelToken, CompletionRequest, Engine, EngineConfig, GenerateRequest, Priority};
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// One keystroke's request: the file and the text on either side of the cursor.
#[derive(Clone)]
struct Key {
    file: String,
    before: String,
    after: String,
}

/// The trace's keystrokes in order: every `every` typed characters, a completion at the cursor.
fn keystrokes(path: &Path) -> Result<Vec<Key>, String> {
    let (t, root) = trace::load(path)?;
    let mut texts: HashMap<String, String> = HashMap::new();
    let mut cursors: HashMap<String, usize> = HashMap::new();
    let (mut active, mut cursor): (Option<String>, usize) = (None, 0);
    let mut keys = Vec::new();
    for step in &t.steps {
        match step {
            Step::Open(f) => {
                let p = root.join(f);
                texts.insert(f.clone(), std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))?);
            }
            Step::Goto { file, after } => {
                let text = texts.get(file).ok_or_else(|| format!("goto {file}: not opened in the trace"))?;
                let at = text.find(after.as_str()).ok_or_else(|| format!("goto {file}: {after:?} not found"))?;
                if let Some(a) = active.take() {
                    cursors.insert(a, cursor);
                }
                active = Some(file.clone());
                cursor = at + after.len();
            }
            Step::Back(file) => {
                if let Some(a) = active.take() {
                    cursors.insert(a, cursor);
                }
                cursor = cursors.get(file).copied().unwrap_or(0);
                active = Some(file.clone());
            }
            Step::Type { text: typed, every, .. } => {
                let file = active.clone().ok_or("type before any goto")?;
                let text = texts.get_mut(&file).expect("opened");
                for (i, ch) in typed.chars().enumerate() {
                    text.insert(cursor, ch);
                    cursor += ch.len_utf8();
                    if (i + 1) % (*every).max(1) == 0 {
                        keys.push(Key {
                            file: file.clone(),
                            before: text[..cursor].to_string(),
                            after: text[cursor..].to_string(),
                        });
                    }
                }
            }
            Step::Accept => {}
        }
    }
    Ok(keys)
}

#[derive(Debug, Serialize, Clone, Default)]
#[serde(rename_all = "camelCase")]
pub struct KeyFigures {
    pub count: usize,
    pub ttft_p50_ms: f64,
    pub ttft_p90_ms: f64,
    pub latency_p50_ms: f64,
    pub latency_p90_ms: f64,
    /// Tokens per second of the long jobs that ended while the keystrokes were typed (0 without one).
    pub long_tokens_per_s: f64,
}

#[derive(Debug, Serialize, Clone)]
#[serde(rename_all = "camelCase")]
pub struct Throughput {
    pub sessions: usize,
    pub batched: bool,
    pub keystrokes: usize,
    pub wall_s: f64,
    pub keystrokes_per_s: f64,
    /// The model thread's steps in this run: llama_decode vs the host work around it, per step.
    pub steps: StepStats,
}

/// An engine with `base`'s settings, batching as given, and long jobs riding along in keystrokes' batches
/// when `ride` (else they yield to them).
fn start(base: &Value, batching: bool, ride: bool) -> Result<Engine, String> {
    let mut o = base.clone();
    o["batching"] = json!(batching);
    o["longJobsYield"] = json!(!ride);
    let cfg: EngineConfig = serde_json::from_value(o).map_err(|e| format!("engine settings: {e}"))?;
    Ok(Engine::start(cfg, |_| {}))
}

/// One session types through `keys`, each keystroke waiting for its answer: (ttft ms, latency ms) each.
async fn type_through(e: &Engine, session: usize, keys: &[Key], max_tokens: usize) -> Result<Vec<(f64, f64)>, String> {
    let mut out = Vec::new();
    for k in keys {
        let t = Instant::now();
        let req = CompletionRequest {
            doc: format!("s{session}:file:///{}", k.file),
            before: k.before.clone(),
            first_line: 0,
            after: k.after.clone(),
            max_tokens: Some(max_tokens),
            max_lines: None,
            context: None,
        };
        let c = e.complete(req, CancelToken::new()).await.map_err(|e| e.to_string())?;
        out.push((c.timings.ttft_ms, t.elapsed().as_secs_f64() * 1e3));
    }
    Ok(out)
}

fn figures(samples: &[(f64, f64)], long_tokens_per_s: f64) -> KeyFigures {
    let ttft: Vec<f64> = samples.iter().map(|s| s.0).collect();
    let lat: Vec<f64> = samples.iter().map(|s| s.1).collect();
    KeyFigures {
        count: samples.len(),
        ttft_p50_ms: percentile(&ttft, 0.5),
        ttft_p90_ms: percentile(&ttft, 0.9),
        latency_p50_ms: percentile(&lat, 0.5),
        latency_p90_ms: percentile(&lat, 0.9),
        long_tokens_per_s,
    }
}

fn design_doc(n: usize) -> GenerateRequest {
    GenerateRequest {
        key: format!("s99:file:///DESIGN.md#{n}"),
        system: None,
        user: "Write the design document of a billing service: modules, data model, API, errors, tests.".into(),
        answer_prefix: "# Design\n\n".into(),
        // Short enough that several end while the keystrokes are typed: only finished ones count their tokens.
        max_tokens: 128,
        stop: vec![],
        temperature: 0.0,
        seed: 0,
        priority: Priority::DesignDoc,
    }
}

/// Keystrokes typed while design documents are generated back to back (another session's), or alone.
async fn keys_with_long_job(
    base: &Value,
    (batching, ride): (bool, bool),
    long: bool,
    keys: &[Key],
    mt: usize,
) -> Result<KeyFigures, String> {
    let e = start(base, batching, ride)?;
    e.wait_ready().await.map_err(|e| e.to_string())?;
    let stop = Arc::new(AtomicBool::new(false));
    let tokens = Arc::new(AtomicUsize::new(0));
    let cancel = CancelToken::new();
    let bg = long.then(|| {
        let (e, stop, tokens, cancel) = (e.clone(), stop.clone(), tokens.clone(), cancel.clone());
        tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                if let Ok(g) = e.generate(design_doc(n), cancel.clone()).await {
                    tokens.fetch_add(g.timings.generated_tokens, Ordering::Relaxed);
                }
                n += 1;
            }
        })
    });
    if long {
        // The long job is running (it holds a sequence) before the first keystroke.
        while e.stats().await.running_jobs == 0 {
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
    }
    let t = Instant::now();
    let samples = type_through(&e, 0, keys, mt).await;
    let wall = t.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    cancel.cancel();
    if let Some(bg) = bg {
        let _ = bg.await;
    }
    e.shutdown();
    Ok(figures(&samples?, tokens.load(Ordering::Relaxed) as f64 / wall))
}

async fn sessions_typing(
    base: &Value,
    batching: bool,
    n: usize,
    keys: &[Key],
    mt: usize,
) -> Result<Throughput, String> {
    let e = start(base, batching, false)?;
    e.wait_ready().await.map_err(|e| e.to_string())?;
    let t = Instant::now();
    let runs: Vec<_> = (0..n)
        .map(|s| {
            let (e, keys) = (e.clone(), keys.to_vec());
            tokio::spawn(async move { type_through(&e, s, &keys, mt).await })
        })
        .collect();
    let mut count = 0;
    for r in runs {
        count += r.await.map_err(|e| e.to_string())??.len();
    }
    let wall = t.elapsed().as_secs_f64();
    let steps = e.stats().await.steps;
    e.shutdown();
    Ok(Throughput {
        sessions: n,
        batched: batching,
        keystrokes: count,
        wall_s: wall,
        keystrokes_per_s: count as f64 / wall,
        steps,
    })
}

/// The `sched` part of `lokal bench`'s report. `base`: the engine settings (initializationOptions form);
/// `limit`: keystrokes of the trace to type (0: all).
pub fn run(trace: &Path, base: &Value, max_tokens: usize, limit: usize) -> Result<Value, String> {
    let mut keys = keystrokes(trace)?;
    if limit > 0 {
        keys.truncate(limit);
    }
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|e| e.to_string())?;
    rt.block_on(async {
        eprintln!("lokal bench --sched: {} keystrokes alone, then while a design document is generated", keys.len());
        let alone = keys_with_long_job(base, (true, false), false, &keys, max_tokens).await?;
        let busy = keys_with_long_job(base, (true, false), true, &keys, max_tokens).await?;
        let busy_riding = keys_with_long_job(base, (true, true), true, &keys, max_tokens).await?;
        let busy_unbatched = keys_with_long_job(base, (false, false), true, &keys, max_tokens).await?;
        let mut tp = Vec::new();
        for n in [1, 2, 4] {
            for batching in [true, false] {
                eprintln!(
                    "lokal bench --sched: {n} session(s) typing, batching {}",
                    if batching { "on" } else { "off" }
                );
                tp.push(sessions_typing(base, batching, n, &keys, max_tokens).await?);
            }
        }
        print_table(
            &alone,
            &[
                ("while a long job (default)", &busy),
                ("  ..riding along", &busy_riding),
                ("  ..one at a time", &busy_unbatched),
            ],
            &tp,
        );
        let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
        let speedup: Vec<Value> = [1, 2, 4]
            .iter()
            .map(|&n| {
                let per =
                    |b: bool| tp.iter().find(|t| t.sessions == n && t.batched == b).map_or(0.0, |t| t.keystrokes_per_s);
                json!({"sessions": n, "batchedOverOneAtATime": ratio(per(true), per(false))})
            })
            .collect();
        Ok(json!({
            "keystrokes": keys.len(),
            "alone": alone,
            "whileLongJob": busy,
            "whileLongJobRidingAlong": busy_riding,
            "whileLongJobUnbatched": busy_unbatched,
            "ttftWhileLongOverAlone": ratio(busy.ttft_p50_ms, alone.ttft_p50_ms),
            "latencyWhileLongOverAlone": ratio(busy.latency_p50_ms, alone.latency_p50_ms),
            "throughput": tp,
            "speedup": speedup,
        }))
    })
}

fn print_table(alone: &KeyFigures, busy: &[(&str, &KeyFigures)], tp: &[Throughput]) {
    println!("\nkeystrokes ({})            ttft p50   ttft p90   latency p50  latency p90  long tok/s", alone.count);
    for &(name, f) in [("alone", alone)].iter().chain(busy) {
        println!(
            "  {name:<30} {:>8.0}ms {:>8.0}ms {:>10.0}ms {:>10.0}ms {:>9.1}",
            f.ttft_p50_ms, f.ttft_p90_ms, f.latency_p50_ms, f.latency_p90_ms, f.long_tokens_per_s
        );
    }
    println!(
        "\nsessions typing at once    batched   keystrokes   wall      keystrokes/s   steps  decode ms p50/mean  \
         host ms p50/mean  (start [prompt plan] batch sample finish other)  wait ms  tokens/gens per step"
    );
    for t in tp {
        let s = &t.steps;
        println!(
            "  {:<24} {:<9} {:>10} {:>7.1}s {:>12.2} {:>7} {:>8.2} {:>8.2} {:>8.2} {:>8.2}  \
             ({:.2} [{:.2} {:.2}] {:.2} {:.2} {:.2} {:.2})  {:.2}  {:.1}/{:.2}",
            t.sessions,
            t.batched,
            t.keystrokes,
            t.wall_s,
            t.keystrokes_per_s,
            s.steps,
            s.decode_ms_p50,
            s.decode_ms_mean,
            s.host_ms_p50,
            s.host_ms_mean,
            s.start_ms_mean,
            s.prompt_ms_mean,
            s.plan_ms_mean,
            s.batch_ms_mean,
            s.sample_ms_mean,
            s.finish_ms_mean,
            s.other_ms_mean,
            s.wait_ms_mean,
            s.tokens_per_step,
            s.gens_per_step
        );
    }
}
