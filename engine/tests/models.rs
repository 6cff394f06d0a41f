//! `lokal models pull` against a fake hub on 127.0.0.1: a tiny HTTP/1.1 server that honours Range, can cut
//! a transfer midway, redirect to another loopback port, answer 404, and records each request's headers.
use lokal_engine::catalog::pull::{pull, Event, PullOptions};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Clone)]
enum Route {
    File(Arc<Vec<u8>>),
    /// Serve the file, but the first `times` responses stop after `after` bytes of the body.
    Cut {
        body: Arc<Vec<u8>>,
        after: usize,
        times: usize,
    },
    Redirect(String),
}

#[derive(Debug, Clone)]
struct Seen {
    path: String,
    headers: HashMap<String, String>,
}

struct Hub {
    addr: String,
    routes: Arc<Mutex<HashMap<String, Route>>>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Hub {
    fn start() -> Hub {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = format!("http://{}", l.local_addr().unwrap());
        let routes: Arc<Mutex<HashMap<String, Route>>> = Arc::default();
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let (r, s) = (routes.clone(), seen.clone());
        std::thread::spawn(move || {
            for c in l.incoming().flatten() {
                let (r, s) = (r.clone(), s.clone());
                std::thread::spawn(move || serve(c, &r, &s));
            }
        });
        Hub { addr, routes, seen }
    }
    fn route(&self, path: &str, r: Route) {
        self.routes.lock().unwrap().insert(path.into(), r);
    }
    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

fn serve(c: TcpStream, routes: &Mutex<HashMap<String, Route>>, seen: &Mutex<Vec<Seen>>) {
    let mut rd = BufReader::new(c.try_clone().unwrap());
    let mut line = String::new();
    if rd.read_line(&mut line).is_err() {
        return;
    }
    let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
    let mut headers = HashMap::new();
    loop {
        let mut h = String::new();
        if rd.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_lowercase(), v.trim().to_string());
        }
    }
    seen.lock().unwrap().push(Seen { path: path.clone(), headers: headers.clone() });
    let mut w = c;
    let route = routes.lock().unwrap().get(&path).cloned();
    let (body, cut) = match route {
        None => {
            let _ = w.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\nConnection: close\r\n\r\nnot found");
            return;
        }
        Some(Route::Redirect(to)) => {
            let _ = write!(w, "HTTP/1.1 302 Found\r\nLocation: {to}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            return;
        }
        Some(Route::File(b)) => (b, None),
        Some(Route::Cut { body, after, times }) => {
            let cut = (times > 0).then_some(after);
            if times > 0 {
                routes.lock().unwrap().insert(path.clone(), Route::Cut { body: body.clone(), after, times: times - 1 });
            }
            (body, cut)
        }
    };
    let start: usize = headers
        .get("range")
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.trim_end_matches('-').parse().ok())
        .unwrap_or(0);
    if start >= body.len() && start > 0 {
        let _ = write!(w, "HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", body.len());
        return;
    }
    let rest = &body[start..];
    let head = if headers.contains_key("range") {
        format!("HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {start}-{}/{}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len() - 1, body.len(), rest.len())
    } else {
        format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", rest.len())
    };
    let _ = w.write_all(head.as_bytes());
    let n = cut.map_or(rest.len(), |a| a.min(rest.len()));
    let _ = w.write_all(&rest[..n]);
    let _ = w.flush();
    // Dropping the socket mid-body is the interruption.
}

fn content(n: usize, seed: u8) -> Arc<Vec<u8>> {
    Arc::new((0..n).map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[2] ^ seed).collect())
}

fn sha(b: &[u8]) -> String {
    Sha256::digest(b).iter().map(|x| format!("{x:02x}")).collect()
}

fn tmp(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("lokal-pull-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn opts(hub: &Hub, dir: &std::path::Path, sha256: &str) -> PullOptions {
    PullOptions {
        endpoint: hub.addr.clone(),
        token: None,
        dir: dir.into(),
        sha256: Some(sha256.into()),
        retries: 3,
        retry_delay: Duration::from_millis(20),
    }
}

async fn run(what: &str, o: &PullOptions) -> (Result<lokal_engine::catalog::pull::Pulled, String>, Vec<Event>) {
    let mut events = Vec::new();
    let r = pull(what, o, &mut |e: &Event| events.push(e.clone())).await;
    (r, events)
}

#[tokio::test]
async fn a_full_pull_sends_the_token_and_keeps_a_verified_file() {
    let hub = Hub::start();
    let body = content(700_000, 1);
    hub.route("/org/repo/resolve/main/m-q4_k_m.gguf", Route::File(body.clone()));
    let dir = tmp("full");
    let mut o = opts(&hub, &dir, &sha(&body));
    o.token = Some("hf_secret".into());
    let (r, events) = run("hf://org/repo/m-q4_k_m.gguf", &o).await;
    let p = r.unwrap();
    assert_eq!(p.path, dir.join("m-q4_k_m.gguf"));
    assert_eq!(std::fs::read(&p.path).unwrap(), *body);
    assert!(!dir.join("m-q4_k_m.gguf.part").exists());
    assert_eq!(hub.seen()[0].headers.get("authorization").map(String::as_str), Some("Bearer hf_secret"));
    assert!(events.iter().any(|e| matches!(e, Event::Start { total: Some(700_000), from: 0, .. })), "{events:?}");
    assert!(events.iter().any(|e| matches!(e, Event::Progress { done: 700_000, .. })));
    assert!(matches!(events.last(), Some(Event::Done { cached: false, .. })));

    // Pulled again: checked on disk, not downloaded.
    let (r, events) = run("hf://org/repo/m-q4_k_m.gguf", &o).await;
    assert_eq!(r.unwrap().path, p.path);
    assert_eq!(hub.seen().len(), 1, "no second request");
    assert!(matches!(events.last(), Some(Event::Done { cached: true, .. })));
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn wrong_bytes_name_both_checksums_and_leave_nothing() {
    let hub = Hub::start();
    let body = content(200_000, 2);
    hub.route("/org/repo/resolve/main/m.gguf", Route::File(body.clone()));
    let dir = tmp("wrong");
    let want = sha(b"the file the repository promised");
    let (r, _) = run("hf://org/repo/m.gguf", &opts(&hub, &dir, &want)).await;
    let e = r.unwrap_err();
    assert!(e.contains("sha256 mismatch") && e.contains(&want) && e.contains(&sha(&body)), "{e}");
    assert!(!dir.join("m.gguf").exists(), "nothing under the final name");
    assert!(!dir.join("m.gguf.part").exists(), "wrong bytes are not kept to resume from");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn an_interrupted_transfer_resumes_with_a_range_request() {
    let hub = Hub::start();
    let body = content(900_000, 3);
    hub.route("/org/repo/resolve/main/m.gguf", Route::Cut { body: body.clone(), after: 300_000, times: 2 });
    let dir = tmp("resume");
    let (r, events) = run("hf://org/repo/m.gguf", &opts(&hub, &dir, &sha(&body))).await;
    assert_eq!(std::fs::read(r.unwrap().path).unwrap(), *body);
    let seen = hub.seen();
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert!(!seen[0].headers.contains_key("range"));
    assert_eq!(seen[1].headers.get("range").map(String::as_str), Some("bytes=300000-"));
    assert_eq!(seen[2].headers.get("range").map(String::as_str), Some("bytes=600000-"));
    assert_eq!(events.iter().filter(|e| matches!(e, Event::Retry { .. })).count(), 2);
    assert!(events.iter().any(|e| matches!(e, Event::Start { from: 600_000, total: Some(900_000), .. })));
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn the_next_run_resumes_from_the_part_file() {
    let hub = Hub::start();
    let body = content(500_000, 4);
    hub.route("/org/repo/resolve/main/m.gguf", Route::Cut { body: body.clone(), after: 123_456, times: 1 });
    let dir = tmp("next");
    let mut o = opts(&hub, &dir, &sha(&body));
    o.retries = 0;
    let (r, _) = run("hf://org/repo/m.gguf", &o).await;
    let e = r.unwrap_err();
    assert!(e.contains("run the same command again"), "{e}");
    assert_eq!(std::fs::metadata(dir.join("m.gguf.part")).unwrap().len(), 123_456);
    assert!(!dir.join("m.gguf").exists());
    let (r, _) = run("hf://org/repo/m.gguf", &o).await;
    assert_eq!(std::fs::read(r.unwrap().path).unwrap(), *body);
    assert_eq!(hub.seen()[1].headers.get("range").map(String::as_str), Some("bytes=123456-"));
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_missing_file_is_a_clear_404() {
    let hub = Hub::start();
    let dir = tmp("404");
    let (r, _) = run("hf://org/repo/missing.gguf", &opts(&hub, &dir, &sha(b"x"))).await;
    let e = r.unwrap_err();
    assert!(e.contains("404") && e.contains("not found") && e.contains("/org/repo/resolve/main/missing.gguf"), "{e}");
    assert_eq!(hub.seen().len(), 1, "a 404 is not retried");
    assert!(std::fs::read_dir(&dir).unwrap().next().is_none(), "nothing written");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn redirects_to_the_storage_host_are_followed_without_the_token() {
    let (hub, storage) = (Hub::start(), Hub::start());
    let body = content(300_000, 5);
    storage.route("/blobs/abc", Route::File(body.clone()));
    hub.route("/org/repo/resolve/v1.0/m.gguf", Route::Redirect(format!("{}/blobs/abc", storage.addr)));
    let dir = tmp("redirect");
    let mut o = opts(&hub, &dir, &sha(&body));
    o.token = Some("hf_secret".into());
    let (r, _) = run("hf://org/repo@v1.0/m.gguf", &o).await;
    assert_eq!(std::fs::read(r.unwrap().path).unwrap(), *body);
    assert_eq!(hub.seen()[0].path, "/org/repo/resolve/v1.0/m.gguf");
    assert_eq!(hub.seen()[0].headers.get("authorization").map(String::as_str), Some("Bearer hf_secret"));
    let s = storage.seen();
    assert_eq!((s.len(), s[0].path.as_str()), (1, "/blobs/abc"));
    assert!(!s[0].headers.contains_key("authorization"), "the token stays with the hub: {s:?}");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_file_without_a_pinned_checksum_needs_one() {
    let hub = Hub::start();
    let dir = tmp("nosha");
    let mut o = opts(&hub, &dir, "");
    o.sha256 = None;
    let (r, _) = run("hf://org/repo/m.gguf", &o).await;
    assert!(r.unwrap_err().contains("--sha256"));
    // A catalog model whose checksum no source lists says the same, before any request.
    let (r, _) = run("qwen2.5-coder-0.5b-q8_0", &o).await;
    let e = r.unwrap_err();
    assert!(e.contains("no sha256 is pinned") && e.contains("Qwen/Qwen2.5-Coder-0.5B-Instruct-GGUF"), "{e}");
    assert!(hub.seen().is_empty());
    let _ = std::fs::remove_dir_all(dir);
}
