//! Incremental tokenization (retok.rs) with the real embedded model's vocabulary (LOKAL_MODEL, else the
//! model cache, as the other model tests): random edits replayed over real source files of several languages, and after every edit the
//! prefix window's incremental tokens must be a full tokenization's, and the remembered suffix window the
//! one chosen afresh. Most typing edits must take the incremental path.
//!
//! `LOKAL_RETOK_MODEL` names another GGUF file to check the same with its vocabulary (by hand: the Qwen2
//! BPE stand-in, whose pre-tokenizer glues whitespace runs, is not on CI).
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::LlamaModel;
use lokal_engine::retok::{self, Cuts, Path, Tokenizer, Vocab};
use lokal_engine::rng::SplitMix64;
use std::path::PathBuf;

/// Real files: Rust, Python, TypeScript, Markdown with blank lines and deep indentation.
const FILES: &[&str] = &[
    "engine/src/prefix_cache.rs",
    "fixtures/workspaces/billing/src/invoice.rs",
    "fixtures/workspaces/billing/scripts/report.py",
    "fixtures/workspaces/billing/web/api.ts",
    "editors/vscode/src/extension.ts",
    "ARCHITECTURE.md",
    "fixtures/README.md",
];

/// Bytes of prefix window the editor below keeps before re-anchoring, and how far back a new anchor goes:
/// about the engine's 1000-token window.
const WINDOW_MAX: usize = 6000;
const WINDOW_NEW: usize = 4000;
const SUFFIX_TOKENS: usize = 128;

/// A document being edited: the text, the cursor, and the prefix window's anchor (a line start that stays
/// put while the window fits, as window.rs's does).
struct Editor {
    text: String,
    cursor: usize,
    anchor: usize,
    rng: SplitMix64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Edit {
    Type,
    Newline,
    Backspace,
    DeleteLine,
    Paste,
    Indent,
    NearWindowStart,
    BlankLines,
    Word,
    Unicode,
    Jump,
}

const EDITS: &[(Edit, u64)] = &[
    (Edit::Type, 30),
    (Edit::Newline, 10),
    (Edit::Backspace, 12),
    (Edit::DeleteLine, 5),
    (Edit::Paste, 5),
    (Edit::Indent, 6),
    (Edit::NearWindowStart, 6),
    (Edit::BlankLines, 5),
    (Edit::Word, 10),
    (Edit::Unicode, 4),
    (Edit::Jump, 3),
];

impl Editor {
    fn new(text: String, seed: u64) -> Editor {
        let mut e = Editor { text, cursor: 0, anchor: 0, rng: SplitMix64(seed) };
        e.jump();
        e
    }

    fn below(&mut self, n: usize) -> usize {
        self.rng.below(n as u64) as usize
    }

    fn floor(&self, mut at: usize) -> usize {
        at = at.min(self.text.len());
        while !self.text.is_char_boundary(at) {
            at -= 1;
        }
        at
    }

    fn line_start(&self, at: usize) -> usize {
        self.text[..at].rfind('\n').map_or(0, |i| i + 1)
    }

    fn line_end(&self, at: usize) -> usize {
        self.text[at..].find('\n').map_or(self.text.len(), |i| at + i)
    }

    /// Somewhere in the file's second half, so there is a window's worth of text before it.
    fn jump(&mut self) {
        let at = self.text.len() / 2 + self.below(self.text.len() / 2 + 1);
        self.cursor = self.floor(at);
    }

    fn insert(&mut self, at: usize, s: &str) {
        self.text.insert_str(at, s);
        if at <= self.cursor {
            self.cursor += s.len();
        }
    }

    fn remove(&mut self, from: usize, to: usize) {
        self.text.replace_range(from..to, "");
        if self.cursor >= to {
            self.cursor -= to - from;
        } else if self.cursor > from {
            self.cursor = from;
        }
    }

    fn pick(&mut self) -> Edit {
        let total: u64 = EDITS.iter().map(|e| e.1).sum();
        let mut r = self.rng.below(total);
        for &(e, w) in EDITS {
            if r < w {
                return e;
            }
            r -= w;
        }
        Edit::Type
    }

    fn apply(&mut self, e: Edit) {
        let c = self.cursor;
        match e {
            Edit::Type => {
                const CHARS: &[&str] =
                    &["a", "x", "_", "(", ")", "{", "}", ";", ".", ",", "=", ":", " ", "\"", "'", "#"];
                let s: String = (0..1 + self.below(3)).map(|_| CHARS[self.below(CHARS.len())]).collect();
                self.insert(c, &s);
            }
            Edit::Newline => {
                let line = self.line_start(c);
                let indent: String = self.text[line..].chars().take_while(|c| *c == ' ' || *c == '\t').collect();
                let extra = if self.below(2) == 0 { "    " } else { "" };
                self.insert(c, &format!("\n{indent}{extra}"));
            }
            Edit::Backspace => {
                let n = 1 + self.below(3);
                let from = self.floor(c.saturating_sub(n).max(self.anchor).min(c));
                self.remove(from, c);
            }
            Edit::DeleteLine => {
                let line = self.line_start(c);
                if line > self.anchor {
                    let prev = self.line_start(line - 1);
                    self.remove(prev.max(self.anchor), line);
                }
            }
            Edit::Paste => {
                let r = self.below(self.text.len());
                let from = self.line_start(self.floor(r));
                let mut to = from;
                for _ in 0..2 + self.below(7) {
                    to = (self.line_end(to) + 1).min(self.text.len());
                }
                let block = self.text[from..to].to_string();
                self.insert(c, &block);
            }
            Edit::Indent => {
                let line = self.line_start(c);
                if self.text[line..].starts_with("    ") && self.below(2) == 0 {
                    self.remove(line, line + 4);
                } else {
                    self.insert(line, "    ");
                }
            }
            Edit::NearWindowStart => {
                // Within the window's first lines, where there is no cut before the change.
                let (r, n) = (self.below(120), self.below(3));
                let at = self.floor(self.anchor + r);
                if at < c {
                    if self.below(2) == 0 {
                        self.insert(at, "z");
                    } else {
                        let to = self.floor(at + 1 + n).min(c);
                        self.remove(at, to.max(at));
                    }
                }
            }
            Edit::BlankLines => {
                let n = 1 + self.below(3);
                self.insert(c, &"\n".repeat(n));
            }
            Edit::Word => {
                const WORDS: &[&str] =
                    &["let ", "return ", "self", " = ", "value", "fn ", "def ", "const ", "// note "];
                let w = WORDS[self.below(WORDS.len())];
                self.insert(c, w);
            }
            Edit::Unicode => {
                const CHARS: &[&str] = &["é", "è", "中", "→", "🦀", "\u{a0}"];
                let s = CHARS[self.below(CHARS.len())];
                self.insert(c, s);
            }
            Edit::Jump => self.jump(),
        }
    }

    /// The prefix window; `true` when its anchor moved.
    fn window(&mut self) -> (&str, bool) {
        let stays = self.anchor <= self.cursor
            && self.cursor - self.anchor <= WINDOW_MAX
            && (self.anchor == 0 || self.text.as_bytes().get(self.anchor - 1) == Some(&b'\n'));
        if !stays {
            let start = self.floor(self.cursor.saturating_sub(WINDOW_NEW));
            self.anchor = if start == 0 { 0 } else { (self.line_end(start) + 1).min(self.cursor) };
            self.anchor = self.line_start(self.anchor);
        }
        (&self.text[self.anchor..self.cursor], !stays)
    }

    /// The text after the cursor, as much as the server hands the engine (about).
    fn after(&self) -> &str {
        let end = self.floor(self.cursor + 4000);
        &self.text[self.cursor..end]
    }
}

#[derive(Debug, Default)]
struct Counts {
    same: usize,
    incremental: usize,
    full: usize,
    /// Full tokenizations where the anchor moved or the cursor jumped: nothing to re-use there.
    expected_full: usize,
    suffix_reused: usize,
    suffix_chosen: usize,
}

fn replay(vocab: &Vocab<'_>, cuts: Cuts, name: &str, text: String, seed: u64, edits: usize) -> Counts {
    let mut ed = Editor::new(text, seed);
    let mut counts = Counts::default();
    let (mut prev, mut prev_suffix) = (None, None);
    for step in 0..edits {
        let e = ed.pick();
        ed.apply(e);
        let (window, moved) = ed.window();
        let (t, path) = retok::tokenize(prev.as_ref(), window, vocab, cuts);
        let full = vocab.tokenize(window);
        assert!(
            t.tokens() == &full[..],
            "{name} seed {seed} step {step} ({e:?}, {path:?}): tokens differ for {window:?}"
        );
        match path {
            Path::Same => counts.same += 1,
            Path::Incremental => counts.incremental += 1,
            Path::Full if moved || e == Edit::Jump || e == Edit::NearWindowStart => counts.expected_full += 1,
            Path::Full => counts.full += 1,
        }
        prev = Some(t);
        let after = ed.after().to_string();
        let (s, reused) = retok::suffix(prev_suffix.as_ref(), &after, SUFFIX_TOKENS, vocab);
        let end = lokal_engine::window::choose_suffix(&after, SUFFIX_TOKENS, &|t: &str| vocab.tokenize(t).len());
        let mut want = vocab.tokenize(&after[..end]);
        want.truncate(SUFFIX_TOKENS);
        assert!(s.end == end && s.tokens == want, "{name} seed {seed} step {step} ({e:?}): suffix differs");
        if reused {
            counts.suffix_reused += 1;
        } else {
            counts.suffix_chosen += 1;
        }
        prev_suffix = Some(s);
    }
    counts
}

#[test]
fn incremental_tokens_are_a_full_tokenization_after_random_edits() {
    let path = std::env::var_os("LOKAL_RETOK_MODEL")
        .map(PathBuf::from)
        .unwrap_or_else(|| lokal_engine::EngineConfig::default().resolved_model_path());
    assert!(path.exists(), "test model missing at {}: run scripts/fetch-model.sh (or set LOKAL_MODEL)", path.display());
    let backend = LlamaBackend::init().unwrap();
    let model =
        LlamaModel::load_from_file(&backend, &path, &LlamaModelParams::default().with_vocab_only(true)).unwrap();
    let vocab = Vocab(model.vocab());
    let cuts = Cuts::probe(&vocab);
    eprintln!("cuts: {cuts:?}");
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let edits = std::env::var("LOKAL_RETOK_EDITS").ok().and_then(|s| s.parse().ok()).unwrap_or(150);
    let mut total = Counts::default();
    // The vocabulary's own cuts, and the cautious ones every vocabulary gets where the probe fails.
    let kinds = if cuts == Cuts::Unindented { vec![cuts] } else { vec![cuts, Cuts::Unindented] };
    for (i, file) in FILES.iter().enumerate() {
        let text = std::fs::read_to_string(root.join(file)).unwrap();
        for (seed, &kind) in kinds.iter().enumerate().flat_map(|(k, c)| [(2 * k, c), (2 * k + 1, c)]) {
            let c = replay(&vocab, kind, file, text.clone(), 1000 * i as u64 + seed as u64, edits);
            eprintln!("{file} {kind:?} seed {seed}: {c:?}");
            total.same += c.same;
            total.incremental += c.incremental;
            total.full += c.full;
            total.expected_full += c.expected_full;
            total.suffix_reused += c.suffix_reused;
            total.suffix_chosen += c.suffix_chosen;
        }
    }
    eprintln!("all: {total:?}");
    // Typing edits where a cut was to be had: most must take the incremental path.
    assert!(
        total.incremental >= 4 * total.full,
        "{} incremental vs {} full tokenizations of typing edits",
        total.incremental,
        total.full
    );
    // The text after the cursor changes on few of these edits: its window is mostly remembered.
    assert!(total.suffix_reused > total.suffix_chosen, "{total:?}");
}
