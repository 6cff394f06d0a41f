//! What the user looked at and changed lately: a ring of chunks of visited files (as llama.vscode's
//! extra context keeps one: blocks of about 64 lines around where the user was, a new chunk replacing
//! those it nearly repeats, the oldest dropped) and the ranges edited last.
//!
//! Both keep the order in which things entered them, not when they were last touched, so picking the
//! same chunk again changes nothing and the block built from them stays the same token for token.
use std::collections::{HashSet, VecDeque};
use std::ops::Range;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    pub path: PathBuf,
    pub lines: Range<usize>,
    pub text: String,
}

pub struct ChunkRing {
    chunks: VecDeque<Chunk>,
    max_chunks: usize,
    chunk_lines: usize,
}

/// Lines shared by two chunks as a share of both (llama.vim's `chunk_sim`): 1 for the same lines.
pub fn similarity(a: &str, b: &str) -> f32 {
    let (la, lb): (Vec<&str>, Vec<&str>) = (a.lines().collect(), b.lines().collect());
    if la.is_empty() && lb.is_empty() {
        return 1.0;
    }
    let set: HashSet<&str> = lb.iter().copied().collect();
    let common = la.iter().filter(|l| set.contains(*l)).count();
    2.0 * common as f32 / (la.len() + lb.len()) as f32
}

/// Chunks that repeat this share of an existing one replace it.
const SIMILAR: f32 = 0.9;

impl ChunkRing {
    pub fn new(max_chunks: usize, chunk_lines: usize) -> Self {
        Self { chunks: VecDeque::new(), max_chunks, chunk_lines: chunk_lines.max(2) }
    }

    /// Oldest first.
    pub fn chunks(&self) -> impl Iterator<Item = &Chunk> {
        self.chunks.iter()
    }

    pub fn len(&self) -> usize {
        self.chunks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.chunks.is_empty()
    }

    /// Take the chunk of `text` around `line`. Its start is rounded to half a chunk, so moving a few lines
    /// picks the same chunk again (which changes nothing) rather than a shifted copy.
    pub fn pick(&mut self, path: &Path, text: &str, line: usize) {
        let lines: Vec<&str> = text.lines().collect();
        if lines.is_empty() {
            return;
        }
        let half = self.chunk_lines / 2;
        let start = (line.min(lines.len() - 1).saturating_sub(half) / half) * half;
        let end = (start + self.chunk_lines).min(lines.len());
        let chunk = lines[start..end].join("\n");
        // A chunk of a few non-blank lines says nothing about the code.
        if lines[start..end].iter().filter(|l| !l.trim().is_empty()).count() < 3 {
            return;
        }
        self.add(Chunk { path: path.to_path_buf(), lines: start..end, text: chunk });
    }

    pub fn add(&mut self, chunk: Chunk) {
        if self.chunks.iter().any(|c| c.path == chunk.path && c.text == chunk.text) {
            return;
        }
        self.chunks.retain(|c| similarity(&c.text, &chunk.text) <= SIMILAR);
        self.chunks.push_back(chunk);
        while self.chunks.len() > self.max_chunks {
            self.chunks.pop_front();
        }
    }

    pub fn remove_file(&mut self, path: &Path) {
        self.chunks.retain(|c| !c.path.starts_with(path));
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EditedRange {
    pub path: PathBuf,
    /// Lines of the document when last edited, context included.
    pub lines: Range<usize>,
    pub text: String,
}

/// The last few edited places, each a few lines around the change.
pub struct RecentEdits {
    ranges: VecDeque<EditedRange>,
    max: usize,
    around: usize,
    max_lines: usize,
}

impl RecentEdits {
    pub fn new(max: usize) -> Self {
        Self { ranges: VecDeque::new(), max, around: 3, max_lines: 20 }
    }

    /// Oldest first.
    pub fn ranges(&self) -> impl Iterator<Item = &EditedRange> {
        self.ranges.iter()
    }

    /// After an edit: `text` is the document now, `changed` the lines the edit touched in it. An edit
    /// next to an earlier one extends that range (typing a function is one place, not one per line).
    pub fn record(&mut self, path: &Path, text: &str, changed: Range<usize>) {
        let lines: Vec<&str> = text.lines().collect();
        let n = lines.len();
        let mut want =
            changed.start.saturating_sub(self.around)..(changed.end.max(changed.start + 1) + self.around).min(n);
        if let Some(i) = self.ranges.iter().position(|r| {
            r.path == path && r.lines.start <= want.end + self.around && want.start <= r.lines.end + self.around
        }) {
            let old = self.ranges.remove(i).unwrap();
            want = want.start.min(old.lines.start)..want.end.max(old.lines.end).min(n);
        }
        // Long ranges keep the lines around the latest change.
        if want.len() > self.max_lines {
            let mid = changed.start.min(n);
            let start = mid.saturating_sub(self.max_lines / 2).max(want.start);
            want = start..(start + self.max_lines).min(want.end);
        }
        if want.start >= want.end {
            return;
        }
        let body = lines[want.clone()].join("\n");
        if body.trim().is_empty() {
            return;
        }
        self.ranges.push_back(EditedRange { path: path.to_path_buf(), lines: want, text: body });
        while self.ranges.len() > self.max {
            self.ranges.pop_front();
        }
    }

    pub fn remove_file(&mut self, path: &Path) {
        self.ranges.retain(|r| !r.path.starts_with(path));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(n: usize, tag: &str) -> String {
        (0..n).map(|i| format!("let {tag}{i} = {i};\n")).collect()
    }

    #[test]
    fn ring_dedups_similar_chunks_and_drops_the_oldest() {
        let mut r = ChunkRing::new(3, 64);
        let a = file(200, "a");
        r.pick(Path::new("a.rs"), &a, 100);
        // A few lines further: the same chunk (start rounded), nothing changes.
        r.pick(Path::new("a.rs"), &a, 105);
        assert_eq!(r.len(), 1);
        assert_eq!(r.chunks().next().unwrap().lines, 64..128);
        // The same place after a one-line edit is nearly the same chunk: it replaces the old one.
        let edited = a.replacen("let a100 = 100;", "let a100 = 101;", 1);
        r.pick(Path::new("a.rs"), &edited, 100);
        assert_eq!(r.len(), 1);
        assert!(r.chunks().next().unwrap().text.contains("a100 = 101"));
        for (i, f) in ["b", "c", "d"].iter().enumerate() {
            r.pick(Path::new(&format!("{f}.rs")), &file(50, f), i);
        }
        let paths: Vec<_> = r.chunks().map(|c| c.path.to_string_lossy().to_string()).collect();
        assert_eq!(paths, ["b.rs", "c.rs", "d.rs"]);
        // Blank files add nothing.
        r.pick(Path::new("e.rs"), "\n\n\n", 1);
        assert_eq!(r.len(), 3);
    }

    #[test]
    fn edits_merge_when_near_and_keep_their_text() {
        let mut e = RecentEdits::new(2);
        let text = file(100, "x");
        e.record(Path::new("a.rs"), &text, 10..11);
        e.record(Path::new("a.rs"), &text, 12..13);
        assert_eq!(e.ranges().count(), 1);
        assert_eq!(e.ranges().next().unwrap().lines, 7..16);
        e.record(Path::new("a.rs"), &text, 60..61);
        e.record(Path::new("b.rs"), &text, 0..1);
        let got: Vec<_> = e.ranges().map(|r| (r.path.to_string_lossy().to_string(), r.lines.clone())).collect();
        assert_eq!(got, [("a.rs".to_string(), 57..64), ("b.rs".to_string(), 0..4)]);
        assert!(e.ranges().last().unwrap().text.starts_with("let x0 = 0;"));
    }
}
