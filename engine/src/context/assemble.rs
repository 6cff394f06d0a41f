//! Context for one completion, under a token budget: definitions of the names near the cursor and of
//! the word being typed, what the file imports, the places edited last and the ring of visited chunks.
//!
//! The block goes before the file's prefix, so any change to it re-decodes the whole prompt after it. It
//! is therefore a function of *keys* that stay put while the user types within a line:
//! * the identifiers of a band of lines around the cursor (bands of [`BAND`] lines, so moving a line
//!   rarely changes the set), minus the cursor's line;
//! * the complete identifiers of the cursor's line before the word being typed;
//! * the word being typed, quantised to its first 3 characters (6, 9, 12 where 3 name too many
//!   definitions), matched as a prefix: typing `comp`, `compu`, `comput` asks the same question;
//! * the names the file imports.
//!
//! The caller ([`super::WorkspaceContext`]) keeps the keys of a band and only adds to them while the
//! cursor stays in it, so finishing a word never drops what its first letters brought in. Snippets are
//! written in an order that depends only on which were chosen (ring chunks and edits oldest first, then
//! definitions by file path and line), so the same choice gives the same block, token for token.
use super::index::{FileEntry, SymbolIndex};
use super::render::BlockStyle;
use super::resolve;
use super::ring::{ChunkRing, RecentEdits};
use super::tags::{Tag, TagKind};
use crate::syntax::Lang;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::{Path, PathBuf};

/// Lines per band of the cursor's neighbourhood.
pub const BAND: usize = 16;
/// Prefix lookups naming more definitions than this are narrowed (or dropped): too vague to help.
const PREFIX_MATCHES: usize = 8;
/// Definitions taken per exact name (the same name in several files).
const PER_NAME: usize = 3;
/// Top-level items taken from a file imported whole.
const PER_IMPORT: usize = 16;
const MAX_KEYS: usize = 256;
/// A name defined in more files than this (`new`, `len`, `test`) says nothing about which one is meant.
const GENERIC: usize = 6;

/// Where the cursor is: the document's path, the text before and after the cursor that the prompt
/// holds, and the cursor's 0-based line in the document.
#[derive(Debug, Clone, Copy)]
pub struct Cursor<'a> {
    pub path: &'a Path,
    pub before: &'a str,
    pub after: &'a str,
    pub line: usize,
}

/// Why a snippet is there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Source {
    Definition,
    Import,
    Edit,
    Visited,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snippet {
    /// Relative to the workspace root, `/`-separated: what the prompt shows.
    pub path: String,
    pub text: String,
    pub source: Source,
    pub file: PathBuf,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Assembled {
    pub snippets: Vec<Snippet>,
    /// The rendered block, empty without snippets.
    pub block: String,
    /// Tokens of `block` by the caller's counter; never over the budget.
    pub tokens: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Key {
    Exact(String),
    Prefix(String),
}

/// Closeness of a key to the cursor: lower is closer.
const TYPED: u8 = 0;
const LINE: u8 = 1;
const IMPORTED: u8 = 2;
const AROUND: u8 = 3;
const IMPORT_FILE: u8 = 4;
const EDIT: u8 = 5;
const CHUNK: u8 = 6;

/// What the block is chosen from, each key with its closeness to the cursor.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Keys(BTreeMap<Key, u8>);

const KEYWORDS: &[&str] = &[
    "abstract",
    "and",
    "any",
    "as",
    "assert",
    "async",
    "await",
    "bool",
    "boolean",
    "break",
    "case",
    "catch",
    "chan",
    "class",
    "const",
    "continue",
    "crate",
    "def",
    "default",
    "defer",
    "del",
    "delete",
    "dyn",
    "elif",
    "else",
    "enum",
    "except",
    "export",
    "extends",
    "extern",
    "false",
    "fallthrough",
    "False",
    "final",
    "finally",
    "for",
    "from",
    "func",
    "function",
    "global",
    "goto",
    "impl",
    "implements",
    "import",
    "instanceof",
    "interface",
    "lambda",
    "let",
    "loop",
    "map",
    "match",
    "mod",
    "move",
    "mut",
    "new",
    "nil",
    "None",
    "nonlocal",
    "not",
    "null",
    "number",
    "object",
    "Option",
    "package",
    "pass",
    "private",
    "protected",
    "pub",
    "public",
    "raise",
    "range",
    "readonly",
    "ref",
    "return",
    "select",
    "self",
    "Self",
    "Some",
    "static",
    "str",
    "string",
    "String",
    "struct",
    "super",
    "switch",
    "this",
    "throw",
    "trait",
    "true",
    "True",
    "try",
    "type",
    "typeof",
    "undefined",
    "unsafe",
    "use",
    "var",
    "void",
    "where",
    "while",
    "with",
    "yield",
    "usize",
    "isize",
    "u8",
    "u16",
    "u32",
    "u64",
    "i32",
    "i64",
    "f32",
    "f64",
    "int",
    "float",
    "Vec",
    "Result",
    "Ok",
    "Err",
];

fn identifiers(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|w| w.chars().next().is_some_and(|c| c.is_alphabetic() || c == '_'))
}

fn worth_looking_up(w: &str) -> bool {
    w.chars().count() >= 3 && !KEYWORDS.contains(&w)
}

impl Keys {
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&Key, u8)> {
        self.0.iter().map(|(k, r)| (k, *r))
    }

    fn add(&mut self, key: Key, rank: u8) {
        if let Some(r) = self.0.get_mut(&key) {
            *r = (*r).min(rank);
        } else if self.0.len() < MAX_KEYS {
            self.0.insert(key, rank);
        }
    }

    /// Add `other`'s keys (a key keeps its closest rank).
    pub fn merge(&mut self, other: Keys) {
        for (k, r) in other.0 {
            self.add(k, r);
        }
    }

    pub fn from_cursor(cur: &Cursor, ix: &SymbolIndex) -> Keys {
        let own = ix.get(cur.path);
        let defined_here: HashSet<&str> =
            own.map(|e| e.tags.iter().map(|t| t.name.as_str()).collect()).unwrap_or_default();
        let mut keys = Keys::default();
        let exact = |keys: &mut Keys, w: &str, rank: u8| {
            if worth_looking_up(w) && !defined_here.contains(w) {
                keys.add(Key::Exact(w.to_string()), rank);
            }
        };
        let line_start = cur.before.rfind('\n').map_or(0, |i| i + 1);
        let line = &cur.before[line_start..];
        let typed_len =
            line.chars().rev().take_while(|c| c.is_alphanumeric() || *c == '_').map(char::len_utf8).sum::<usize>();
        let typed = &line[line.len() - typed_len..];
        if typed.chars().next().is_some_and(|c| !c.is_ascii_digit()) {
            let chars: Vec<char> = typed.chars().collect();
            for q in [3, 6, 9, 12] {
                if chars.len() < q {
                    break;
                }
                let p: String = chars[..q].iter().collect();
                if ix.names_with_prefix(&p, PREFIX_MATCHES + 1).len() <= PREFIX_MATCHES {
                    keys.add(Key::Prefix(p), TYPED);
                    break;
                }
            }
        }
        for w in identifiers(&line[..line.len() - typed_len]) {
            exact(&mut keys, w, LINE);
        }
        for i in own.map(|e| e.imports.as_slice()).unwrap_or_default() {
            for n in &i.names {
                exact(&mut keys, n.rsplit("::").next().unwrap_or(n), IMPORTED);
            }
        }
        // The band around the cursor's line: from one band above to the end of the next one.
        let band = cur.line / BAND;
        let (lo, hi) = (band.saturating_sub(1) * BAND, (band + 2) * BAND);
        let above = cur.before[..line_start].lines().rev().enumerate().map(|(i, l)| (cur.line.wrapping_sub(i + 1), l));
        let below = cur.after.lines().skip(1).enumerate().map(|(i, l)| (cur.line + i + 1, l));
        for (_, l) in above.take_while(|(n, _)| *n >= lo && *n < cur.line).chain(below.take_while(|(n, _)| *n < hi)) {
            for w in identifiers(l) {
                exact(&mut keys, w, AROUND);
            }
        }
        keys
    }
}

/// One candidate piece of context, before rendering.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Piece {
    Def { path: PathBuf, tag: usize },
    Edit(usize),
    Chunk(usize),
}

struct Candidate {
    piece: Piece,
    rank: u8,
    cost: usize,
}

/// Tags of one file as the block shows them: top-level items as they are, methods inside their impl or
/// class header, a method left out where its type is shown whole.
pub fn render_definitions(path: &Path, tags: &[&Tag]) -> String {
    let python = Lang::from_id_or_path("", &path.to_string_lossy()) == Some(Lang::Python);
    let covered = |m: &Tag| {
        tags.iter().any(|t| t.kind == TagKind::Type && t.line < m.line && t.line + t.text.lines().count() > m.line)
    };
    let mut out = String::new();
    let mut i = 0;
    while i < tags.len() {
        let Some(c) = &tags[i].container else {
            out.push_str(&tags[i].text);
            out.push('\n');
            i += 1;
            continue;
        };
        let group: Vec<&Tag> = tags[i..].iter().take_while(|t| t.container.as_ref() == Some(c)).copied().collect();
        i += group.len();
        let shown: Vec<&Tag> = group.into_iter().filter(|m| !covered(m)).collect();
        if shown.is_empty() {
            continue;
        }
        out.push_str(c);
        out.push_str(if python { ":\n" } else { " {\n" });
        for m in shown {
            for l in m.text.lines() {
                out.push_str("    ");
                out.push_str(l.trim_start());
                out.push('\n');
            }
        }
        if !python {
            out.push_str("}\n");
        }
    }
    out
}

/// Choose and render the context for `cur` within `budget` tokens (`count`: the model's token count of a
/// text; tests pass a plain function).
#[allow(clippy::too_many_arguments)]
pub fn assemble(
    ix: &SymbolIndex,
    ring: &ChunkRing,
    edits: &RecentEdits,
    cur: &Cursor,
    keys: &Keys,
    style: &BlockStyle,
    budget: usize,
    count: &dyn Fn(&str) -> usize,
) -> Assembled {
    if *style == BlockStyle::Off || budget == 0 {
        return Assembled::default();
    }
    let here = ix.display_path(cur.path);
    let (head, tail) = style.frame(&here);
    let frame = count(&format!("{head}{tail}"));
    if frame >= budget {
        return Assembled::default();
    }
    let lang = Lang::from_id_or_path("", &cur.path.to_string_lossy());
    let own = ix.get(cur.path);
    let targets = match (lang, own) {
        (Some(l), Some(e)) => resolve::targets(ix, cur.path, l, &e.imports),
        _ => vec![],
    };
    let target_paths: HashSet<&Path> = targets.iter().map(|t| t.path.as_path()).collect();
    // Only the cursor's own workspace folder: folders can be different clients with different tiers, and
    // a prompt may go to an engine that one folder allows and another does not.
    let root = ix.root_of(cur.path);
    let other_root = |p: &Path| ix.root_of(p) != root;
    let other = |p: &Path| p == cur.path || other_root(p);

    let mut cands: Vec<Candidate> = vec![];
    let mut seen: HashSet<Piece> = HashSet::new();
    let mut headers: HashSet<(PathBuf, Option<String>)> = HashSet::new();
    let def_cost = |path: &Path, t: &Tag, headers: &mut HashSet<(PathBuf, Option<String>)>| -> usize {
        let mut c = count(&t.text) + 1;
        if headers.insert((path.to_path_buf(), None)) {
            c += count(&style.snippet(&ix.display_path(path), ""));
        }
        if t.container.is_some() && headers.insert((path.to_path_buf(), t.container.clone())) {
            c += count(t.container.as_deref().unwrap_or("")) + 2;
        }
        c
    };
    let mut push_def = |cands: &mut Vec<Candidate>,
                        path: &Path,
                        e: &FileEntry,
                        t: &Tag,
                        rank: u8,
                        headers: &mut HashSet<(PathBuf, Option<String>)>| {
        let Some(tag) = e.tags.iter().position(|x| std::ptr::eq(x, t)) else { return };
        let piece = Piece::Def { path: path.to_path_buf(), tag };
        if seen.insert(piece.clone()) {
            let cost = def_cost(path, t, headers);
            cands.push(Candidate { piece, rank, cost });
        }
    };
    let mut by_rank: Vec<(&Key, u8)> = keys.iter().collect();
    by_rank.sort_by_key(|(k, r)| (*r, (*k).clone()));
    let room = budget - frame;
    let mut def_total = 0;
    for (key, rank) in by_rank {
        // Past twice the room no later (less close) definition can be chosen.
        if def_total > 2 * room {
            break;
        }
        let (names, per_name): (Vec<&str>, usize) = match key {
            Key::Exact(n) => (vec![n.as_str()], PER_NAME),
            Key::Prefix(p) => (ix.names_with_prefix(p, PREFIX_MATCHES), 2),
        };
        for name in names.into_iter().filter(|n| ix.files_defining(n) <= GENERIC) {
            let mut defs: Vec<(&Path, &Tag)> = ix.lookup(name).into_iter().filter(|(p, _)| !other(p)).collect();
            // Imported files first, then what the user has open or visited, then by path for a stable choice.
            defs.sort_by_key(|(p, t)| {
                (!target_paths.contains(p), std::cmp::Reverse(ix.get(p).map(|e| e.origin)), p.to_path_buf(), t.line)
            });
            for (p, t) in defs.into_iter().take(per_name) {
                let Some(e) = ix.get(p) else { continue };
                push_def(&mut cands, p, e, t, rank, &mut headers);
            }
        }
        def_total = cands.iter().map(|c| c.cost).sum();
    }
    for t in targets.iter().filter(|t| !other(&t.path)) {
        let Some(e) = ix.get(&t.path) else { continue };
        let wanted =
            e.tags.iter().filter(|x| x.container.is_none() && (t.names.is_empty() || t.names.contains(&x.name)));
        for x in wanted.take(PER_IMPORT) {
            push_def(&mut cands, &t.path, e, x, IMPORT_FILE, &mut headers);
        }
    }
    let recent: Vec<_> = edits.ranges().collect();
    // The visited chunks and edits do not depend on the document asking: the file's own are kept too, so
    // every document of the folder starts its block with the same text and the KV cache holds it once
    // for all of them (prefix_cache.rs `share_prefix`), as llama.vscode's ring is one for every file.
    for (i, r) in recent.iter().enumerate().rev().filter(|(_, r)| !other_root(&r.path)) {
        cands.push(Candidate {
            piece: Piece::Edit(i),
            rank: EDIT,
            cost: count(&style.snippet(&ix.display_path(&r.path), &r.text)),
        });
    }
    let chunks: Vec<_> = ring.chunks().collect();
    for (i, c) in chunks.iter().enumerate().rev().filter(|(_, c)| !other_root(&c.path)) {
        cands.push(Candidate {
            piece: Piece::Chunk(i),
            rank: CHUNK,
            cost: count(&style.snippet(&ix.display_path(&c.path), &c.text)),
        });
    }

    // Definitions may not crowd out what the user just did, nor the ring everything else: a first pass
    // within shares of the budget, then a second fills what is left in order of closeness. The first pass
    // takes the ring and the edits before the definitions, by shares of the budget alone, so what it
    // takes is the same for every document of the folder (the shared head of their blocks).
    let share = |rank: u8| match rank {
        EDIT => budget / 5,
        CHUNK => budget * 2 / 5,
        _ => room * 3 / 5,
    };
    let group = |rank: u8| match rank {
        EDIT | CHUNK => rank,
        _ => 0,
    };
    let ring_first: Vec<usize> = {
        let (ring, defs): (Vec<usize>, Vec<usize>) = (0..cands.len()).partition(|&i| cands[i].rank >= EDIT);
        ring.into_iter().chain(defs).collect()
    };
    let mut chosen: Vec<usize> = vec![];
    let mut head: HashSet<usize> = HashSet::new();
    let mut taken = vec![false; cands.len()];
    let (mut used, mut used_by) = (0usize, BTreeMap::<u8, usize>::new());
    for pass in 0..2 {
        let order: Box<dyn Iterator<Item = usize>> =
            if pass == 0 { Box::new(ring_first.iter().copied()) } else { Box::new(0..cands.len()) };
        for i in order {
            let c = &cands[i];
            if taken[i] || used + c.cost > room {
                continue;
            }
            let g = used_by.entry(group(c.rank)).or_default();
            if pass == 0 && *g + c.cost > share(c.rank) {
                continue;
            }
            *g += c.cost;
            used += c.cost;
            taken[i] = true;
            chosen.push(i);
            if pass == 0 && c.rank >= EDIT {
                head.insert(i);
            }
        }
    }

    // Render; the counts above are per piece, so the whole is checked and cut back from the least close
    // (candidates are in order of closeness).
    chosen.sort_unstable();
    loop {
        let snippets = build(ix, &recent, &chunks, &cands, &chosen, &head);
        let block = style.render(&here, snippets.iter().map(|s| (s.path.as_str(), s.text.as_str())));
        let tokens = count(&block);
        if tokens <= budget || chosen.is_empty() {
            if tokens > budget {
                return Assembled::default();
            }
            return Assembled { snippets, block, tokens };
        }
        // Drop the least close pieces until their estimated cost covers the excess, then check again.
        let mut dropped = 0;
        while dropped < tokens - budget {
            let Some(i) = chosen.pop() else { break };
            dropped += cands[i].cost.max(1);
        }
    }
}

/// The chosen pieces as snippets, in the order that depends only on the set chosen: the visited chunks
/// and edits of the shared head (oldest first), those the second pass added, then the definitions.
fn build(
    ix: &SymbolIndex,
    recent: &[&super::ring::EditedRange],
    chunks: &[&super::ring::Chunk],
    cands: &[Candidate],
    chosen: &[usize],
    head: &HashSet<usize>,
) -> Vec<Snippet> {
    let set: BTreeSet<&Piece> = chosen.iter().map(|&i| &cands[i].piece).collect();
    let head: BTreeSet<&Piece> = head.iter().map(|&i| &cands[i].piece).collect();
    let mut out = vec![];
    let import_ranked: HashSet<&Piece> =
        chosen.iter().filter(|&&i| cands[i].rank == IMPORT_FILE).map(|&i| &cands[i].piece).collect();
    for in_head in [true, false] {
        for p in set.iter().filter(|p| head.contains(*p) == in_head) {
            if let Piece::Chunk(i) = p {
                let c = chunks[*i];
                out.push(Snippet {
                    path: ix.display_path(&c.path),
                    text: c.text.clone(),
                    source: Source::Visited,
                    file: c.path.clone(),
                });
            }
        }
        for p in set.iter().filter(|p| head.contains(*p) == in_head) {
            if let Piece::Edit(i) = p {
                let r = recent[*i];
                out.push(Snippet {
                    path: ix.display_path(&r.path),
                    text: r.text.clone(),
                    source: Source::Edit,
                    file: r.path.clone(),
                });
            }
        }
    }
    let mut files: BTreeMap<String, (PathBuf, Vec<usize>, bool)> = BTreeMap::new();
    for p in &set {
        if let Piece::Def { path, tag } = p {
            let f = files.entry(ix.display_path(path)).or_insert_with(|| (path.clone(), vec![], true));
            f.1.push(*tag);
            f.2 &= import_ranked.contains(*p);
        }
    }
    for (shown, (path, mut idx, imported)) in files {
        let Some(e) = ix.get(&path) else { continue };
        idx.sort_by_key(|&i| (e.tags[i].line, i));
        let tags: Vec<&Tag> = idx.iter().map(|&i| &e.tags[i]).collect();
        let source = if imported { Source::Import } else { Source::Definition };
        out.push(Snippet { path: shown, text: render_definitions(&path, &tags), source, file: path });
    }
    out
}
