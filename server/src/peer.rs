//! The benchmark's peer: llama.cpp's own `llama-server`, driven as the llama.vscode plugin drives it
//! (a window of lines before the cursor, `cache_prompt`, `--cache-reuse`), on loopback with the same model,
//! context and threads. For models with FIM tokens it uses `/infill`; for base models `/completion`.
use crate::trace::{Kind, Peer, Sample};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Lines before the cursor line that llama.vscode sends (its `n_prefix`), scaled to the same ~1k-token
/// prompt lokal uses on this model, and lines after (`n_suffix`).
const PREFIX_LINES: usize = 96;
const SUFFIX_LINES: usize = 16;

pub struct LlamaServer {
    child: Child,
    port: u16,
    max_tokens: usize,
    fim: bool,
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

impl LlamaServer {
    /// Start `llama-server` from `bin` on a free loopback port and wait until it answers `/health`.
    pub fn start(bin: &Path, model: &Path, ctx: u32, threads: i32, max_tokens: usize, fim: bool) -> Result<Self, String> {
        let port = free_port();
        let exe = bin.join("llama-server");
        let child = Command::new(&exe)
            .args(["-m", &model.display().to_string(), "--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["-c", &ctx.to_string(), "-np", "1", "-b", "512", "-ub", "512", "-t", &threads.to_string(), "--cache-reuse", "64", "--swa-full"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("{}: {e} (build it with scripts/fetch-peer.sh)", exe.display()))?;
        let mut me = Self { child, port, max_tokens, fim };
        let t = Instant::now();
        loop {
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
                let _ = write!(s, "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
                let mut line = String::new();
                if BufReader::new(s).read_line(&mut line).is_ok() && line.contains(" 200") {
                    return Ok(me);
                }
            }
            if t.elapsed() > Duration::from_secs(120) || me.child.try_wait().ok().flatten().is_some() {
                return Err("llama-server did not become healthy".into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn version(bin: &Path) -> String {
        Command::new(bin.join("llama-server"))
            .arg("--version")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stderr).lines().chain(String::from_utf8_lossy(&o.stdout).lines()).find(|l| l.contains("version")).unwrap_or("").trim().to_string())
            .unwrap_or_default()
    }
}

impl Drop for LlamaServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// llama-bench's text-generation rate (tokens/s) for the model: the engine's ceiling.
pub fn llama_bench_tg(bin: &Path, model: &Path, threads: i32) -> Result<f64, String> {
    let out = Command::new(bin.join("llama-bench"))
        .args(["-m", &model.display().to_string(), "-p", "0", "-n", "64", "-r", "3", "-t", &threads.to_string(), "-o", "json"])
        .output()
        .map_err(|e| e.to_string())?;
    let v: Value = serde_json::from_slice(&out.stdout).map_err(|e| format!("llama-bench output: {e}"))?;
    v[0]["avg_ts"].as_f64().ok_or_else(|| format!("llama-bench: no avg_ts in {v}"))
}

impl Peer for LlamaServer {
    fn name(&self) -> &str {
        "llama-server"
    }

    fn complete(&mut self, kind: Kind, file: &str, text: &str, cursor: usize) -> Result<Sample, String> {
        let before = &text[..cursor];
        let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
        let prev: Vec<&str> = before[..line_start].lines().collect();
        let prefix_lines = prev[prev.len().saturating_sub(PREFIX_LINES)..].join("\n");
        let prefix = if prefix_lines.is_empty() { before[line_start..].to_string() } else { format!("{prefix_lines}\n{}", &before[line_start..]) };
        let after: String = text[cursor..].split_inclusive('\n').take(SUFFIX_LINES).collect();
        let (path, body) = if self.fim {
            ("/infill", json!({"input_prefix": prefix, "input_suffix": after, "input_extra": [], "n_predict": self.max_tokens,
                               "cache_prompt": true, "top_k": 1, "samplers": ["top_k"], "stream": false}))
        } else {
            ("/completion", json!({"prompt": prefix, "n_predict": self.max_tokens, "cache_prompt": true, "top_k": 1, "samplers": ["top_k"], "stream": false}))
        };
        let t = Instant::now();
        let v = post(self.port, path, &body)?;
        let latency_ms = t.elapsed().as_secs_f64() * 1e3;
        let tm = &v["timings"];
        let f = |k: &str| tm[k].as_f64().unwrap_or(0.0);
        let predicted = f("predicted_n").max(1.0);
        Ok(Sample {
            kind,
            file: file.to_string(),
            suggestion: v["content"].as_str().map(str::to_string),
            latency_ms,
            ttft_ms: f("prompt_ms") + f("predicted_ms") / predicted,
            prompt_tokens: (f("prompt_n") + f("cache_n")) as usize,
            redecoded_tokens: f("prompt_n") as usize,
            generated_tokens: f("predicted_n") as usize,
            gen_tokens_per_s: f("predicted_per_second"),
            from_suggestion: false,
            restored: false,
        })
    }
}
