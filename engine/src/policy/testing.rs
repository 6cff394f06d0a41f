//! A scripted HTTP/1.1 server on a loopback port, for tests that must see what actually reaches the wire
//! (and that nothing does). It only ever binds 127.0.0.1.
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub enum Reply {
    Full {
        status: u16,
        content_type: &'static str,
        body: String,
        extra: Vec<(String, String)>,
    },
    /// Hold the connection without answering (closed after a few seconds so no test can hang).
    Hang,
    /// A body written in pieces with a pause between them, ended by closing the connection.
    Chunks {
        content_type: &'static str,
        chunks: Vec<String>,
        pause_ms: u64,
    },
}

impl Reply {
    pub fn json(status: u16, body: &str) -> Reply {
        Reply::Full { status, content_type: "application/json", body: body.into(), extra: vec![] }
    }
    pub fn text(status: u16, body: &str) -> Reply {
        Reply::Full { status, content_type: "text/plain", body: body.into(), extra: vec![] }
    }
    pub fn redirect(location: &str) -> Reply {
        Reply::Full {
            status: 307,
            content_type: "text/plain",
            body: String::new(),
            extra: vec![("location".into(), location.into())],
        }
    }
    pub fn chunks(chunks: &[&str], pause_ms: u64) -> Reply {
        Reply::Chunks {
            content_type: "text/event-stream",
            chunks: chunks.iter().map(|c| c.to_string()).collect(),
            pause_ms,
        }
    }
    pub fn sse(events: &[&str], pause_ms: u64) -> Reply {
        Reply::Chunks {
            content_type: "text/event-stream",
            chunks: events.iter().map(|e| format!("{e}\n\n")).collect(),
            pause_ms,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    /// Names lowercased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("request body is JSON")
    }
}

pub struct FakeServer {
    port: u16,
    accepted: Arc<AtomicUsize>,
    requests: Arc<Mutex<Vec<Request>>>,
}

fn read_request(s: &mut TcpStream) -> Option<Request> {
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut buf = Vec::new();
    let mut byte = [0u8; 1024];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = s.read(&mut byte).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&byte[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let (method, path) = (first.next()?.to_string(), first.next()?.to_string());
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let len: usize = headers.iter().find(|(k, _)| k == "content-length").and_then(|(_, v)| v.parse().ok()).unwrap_or(0);
    let mut body = buf[head_end..].to_vec();
    while body.len() < len {
        let n = s.read(&mut byte).ok()?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&byte[..n]);
    }
    Some(Request { method, path, headers, body })
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        307 => "Temporary Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        500 => "Internal Server Error",
        _ => "Status",
    }
}

fn answer(s: &mut TcpStream, reply: Reply) {
    match reply {
        Reply::Full { status, content_type, body, extra } => {
            let mut head = format!(
                "HTTP/1.1 {status} {}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n",
                reason(status),
                body.len()
            );
            for (k, v) in extra {
                head.push_str(&format!("{k}: {v}\r\n"));
            }
            head.push_str("\r\n");
            let _ = s.write_all(head.as_bytes());
            let _ = s.write_all(body.as_bytes());
        }
        Reply::Hang => std::thread::sleep(Duration::from_secs(3)),
        Reply::Chunks { content_type, chunks, pause_ms } => {
            let _ = s.write_all(
                format!("HTTP/1.1 200 OK\r\ncontent-type: {content_type}\r\nconnection: close\r\n\r\n").as_bytes(),
            );
            for c in chunks {
                if s.write_all(c.as_bytes()).and_then(|_| s.flush()).is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(pause_ms));
            }
        }
    }
}

impl FakeServer {
    /// Serves one scripted reply per connection, in order; connections beyond the script are counted and
    /// closed.
    pub fn start(replies: Vec<Reply>) -> FakeServer {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let port = l.local_addr().unwrap().port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (acc, reqs) = (accepted.clone(), requests.clone());
        std::thread::spawn(move || {
            let mut replies = replies.into_iter();
            for conn in l.incoming() {
                let Ok(mut s) = conn else { continue };
                acc.fetch_add(1, Ordering::SeqCst);
                let Some(reply) = replies.next() else { continue };
                let reqs = reqs.clone();
                std::thread::spawn(move || {
                    if let Some(rq) = read_request(&mut s) {
                        reqs.lock().unwrap().push(rq);
                        answer(&mut s, reply);
                    }
                });
            }
        });
        FakeServer { port, accepted, requests }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Connections accepted so far, after a pause so that one in flight is counted.
    pub fn accepted(&self) -> usize {
        std::thread::sleep(Duration::from_millis(50));
        self.accepted.load(Ordering::SeqCst)
    }

    /// Every request received so far, in the order they arrived.
    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }

    /// The `i`th request received, waiting briefly for it.
    pub fn request(&self, i: usize) -> Request {
        for _ in 0..200 {
            if let Some(r) = self.requests.lock().unwrap().get(i) {
                return r.clone();
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("request {i} never arrived");
    }
}
