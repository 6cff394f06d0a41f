//! The workspace symbol index: per file, its definitions and imports ([`super::tags`]), never its text.
//! Fed from three places with different weight: documents open in the editor (their text is the truth and
//! they are never evicted), files the user visited and closed, and the workspace on disk (walked with the
//! `ignore` crate, so `.gitignore` applies as in ripgrep). Bounded by a number of files and an estimate
//! of the bytes held; past either, the least recently used disk-only entries go first, then visited ones.
use super::tags::{self, Import, Tag};
use crate::syntax::Lang;
use ignore::gitignore::Gitignore;
use lru::LruCache;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Component, Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexLimits {
    pub max_files: usize,
    /// Estimated bytes of tags held (names, signatures, shown text, paths).
    pub max_bytes: usize,
    /// Larger files are not read: generated code, bundles and data files, not what anyone calls.
    pub max_file_bytes: u64,
}

impl Default for IndexLimits {
    fn default() -> Self {
        Self { max_files: 20_000, max_bytes: 64 << 20, max_file_bytes: 1 << 20 }
    }
}

/// Where an entry's text came from; a later source never replaces a fresher one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Origin {
    Disk,
    Visited,
    Open,
}

/// Why a file was not indexed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    /// No grammar for its language.
    Unsupported,
    TooLarge,
    /// A NUL byte or text that is not UTF-8.
    Binary,
    Ignored,
    Unreadable,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    pub lang: Lang,
    pub tags: Vec<Tag>,
    pub imports: Vec<Import>,
    pub origin: Origin,
    bytes: usize,
}

/// A file's tags and imports, parsed without holding the index (parsing is the slow part of a scan).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    pub lang: Lang,
    pub tags: Vec<Tag>,
    pub imports: Vec<Import>,
}

impl Parsed {
    pub fn of(path: &Path, text: &str) -> Option<Parsed> {
        let lang = Lang::from_id_or_path("", &path.to_string_lossy())?;
        let (tags, imports) = tags::scan(lang, text);
        Some(Parsed { lang, tags, imports })
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScanReport {
    pub indexed: usize,
    pub too_large: usize,
    pub binary: usize,
    /// The scan stopped because the index was full.
    pub full: bool,
}

/// A change the editor's file watcher reported (`workspace/didChangeWatchedFiles`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Watched {
    Created,
    Changed,
    Deleted,
}

pub struct SymbolIndex {
    limits: IndexLimits,
    roots: Vec<PathBuf>,
    open: HashMap<PathBuf, FileEntry>,
    visited: LruCache<PathBuf, FileEntry>,
    disk: LruCache<PathBuf, FileEntry>,
    names: BTreeMap<String, BTreeSet<PathBuf>>,
    bytes: usize,
    /// Parsed `.gitignore` per directory (None: the directory has none), for single files from the watcher.
    gitignores: HashMap<PathBuf, Option<Gitignore>>,
}

/// `path` with `.` and `..` resolved lexically (paths from the editor and from imports are compared as
/// text; the file system is not asked, symlinks stay what the editor called them).
pub fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            c => out.push(c),
        }
    }
    out
}

/// Read a source file for the index, or say why not.
pub fn read_source(path: &Path, limits: &IndexLimits) -> Result<String, Skip> {
    if Lang::from_id_or_path("", &path.to_string_lossy()).is_none() {
        return Err(Skip::Unsupported);
    }
    let meta = std::fs::metadata(path).map_err(|_| Skip::Unreadable)?;
    if meta.len() > limits.max_file_bytes {
        return Err(Skip::TooLarge);
    }
    let bytes = std::fs::read(path).map_err(|_| Skip::Unreadable)?;
    if bytes.len() as u64 > limits.max_file_bytes {
        return Err(Skip::TooLarge);
    }
    // As git and ripgrep decide: a NUL byte near the start means binary.
    if bytes[..bytes.len().min(8192)].contains(&0) {
        return Err(Skip::Binary);
    }
    String::from_utf8(bytes).map_err(|_| Skip::Binary)
}

fn entry_bytes(path: &Path, p: &Parsed) -> usize {
    let per_path = path.as_os_str().len() + 48;
    let tags: usize = p
        .tags
        .iter()
        .map(|t| {
            t.name.len() * 2
                + t.signature.len()
                + t.text.len()
                + t.container.as_ref().map_or(0, |c| c.len())
                + per_path
                + 96
        })
        .sum();
    let imports: usize =
        p.imports.iter().map(|i| i.module.len() + i.names.iter().map(|n| n.len() + 24).sum::<usize>() + 48).sum();
    tags + imports + per_path * 3 + 256
}

impl SymbolIndex {
    pub fn new(limits: IndexLimits) -> Self {
        Self {
            limits,
            roots: vec![],
            open: HashMap::new(),
            visited: LruCache::unbounded(),
            disk: LruCache::unbounded(),
            names: BTreeMap::new(),
            bytes: 0,
            gitignores: HashMap::new(),
        }
    }

    pub fn limits(&self) -> &IndexLimits {
        &self.limits
    }

    pub fn len(&self) -> usize {
        self.open.len() + self.visited.len() + self.disk.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Estimated bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn add_root(&mut self, root: &Path) {
        let root = normalize(root);
        if !self.roots.contains(&root) {
            self.roots.push(root);
        }
    }

    pub fn roots(&self) -> &[PathBuf] {
        &self.roots
    }

    /// The workspace root `path` is under (the deepest, for nested folders).
    pub fn root_of(&self, path: &Path) -> Option<&Path> {
        self.roots.iter().filter(|r| path.starts_with(r)).max_by_key(|r| r.components().count()).map(PathBuf::as_path)
    }

    /// `path` relative to its workspace root with `/` separators, as prompts show it.
    pub fn display_path(&self, path: &Path) -> String {
        let rel = self.root_of(path).and_then(|r| path.strip_prefix(r).ok()).unwrap_or(path);
        rel.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/")
    }

    pub fn get(&self, path: &Path) -> Option<&FileEntry> {
        self.open.get(path).or_else(|| self.visited.peek(path)).or_else(|| self.disk.peek(path))
    }

    pub fn contains(&self, path: &Path) -> bool {
        self.get(path).is_some()
    }

    pub fn paths(&self) -> impl Iterator<Item = &Path> {
        self.open
            .keys()
            .chain(self.visited.iter().map(|(k, _)| k))
            .chain(self.disk.iter().map(|(k, _)| k))
            .map(PathBuf::as_path)
    }

    /// Mark an entry as used (its definitions went into a prompt), so eviction keeps it longer.
    pub fn touch(&mut self, path: &Path) {
        if !self.visited.promote(path) {
            self.disk.promote(path);
        }
    }

    /// Definitions named exactly `name`.
    pub fn lookup(&self, name: &str) -> Vec<(&Path, &Tag)> {
        let Some(paths) = self.names.get(name) else { return vec![] };
        paths
            .iter()
            .filter_map(|p| self.get(p).map(|e| (p.as_path(), e)))
            .flat_map(|(p, e)| e.tags.iter().filter(|t| t.name == name).map(move |t| (p, t)))
            .collect()
    }

    /// How many files define `name`.
    pub fn files_defining(&self, name: &str) -> usize {
        self.names.get(name).map_or(0, BTreeSet::len)
    }

    /// Names of definitions that start with `prefix`, in name order, at most `limit`.
    pub fn names_with_prefix(&self, prefix: &str, limit: usize) -> Vec<&str> {
        self.names
            .range(prefix.to_string()..)
            .take_while(|(n, _)| n.starts_with(prefix))
            .take(limit)
            .map(|(n, _)| n.as_str())
            .collect()
    }

    /// Index `text` as the content of `path`. Returns whether it was indexed.
    pub fn update(&mut self, path: &Path, text: &str, origin: Origin) -> bool {
        if text.len() as u64 > self.limits.max_file_bytes {
            self.remove(path);
            return false;
        }
        match Parsed::of(path, text) {
            Some(p) => self.insert(path, p, origin),
            None => false,
        }
    }

    /// Put parsed content in the index. A disk read never replaces an open document's entry (the editor's
    /// text is newer); otherwise the entry keeps the strongest origin it had.
    pub fn insert(&mut self, path: &Path, parsed: Parsed, origin: Origin) -> bool {
        let path = normalize(path);
        let old = self.take(&path);
        let origin = match &old {
            Some(e) if e.origin == Origin::Open && origin == Origin::Disk => {
                self.put(path, e.clone());
                return true;
            }
            Some(e) => e.origin.max(origin),
            None => origin,
        };
        let bytes = entry_bytes(&path, &parsed);
        let entry = FileEntry { lang: parsed.lang, tags: parsed.tags, imports: parsed.imports, origin, bytes };
        self.put(path, entry);
        self.enforce_limits();
        true
    }

    /// The editor closed the document: it stays as recently visited.
    pub fn close(&mut self, path: &Path) {
        let path = normalize(path);
        if let Some(mut e) = self.open.remove(&path) {
            e.origin = Origin::Visited;
            self.visited.put(path, e);
        }
    }

    /// Remove a file, or every file under a directory.
    pub fn remove(&mut self, path: &Path) {
        let path = normalize(path);
        let under: Vec<PathBuf> = self.paths().filter(|p| p.starts_with(&path)).map(Path::to_path_buf).collect();
        for p in under {
            self.take(&p);
        }
    }

    fn take(&mut self, path: &Path) -> Option<FileEntry> {
        let e = self.open.remove(path).or_else(|| self.visited.pop(path)).or_else(|| self.disk.pop(path))?;
        self.unlink(path, &e);
        Some(e)
    }

    fn unlink(&mut self, path: &Path, e: &FileEntry) {
        self.bytes -= e.bytes;
        for t in &e.tags {
            if let Some(set) = self.names.get_mut(&t.name) {
                set.remove(path);
                if set.is_empty() {
                    self.names.remove(&t.name);
                }
            }
        }
    }

    fn put(&mut self, path: PathBuf, e: FileEntry) {
        self.bytes += e.bytes;
        for t in &e.tags {
            self.names.entry(t.name.clone()).or_default().insert(path.clone());
        }
        match e.origin {
            Origin::Open => {
                self.open.insert(path, e);
            }
            Origin::Visited => {
                self.visited.put(path, e);
            }
            Origin::Disk => {
                self.disk.put(path, e);
            }
        }
    }

    fn full(&self) -> bool {
        self.len() > self.limits.max_files || self.bytes > self.limits.max_bytes
    }

    fn enforce_limits(&mut self) {
        while self.full() {
            let Some((p, e)) = self.disk.pop_lru().or_else(|| self.visited.pop_lru()) else { break };
            tracing::debug!(path = %p.display(), "context index full: evicted");
            self.unlink(&p, &e);
        }
    }

    /// Walk `root` (honouring `.gitignore`, `.ignore` and hidden files as ripgrep does) and index what
    /// is found, until the index is full. Blocking: run it off the async threads.
    pub fn scan(&mut self, root: &Path) -> ScanReport {
        self.add_root(root);
        self.scan_dir(root)
    }

    fn scan_dir(&mut self, root: &Path) -> ScanReport {
        let mut report = ScanReport::default();
        for path in walk(root) {
            if self.get(&path).is_some_and(|e| e.origin > Origin::Disk) {
                continue;
            }
            if self.len() >= self.limits.max_files || self.bytes >= self.limits.max_bytes {
                report.full = true;
                break;
            }
            match read_source(&path, &self.limits) {
                Ok(text) => {
                    if self.update(&path, &text, Origin::Disk) {
                        report.indexed += 1;
                    }
                }
                Err(Skip::TooLarge) => report.too_large += 1,
                Err(Skip::Binary) => report.binary += 1,
                Err(_) => {}
            }
        }
        tracing::info!(root = %root.display(), ?report, files = self.len(), bytes = self.bytes, "context index scanned");
        report
    }

    /// Apply a file watcher's event. A changed `.gitignore` rescans its directory, so files it now ignores
    /// leave the index and files it no longer ignores join it.
    pub fn watched(&mut self, path: &Path, change: Watched) -> Result<(), Skip> {
        let path = normalize(path);
        if path.file_name().is_some_and(|n| n == ".gitignore" || n == ".ignore") {
            let dir = path.parent().unwrap_or(Path::new("")).to_path_buf();
            self.gitignores.retain(|d, _| !d.starts_with(&dir));
            let under: Vec<PathBuf> =
                self.disk.iter().map(|(p, _)| p.clone()).filter(|p| p.starts_with(&dir)).collect();
            for p in under {
                if self.is_ignored(&p) {
                    self.take(&p);
                }
            }
            self.scan_dir(&dir);
            return Ok(());
        }
        if change == Watched::Deleted {
            self.remove(&path);
            return Ok(());
        }
        if self.open.contains_key(&path) {
            return Ok(());
        }
        if self.is_ignored(&path) {
            self.remove(&path);
            return Err(Skip::Ignored);
        }
        match read_source(&path, &self.limits) {
            Ok(text) => {
                let origin = self.get(&path).map_or(Origin::Disk, |e| e.origin);
                self.update(&path, &text, origin);
                Ok(())
            }
            Err(e) => {
                self.remove(&path);
                Err(e)
            }
        }
    }

    /// Whether the scan would leave `path` out: under a hidden directory or matched by a `.gitignore`
    /// between its workspace root and it (the deepest match decides, `!` patterns included).
    pub fn is_ignored(&mut self, path: &Path) -> bool {
        let Some(root) = self.root_of(path).map(Path::to_path_buf) else { return false };
        let rel = path.strip_prefix(&root).unwrap_or(path);
        if rel.components().any(|c| c.as_os_str().to_string_lossy().starts_with('.')) {
            return true;
        }
        let mut dir = path.parent();
        while let Some(d) = dir.filter(|d| d.starts_with(&root)) {
            let gi = self.gitignores.entry(d.to_path_buf()).or_insert_with(|| {
                let file = d.join(".gitignore");
                file.is_file().then(|| Gitignore::new(&file).0)
            });
            if let Some(gi) = gi {
                let m = gi.matched_path_or_any_parents(path, false);
                if m.is_ignore() {
                    return true;
                }
                if m.is_whitelist() {
                    return false;
                }
            }
            dir = d.parent();
        }
        false
    }
}

/// Every file under `root`, in a stable order, with the ignore rules a developer expects: `.gitignore` (also
/// outside a git checkout: a workspace's .gitignore still says what is generated), hidden files skipped, no
/// symlinks followed.
pub fn files_under(root: &Path) -> impl Iterator<Item = ignore::DirEntry> {
    ignore::WalkBuilder::new(root)
        .hidden(true)
        .git_ignore(true)
        .require_git(false)
        .follow_links(false)
        .sort_by_file_name(|a, b| a.cmp(b))
        .build()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_some_and(|t| t.is_file()))
}

/// Source files under `root` that the index can read, in a stable order, ignore rules applied.
pub fn walk(root: &Path) -> Vec<PathBuf> {
    files_under(root)
        .map(|e| normalize(e.path()))
        .filter(|p| Lang::from_id_or_path("", &p.to_string_lossy()).is_some())
        .collect()
}
