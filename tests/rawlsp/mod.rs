//! A raw LSP connection to the real binary for the reliability tests: it sends bytes exactly as given
//! (broken frames included) and collects what comes back without ever blocking the sender.
#![allow(dead_code)]
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

pub fn exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_lokal"))
}

pub fn model() -> PathBuf {
    let p = lokal_engine::EngineConfig::default().resolved_model_path();
    assert!(p.exists(), "test model missing at {}: run scripts/fetch-model.sh", p.display());
    p
}

pub fn frame(body: &[u8]) -> Vec<u8> {
    let mut v = format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes();
    v.extend_from_slice(body);
    v
}

fn read_message(r: &mut impl BufRead) -> Option<Value> {
    let mut len = None;
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some(v) = line.strip_prefix("Content-Length:") {
            len = v.trim().parse::<usize>().ok();
        }
    }
    let mut buf = vec![0; len?];
    r.read_exact(&mut buf).ok()?;
    // The server's own output must always be valid JSON-RPC: a frame that does not parse fails the test.
    Some(serde_json::from_slice(&buf).expect("the server wrote a frame that is not JSON"))
}

pub struct Raw {
    pub child: Child,
    pub stdin: Option<ChildStdin>,
    rx: Receiver<Value>,
    /// Everything received so far, in order.
    pub received: Vec<Value>,
}

pub fn spawn_with(args: &[&str], envs: &[(&str, &str)]) -> Raw {
    let mut cmd = Command::new(exe());
    cmd.args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::null());
    cmd.env("LOKAL_LOG", "warn").env_remove("LOKAL_NO_DAEMON");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let stdin = child.stdin.take();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut r = BufReader::new(stdout);
        while let Some(v) = read_message(&mut r) {
            if tx.send(v).is_err() {
                break;
            }
        }
    });
    Raw { child, stdin, rx, received: Vec::new() }
}

/// An in-process server, whatever daemon may run on this machine.
pub fn spawn() -> Raw {
    spawn_with(&["--stdio"], &[("LOKAL_NO_DAEMON", "1")])
}

impl Raw {
    pub fn send_raw(&mut self, bytes: &[u8]) {
        let s = self.stdin.as_mut().expect("stdin open");
        s.write_all(bytes).unwrap();
        s.flush().unwrap();
    }

    pub fn send(&mut self, v: &Value) {
        self.send_raw(&frame(&serde_json::to_vec(v).unwrap()));
    }

    pub fn request(&mut self, id: &str, method: &str, params: Value) {
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
    }

    pub fn notify(&mut self, method: &str, params: Value) {
        self.send(&json!({"jsonrpc": "2.0", "method": method, "params": params}));
    }

    /// Take what has arrived, without waiting; answer the server's own requests as a plain editor would.
    pub fn pump(&mut self) {
        while let Ok(m) = self.rx.try_recv() {
            self.take(m);
        }
    }

    fn take(&mut self, m: Value) {
        if let (Some(id), Some(method)) = (m.get("id"), m.get("method").and_then(Value::as_str)) {
            let result = if method == "workspace/configuration" { json!([null]) } else { Value::Null };
            let reply = json!({"jsonrpc": "2.0", "id": id, "result": result});
            if self.stdin.is_some() {
                self.send(&reply);
            }
        }
        self.received.push(m);
    }

    /// The response to `id` (a result or an error), waiting up to `timeout`.
    pub fn response(&mut self, id: &Value, timeout: Duration) -> Option<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(m) = self.received.iter().find(|m| m.get("method").is_none() && &m["id"] == id) {
                return Some(m.clone());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left.max(Duration::from_millis(1))) {
                Ok(m) => self.take(m),
                Err(_) if Instant::now() >= deadline => return None,
                Err(mpsc::RecvTimeoutError::Disconnected) => return None,
                Err(_) => {}
            }
        }
    }

    pub fn ask(&mut self, id: &str, method: &str, params: Value, timeout: Duration) -> Option<Value> {
        self.request(id, method, params);
        self.response(&json!(id), timeout)
    }

    pub fn initialize(&mut self, options: Value) {
        let r = self.ask(
            "init",
            "initialize",
            json!({"processId": std::process::id(), "capabilities": {"textDocument": {"inlineCompletion": {}}}, "initializationOptions": options}),
            Duration::from_secs(30),
        );
        assert!(r.as_ref().is_some_and(|r| r.get("result").is_some()), "initialize failed: {r:?}");
        self.notify("initialized", json!({}));
    }

    pub fn wait_ready(&mut self) {
        let t = Instant::now();
        let mut n = 0;
        while t.elapsed() < Duration::from_secs(120) {
            n += 1;
            let r = self.ask(&format!("ready-{n}"), "lokal/stats", json!({}), Duration::from_secs(30));
            if r.as_ref().is_some_and(|r| r["result"]["state"] == "ready") {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("model never ready");
    }

    /// Close stdin as a crashed editor does.
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Wait for the process to exit; its exit status and how long it took.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<(Option<i32>, Duration)> {
        let t = Instant::now();
        while t.elapsed() < timeout {
            if let Ok(Some(s)) = self.child.try_wait() {
                return Some((s.code(), t.elapsed()));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Raw {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn rss_mb(pid: u32) -> f64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

pub fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count()).unwrap_or(0)
}
