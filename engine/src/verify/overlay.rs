//! A scratch mirror of a workspace where candidates are written and checked, so the user's files are never
//! touched. One mirror per workspace at a fixed path: `cargo` keys its incremental state on the package's
//! path, so a fresh temporary directory per check would rebuild the crate from nothing every time.
use super::VerifyError;
use crate::cancel::CancelToken;
use std::fs::{self, File, TryLockError};
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant};

pub(crate) struct Overlay {
    pub root: PathBuf,
    /// Workspace files mirrored, relative to the root.
    pub files: Vec<PathBuf>,
    /// Held while the mirror is in use: another verification of the same workspace (this process or
    /// another editor window's) waits rather than rebuilding the tree under a running checker.
    _lock: File,
}

/// Directories never mirrored: build outputs, VCS data and caches are large and checkers recreate them.
fn skipped(path: &Path, is_dir: bool) -> bool {
    if !is_dir {
        return false;
    }
    match path.file_name().and_then(|n| n.to_str()) {
        Some(".git" | "node_modules" | "__pycache__" | ".mypy_cache" | ".ruff_cache" | ".venv") => true,
        // Only Cargo's: a Python or Go package may well be called `target`.
        Some("target") => path.parent().is_some_and(|p| p.join("Cargo.toml").is_file()),
        _ => false,
    }
}

pub(crate) fn build(
    workspace: &Path,
    state: &Path,
    cancel: &CancelToken,
    deadline: Instant,
) -> Result<Overlay, VerifyError> {
    fs::create_dir_all(state).map_err(io)?;
    let lock = File::create(state.join("lock")).map_err(io)?;
    loop {
        match lock.try_lock() {
            Ok(()) => break,
            Err(TryLockError::WouldBlock) => {}
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
        if cancel.is_cancelled() {
            return Err(VerifyError::Cancelled);
        }
        if Instant::now() >= deadline {
            return Err(VerifyError::TimedOut);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let root = state.join("tree");
    if root.exists() {
        fs::remove_dir_all(&root).map_err(io)?;
    }
    fs::create_dir_all(&root).map_err(io)?;
    let mut files = Vec::new();
    let walk = ignore::WalkBuilder::new(workspace)
        .hidden(false)
        .require_git(false)
        .follow_links(false)
        .filter_entry(|e| !skipped(e.path(), e.file_type().is_some_and(|t| t.is_dir())))
        .build();
    for entry in walk {
        if cancel.is_cancelled() {
            return Err(VerifyError::Cancelled);
        }
        let Ok(entry) = entry else { continue };
        let Ok(rel) = entry.path().strip_prefix(workspace) else { continue };
        let Some(ty) = entry.file_type() else { continue };
        let dst = root.join(rel);
        if ty.is_dir() {
            fs::create_dir_all(&dst).map_err(io)?;
            // Type checkers need installed packages; they only read them, so a link to the user's is enough.
            let nm = entry.path().join("node_modules");
            if nm.is_dir() {
                std::os::unix::fs::symlink(&nm, dst.join("node_modules")).map_err(io)?;
            }
        } else if ty.is_symlink() {
            if let Ok(target) = fs::read_link(entry.path()) {
                let _ = std::os::unix::fs::symlink(target, &dst);
            }
        } else if ty.is_file() {
            mirror_file(entry.path(), &dst)?;
            files.push(rel.to_path_buf());
        }
    }
    Ok(Overlay { root, files, _lock: lock })
}

/// A hard link where the cache and the workspace share a file system (cheap, and keeps the modification
/// time that incremental checkers compare), a copy with the same modification time elsewhere.
/// Lock files and manifests are copied even where a link would do: `cargo` rewrites `Cargo.lock` in place
/// when a plan changes dependencies, which through a link would change the user's.
fn mirror_file(src: &Path, dst: &Path) -> Result<(), VerifyError> {
    let rewritten = matches!(
        src.file_name().and_then(|n| n.to_str()),
        Some(
            "Cargo.lock"
                | "Cargo.toml"
                | "go.mod"
                | "go.sum"
                | "go.work"
                | "go.work.sum"
                | "package.json"
                | "package-lock.json"
                | "tsconfig.json"
        )
    );
    if !rewritten && fs::hard_link(src, dst).is_ok() {
        return Ok(());
    }
    fs::copy(src, dst).map_err(io)?;
    if let Ok(mtime) = fs::metadata(src).and_then(|m| m.modified()) {
        if let Ok(f) = File::options().write(true).open(dst) {
            let _ = f.set_modified(mtime);
        }
    }
    Ok(())
}

impl Overlay {
    /// Writes a candidate as a new file: an existing entry is unlinked first, so the text can never go
    /// through a hard link into the user's tree.
    pub fn write(&self, rel: &Path, text: &str) -> Result<(), VerifyError> {
        let dst = self.root.join(checked_rel(rel)?);
        if dst.symlink_metadata().is_ok() {
            fs::remove_file(&dst).map_err(io)?;
        }
        if let Some(dir) = dst.parent() {
            fs::create_dir_all(dir).map_err(io)?;
        }
        use std::io::Write;
        let mut f = File::options().write(true).create_new(true).open(&dst).map_err(io)?;
        f.write_all(text.as_bytes()).map_err(io)
    }
}

/// Plan paths come from design documents and model output: only plain relative paths inside the workspace.
pub(crate) fn checked_rel(rel: &Path) -> Result<&Path, VerifyError> {
    let plain = !rel.as_os_str().is_empty() && rel.components().all(|c| matches!(c, Component::Normal(_)));
    if plain {
        Ok(rel)
    } else {
        Err(VerifyError::BadPath(rel.display().to_string()))
    }
}

fn io(e: std::io::Error) -> VerifyError {
    VerifyError::Io(e.to_string())
}
