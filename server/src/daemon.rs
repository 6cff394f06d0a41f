//! `lokal daemon`: one resident model for every editor window. Each connection on the Unix socket is a whole
//! LSP session on the shared engine; `lokal` (stdio) forwards to it when it is running (see proxy.rs).
use lokal_engine::{Engine, EngineConfig, EngineEvent};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::net::{UnixListener, UnixStream};

/// `$LOKAL_SOCKET`, else `$XDG_RUNTIME_DIR/lokal/daemon.sock`, else `~/.cache/lokal/daemon.sock`.
pub fn socket_path() -> PathBuf {
    if let Some(p) = std::env::var_os("LOKAL_SOCKET") {
        return PathBuf::from(p);
    }
    let base = lokal_engine::config::xdg_dir("XDG_RUNTIME_DIR", ".cache");
    base.join("lokal").join("daemon.sock")
}

/// Bind the socket so that only its owner can connect: the directory is 0700 and the socket 0600, so code
/// sent by one user's editor never reaches a daemon another user could talk to.
fn bind(path: &Path) -> std::io::Result<UnixListener> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    if path.exists() {
        // A socket nobody answers on is left over from a crash; a live one means a daemon already runs.
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AddrInUse,
                format!("a daemon already listens on {}", path.display()),
            ));
        }
        std::fs::remove_file(path)?;
    }
    let l = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(l)
}

pub fn run(cfg: EngineConfig) -> Result<(), String> {
    let path = socket_path();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|e| e.to_string())?;
    rt.block_on(async move {
        let listener = bind(&path).map_err(|e| format!("{}: {e}", path.display()))?;
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
        eprintln!("lokal daemon: listening on {}", path.display());
        let sessions = AtomicU64::new(0);
        // Without this the socket file outlives a SIGTERM, and the next `lokal` tries it first.
        let shutdown = crate::lifecycle::terminated();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                conn = listener.accept() => match conn {
                    Ok((stream, _)) => {
                        let id = sessions.fetch_add(1, Ordering::Relaxed);
                        tokio::spawn(serve_session(stream, engine.clone(), id));
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

async fn serve_session(stream: UnixStream, engine: Engine, id: u64) {
    tracing::info!(session = id, "daemon: session connected");
    let (read, write) = stream.into_split();
    let (service, socket, handle) = crate::lsp::session(Some(engine), format!("s{id}:"));
    crate::lifecycle::serve_guarded(read, write, service, socket, false).await;
    handle.close_all();
    tracing::info!(session = id, "daemon: session ended; its sequences are free");
}
