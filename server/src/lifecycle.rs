//! When a session ends. An editor that crashes neither sends `exit` nor waits for us: its pipe closes, or
//! (when something else holds the pipe open) its process is simply gone. Either way a server that keeps
//! running holds a loaded model for nobody, so we end on end of input and when the editor's process, named
//! in `initialize`'s `processId`, no longer exists, as rust-analyzer and typescript-language-server do.
use serde_json::Value;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// How often the editor's process is looked for.
const PARENT_POLL: Duration = Duration::from_millis(500);
/// After end of input, how long the framework gets to finish on its own before we stop waiting for it.
const DRAIN: Duration = Duration::from_millis(300);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// `exit` arrived (code 0 after `shutdown`, 1 without, as the protocol says).
    Exit,
    InputClosed,
    ParentGone(u32),
}

#[derive(Clone)]
pub struct Lifecycle {
    inner: Arc<Inner>,
}

struct Inner {
    watch_parent: bool,
    parent: watch::Sender<Option<u32>>,
    ended: watch::Sender<Option<End>>,
    shutdown: AtomicBool,
}

impl Lifecycle {
    /// `watch_parent`: whether `initialize`'s processId is watched (the editor-facing process; not the
    /// daemon's sessions, whose editors are watched by their forwarding process).
    pub fn new(watch_parent: bool) -> Self {
        let (parent, _) = watch::channel(None);
        let (ended, _) = watch::channel(None);
        Self { inner: Arc::new(Inner { watch_parent, parent, ended, shutdown: AtomicBool::new(false) }) }
    }

    fn end(&self, why: End) {
        self.inner.ended.send_if_modified(|e| {
            if e.is_none() {
                *e = Some(why);
                true
            } else {
                false
            }
        });
    }

    /// See a client message on its way in.
    pub fn observe(&self, m: &Value) {
        match m["method"].as_str() {
            Some("initialize") if self.inner.watch_parent => {
                if let Some(pid) =
                    m["params"]["processId"].as_u64().and_then(|p| u32::try_from(p).ok()).filter(|&p| p > 0)
                {
                    self.watch(pid);
                }
            }
            Some("shutdown") => self.inner.shutdown.store(true, Ordering::Relaxed),
            Some("exit") => {
                let me = self.clone();
                // Let the framework see `exit` first; it stops reading at once.
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    me.end(End::Exit);
                });
            }
            _ => {}
        }
    }

    /// Watch the editor's process; end the session when it is gone.
    pub fn watch(&self, pid: u32) {
        if self.inner.parent.send_replace(Some(pid)).is_some() {
            return;
        }
        let me = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(PARENT_POLL).await;
                if me.inner.ended.borrow().is_some() {
                    return;
                }
                if !process_alive(pid) {
                    tracing::warn!("the editor (process {pid}) is gone; ending the session");
                    me.end(End::ParentGone(pid));
                    return;
                }
            }
        });
    }

    pub fn input_closed(&self) {
        let me = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(DRAIN).await;
            me.end(End::InputClosed);
        });
    }

    /// Resolves when the session is over, with why.
    pub async fn ended(&self) -> End {
        let mut rx = self.inner.ended.subscribe();
        loop {
            if let Some(e) = *rx.borrow_and_update() {
                return e;
            }
            if rx.changed().await.is_err() {
                return End::InputClosed;
            }
        }
    }

    /// The process's exit code for how the session ended.
    pub fn exit_code(&self, end: End) -> i32 {
        match end {
            End::Exit | End::InputClosed if self.inner.shutdown.load(Ordering::Relaxed) => 0,
            _ => 1,
        }
    }
}

/// Serve one LSP session through our framing until it ends: `exit`, end of input, or (with `watch_parent`)
/// the editor's process gone. The framework alone would wait for its long-running handlers (the model-load
/// progress runs for the whole session) and never return. Returns the exit code.
pub async fn serve_guarded(
    input: impl tokio::io::AsyncRead + Unpin + Send + 'static,
    output: impl tokio::io::AsyncWrite + Unpin + Send + 'static,
    service: tower_lsp_server::LspService<crate::backend::Backend>,
    socket: tower_lsp_server::ClientSocket,
    watch_parent: bool,
) -> i32 {
    let life = Lifecycle::new(watch_parent);
    let g = crate::framing::guard(input, output, life.clone());
    let end = tokio::select! {
        _ = tower_lsp_server::Server::new(g.input, g.output, socket).serve(service) => End::Exit,
        e = life.ended() => e,
    };
    tracing::info!("session ended: {end:?}");
    // What the framework wrote last (the answer to `shutdown`) still goes out, briefly.
    let _ = tokio::time::timeout(Duration::from_millis(200), g.writer).await;
    life.exit_code(end)
}

/// Whether `pid` names a live process. A zombie counts as gone: the editor has exited, only its parent has
/// not reaped it yet.
pub fn process_alive(pid: u32) -> bool {
    let Ok(p) = libc::pid_t::try_from(pid) else { return false };
    // SAFETY: kill with signal 0 sends nothing; it only checks that the process exists.
    let r = unsafe { libc::kill(p, 0) };
    if r != 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EPERM) {
        return false;
    }
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the command name, which is in parentheses and may itself contain them.
        Ok(s) => s.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().next()) != Some("Z"),
        Err(_) => true,
    }
}

/// SIGTERM or SIGINT.
pub async fn terminated() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let sigterm = async {
        match term.as_mut() {
            Some(t) => {
                t.recv().await;
            }
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = sigterm => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reaped_child_is_gone_and_we_are_alive() {
        assert!(process_alive(std::process::id()));
        let mut c = std::process::Command::new("true").spawn().unwrap();
        let pid = c.id();
        c.wait().unwrap();
        assert!(!process_alive(pid));
    }

    #[test]
    fn a_zombie_is_gone() {
        let c = std::process::Command::new("true").spawn().unwrap();
        let pid = c.id();
        // Not reaped: a zombie until `c` is waited for.
        let t = std::time::Instant::now();
        while process_alive(pid) {
            assert!(t.elapsed() < Duration::from_secs(5), "the exited child still looks alive");
            std::thread::sleep(Duration::from_millis(10));
        }
        drop(c);
    }

    #[tokio::test]
    async fn exit_after_shutdown_is_code_zero_and_eof_without_it_is_one() {
        let l = Lifecycle::new(false);
        l.observe(&serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "shutdown"}));
        l.observe(&serde_json::json!({"jsonrpc": "2.0", "method": "exit"}));
        let e = l.ended().await;
        assert_eq!((e, l.exit_code(e)), (End::Exit, 0));
        let l = Lifecycle::new(false);
        l.input_closed();
        let e = l.ended().await;
        assert_eq!((e, l.exit_code(e)), (End::InputClosed, 1));
    }
}
