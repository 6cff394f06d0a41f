//! `lokal daemon`: one resident model for every editor window. Each connection on the Unix socket is a whole
//! LSP session on the shared engine; `lokal` (stdio) forwards to it when it is running (see proxy.rs).
//!
//! By default only the daemon's own user can connect (socket 0600 in a 0700 directory). With `--group NAME`
//! (or `LOKAL_DAEMON_GROUP`) it serves the members of that Unix group: the socket and its directory belong to
//! the group, each connection is identified by the kernel's peer credentials, and a user's document keys,
//! statistics, remote engine and audit records carry that user, so no user sees another's. A connection whose
//! first message is `lokal/daemonStatus` gets the daemon's state instead of a session (`lokal daemon status`).
use crate::backend::SessionHandle;
use crate::team::{self, Group, Peer};
use lokal_engine::{Engine, EngineConfig, EngineEvent, EngineState};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

/// The method of the status request (`lokal daemon status`).
pub const STATUS: &str = "lokal/daemonStatus";

#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Serve this Unix group's members (`--group`, else `$LOKAL_DAEMON_GROUP`).
    pub group: Option<String>,
    /// Listen here instead of the default path.
    pub socket: Option<PathBuf>,
}

/// `$LOKAL_SOCKET`, else `$XDG_RUNTIME_DIR/lokal/daemon.sock`, else `~/.cache/lokal/daemon.sock`.
pub fn socket_path() -> PathBuf {
    if let Some(p) = std::env::var_os("LOKAL_SOCKET") {
        return PathBuf::from(p);
    }
    let base = lokal_engine::config::xdg_dir("XDG_RUNTIME_DIR", ".cache");
    base.join("lokal").join("daemon.sock")
}

/// The socket the editor's side talks to: `$LOKAL_SOCKET`; else, with `$LOKAL_DAEMON_GROUP`, that team's
/// daemon (checked: see [`team::team_socket`]); else the user's own.
pub fn client_socket_path() -> Result<PathBuf, String> {
    if std::env::var_os("LOKAL_SOCKET").is_some() {
        return Ok(socket_path());
    }
    match std::env::var(team::GROUP_ENV).ok().filter(|g| !g.is_empty()) {
        Some(g) => team::team_socket(&g),
        None => Ok(socket_path()),
    }
}

fn io_err(what: &Path, e: std::io::Error) -> String {
    format!("{}: {e}", what.display())
}

/// Give a path to the team's group; the error says why a daemon may not.
fn chgrp(path: &Path, g: &Group) -> Result<(), String> {
    std::os::unix::fs::chown(path, None, Some(g.gid)).map_err(|e| {
        format!(
            "cannot give {} to group {}: {e} (the daemon's user must be root or a member of {})",
            path.display(),
            g.name,
            g.name
        )
    })
}

/// Bind the socket so that only its owner can connect (directory 0700, socket 0600), or with a group only its
/// owner and the group's members (directory 0750 and socket 0660, both the group's), so code sent by one
/// user's editor never reaches a daemon someone outside could talk to.
fn bind(path: &Path, group: Option<&Group>) -> Result<UnixListener, String> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
        if let Some(g) = group {
            // A directory someone else made (in /tmp, say) could be swapped under us: it must be our own.
            let m = std::fs::symlink_metadata(dir).map_err(|e| io_err(dir, e))?;
            if m.file_type().is_symlink() || m.uid() != team::euid() {
                return Err(format!(
                    "{} belongs to uid {}, not to the daemon's user; remove it",
                    dir.display(),
                    m.uid()
                ));
            }
            chgrp(dir, g)?;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o750)).map_err(|e| io_err(dir, e))?;
        } else {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(|e| io_err(dir, e))?;
        }
    }
    if path.exists() {
        // A socket nobody answers on is left over from a crash; a live one means a daemon already runs.
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(format!("a daemon already listens on {}", path.display()));
        }
        std::fs::remove_file(path).map_err(|e| io_err(path, e))?;
    }
    let l = UnixListener::bind(path).map_err(|e| io_err(path, e))?;
    let mode = if let Some(g) = group {
        chgrp(path, g)?;
        0o660
    } else {
        0o600
    };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(|e| io_err(path, e))?;
    Ok(l)
}

/// One connected editor window, for `lokal daemon status`.
struct Session {
    peer: Peer,
    since: SystemTime,
    handle: SessionHandle,
}

/// What every connection shares.
struct Daemon {
    engine: Engine,
    group: Option<Group>,
    socket: PathBuf,
    since: SystemTime,
    sessions: Mutex<BTreeMap<u64, Session>>,
    next: AtomicU64,
}

pub fn run(cfg: EngineConfig, opts: Options) -> Result<(), String> {
    let group_name = opts.group.or_else(|| std::env::var(team::GROUP_ENV).ok().filter(|g| !g.is_empty()));
    // Before anything else: a group that does not exist is the user's first error to see.
    let group = group_name.as_deref().map(team::group_by_name).transpose()?;
    let path = match (opts.socket, &group) {
        (Some(p), _) => p,
        (None, Some(g)) if std::env::var_os("LOKAL_SOCKET").is_none() => {
            team::default_team_socket(&g.name, team::euid() == 0)
        }
        _ => socket_path(),
    };
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|e| e.to_string())?;
    rt.block_on(async move {
        let listener = bind(&path, group.as_ref())?;
        let why = match lokal_engine::settings::ModelSource::of(&cfg) {
            lokal_engine::settings::ModelSource::Setting => "lokal daemon --model",
            lokal_engine::settings::ModelSource::Env => "the daemon's LOKAL_MODEL",
            lokal_engine::settings::ModelSource::Default => "the default model",
        };
        crate::settings::set_daemon_model(cfg.resolved_model_path(), why.to_string());
        let engine = Engine::start(cfg, |ev| match ev {
            EngineEvent::Ready(i) => tracing::info!("daemon: model ready: {}", i.path),
            EngineEvent::Failed(e) => tracing::error!("daemon: model failed: {e}"),
            _ => {}
        });
        match &group {
            Some(g) => eprintln!("lokal daemon: listening on {} for the members of group {}", path.display(), g.name),
            None => eprintln!("lokal daemon: listening on {}", path.display()),
        }
        let daemon = Arc::new(Daemon {
            engine: engine.clone(),
            group,
            socket: path.clone(),
            since: SystemTime::now(),
            sessions: Mutex::new(BTreeMap::new()),
            next: AtomicU64::new(0),
        });
        // Without this the socket file outlives a SIGTERM, and the next `lokal` tries it first.
        let shutdown = crate::lifecycle::terminated();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                conn = listener.accept() => match conn {
                    Ok((stream, _)) => {
                        tokio::spawn(connection(stream, daemon.clone()));
                    }
                    Err(e) => tracing::warn!("daemon: accept failed: {e}"),
                },
            }
        }
        let _ = std::fs::remove_file(&path);
        engine.shutdown();
        Ok::<(), String>(())
    })?;
    rt.shutdown_background();
    Ok(())
}

/// The connection's first frame, read without losing it: the raw bytes, and the message where its body is
/// small (a status request is; an editor's `initialize` need not be, and is passed on unread).
async fn first_frame(r: &mut BufReader<tokio::net::unix::OwnedReadHalf>) -> std::io::Result<(Vec<u8>, Option<Value>)> {
    let mut raw = Vec::new();
    let mut len = None;
    loop {
        let start = raw.len();
        // Bounded: a peer that never sends a newline must not grow this without end.
        let room = 8192u64.saturating_sub(start as u64);
        if room == 0 || (&mut *r).take(room).read_until(b'\n', &mut raw).await? == 0 {
            return Ok((raw, None));
        }
        let line = String::from_utf8_lossy(&raw[start..]).trim().to_string();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            if k.trim().eq_ignore_ascii_case("content-length") {
                len = v.trim().parse::<usize>().ok();
            }
        }
    }
    let Some(len) = len.filter(|n| *n <= 4096) else { return Ok((raw, None)) };
    let start = raw.len();
    raw.resize(start + len, 0);
    r.read_exact(&mut raw[start..]).await?;
    let msg = serde_json::from_slice(&raw[start..]).ok();
    Ok((raw, msg))
}

async fn connection(stream: UnixStream, d: Arc<Daemon>) {
    let peer = match Peer::of(&stream) {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!("daemon: connection without peer credentials refused: {e}");
            return;
        }
    };
    // The socket's mode keeps others out; this holds even if someone loosened it.
    if let Some(g) = &d.group {
        if peer.uid != team::euid() && peer.uid != 0 && !team::is_member(peer.uid, g) {
            tracing::warn!(user = %peer.user, "daemon: refused a user outside group {}", g.name);
            return;
        }
    }
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    let (raw, first) = match first_frame(&mut read).await {
        Ok(f) => f,
        Err(e) => {
            tracing::debug!("daemon: connection closed before its first message: {e}");
            return;
        }
    };
    if let Some(m) = first.filter(|m| m["method"] == STATUS) {
        let body = json!({"jsonrpc": "2.0", "id": m["id"], "result": status(&d, &peer)});
        let bytes = serde_json::to_vec(&body).unwrap_or_default();
        let _ = write.write_all(format!("Content-Length: {}\r\n\r\n", bytes.len()).as_bytes()).await;
        let _ = write.write_all(&bytes).await;
        let _ = write.shutdown().await;
        return;
    }
    let id = d.next.fetch_add(1, Ordering::Relaxed);
    // On a team daemon every key carries the user: a session's documents, cache cells and statistics are
    // found by this prefix, and no two users share one.
    let (prefix, user) = match &d.group {
        Some(_) => (format!("u{}:s{id}:", peer.uid), Some(peer.user.clone())),
        None => (format!("s{id}:"), None),
    };
    tracing::info!(session = id, user = %peer.user, "daemon: session connected");
    let foreign = d.group.is_some() && peer.uid != team::euid();
    let (service, socket, handle) = crate::lsp::session(Some(d.engine.clone()), prefix, user, foreign);
    d.sessions.lock().unwrap().insert(id, Session { peer, since: SystemTime::now(), handle: handle.clone() });
    let input = std::io::Cursor::new(raw).chain(read);
    crate::lifecycle::serve_guarded(input, write, service, socket, false).await;
    d.sessions.lock().unwrap().remove(&id);
    handle.close_all();
    tracing::info!(session = id, "daemon: session ended; its sequences are free");
}

fn rfc3339(t: SystemTime) -> String {
    lokal_engine::policy::audit::rfc3339(
        t.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0),
    )
}

/// The daemon as the caller may see it: the daemon's own user and root see every session; a team member sees
/// their own and only how many others there are.
fn status(d: &Daemon, caller: &Peer) -> Value {
    let all = caller.uid == team::euid() || caller.uid == 0;
    let sessions = d.sessions.lock().unwrap();
    let shown: Vec<Value> = sessions
        .iter()
        .filter(|(_, s)| all || s.peer.uid == caller.uid)
        .map(|(id, s)| {
            json!({"id": id, "user": s.peer.user, "uid": s.peer.uid, "pid": s.peer.pid, "since": rfc3339(s.since),
                   "openDocuments": s.handle.open_documents()})
        })
        .collect();
    let model = match d.engine.state() {
        EngineState::Ready(i) => json!({"state": "ready", "path": i.path, "name": i.name}),
        EngineState::Loading => json!({"state": "loading"}),
        EngineState::Failed(e) => json!({"state": "failed", "error": e}),
    };
    json!({
        "pid": std::process::id(),
        "user": team::user_name(team::euid()),
        "since": rfc3339(d.since),
        "socket": d.socket,
        "group": d.group.as_ref().map(|g| &g.name),
        "model": model,
        "inFlight": d.engine.in_flight(),
        "rssBytes": team::rss_bytes(),
        "otherSessions": sessions.len() - shown.len(),
        "sessions": shown,
    })
}

/// `lokal daemon status`: ask the daemon at the socket the editor's side would use.
pub fn status_cmd(json_out: bool) -> Result<(), String> {
    let path = client_socket_path()?;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    let v = rt.block_on(async {
        let s =
            UnixStream::connect(&path).await.map_err(|e| format!("no daemon answers on {}: {e}", path.display()))?;
        let (r, mut w) = s.into_split();
        let req = serde_json::to_vec(&json!({"jsonrpc": "2.0", "id": 1, "method": STATUS})).unwrap_or_default();
        w.write_all(format!("Content-Length: {}\r\n\r\n", req.len()).as_bytes()).await.map_err(|e| e.to_string())?;
        w.write_all(&req).await.map_err(|e| e.to_string())?;
        let mut r: BufReader<Box<dyn tokio::io::AsyncRead + Unpin + Send>> = BufReader::new(Box::new(r));
        crate::proxy::read_frame(&mut r)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("the daemon on {} closed the connection without an answer", path.display()))
    })?;
    let st = &v["result"];
    if json_out {
        println!("{}", serde_json::to_string_pretty(st).unwrap_or_default());
    } else {
        print!("{}", render_status(st));
    }
    Ok(())
}

pub fn render_status(st: &Value) -> String {
    let mut out = format!(
        "daemon   pid {} (user {}) since {}, socket {}{}\n",
        st["pid"],
        st["user"].as_str().unwrap_or("?"),
        st["since"].as_str().unwrap_or("?"),
        st["socket"].as_str().unwrap_or("?"),
        st["group"].as_str().map(|g| format!(", group {g}")).unwrap_or_default()
    );
    let m = &st["model"];
    out += &format!(
        "model    {} {}\n",
        m["state"].as_str().unwrap_or("?"),
        m["path"].as_str().or(m["error"].as_str()).unwrap_or("")
    );
    out += &format!("queue    {} request(s) in flight\n", st["inFlight"]);
    if let Some(b) = st["rssBytes"].as_u64() {
        out += &format!("memory   {:.0} MB resident\n", b as f64 / 1e6);
    }
    let sessions = st["sessions"].as_array().cloned().unwrap_or_default();
    out += &format!("sessions {}\n", sessions.len() as u64 + st["otherSessions"].as_u64().unwrap_or(0));
    for s in &sessions {
        out += &format!(
            "  #{:<4} {:<16} since {}  {} open document(s)\n",
            s["id"],
            s["user"].as_str().unwrap_or("?"),
            s["since"].as_str().unwrap_or("?"),
            s["openDocuments"]
        );
    }
    if let Some(n) = st["otherSessions"].as_u64().filter(|n| *n > 0) {
        out += &format!("  and {n} session(s) of other users\n");
    }
    out
}
