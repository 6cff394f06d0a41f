//! Context from the rest of the workspace for completions: a symbol index of the workspace
//! ([`index`], [`tags`], imports resolved by [`resolve`]), recently edited ranges and a ring of visited
//! chunks ([`ring`]), and the assembly of what fits a token budget ([`assemble`]) into one block before
//! the file's prefix ([`render`]).
//!
//! [`WorkspaceContext`] is what the LSP layer and the worker talk to: editor events in, a block out.
pub mod assemble;
pub mod index;
pub mod render;
pub mod resolve;
pub mod ring;
pub mod tags;

pub use assemble::{Assembled, Cursor, Keys, Snippet, Source};
pub use index::{IndexLimits, Origin, ScanReport, Skip, SymbolIndex, Watched};
pub use render::BlockStyle;
pub use tags::{Import, Tag, TagKind};

use lru::LruCache;
use std::num::NonZeroUsize;
use std::ops::Range;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContextConfig {
    pub index: IndexLimits,
    /// Chunks in the ring of visited code, and lines per chunk (llama.vscode's defaults: 16 of 64).
    pub ring_chunks: usize,
    pub chunk_lines: usize,
    /// Edited places remembered.
    pub edits: usize,
}

impl Default for ContextConfig {
    fn default() -> Self {
        Self { index: IndexLimits::default(), ring_chunks: 16, chunk_lines: 64, edits: 8 }
    }
}

/// The workspace as context: the symbol index, the visited ring and recent edits, and per document the
/// keys its block was last chosen from (so the block stays put while the user types in a band of lines).
pub struct WorkspaceContext {
    pub index: SymbolIndex,
    pub ring: ChunkRing,
    pub edits: RecentEdits,
    sticky: LruCache<PathBuf, (usize, Keys)>,
}

pub use ring::{ChunkRing, RecentEdits};

impl WorkspaceContext {
    pub fn new(config: ContextConfig) -> Self {
        Self {
            index: SymbolIndex::new(config.index),
            ring: ChunkRing::new(config.ring_chunks, config.chunk_lines),
            edits: RecentEdits::new(config.edits),
            sticky: LruCache::new(NonZeroUsize::new(64).unwrap()),
        }
    }

    /// A workspace folder: walk it (blocking; run it off the async threads).
    pub fn add_folder(&mut self, root: &Path) -> ScanReport {
        self.index.scan(root)
    }

    /// `didOpen`, or the user switched to the document: index its text and take the chunk around the
    /// cursor (`line`, 0 when unknown) into the ring.
    pub fn open(&mut self, path: &Path, text: &str, line: usize) {
        self.index.update(path, text, Origin::Open);
        self.ring.pick(path, text, line);
    }

    /// `didChange`: `changed` are the lines the edit touched in the new text.
    pub fn change(&mut self, path: &Path, text: &str, changed: Range<usize>) {
        self.index.update(path, text, Origin::Open);
        self.edits.record(path, text, changed);
    }

    /// `didSave`, or a copy from the document: the chunk around `line` joins the ring.
    pub fn visit(&mut self, path: &Path, text: &str, line: usize) {
        self.ring.pick(path, text, line);
    }

    /// `didClose`: the document stays indexed as visited.
    pub fn close(&mut self, path: &Path) {
        self.index.close(path);
        self.sticky.pop(path);
    }

    /// `workspace/didChangeWatchedFiles`.
    pub fn watched(&mut self, path: &Path, change: Watched) -> Result<(), Skip> {
        if change == Watched::Deleted {
            self.ring.remove_file(path);
            self.edits.remove_file(path);
        }
        self.index.watched(path, change)
    }

    /// The context block for a completion at `cur`, at most `budget` tokens by `count`.
    pub fn assemble(
        &mut self,
        cur: &Cursor,
        style: &BlockStyle,
        budget: usize,
        count: &dyn Fn(&str) -> usize,
    ) -> Assembled {
        let fresh = Keys::from_cursor(cur, &self.index);
        let band = cur.line / assemble::BAND;
        let keys = match self.sticky.get_mut(cur.path) {
            Some((b, keys)) if *b == band => {
                keys.merge(fresh);
                keys.clone()
            }
            _ => {
                self.sticky.put(cur.path.to_path_buf(), (band, fresh.clone()));
                fresh
            }
        };
        let out = assemble::assemble(&self.index, &self.ring, &self.edits, cur, &keys, style, budget, count);
        for s in &out.snippets {
            self.index.touch(&s.file);
        }
        out
    }
}
