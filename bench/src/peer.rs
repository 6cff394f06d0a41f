//! The benchmark's peer: llama.cpp's own `llama-server`, on loopback with the same model, context and
//! threads, driven the way its editor plugins drive it.
//!
//! * Models with FIM tokens: `/infill` exactly as llama.vscode builds it: 256 lines before the cursor line
//!   (`input_prefix`), the rest of the line and 64 lines after (`input_suffix`), the typed part of the cursor
//!   line as `prompt`, `n_indent`, its samplers (`top_k` 40, `top_p` 0.99, `infill`), `cache_prompt`,
//!   `t_max_predict_ms`, and `input_extra`: its ring of 32-line chunks from the files you visit, filled when
//!   you move around and sent to the server ahead of time while you pause (an `n_predict: 0` request, not
//!   timed). Server flags as its README recommends (`-b 1024 -ub 1024 --cache-reuse`), with `--cache-reuse
//!   64`, where shifting the unchanged suffix back into place pays off.
//! * Base models without FIM tokens (the embedded Gemma 3 270M): `/infill` answers 501 ("Infill is not
//!   supported by this model"), so the peer gets `/completion` with `cache_prompt` and exactly the prompt lokal
//!   builds (lokal's own stable prefix window, counted with the server's `/tokenize`) and greedy sampling.
//! * In both, the client remembers suggestions as llama.vscode does (an LRU keyed on the context, also hit
//!   when you type the beginning of a remembered suggestion), as lokal does on its side.
use crate::trace::{Kind, Peer, Sample};
use serde::Serialize;
use serde_json::{json, Value};
use std::cell::RefCell;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::rc::Rc;
use std::time::{Duration, Instant};

/// llama.vscode's defaults (package.json): lines before / after the cursor line, ring of extra chunks.
const N_PREFIX_LINES: usize = 256;
const N_SUFFIX_LINES: usize = 64;
const RING_N_CHUNKS: usize = 16;
const RING_CHUNK_SIZE: usize = 64;
const RING_SCOPE: usize = 1024;
const MAX_QUEUED_CHUNKS: usize = 16;
const MAX_LAST_PICK_LINE_DISTANCE: usize = 32;
const LRU_KEYS: usize = 250;
/// Queued chunks that enter the ring during one pause (its timer moves one a second, after 3 s idle).
const CHUNKS_PER_PAUSE: usize = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Api {
    Infill,
    Completion,
}

pub struct PeerConfig {
    pub bin: PathBuf,
    pub model: PathBuf,
    pub ctx: u32,
    pub threads: i32,
    pub max_tokens: usize,
    pub api: Api,
    /// Offload every layer (the machine has a GPU backend).
    pub gpu: bool,
    /// A random-weight stand-in: generation is capped by length (`ignore_eos`), never by EOS.
    pub ignore_eos: bool,
    /// lokal's prefix window budget in tokens (for the `/completion` prompt).
    pub prefix_tokens: usize,
    /// `--cache-reuse`.
    pub cache_reuse: usize,
    pub root: PathBuf,
}

/// What the peer did besides the timed requests.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PeerExtra {
    pub api: Option<Api>,
    pub command: String,
    /// Ring updates sent while the user pauses (`n_predict: 0`), and the tokens the server processed for them.
    pub ring_updates: usize,
    pub ring_update_tokens: usize,
    pub ring_update_ms: f64,
    /// Extra-context chunks sent with each timed request (mean).
    pub input_extra_chunks_mean: f64,
    pub served_from_client_cache: usize,
}

#[derive(Clone)]
struct Chunk {
    text: String,
    lines: Vec<String>,
    filename: String,
}

pub struct LlamaServer {
    child: Child,
    port: u16,
    cfg: PeerConfig,
    /// Client-side memory of suggestions, most recent last.
    lru: Vec<(String, String)>,
    anchors: HashMap<String, u32>,
    originals: HashMap<String, String>,
    ring: Vec<Chunk>,
    queue: Vec<Chunk>,
    last_line_pick: i64,
    last_file: Option<String>,
    rng: u64,
    extra_sent: Vec<usize>,
    pub extra: Rc<RefCell<PeerExtra>>,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).unwrap_or(18080)
}

fn post(port: u16, path: &str, body: &Value) -> Result<Value, String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    let b = serde_json::to_vec(body).unwrap();
    write!(s, "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", b.len()).map_err(|e| e.to_string())?;
    s.write_all(&b).map_err(|e| e.to_string())?;
    let mut r = BufReader::new(s);
    let mut status = String::new();
    r.read_line(&mut status).map_err(|e| e.to_string())?;
    let mut len = None;
    loop {
        let mut h = String::new();
        r.read_line(&mut h).map_err(|e| e.to_string())?;
        if h.trim().is_empty() {
            break;
        }
        if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v.trim().parse::<usize>().ok();
        }
    }
    let mut body = Vec::new();
    match len {
        Some(n) => {
            body.resize(n, 0);
            r.read_exact(&mut body).map_err(|e| e.to_string())?;
        }
        None => {
            r.read_to_end(&mut body).map_err(|e| e.to_string())?;
        }
    }
    if !status.contains(" 200") {
        return Err(format!("{} {}", status.trim(), String::from_utf8_lossy(&body)));
    }
    serde_json::from_slice(&body).map_err(|e| e.to_string())
}

/// Whether the server answers `/infill` for this model (it refuses models without FIM tokens with 501).
pub fn infill_supported(port: u16) -> Result<bool, String> {
    match post(port, "/infill", &json!({"input_prefix": "a", "input_suffix": "b", "n_predict": 1})) {
        Ok(_) => Ok(true),
        Err(e) if e.contains(" 501") || e.contains("not supported") => Ok(false),
        Err(e) => Err(e),
    }
}

impl LlamaServer {
    /// The command line the server is started with (also recorded in the report).
    pub fn args(cfg: &PeerConfig, port: u16) -> Vec<String> {
        let batch = if cfg.api == Api::Infill { "1024" } else { "512" };
        let mut a: Vec<String> = vec![
            "-m".into(),
            cfg.model.display().to_string(),
            "--host".into(),
            "127.0.0.1".into(),
            "--port".into(),
            port.to_string(),
        ];
        for s in [
            "-c",
            &cfg.ctx.to_string(),
            "-np",
            "1",
            "-b",
            batch,
            "-ub",
            batch,
            "-t",
            &cfg.threads.to_string(),
            "--cache-reuse",
            &cfg.cache_reuse.to_string(),
            "--swa-full",
        ] {
            a.push(s.to_string());
        }
        if cfg.gpu {
            a.extend(["-ngl".to_string(), "999".to_string()]);
        }
        a
    }

    /// Start `llama-server` from `cfg.bin` on a free loopback port and wait until it answers `/health`.
    pub fn start(cfg: PeerConfig) -> Result<Self, String> {
        let port = free_port();
        let exe = cfg.bin.join("llama-server");
        let args = Self::args(&cfg, port);
        let log = std::env::var_os("LOKAL_PEER_LOG").map(PathBuf::from);
        let stderr = match &log {
            Some(p) => std::fs::File::create(p).map(Stdio::from).unwrap_or(Stdio::null()),
            None => Stdio::null(),
        };
        let child = Command::new(&exe)
            .args(&args)
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .map_err(|e| format!("{}: {e} (build it with scripts/fetch-peer.sh)", exe.display()))?;
        let extra =
            PeerExtra { api: Some(cfg.api), command: format!("llama-server {}", args.join(" ")), ..Default::default() };
        let mut me = Self {
            child,
            port,
            cfg,
            lru: Vec::new(),
            anchors: HashMap::new(),
            originals: HashMap::new(),
            ring: Vec::new(),
            queue: Vec::new(),
            last_line_pick: -9999,
            last_file: None,
            rng: 0x9e37_79b9_7f4a_7c15,
            extra_sent: Vec::new(),
            extra: Rc::new(RefCell::new(extra)),
        };
        let t = Instant::now();
        loop {
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
                let _ = write!(s, "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
                let mut line = String::new();
                if BufReader::new(s).read_line(&mut line).is_ok() && line.contains(" 200") {
                    return Ok(me);
                }
            }
            if t.elapsed() > Duration::from_secs(300) || me.child.try_wait().ok().flatten().is_some() {
                return Err(format!(
                    "llama-server did not become healthy (set LOKAL_PEER_LOG=FILE for its log): {}",
                    me.extra.borrow().command
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn version(bin: &Path) -> String {
        Command::new(bin.join("llama-server"))
            .arg("--version")
            .output()
            .map(|o| {
                let all = format!("{}{}", String::from_utf8_lossy(&o.stderr), String::from_utf8_lossy(&o.stdout));
                all.lines()
                    .filter(|l| l.starts_with("version") || l.starts_with("built with"))
                    .collect::<Vec<_>>()
                    .join("; ")
            })
            .unwrap_or_default()
    }

    fn random(&mut self) -> f64 {
        // xorshift64*: the ring's random chunk starts, reproducible run to run
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        (self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }

    fn count_tokens(&self, text: &str) -> usize {
        if text.is_empty() {
            return 0;
        }
        post(self.port, "/tokenize", &json!({"content": text}))
            .ok()
            .and_then(|v| v["tokens"].as_array().map(|a| a.len()))
            .unwrap_or(text.len() / 3)
    }

    /// llama.vscode's `pickChunk`: a random half-chunk of the lines, unless they are few.
    fn pick_chunk(&mut self, lines: &[&str], file: &str, no_mod_dirty: bool, evict: bool) {
        if no_mod_dirty || lines.len() < 3 {
            return;
        }
        let picked: Vec<String> = if lines.len() + 1 < RING_CHUNK_SIZE {
            lines.iter().map(|s| s.to_string()).collect()
        } else {
            let span = (lines.len() + 1).saturating_sub(RING_CHUNK_SIZE / 2).max(1);
            let start = (self.random() * span as f64) as usize;
            let end = (start + RING_CHUNK_SIZE / 2).min(lines.len());
            lines[start..end].iter().map(|s| s.to_string()).collect()
        };
        let text = picked.join("\n") + "\n";
        if evict {
            if self.ring.iter().chain(self.queue.iter()).any(|c| c.text == text) {
                return;
            }
            self.ring.retain(|c| jaccard(&c.lines, &picked) <= 0.9);
            self.queue.retain(|c| jaccard(&c.lines, &picked) <= 0.9);
        }
        if self.queue.len() >= MAX_QUEUED_CHUNKS {
            self.queue.remove(0);
        }
        let filename = self.cfg.root.join(file).display().to_string();
        self.queue.push(Chunk { text, lines: picked, filename });
    }

    fn input_extra(&self) -> Value {
        Value::Array(self.ring.iter().map(|c| json!({"text": c.text, "time": 0, "filename": c.filename})).collect())
    }

    /// The user pauses (moving to another file or place): queued chunks enter the ring and the plugin sends
    /// them ahead (`n_predict: 0`), so the next request finds them processed. Not timed: nobody waits on it.
    fn pause(&mut self) -> Result<(), String> {
        let mut moved = 0;
        while moved < CHUNKS_PER_PAUSE && !self.queue.is_empty() {
            let c = self.queue.remove(0);
            self.ring.push(c);
            while self.ring.len() > RING_N_CHUNKS {
                self.ring.remove(0);
            }
            moved += 1;
        }
        if moved == 0 {
            return Ok(());
        }
        let body = json!({"input_prefix": "", "input_suffix": "", "input_extra": self.input_extra(), "prompt": "", "n_predict": 0,
                          "samplers": [], "cache_prompt": true, "t_max_prompt_ms": 500, "t_max_predict_ms": 1});
        let t = Instant::now();
        let v = post(self.port, "/infill", &body)?;
        let mut x = self.extra.borrow_mut();
        x.ring_updates += 1;
        x.ring_update_tokens += v["timings"]["prompt_n"].as_u64().unwrap_or(0) as usize;
        x.ring_update_ms += t.elapsed().as_secs_f64() * 1e3;
        Ok(())
    }

    fn cached(&self, context: &str, prompt: &str) -> Option<String> {
        let key = |p: &str| format!("{context}|{p}");
        let get = |k: &str| self.lru.iter().rev().find(|(kk, _)| kk == k).map(|(_, v)| v.clone());
        if let Some(v) = get(&key(prompt)) {
            return Some(v);
        }
        // typed the beginning of a remembered suggestion (llama.vscode's getCachedCompletion)
        for (i, _) in prompt.char_indices().rev() {
            if let Some(v) = get(&key(&prompt[..i])) {
                let cut = &prompt[i..];
                if v.starts_with(cut) && v.len() > cut.len() {
                    return Some(v[cut.len()..].to_string());
                }
            }
        }
        None
    }

    fn remember(&mut self, context: &str, prompt: &str, value: String) {
        let k = format!("{context}|{prompt}");
        self.lru.retain(|(kk, _)| *kk != k);
        self.lru.push((k, value));
        if self.lru.len() > LRU_KEYS {
            self.lru.remove(0);
        }
    }

    /// lokal's prompt for a base model: its own prefix window over the text its server hands the engine.
    fn completion_prompt(&mut self, file: &str, text: &str, cursor: usize) -> String {
        let line = text[..cursor].matches('\n').count();
        // The text lokal's server hands its engine for this cursor.
        let first_line = lokal_engine::window::first_line(line as u32) as usize;
        let start = if first_line == 0 {
            0
        } else {
            text.match_indices('\n').nth(first_line - 1).map(|(i, _)| i + 1).unwrap_or(0)
        };
        let before = &text[start..cursor];
        let prev = self.anchors.get(file).copied();
        let count = |t: &str| self.count_tokens(t);
        let w = lokal_engine::window::choose_prefix(before, first_line as u32, prev, self.cfg.prefix_tokens, &count);
        self.anchors.insert(file.to_string(), w.anchor_line);
        before[w.start_byte..].to_string()
    }
}

fn jaccard(a: &[String], b: &[String]) -> f64 {
    use std::collections::HashSet;
    if a.is_empty() && b.is_empty() {
        return 1.0;
    }
    let sa: HashSet<&String> = a.iter().collect();
    let sb: HashSet<&String> = b.iter().collect();
    let inter = sa.intersection(&sb).count();
    let union = sa.union(&sb).count();
    inter as f64 / union.max(1) as f64
}

impl Drop for LlamaServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// llama-bench's text-generation rate (tokens/s) for the model: the engine's ceiling. Same threads, and on a
/// GPU build every layer offloaded, as lokal does. Measured on an empty context and with `depth` tokens
/// already in it (`-d`), since every generated token attends to the whole prompt.
///
/// Beside it, the floor of a keystroke: llama.cpp's own time to decode `pp` prompt tokens (what a keystroke
/// re-processes) on top of `depth` cached ones. A time to first token close to it leaves nothing to win
/// but the forward pass itself.
pub fn llama_bench_tg(
    bin: &Path,
    model: &Path,
    threads: i32,
    gpu: bool,
    depth: usize,
    pp: usize,
) -> Result<Tg, String> {
    let mut cmd = Command::new(bin.join("llama-bench"));
    let pp = pp.max(1);
    cmd.args([
        "-m",
        &model.display().to_string(),
        "-p",
        &pp.to_string(),
        "-n",
        "64",
        "-r",
        "5",
        "-t",
        &threads.to_string(),
        "-o",
        "json",
    ]);
    cmd.args(["-d", &format!("0,{depth}")]);
    cmd.args(["-ngl", if gpu { "999" } else { "0" }]);
    let out = cmd.output().map_err(|e| e.to_string())?;
    let v: Value = serde_json::from_slice(&out.stdout).map_err(|e| {
        format!("llama-bench output: {e}: {}", String::from_utf8_lossy(&out.stderr).lines().last().unwrap_or(""))
    })?;
    parse_llama_bench(&v, depth, pp)
}

fn parse_llama_bench(v: &Value, depth: usize, pp: usize) -> Result<Tg, String> {
    let row = |d: usize, gen: bool| {
        v.as_array().and_then(|rows| {
            rows.iter()
                .find(|r| r["n_depth"].as_u64() == Some(d as u64) && (r["n_gen"].as_u64().unwrap_or(0) > 0) == gen)
        })
    };
    let tg = |d: usize| row(d, true).and_then(|r| r["avg_ts"].as_f64());
    let empty = tg(0).ok_or_else(|| format!("llama-bench: no tg avg_ts in {v}"))?;
    // avg_ns is the mean wall time of one whole test: here the `pp` tokens' single decode.
    let pp_ms = |d: usize| row(d, false).and_then(|r| r["avg_ns"].as_f64()).map(|ns| ns / 1e6);
    Ok(Tg {
        empty,
        depth,
        at_depth: tg(depth).unwrap_or(empty),
        pp_tokens: pp,
        pp_ms_empty: pp_ms(0),
        pp_ms_at_depth: pp_ms(depth),
    })
}

#[derive(Debug, Clone, Copy, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Tg {
    pub empty: f64,
    pub depth: usize,
    pub at_depth: f64,
    /// Prompt tokens in the floor test (lokal's median re-processed tokens per keystroke).
    pub pp_tokens: usize,
    pub pp_ms_empty: Option<f64>,
    pub pp_ms_at_depth: Option<f64>,
}

impl Peer for LlamaServer {
    fn name(&self) -> &str {
        "llama-server"
    }

    fn complete(&mut self, kind: Kind, file: &str, text: &str, cursor: usize) -> Result<Sample, String> {
        let original = self.originals.entry(file.to_string()).or_insert_with(|| text.to_string()).clone();
        let dirty = original != text;
        let lines: Vec<&str> = text.split('\n').collect();
        let line = text[..cursor].matches('\n').count();
        let line_start = text[..cursor].rfind('\n').map(|i| i + 1).unwrap_or(0);
        let line_end = text[cursor..].find('\n').map(|i| cursor + i).unwrap_or(text.len());
        let line_prefix = &text[line_start..cursor];
        let line_suffix = &text[cursor..line_end];
        let navigation = matches!(kind, Kind::Cold | Kind::Switch | Kind::Jump);

        if self.cfg.api == Api::Infill && navigation {
            if self.last_file.as_deref() != Some(file) {
                // llama.vscode picks a chunk around the cursor of the editor that becomes active (not from
                // files with unsaved changes)
                let lo = line.saturating_sub(RING_CHUNK_SIZE / 2);
                let hi = (line + RING_CHUNK_SIZE / 2).min(lines.len() - 1);
                let around: Vec<&str> = lines[lo..=hi].to_vec();
                self.pick_chunk(&around, file, dirty, true);
            }
            self.pause()?;
        }
        self.last_file = Some(file.to_string());

        let (context, prompt, body, path) = match self.cfg.api {
            Api::Infill => {
                let prefix_lines = &lines[line.saturating_sub(N_PREFIX_LINES)..line];
                let suffix_lines = &lines[(line + 1).min(lines.len())..(line + 1 + N_SUFFIX_LINES).min(lines.len())];
                let input_prefix = prefix_lines.join("\n") + "\n";
                let input_suffix = format!("{line_suffix}\n{}\n", suffix_lines.join("\n"));
                let nindent =
                    line_prefix.len() + line_suffix.len() - (line_prefix.to_string() + line_suffix).trim_start().len();
                let prompt = if line_prefix.chars().all(|c| c == ' ' || c == '\t') {
                    String::new()
                } else {
                    line_prefix.to_string()
                };
                let mut body = json!({
                    "input_prefix": input_prefix, "input_suffix": input_suffix, "input_extra": self.input_extra(), "prompt": prompt,
                    "n_predict": self.cfg.max_tokens, "top_k": 40, "top_p": 0.99, "stream": false,
                    "samplers": ["top_k", "top_p", "infill"], "cache_prompt": true, "t_max_prompt_ms": 500, "t_max_predict_ms": 1000,
                    "seed": 42,
                });
                if nindent > 0 {
                    body["n_indent"] = json!(nindent);
                }
                self.extra_sent.push(self.ring.len());
                (format!("{input_prefix}|{input_suffix}"), prompt, body, "/infill")
            }
            Api::Completion => {
                let window = self.completion_prompt(file, text, cursor);
                let ctx_end = window.len() - line_prefix.len().min(window.len());
                let body = json!({"prompt": window, "n_predict": self.cfg.max_tokens, "cache_prompt": true,
                                  "top_k": 1, "samplers": ["top_k"], "stream": false});
                (window[..ctx_end].to_string(), line_prefix.to_string(), body, "/completion")
            }
        };
        let mut body = body;
        if self.cfg.ignore_eos {
            // A random-weight stand-in: generate to the length cap. The `infill` sampler would end every
            // answer at once (random weights give it no confident text token), so sample greedily, as lokal.
            body["ignore_eos"] = json!(true);
            body["samplers"] = json!(["top_k"]);
            body["top_k"] = json!(1);
        }

        let t = Instant::now();
        if let Some(hit) = self.cached(&context, &prompt) {
            let ms = t.elapsed().as_secs_f64() * 1e3;
            self.extra.borrow_mut().served_from_client_cache += 1;
            return Ok(Sample {
                kind,
                file: file.to_string(),
                suggestion: Some(hit),
                latency_ms: ms,
                ttft_ms: ms,
                prompt_tokens: 0,
                redecoded_tokens: 0,
                generated_tokens: 0,
                gen_tokens_per_s: 0.0,
                from_suggestion: true,
                from_prefetch: false,
                restored: false,
                phases: None,
                spec: None,
            });
        }
        let v = post(self.port, path, &body)?;
        let latency_ms = t.elapsed().as_secs_f64() * 1e3;
        let tm = &v["timings"];
        let f = |k: &str| tm[k].as_f64().unwrap_or(0.0);
        let content = v["content"].as_str().unwrap_or("").to_string();
        if !content.trim().is_empty() {
            self.remember(&context, &prompt, content.clone());
        }
        if self.cfg.api == Api::Infill
            && (line as i64 - self.last_line_pick).unsigned_abs() as usize > MAX_LAST_PICK_LINE_DISTANCE
        {
            // llama.vscode's addFimContextChunks after a suggestion: a chunk from further up and one from
            // below the suffix window, queued for the next pause
            let n = lines.len();
            let (a, b) = (line.saturating_sub(RING_SCOPE), line.saturating_sub(N_PREFIX_LINES));
            let up: Vec<&str> = lines[a..=b.min(n - 1)].to_vec();
            self.pick_chunk(&up, file, false, false);
            let (c, d) = ((line + N_SUFFIX_LINES).min(n - 1), (line + N_SUFFIX_LINES + RING_CHUNK_SIZE).min(n - 1));
            let down: Vec<&str> = lines[c..=d].to_vec();
            self.pick_chunk(&down, file, false, false);
            self.last_line_pick = line as i64;
        }
        let predicted = f("predicted_n");
        let pred_ms = f("predicted_ms");
        {
            let mut x = self.extra.borrow_mut();
            if !self.extra_sent.is_empty() {
                x.input_extra_chunks_mean = self.extra_sent.iter().sum::<usize>() as f64 / self.extra_sent.len() as f64;
            }
        }
        Ok(Sample {
            kind,
            file: file.to_string(),
            suggestion: Some(content),
            latency_ms,
            // prompt_ms runs from the start of prompt processing to the first sampled token: the server-side
            // time to first token, as lokal's ttft is.
            ttft_ms: f("prompt_ms"),
            prompt_tokens: (f("prompt_n") + f("cache_n")) as usize,
            redecoded_tokens: f("prompt_n") as usize,
            generated_tokens: predicted as usize,
            // the first token is sampled at the start of predicted_ms, like lokal's rate (n - 1) / time
            gen_tokens_per_s: if predicted > 1.0 && pred_ms > 0.0 { (predicted - 1.0) / pred_ms * 1e3 } else { 0.0 },
            from_suggestion: false,
            from_prefetch: false,
            restored: false,
            phases: None,
            spec: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows as llama-bench 0.6.0 writes them for `-p 2 -n 8 -d 0,100 -o json` (other fields trimmed).
    const ROWS: &str = r#"[
        {"n_prompt": 2, "n_gen": 0, "n_depth": 0, "avg_ns": 16398556, "avg_ts": 121.96},
        {"n_prompt": 0, "n_gen": 8, "n_depth": 0, "avg_ns": 100090787, "avg_ts": 80.09},
        {"n_prompt": 2, "n_gen": 0, "n_depth": 100, "avg_ns": 15304157, "avg_ts": 130.97},
        {"n_prompt": 0, "n_gen": 8, "n_depth": 100, "avg_ns": 96160832, "avg_ts": 83.19}
    ]"#;

    #[test]
    fn llama_bench_rows_give_tg_rates_and_the_keystroke_floor() {
        let v: Value = serde_json::from_str(ROWS).unwrap();
        let t = parse_llama_bench(&v, 100, 2).unwrap();
        // tg from the generation rows, not the prompt rows that share their depth
        assert_eq!((t.empty, t.at_depth), (80.09, 83.19));
        assert!((t.pp_ms_at_depth.unwrap() - 15.304157).abs() < 1e-9);
        assert!((t.pp_ms_empty.unwrap() - 16.398556).abs() < 1e-9);
        // a depth llama-bench did not run: tg falls back to the empty context, no floor
        let t = parse_llama_bench(&v, 500, 2).unwrap();
        assert_eq!((t.at_depth, t.pp_ms_at_depth), (80.09, None));
        assert!(parse_llama_bench(&serde_json::json!([]), 100, 2).is_err());
    }
}
