//! The session's workspace context ([`lokal_engine::context`]) fed from editor events, and the block it
//! gives a completion. Scans and re-parses run on blocking threads, never on the handler path; the lock is
//! held only for an index update or one assembly.
use crate::backend::Backend;
use crate::documents::Document;
use dashmap::DashMap;
use lokal_engine::context::index::{self, Parsed};
use lokal_engine::context::{BlockStyle, Cursor, Origin, Watched, WorkspaceContext};
use lokal_engine::fim::PromptFormat;
use lokal_engine::names::{self, Names};
use lokal_engine::{ContextBlock, EngineState};
use std::collections::HashMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tower_lsp_server::ls_types::{
    DidChangeWatchedFilesParams, DidChangeWatchedFilesRegistrationOptions, FileChangeType, FileSystemWatcher,
    GlobPattern, Registration, Uri,
};

/// How long typing must pause before a changed document is re-parsed into the index: a re-parse per
/// keystroke would compete with the completion the keystroke asks for.
const REPARSE_PAUSE: Duration = Duration::from_millis(600);

/// Characters of a word typed before workspace names that continue it steer the completion: fewer name
/// too many.
const NAME_PREFIX: usize = 3;

/// The identifier that ends `before`, if any.
fn typed_word(before: &str) -> Option<&str> {
    let start = before.trim_end_matches(|c: char| c.is_alphanumeric() || c == '_').len();
    let w = &before[start..];
    (!w.is_empty() && !w.starts_with(|c: char| c.is_ascii_digit())).then_some(w)
}

/// Files up to this size are indexed on didOpen itself (a parse of a few milliseconds at most).
const INLINE_OPEN_BYTES: usize = 128 * 1024;

/// Extensions the index reads (the tree-sitter grammars of [`lokal_engine::syntax`]).
const SOURCE_GLOB: &str = "**/*.{rs,py,pyi,ts,tsx,js,jsx,mjs,cjs,go}";

#[derive(Default)]
struct Pending {
    generation: u64,
    lines: Option<Range<usize>>,
}

/// A session's context and the documents whose changes wait for a pause in typing.
#[derive(Clone, Default)]
pub struct SessionContext {
    ctx: Arc<Mutex<Option<WorkspaceContext>>>,
    pending: Arc<Mutex<HashMap<Uri, Pending>>>,
}

impl SessionContext {
    fn with<R>(&self, f: impl FnOnce(&mut WorkspaceContext) -> R) -> R {
        let mut g = self.ctx.lock().unwrap();
        f(g.get_or_insert_with(|| WorkspaceContext::new(Default::default())))
    }

    /// Index the workspace folders on a blocking thread: files are read and parsed outside the lock.
    pub fn scan(&self, roots: Vec<PathBuf>) {
        let this = self.clone();
        tokio::task::spawn_blocking(move || {
            for root in roots {
                let limits = this.with(|c| {
                    c.index.add_root(&root);
                    *c.index.limits()
                });
                let mut indexed = 0usize;
                for path in index::walk(&root) {
                    let full = this.with(|c| c.index.len() >= limits.max_files || c.index.bytes() >= limits.max_bytes);
                    if full {
                        break;
                    }
                    let Ok(text) = index::read_source(&path, &limits) else { continue };
                    let Some(parsed) = Parsed::of(&path, &text) else { continue };
                    // A document the editor opened meanwhile is newer than the disk.
                    if this.with(|c| {
                        c.index.get(&path).is_none_or(|e| e.origin <= Origin::Disk)
                            && c.index.insert(&path, parsed, Origin::Disk)
                    }) {
                        indexed += 1;
                    }
                }
                tracing::info!(root = %root.display(), indexed, "workspace context scanned");
            }
        });
    }

    /// A small file is indexed at once, so the completion that follows the didOpen already sees it (else
    /// its block would be empty, and the next one, with the file, would re-decode the whole prompt); a large
    /// one on a blocking thread, off the handler path.
    pub fn open(&self, path: PathBuf, text: String) {
        if text.len() <= INLINE_OPEN_BYTES {
            self.with(|c| c.open(&path, &text, 0));
            return;
        }
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.with(|c| c.open(&path, &text, 0)));
    }

    pub fn visit(&self, path: PathBuf, text: String) {
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.with(|c| c.visit(&path, &text, 0)));
    }

    pub fn close(&self, uri: &Uri, path: &Path) {
        self.pending.lock().unwrap().remove(uri);
        self.with(|c| c.close(path));
    }

    /// A change: remember the lines it touched, and re-parse once typing pauses.
    pub fn changed(&self, uri: &Uri, lines: Range<usize>, docs: &Arc<DashMap<Uri, Document>>) {
        let generation = {
            let mut p = self.pending.lock().unwrap();
            let e = p.entry(uri.clone()).or_default();
            e.generation += 1;
            e.lines = Some(match e.lines.take() {
                Some(r) => r.start.min(lines.start)..r.end.max(lines.end),
                None => lines,
            });
            e.generation
        };
        let (this, docs, uri) = (self.clone(), docs.clone(), uri.clone());
        tokio::spawn(async move {
            tokio::time::sleep(REPARSE_PAUSE).await;
            let lines = {
                let mut p = this.pending.lock().unwrap();
                match p.get(&uri) {
                    Some(e) if e.generation == generation => p.remove(&uri).and_then(|e| e.lines),
                    _ => return,
                }
            };
            let (Some(lines), Some(path)) = (lines, crate::conv::from_proto::path(&uri)) else { return };
            let Some(text) = docs.get(&uri).map(|d| d.text()) else { return };
            let _ = tokio::task::spawn_blocking(move || this.with(|c| c.change(&path, &text, lines))).await;
        });
    }

    pub fn watched(&self, params: &DidChangeWatchedFilesParams) {
        let events: Vec<(PathBuf, Watched)> = params
            .changes
            .iter()
            .filter_map(|e| {
                let kind = match e.typ {
                    FileChangeType::CREATED => Watched::Created,
                    FileChangeType::DELETED => Watched::Deleted,
                    _ => Watched::Changed,
                };
                Some((crate::conv::from_proto::path(&e.uri)?, kind))
            })
            .collect();
        if events.is_empty() {
            return;
        }
        let this = self.clone();
        tokio::task::spawn_blocking(move || {
            this.with(|c| {
                for (p, k) in events {
                    let _ = c.watched(&p, k);
                }
            })
        });
    }

    /// The block for a completion, or `None` when there is nothing to add.
    pub fn block(
        &self,
        path: &Path,
        before: &str,
        after: &str,
        line: usize,
        info: &EngineState,
        budget: usize,
    ) -> Option<ContextBlock> {
        let EngineState::Ready(info) = info else { return None };
        let family = PromptFormat::detect(info).family();
        let rep_sep = match (&info.fim.rep, &info.fim.sep) {
            (Some(r), Some(s)) => Some((r.text.as_str(), s.text.as_str())),
            _ => None,
        };
        let mut g = self.ctx.lock().unwrap();
        let c = g.as_mut()?;
        let repo = c
            .index
            .root_of(path)
            .and_then(|r| r.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let style = BlockStyle::choose(family, rep_sep, &repo, &c.index.display_path(path));
        if matches!(style, BlockStyle::Off) {
            return None;
        }
        // No tokenizer on this side: a generous estimate (code runs 3-4 bytes a token); the worker counts the
        // real tokens and takes them out of the prefix budget.
        let count = |s: &str| s.len().div_ceil(3);
        let a = c.assemble(&Cursor { path, before, after, line }, &style, budget, &count);
        let special = matches!(style, BlockStyle::Repo { .. });
        // Not in the middle of a word: the rest of it is already there.
        let mid_word = after.starts_with(|c: char| c.is_alphanumeric() || c == '_');
        let names = typed_word(before)
            .filter(|w| {
                w.chars().count() >= NAME_PREFIX
                    && !mid_word
                    && !names::defines_new_name(&before[..before.len() - w.len()])
            })
            .map(|w| Names {
                typed: w.to_string(),
                rests: names::rests(w, c.index.names_with_prefix(w, names::MAX_NAMES + 1)),
            })
            .unwrap_or_default();
        (!a.block.is_empty() || !names.rests.is_empty()).then_some(ContextBlock { text: a.block, special, names })
    }
}

/// The watchers the index needs: source files and ignore files, where the client registers dynamically.
pub fn watchers() -> Registration {
    let glob = |g: &str| FileSystemWatcher { glob_pattern: GlobPattern::String(g.into()), kind: None };
    let opts = DidChangeWatchedFilesRegistrationOptions { watchers: vec![glob(SOURCE_GLOB), glob("**/.gitignore")] };
    Registration {
        id: "lokal-context-files".into(),
        method: "workspace/didChangeWatchedFiles".into(),
        register_options: serde_json::to_value(opts).ok(),
    }
}

impl Backend {
    /// The context block for a completion in `uri`, when the setting is on and a local model serves it.
    pub(crate) fn context_block(&self, uri: &Uri, before: &str, after: &str, line: usize) -> Option<ContextBlock> {
        let (on, budget) = {
            let cfg = self.config.lock().unwrap();
            (cfg.context_enabled, cfg.context_tokens)
        };
        let engine = self.engine.get()?;
        // Local-only data: a session served by a remote engine gets none.
        if !on || budget == 0 || self.foreign || engine.remote(&self.session).is_some() {
            return None;
        }
        let path = crate::conv::from_proto::path(uri)?;
        self.context.block(&path, before, after, line, &engine.state(), budget)
    }
}
