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
/// keys its block was last chosen from and the block itself (so it stays put while the user types in a
/// band of lines, and when the user comes back from another file).
pub struct WorkspaceContext {
    pub index: SymbolIndex,
    pub ring: ChunkRing,
    pub edits: RecentEdits,
    sticky: LruCache<PathBuf, Sticky>,
}

struct Sticky {
    band: usize,
    keys: Keys,
    /// The block last given, with the budget and style it was made for.
    last: Option<(usize, BlockStyle, Assembled)>,
}

/// The definitions and imports a block shows: what the cursor asked for. Visited chunks and edits are
/// background that every file visit or edit elsewhere reshuffles.
fn asked_for(a: &Assembled) -> Vec<(&Path, &str)> {
    let mut v: Vec<(&Path, &str)> = a
        .snippets
        .iter()
        .filter(|s| matches!(s.source, Source::Definition | Source::Import))
        .map(|s| (s.file.as_path(), s.text.as_str()))
        .collect();
    v.sort_unstable();
    v
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
        let entry = self.sticky.get_or_insert_mut(cur.path.to_path_buf(), || Sticky {
            band,
            keys: Keys::default(),
            last: None,
        });
        let moved = entry.band != band;
        if moved {
            entry.band = band;
            entry.keys = Keys::default();
        }
        entry.keys.merge(fresh);
        let fresh = assemble::assemble(&self.index, &self.ring, &self.edits, cur, &entry.keys, style, budget, count);
        // The block sits before the whole prefix: changing it re-decodes the prompt. A visit to another
        // file or an edit there only reshuffles the visited chunks and edits, so the block changes when the
        // cursor asks for other definitions or moves to another band of the file, not because the user went
        // away and came back. An empty block (asked before the index had anything) is not worth keeping.
        let held = |b: &usize, s: &BlockStyle, last: &Assembled| {
            *b == budget && s == style && !moved && !last.snippets.is_empty() && asked_for(last) == asked_for(&fresh)
        };
        let out = match &entry.last {
            Some((b, s, last)) if held(b, s, last) => last.clone(),
            _ => {
                entry.last = Some((budget, style.clone(), fresh.clone()));
                fresh
            }
        };
        for s in &out.snippets {
            self.index.touch(&s.file);
        }
        out
    }
}
