//! `lokal` when a daemon runs: forwards the editor's LSP session to the daemon's socket, and survives the
//! daemon going away. It keeps what is needed to rebuild the session elsewhere (the `initialize` request and
//! the open documents' current text); when the connection drops it answers the requests in flight with an
//! error, reconnects to a restarted daemon or else starts an in-process engine, replays the session there,
//! and tells the user which happened.
use crate::documents::{Document, Encoding};
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tower_lsp_server::ls_types::TextDocumentContentChangeEvent;

type Reader = Box<dyn AsyncRead + Unpin + Send>;
type Writer = Box<dyn AsyncWrite + Unpin + Send>;

/// Read one frame as JSON; `Ok(None)` at end of input. Malformed frames are skipped (the daemon's own
/// guard reports them); the proxy only needs the well-formed ones.
pub async fn read_frame(r: &mut BufReader<Reader>) -> std::io::Result<Option<Value>> {
    loop {
        let mut len = None;
        loop {
            let mut line = String::new();
            if r.read_line(&mut line).await? == 0 {
                return Ok(None);
            }
            let l = line.trim_end();
            if l.is_empty() {
                if len.is_some() {
                    break;
                }
                continue;
            }
            if let Some((k, v)) = l.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    len = v.trim().parse::<usize>().ok();
                }
            }
        }
        let mut body = vec![0; len.unwrap_or(0)];
        r.read_exact(&mut body).await?;
        if let Ok(v) = serde_json::from_slice(&body) {
            return Ok(Some(v));
        }
    }
}

pub async fn write_frame(w: &mut Writer, v: &Value) -> std::io::Result<()> {
    let body = serde_json::to_vec(v).unwrap();
    w.write_all(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes()).await?;
    w.write_all(&body).await?;
    w.flush().await
}

/// The editor's session as the proxy sees it.
#[derive(Default)]
struct Mirror {
    initialize: Option<Value>,
    encoding: Option<Encoding>,
    docs: HashMap<String, (String, i32, Document)>,
    /// Editor requests the backend has not answered yet.
    pending: HashSet<String>,
}

impl Mirror {
    fn observe_client(&mut self, m: &Value) {
        let method = m["method"].as_str().unwrap_or("");
        if let Some(id) = m.get("id").filter(|_| !method.is_empty()) {
            self.pending.insert(id.to_string());
        }
        let p = &m["params"];
        match method {
            "initialize" => {
                self.initialize = Some(m.clone());
                let utf8 = p["capabilities"]["general"]["positionEncodings"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|e| e == "utf-8"));
                self.encoding = Some(if utf8 { Encoding::Utf8 } else { Encoding::Utf16 });
            }
            "textDocument/didOpen" => {
                let d = &p["textDocument"];
                let uri = d["uri"].as_str().unwrap_or("").to_string();
                let lang = d["languageId"].as_str().unwrap_or("").to_string();
                let version = d["version"].as_i64().unwrap_or(0) as i32;
                let doc = Document::new(d["text"].as_str().unwrap_or(""), version, lang.clone());
                self.docs.insert(uri, (lang, version, doc));
            }
            "textDocument/didChange" => {
                let uri = p["textDocument"]["uri"].as_str().unwrap_or("");
                let enc = self.encoding.unwrap_or(Encoding::Utf16);
                if let Some((_, v, doc)) = self.docs.get_mut(uri) {
                    for ch in p["contentChanges"].as_array().into_iter().flatten() {
                        if let Ok(c) = serde_json::from_value::<TextDocumentContentChangeEvent>(ch.clone()) {
                            doc.apply_change(&c, enc);
                        }
                    }
                    *v = p["textDocument"]["version"].as_i64().unwrap_or(*v as i64) as i32;
                }
            }
            "textDocument/didClose" => {
                self.docs.remove(p["textDocument"]["uri"].as_str().unwrap_or(""));
            }
            _ => {}
        }
    }

    fn replay_initialize(&self) -> Option<Value> {
        let mut i = self.initialize.clone()?;
        i["id"] = json!("lokal-replay");
        Some(i)
    }

    /// What a fresh backend needs, once it has answered `initialize`, to be where the old one was.
    fn replay(&self) -> Vec<Value> {
        let mut out = vec![json!({"jsonrpc": "2.0", "method": "initialized", "params": {}})];
        for (uri, (lang, version, doc)) in &self.docs {
            out.push(json!({"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {"textDocument": {
                "uri": uri, "languageId": lang, "version": version, "text": doc.text()}}}));
        }
        out
    }
}

async fn connect_daemon(path: &std::path::Path) -> Option<(Reader, Writer)> {
    let s = tokio::net::UnixStream::connect(path).await.ok()?;
    let (r, w) = s.into_split();
    Some((Box::new(r), Box::new(w)))
}

/// An in-process server on an in-memory pipe, for when no daemon can be reached.
fn in_process() -> (Reader, Writer) {
    let (ours, theirs) = tokio::io::duplex(1 << 20);
    let (tr, tw) = tokio::io::split(theirs);
    tokio::spawn(async move {
        let (service, socket) = crate::lsp::service();
        tower_lsp_server::Server::new(tr, tw, socket).serve(service).await;
    });
    let (r, w) = tokio::io::split(ours);
    (Box::new(r), Box::new(w))
}

/// Frames from a reader, through a channel: `select!` may drop a read half-way, a channel receive it may not.
fn frames(r: Reader) -> tokio::sync::mpsc::UnboundedReceiver<Value> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut r = BufReader::new(r);
        while let Ok(Some(v)) = read_frame(&mut r).await {
            if tx.send(v).is_err() {
                break;
            }
        }
    });
    rx
}

/// Forward until the session ends; returns the exit code.
pub async fn run(path: std::path::PathBuf, first: (Reader, Writer)) -> std::io::Result<i32> {
    // The editor's side goes through our framing: the proxy must not go deaf on a bad frame either, and it
    // must end with its editor.
    let life = crate::lifecycle::Lifecycle::new(true);
    let mut editor_in = crate::framing::read_messages(tokio::io::stdin(), life.clone());
    let mut editor_out: Writer = Box::new(tokio::io::stdout());
    let (r, mut backend_out) = first;
    let mut backend_in = frames(r);
    let mut mirror = Mirror::default();
    let mut on_daemon = true;
    // While a new backend initializes, the editor's messages wait here: the framework drops anything that
    // arrives before its `initialize` has been answered.
    let mut held: Option<Vec<Value>> = None;
    loop {
        tokio::select! {
            end = life.ended() => return Ok(life.exit_code(end)),
            msg = editor_in.recv() => {
                let m = match msg {
                    Some(crate::framing::Incoming::Message(m)) => m,
                    Some(crate::framing::Incoming::Reply(e)) => {
                        write_frame(&mut editor_out, &e).await?;
                        continue;
                    }
                    None => return Ok(life.exit_code(life.ended().await)),
                };
                mirror.observe_client(&m);
                if let Some(h) = held.as_mut() {
                    h.push(m);
                    continue;
                }
                if write_frame(&mut backend_out, &m).await.is_err() {
                    // Picked up by the backend side's EOF on the next turn.
                    continue;
                }
                if m["method"] == "exit" {
                    return Ok(life.exit_code(crate::lifecycle::End::Exit));
                }
            }
            msg = backend_in.recv() => {
                match msg {
                    Some(m) => {
                        if m["id"] == "lokal-replay" {
                            for r in mirror.replay().into_iter().chain(held.take().unwrap_or_default()) {
                                write_frame(&mut backend_out, &r).await?;
                            }
                            continue;
                        }
                        if m.get("method").is_none() {
                            if let Some(id) = m.get("id") {
                                mirror.pending.remove(&id.to_string());
                            }
                        }
                        write_frame(&mut editor_out, &m).await?;
                    }
                    None => {
                        // The backend is gone. Fail what was in flight, then find a new one.
                        for id in std::mem::take(&mut mirror.pending) {
                            let id: Value = serde_json::from_str(&id).unwrap_or(Value::Null);
                            write_frame(&mut editor_out, &json!({"jsonrpc": "2.0", "id": id,
                                "error": {"code": -32803, "message": "lokal: the daemon connection was lost; please retry"}})).await?;
                        }
                        let mut next = None;
                        if on_daemon {
                            for _ in 0..10 {
                                tokio::time::sleep(Duration::from_millis(200)).await;
                                if let Some(c) = connect_daemon(&path).await {
                                    next = Some(c);
                                    break;
                                }
                            }
                        }
                        let note = if next.is_some() {
                            "lokal: the daemon restarted; reconnected and restored the open documents"
                        } else {
                            on_daemon = false;
                            "lokal: the daemon is gone; continuing with an in-process model (more memory, a fresh cache)"
                        };
                        tracing::warn!("{note}");
                        let (r, w) = next.unwrap_or_else(in_process);
                        backend_in = frames(r);
                        backend_out = w;
                        if let Some(init) = mirror.replay_initialize() {
                            held = Some(Vec::new());
                            write_frame(&mut backend_out, &init).await?;
                        }
                        write_frame(&mut editor_out, &json!({"jsonrpc": "2.0", "method": "window/showMessage",
                            "params": {"type": 3, "message": note}})).await?;
                    }
                }
            }
        }
    }
}

/// Try the daemon; `None` when there is none to talk to.
pub async fn try_connect(path: &std::path::Path) -> Option<(Reader, Writer)> {
    connect_daemon(path).await
}
