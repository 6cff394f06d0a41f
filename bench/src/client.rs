//! A small synchronous LSP client over a child process's stdio. The benchmark, the demo and the end-to-end
//! tests all drive `lokal` through it, so they exercise the real protocol path.
use serde_json::{json, Value};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, PartialEq)]
pub struct RpcError {
    pub code: i64,
    pub message: String,
}

impl std::fmt::Display for RpcError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.code)
    }
}

pub struct LspClient {
    child: Child,
    stdin: ChildStdin,
    rx: Receiver<Value>,
    next_id: i64,
    responses: HashMap<i64, Value>,
    /// Notifications and server-to-client requests, in arrival order.
    pub received: Vec<Value>,
    /// Answers for server-to-client requests (`workspace/configuration`, `workspace/applyEdit`, …).
    pub answers: HashMap<String, Value>,
    /// Answers used once each, in order, before `answers` (a user who clicks "Show" and then "Send").
    pub queued: HashMap<String, std::collections::VecDeque<Value>>,
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
    serde_json::from_slice(&buf).ok()
}

impl LspClient {
    /// Start `exe` with `args` (stderr goes to `stderr`, e.g. a log file or null).
    pub fn spawn(exe: &std::path::Path, args: &[&str], envs: &[(&str, &str)], stderr: Stdio) -> std::io::Result<Self> {
        let mut cmd = Command::new(exe);
        cmd.args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(stderr);
        for (k, v) in envs {
            cmd.env(k, v);
        }
        Self::spawn_command(cmd)
    }

    /// A client on a command set up by the caller (run as another user, say); stdin and stdout are taken
    /// over for the protocol.
    pub fn spawn_command(mut cmd: Command) -> std::io::Result<Self> {
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped());
        let mut child = cmd.spawn()?;
        let stdin = child.stdin.take().unwrap();
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
        Ok(Self {
            child,
            stdin,
            rx,
            next_id: 1,
            responses: HashMap::new(),
            received: Vec::new(),
            answers: HashMap::new(),
            queued: HashMap::new(),
        })
    }

    pub fn send(&mut self, msg: &Value) {
        let body = serde_json::to_vec(msg).unwrap();
        let _ = write!(self.stdin, "Content-Length: {}\r\n\r\n", body.len());
        let _ = self.stdin.write_all(&body);
        let _ = self.stdin.flush();
    }

    /// Send raw bytes (for malformed-input tests).
    pub fn send_raw(&mut self, bytes: &[u8]) {
        let _ = self.stdin.write_all(bytes);
        let _ = self.stdin.flush();
    }

    pub fn notify(&mut self, method: &str, params: Value) {
        self.send(&json!({"jsonrpc": "2.0", "method": method, "params": params}));
    }

    /// Send a request and return its id without waiting.
    pub fn request_async(&mut self, method: &str, params: Value) -> i64 {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        id
    }

    pub fn cancel(&mut self, id: i64) {
        self.notify("$/cancelRequest", json!({"id": id}));
    }

    fn dispatch(&mut self, msg: Value) {
        let is_response = msg.get("method").is_none();
        if is_response {
            if let Some(id) = msg.get("id").and_then(Value::as_i64) {
                self.responses.insert(id, msg);
            }
            return;
        }
        if let (Some(id), Some(method)) = (msg.get("id").cloned(), msg.get("method").and_then(Value::as_str)) {
            let queued = self.queued.get_mut(method).and_then(|q| q.pop_front());
            let result = queued.unwrap_or_else(|| match method {
                "workspace/configuration" => {
                    let n = msg["params"]["items"].as_array().map(|a| a.len()).unwrap_or(1);
                    let v = self.answers.get(method).cloned().unwrap_or(Value::Null);
                    Value::Array(vec![v; n])
                }
                "workspace/applyEdit" => self.answers.get(method).cloned().unwrap_or(json!({"applied": true})),
                _ => self.answers.get(method).cloned().unwrap_or(Value::Null),
            });
            self.send(&json!({"jsonrpc": "2.0", "id": id, "result": result}));
        }
        self.received.push(msg);
    }

    /// Wait for the response to `id`.
    pub fn wait(&mut self, id: i64, timeout: Duration) -> Result<Value, RpcError> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(r) = self.responses.remove(&id) {
                if let Some(e) = r.get("error") {
                    return Err(RpcError {
                        code: e["code"].as_i64().unwrap_or(0),
                        message: e["message"].as_str().unwrap_or("").to_string(),
                    });
                }
                return Ok(r.get("result").cloned().unwrap_or(Value::Null));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(m) => self.dispatch(m),
                Err(RecvTimeoutError::Timeout) => {
                    return Err(RpcError {
                        code: 0,
                        message: format!("no response to request {id} within {timeout:?}"),
                    })
                }
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(RpcError { code: 0, message: "server closed its output".into() })
                }
            }
        }
    }

    pub fn request(&mut self, method: &str, params: Value) -> Result<Value, RpcError> {
        let id = self.request_async(method, params);
        self.wait(id, Duration::from_secs(300))
    }

    /// Process incoming messages until `pred` matches one of the received ones (or the timeout).
    pub fn wait_for(&mut self, timeout: Duration, pred: impl Fn(&Value) -> bool) -> Option<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(m) = self.received.iter().find(|m| pred(m)) {
                return Some(m.clone());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(m) => self.dispatch(m),
                Err(_) => return None,
            }
        }
    }

    /// `initialize` + `initialized` with the given options; returns the server's capabilities.
    pub fn initialize(&mut self, root: Option<&str>, options: Value, utf8: bool) -> Result<Value, RpcError> {
        let encodings = if utf8 { json!(["utf-8", "utf-16"]) } else { json!(["utf-16"]) };
        let folders = root.map(|r| json!([{"uri": r, "name": "workspace"}])).unwrap_or(Value::Null);
        let r = self.request(
            "initialize",
            json!({
                "processId": std::process::id(),
                "rootUri": root,
                "workspaceFolders": folders,
                "capabilities": {
                    "general": {"positionEncodings": encodings},
                    "window": {"workDoneProgress": true},
                    "workspace": {"configuration": true, "applyEdit": true, "workspaceEdit": {"documentChanges": true}},
                    "textDocument": {"inlineCompletion": {}}
                },
                "initializationOptions": options
            }),
        )?;
        self.notify("initialized", json!({}));
        Ok(r)
    }

    pub fn open(&mut self, uri: &str, language: &str, text: &str) {
        self.notify(
            "textDocument/didOpen",
            json!({"textDocument": {"uri": uri, "languageId": language, "version": 1, "text": text}}),
        );
    }

    pub fn shutdown(mut self) -> Option<i32> {
        let _ = self.request("shutdown", Value::Null);
        self.notify("exit", Value::Null);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(s)) = self.child.try_wait() {
                return s.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        None
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for LspClient {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
