//! `lokal bench`: replay an edit trace over the real LSP path with the prefix cache on and off, and print
//! per-kind latency figures as a table and as JSON.
use crate::client::LspClient;
use crate::trace::{self, Kind, Replayer, Sample};
use serde::Serialize;
use serde_json::json;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

pub struct BenchArgs {
    pub trace: PathBuf,
    pub json: Option<PathBuf>,
    pub model: Option<PathBuf>,
    pub max_tokens: usize,
    pub threads: Option<i32>,
    pub only_on: bool,
    /// Compare with another engine replaying the same trace ("llama-server").
    pub peer: Option<String>,
    /// Where llama-server and llama-bench are (default: what scripts/fetch-peer.sh built).
    pub peer_bin: Option<PathBuf>,
}

#[derive(Debug, Serialize, Clone, Default)]
#[serde(rename_all = "camelCase")]
pub struct KindFigures {
    pub count: usize,
    pub ttft_p50_ms: f64,
    pub ttft_p90_ms: f64,
    pub latency_p50_ms: f64,
    pub latency_p90_ms: f64,
    pub redecoded_mean: f64,
    pub redecoded_p50: f64,
    pub from_suggestion: usize,
}

#[derive(Debug, Serialize, Clone)]
#[serde(rename_all = "camelCase")]
pub struct RunFigures {
    pub cache: bool,
    pub kinds: BTreeMap<Kind, KindFigures>,
    pub gen_tokens_per_s: f64,
    pub peak_rss_mb: f64,
    pub model_load_ms: f64,
    pub samples: Vec<Sample>,
}

pub fn percentile(v: &[f64], p: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let idx = ((s.len() - 1) as f64 * p).round() as usize;
    s[idx]
}

fn peak_rss_mb(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).map(|l| l.to_string()))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse::<f64>().ok()))
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

pub fn run_trace(exe: &Path, trace_path: &Path, options: serde_json::Value, verbose: bool) -> Result<RunFigures, String> {
    run_trace_with(exe, trace_path, options, verbose, Vec::new()).map(|(f, _)| f)
}

/// Replay the trace against lokal and, request by request right after it, against each peer.
pub fn run_trace_with(exe: &Path, trace_path: &Path, options: serde_json::Value, verbose: bool, peers: Vec<Box<dyn crate::trace::Peer>>) -> Result<(RunFigures, Vec<Vec<Sample>>), String> {
    let (tr, root) = trace::load(trace_path)?;
    let client = LspClient::spawn(exe, &["--stdio"], &[("LOKAL_NO_DAEMON", "1")], Stdio::null()).map_err(|e| e.to_string())?;
    let mut r = Replayer::new(client, root.clone());
    r.peers = peers;
    let cache = options["cacheEnabled"].as_bool().unwrap_or(true);
    let t0 = std::time::Instant::now();
    r.client.initialize(Some(&trace::uri_of(&root, "")), options, false).map_err(|e| e.to_string())?;
    // Wait for the model: lokal/stats answers "ready" once loaded.
    loop {
        let s = r.client.request("lokal/stats", json!({})).map_err(|e| e.to_string())?;
        match s["state"].as_str() {
            Some("ready") => break,
            Some("failed") => return Err(format!("model failed to load: {}", s["error"])),
            _ => std::thread::sleep(Duration::from_millis(20)),
        }
    }
    let model_load_ms = t0.elapsed().as_secs_f64() * 1e3;
    for step in &tr.steps {
        r.step(step, false, &mut |_, s| {
            if verbose {
                eprintln!(
                    "  {:<16} {:<22} ttft {:>7.1} ms  total {:>7.1} ms  re-decoded {:>5}{}",
                    s.kind.name(),
                    s.file,
                    s.ttft_ms,
                    s.latency_ms,
                    s.redecoded_tokens,
                    if s.from_suggestion { "  (typed ahead: no model work)" } else { "" }
                );
            }
        })?;
    }
    let pid = r.client.pid();
    let rss = peak_rss_mb(pid);
    let samples = r.samples.clone();
    let Replayer { client, peer_samples, .. } = r;
    client.shutdown();
    let kinds = figures(&samples);
    let gen: Vec<f64> = samples.iter().filter(|s| s.generated_tokens >= 8).map(|s| s.gen_tokens_per_s).collect();
    Ok((RunFigures { cache, kinds, gen_tokens_per_s: percentile(&gen, 0.5), peak_rss_mb: rss, model_load_ms, samples }, peer_samples))
}

pub fn figures(samples: &[Sample]) -> BTreeMap<Kind, KindFigures> {
    let mut kinds = BTreeMap::new();
    for kind in [Kind::Cold, Kind::Keystroke, Kind::Switch, Kind::Jump, Kind::Accept] {
        let of: Vec<&Sample> = samples.iter().filter(|s| s.kind == kind).collect();
        if of.is_empty() {
            continue;
        }
        let model: Vec<&&Sample> = of.iter().filter(|s| !s.from_suggestion).collect();
        let ttft: Vec<f64> = of.iter().map(|s| s.ttft_ms).collect();
        let lat: Vec<f64> = of.iter().map(|s| s.latency_ms).collect();
        let red: Vec<f64> = model.iter().map(|s| s.redecoded_tokens as f64).collect();
        kinds.insert(
            kind,
            KindFigures {
                count: of.len(),
                ttft_p50_ms: percentile(&ttft, 0.5),
                ttft_p90_ms: percentile(&ttft, 0.9),
                latency_p50_ms: percentile(&lat, 0.5),
                latency_p90_ms: percentile(&lat, 0.9),
                redecoded_mean: if red.is_empty() { 0.0 } else { red.iter().sum::<f64>() / red.len() as f64 },
                redecoded_p50: percentile(&red, 0.5),
                from_suggestion: of.len() - model.len(),
            },
        );
    }
    kinds
}

pub fn run(args: BenchArgs) -> Result<(), String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut base = json!({"maxTokens": args.max_tokens});
    if let Some(m) = &args.model {
        base["modelPath"] = json!(m);
    }
    if let Some(t) = args.threads {
        base["threads"] = json!(t);
    }
    if let Some(peer) = &args.peer {
        return run_peer(&args, &exe, base, peer);
    }
    let mut runs = Vec::new();
    let modes: &[bool] = if args.only_on { &[true] } else { &[true, false] };
    for &cache in modes {
        let mut o = base.clone();
        o["cacheEnabled"] = json!(cache);
        eprintln!("lokal bench: replaying {} with the prefix cache {}", args.trace.display(), if cache { "ON" } else { "OFF" });
        runs.push(run_trace(&exe, &args.trace, o, true)?);
    }
    print_table(&runs);
    let report = json!({
        "trace": args.trace,
        "maxTokens": args.max_tokens,
        "runs": runs,
    });
    let text = serde_json::to_string_pretty(&report).unwrap();
    match &args.json {
        Some(p) => std::fs::write(p, &text).map_err(|e| format!("{}: {e}", p.display()))?,
        None => println!("{text}"),
    }
    Ok(())
}

fn print_table(runs: &[RunFigures]) {
    println!();
    println!("{:<16} {:>5} {:>5} | {:>10} {:>10} | {:>10} {:>10} | {:>9}", "request kind", "cache", "n", "ttft p50", "ttft p90", "total p50", "total p90", "re-dec avg");
    println!("{}", "-".repeat(96));
    for r in runs {
        for (k, f) in &r.kinds {
            println!(
                "{:<16} {:>5} {:>5} | {:>8.1}ms {:>8.1}ms | {:>8.1}ms {:>8.1}ms | {:>9.1}",
                k.name(),
                if r.cache { "on" } else { "off" },
                f.count,
                f.ttft_p50_ms,
                f.ttft_p90_ms,
                f.latency_p50_ms,
                f.latency_p90_ms,
                f.redecoded_mean
            );
        }
    }
    println!("{}", "-".repeat(96));
    for r in runs {
        println!(
            "cache {:<3}: generation {:.1} tokens/s (median), peak RSS {:.0} MB, start to model ready {:.0} ms",
            if r.cache { "on" } else { "off" },
            r.gen_tokens_per_s,
            r.peak_rss_mb,
            r.model_load_ms
        );
    }
    if let [on, off] = runs {
        for k in [Kind::Keystroke, Kind::Switch, Kind::Jump, Kind::Accept, Kind::Cold] {
            if let (Some(a), Some(b)) = (on.kinds.get(&k), off.kinds.get(&k)) {
                if a.ttft_p50_ms > 0.0 {
                    println!("{:<16} ttft p50 off/on = {:.2}x", k.name(), b.ttft_p50_ms / a.ttft_p50_ms);
                }
            }
        }
        if let (Some(cold), Some(key)) = (on.kinds.get(&Kind::Cold), on.kinds.get(&Kind::Keystroke)) {
            println!("cold/warm (keystroke) ttft p50 with cache = {:.2}x", cold.ttft_p50_ms / key.ttft_p50_ms.max(0.001));
        }
        if let (Some(sw), Some(key)) = (on.kinds.get(&Kind::Switch), on.kinds.get(&Kind::Keystroke)) {
            println!("switch-back / keystroke ttft p50 with cache = {:.2}x", sw.ttft_p50_ms / key.ttft_p50_ms.max(0.001));
        }
    }
}

fn run_peer(args: &BenchArgs, exe: &Path, mut options: serde_json::Value, peer: &str) -> Result<(), String> {
    if peer != "llama-server" {
        return Err(format!("unknown peer {peer:?}; the peer is llama-server"));
    }
    let bin = match &args.peer_bin {
        Some(b) => b.clone(),
        None => PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/lokal/peer/bin"),
    };
    let cfg = lokal_engine::EngineConfig { model_path: args.model.clone(), ..Default::default() };
    let model = cfg.resolved_model_path();
    let threads = args.threads.unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get() as i32).unwrap_or(4));
    options["threads"] = json!(threads);
    let fim = lokal_engine::inspect(&model).map(|(i, _)| i.fim.is_complete()).unwrap_or(false);
    let server = crate::peer::LlamaServer::start(&bin, &model, cfg.ctx_per_sequence * 4, threads, args.max_tokens, fim)?;
    eprintln!("lokal bench: lokal and llama-server ({}) request by request (A B A B) on {}", if fim { "/infill" } else { "/completion" }, args.trace.display());
    let (ours, mut theirs) = run_trace_with(exe, &args.trace, options, false, vec![Box::new(server)])?;
    let theirs = theirs.pop().unwrap_or_default();
    let tg = crate::peer::llama_bench_tg(&bin, &model, threads);
    let peer_kinds = figures(&theirs);
    println!("\n{:<16} {:>4} | {:>17} {:>17} | {:>17} {:>17} | {:>11} | {:>12}", "request kind", "n", "lokal ttft p50/p90", "peer ttft p50/p90", "lokal total p50/90", "peer total p50/90", "lokal/peer", "re-processed");
    println!("{}", "-".repeat(134));
    for (k, a) in &ours.kinds {
        let Some(b) = peer_kinds.get(k) else { continue };
        println!(
            "{:<16} {:>4} | {:>7.1} / {:>7.1} {:>7.1} / {:>7.1} | {:>7.1} / {:>7.1} {:>7.1} / {:>7.1} | {:>10.2}x | {:>5.0} / {:>5.0}",
            k.name(), a.count, a.ttft_p50_ms, a.ttft_p90_ms, b.ttft_p50_ms, b.ttft_p90_ms, a.latency_p50_ms, a.latency_p90_ms, b.latency_p50_ms, b.latency_p90_ms,
            a.ttft_p50_ms / b.ttft_p50_ms.max(1e-3), a.redecoded_mean, b.redecoded_mean
        );
    }
    let peer_gen: Vec<f64> = theirs.iter().filter(|s| s.generated_tokens >= 8).map(|s| s.gen_tokens_per_s).collect();
    println!("generation tokens/s (median): lokal {:.1}, llama-server {:.1}, llama-bench tg {}", ours.gen_tokens_per_s, percentile(&peer_gen, 0.5),
        match &tg { Ok(t) => format!("{t:.1} (lokal at {:.0}% of it)", 100.0 * ours.gen_tokens_per_s / t), Err(e) => format!("unavailable: {e}") });
    if let (Some(sw), Some(key)) = (ours.kinds.get(&Kind::Switch), ours.kinds.get(&Kind::Keystroke)) {
        println!("lokal switch back / keystroke ttft p50 = {:.2}x", sw.ttft_p50_ms / key.ttft_p50_ms.max(1e-3));
    }
    let svg = args.json.as_ref().map(|p| p.with_extension("svg"));
    if let Some(p) = &svg {
        std::fs::write(p, plot(&ours.samples, &theirs)).map_err(|e| e.to_string())?;
        eprintln!("plot: {}", p.display());
    }
    let report = json!({
        "trace": args.trace, "maxTokens": args.max_tokens, "threads": threads, "model": model,
        "llamaServerVersion": crate::peer::LlamaServer::version(&bin),
        "llamaCppSys": "llama-cpp-sys-2 0.1.161",
        "llamaBenchTg": tg.ok(),
        "lokal": ours, "peer": {"name": "llama-server", "kinds": peer_kinds, "samples": theirs},
    });
    let text = serde_json::to_string_pretty(&report).unwrap();
    match &args.json {
        Some(p) => std::fs::write(p, &text).map_err(|e| format!("{}: {e}", p.display()))?,
        None => println!("{text}"),
    }
    Ok(())
}

/// Per-request latency of both engines as an SVG line chart (log scale), request index on x.
fn plot(a: &[Sample], b: &[Sample]) -> String {
    let (w, h, pad) = (1000.0, 360.0, 40.0);
    let n = a.len().max(b.len()).max(2) as f64;
    let y = |ms: f64| h - pad - ((ms.max(0.1)).log10() + 1.0) / 5.0 * (h - 2.0 * pad);
    let line = |s: &[Sample], color: &str| {
        let pts: Vec<String> = s.iter().enumerate().map(|(i, x)| format!("{:.1},{:.1}", pad + i as f64 / (n - 1.0) * (w - 2.0 * pad), y(x.latency_ms))).collect();
        format!("<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"1.5\" points=\"{}\"/>", pts.join(" "))
    };
    let mut grid = String::new();
    for ms in [1.0, 10.0, 100.0, 1000.0, 10000.0] {
        grid.push_str(&format!("<line x1=\"{pad}\" x2=\"{}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"#ddd\"/><text x=\"2\" y=\"{:.1}\" font-size=\"10\">{ms} ms</text>", w - pad, y(ms), y(ms), y(ms) + 3.0));
    }
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\"><rect width=\"100%\" height=\"100%\" fill=\"white\"/>{grid}{}{}<text x=\"{pad}\" y=\"16\" font-size=\"12\" fill=\"#1f77b4\">lokal</text><text x=\"{}\" y=\"16\" font-size=\"12\" fill=\"#d62728\">llama-server</text><text x=\"{}\" y=\"{}\" font-size=\"10\">request in trace order</text></svg>",
        line(a, "#1f77b4"), line(b, "#d62728"), pad + 60.0, w / 2.0 - 50.0, h - 8.0
    )
}
