//! Tokenizing the prompt's windows in proportion to what changed, with exactly the tokens a full
//! tokenization gives.
//!
//! While the user types, the prefix window's start stays put (window.rs) and only its end changes, so a
//! keystroke re-tokenizes from a safe cut a little before the change and keeps the tokens in front of it.
//! The suffix window usually does not change at all: its choice is remembered with the text that decided it.
//!
//! Tokenizers are not local in general: BPE pre-tokenizers (Qwen, Llama 3) glue runs of newlines and
//! spaces, SentencePiece (Gemma) merges across anything. So a cut sits only where the old tokenization has
//! a boundary at a line start after a non-whitespace character, and the line begins with one too, unless
//! the vocabulary is seen to keep a line break apart from the next line's indentation ([`Cuts::probe`]):
//! code is mostly indented, and a whole impl block or class without a cut would be tokenized whole. The new
//! tokens are accepted only when a tokenization from an earlier such cut reproduces the old tokens up to
//! the later one (it re-synchronised); anything else tokenizes the whole text.
use crate::model_info::Token;
use llama_cpp_2::token::LlamaToken;
use llama_cpp_2::vocab::LlamaVocab;

/// What the incremental tokenizer needs of a vocabulary.
pub trait Tokenizer {
    /// The tokens of `text`, as plain text (no special tokens parsed, none added).
    fn tokenize(&self, text: &str) -> Vec<Token>;
    /// Appends the bytes `t` stands for in a tokenized text.
    fn piece(&self, t: Token, out: &mut Vec<u8>);
}

/// A model's vocabulary as the prompts tokenize with it.
pub struct Vocab<'a>(pub LlamaVocab<'a>);

impl Tokenizer for Vocab<'_> {
    fn tokenize(&self, text: &str) -> Vec<Token> {
        if text.is_empty() {
            return Vec::new();
        }
        // parse_special = false: code that contains "<|fim_prefix|>" must stay text, not become a control token.
        self.0.tokenize(text.as_bytes(), false, false).into_iter().map(|t| t.0).collect()
    }

    fn piece(&self, t: Token, out: &mut Vec<u8>) {
        self.0.token_to_piece_into(LlamaToken(t), out, false, None);
    }
}

/// How [`tokenize`] got its tokens: tests count the paths.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    /// The text had not changed.
    Same,
    /// Re-tokenized from a cut before the change.
    Incremental,
    /// Tokenized whole.
    Full,
}

/// A window's text, its tokens and where each token ends in the text.
#[derive(Debug, Clone, Default)]
pub struct Tokenized {
    text: String,
    tokens: Vec<Token>,
    /// Each token's end byte; empty when the pieces did not add up to the text (a tokenizer that adds a
    /// leading space, say): then no cut can be trusted and the next text is tokenized whole.
    ends: Vec<usize>,
}

impl Tokenized {
    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn tokens(&self) -> &[Token] {
        &self.tokens
    }
}

/// Which line starts may be cuts, for a vocabulary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cuts {
    /// Only lines that begin with a non-whitespace character.
    Unindented,
    /// Indented lines too (spaces and tabs before something else): the vocabulary splits a line break that
    /// follows a non-whitespace character from the indentation after it.
    Indented,
}

impl Cuts {
    /// Whether `tok` keeps a line break apart from the next line's indentation: in lines of code after
    /// code, each indented line start must be a token boundary, and the tokens from there on must be those
    /// of the rest alone. A pre-tokenizer that glues "\n   " (GPT-2's `\s+(?!\S)`) fails this.
    pub fn probe(tok: &dyn Tokenizer) -> Cuts {
        const INDENTS: &[&str] =
            &[" ", "  ", "   ", "    ", "      ", "        ", "            ", "\t", "\t\t", "\t  "];
        const FIRST: &[&str] = &["x", "}", "// c", "(a)", "\"s\"", "1", "#[a]", ".b", "é"];
        const BEFORE: &[&str] = &["x", "{", ";", ")", ",", ":", "\"", "é"];
        for (i, indent) in INDENTS.iter().enumerate() {
            for (j, first) in FIRST.iter().enumerate() {
                let before = BEFORE[(i + j) % BEFORE.len()];
                let eol = if (i + j) % 3 == 0 { "\r\n" } else { "\n" };
                let head = format!("fn f() {before}{eol}");
                let text = format!("{head}{indent}{first} y{eol}{indent}{indent}z");
                if !splits_at(tok, &text, head.len()) {
                    return Cuts::Unindented;
                }
            }
        }
        Cuts::Indented
    }
}

/// Whether `text` tokenizes with a boundary at byte `at` and, from there, as `text[at..]` alone does.
fn splits_at(tok: &dyn Tokenizer, text: &str, at: usize) -> bool {
    let tokens = tok.tokenize(text);
    let Some(ends) = ends(&tokens, text, 0, tok) else {
        return false;
    };
    match token_at(&ends, at) {
        Some(i) => tokens[i..] == tok.tokenize(&text[at..])[..],
        None => false,
    }
}

/// The tokens of `text`, re-using `prev` (the same document's last window) where that is exact.
pub fn tokenize(prev: Option<&Tokenized>, text: &str, tok: &dyn Tokenizer, cuts: Cuts) -> (Tokenized, Path) {
    if let Some(p) = prev {
        if p.text == text {
            return (p.clone(), Path::Same);
        }
        if let Some(t) = incremental(p, text, tok, cuts) {
            return (t, Path::Incremental);
        }
    }
    (full(text, tok), Path::Full)
}

fn full(text: &str, tok: &dyn Tokenizer) -> Tokenized {
    let tokens = tok.tokenize(text);
    let ends = ends(&tokens, text, 0, tok).unwrap_or_default();
    Tokenized { text: text.to_string(), tokens, ends }
}

/// Each token's end byte (offset by `base`), or `None` when the pieces are not the text byte for byte.
fn ends(tokens: &[Token], text: &str, base: usize, tok: &dyn Tokenizer) -> Option<Vec<usize>> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(tokens.len());
    let mut piece = Vec::new();
    let mut at = 0;
    for &t in tokens {
        piece.clear();
        tok.piece(t, &mut piece);
        // An empty piece would give two tokens one end, and a cut could not tell them apart.
        if piece.is_empty() || bytes.get(at..at + piece.len()) != Some(&piece[..]) {
            return None;
        }
        at += piece.len();
        out.push(base + at);
    }
    (at == bytes.len()).then_some(out)
}

fn incremental(prev: &Tokenized, text: &str, tok: &dyn Tokenizer, kind: Cuts) -> Option<Tokenized> {
    if prev.ends.is_empty() {
        return None;
    }
    let changed = common_prefix(prev.text.as_bytes(), text.as_bytes());
    let (c0, c1) = cuts(prev, changed, kind)?;
    let (i0, i1) = (token_at(&prev.ends, c0)?, token_at(&prev.ends, c1)?);
    let fresh = tok.tokenize(&text[c0..]);
    let fresh_ends = ends(&fresh, &text[c0..], c0, tok)?;
    // Re-synchronised: from c0 alone the tokens are the old ones up to c1, so nothing before c0 reached
    // past it and the change did not reach back before c1.
    let n = i1 - i0;
    if n == 0 || fresh.get(..n) != Some(&prev.tokens[i0..i1]) || fresh_ends.get(n - 1) != Some(&c1) {
        return None;
    }
    let mut tokens = prev.tokens[..i0].to_vec();
    tokens.extend(fresh);
    let mut ends = prev.ends[..i0].to_vec();
    ends.extend(fresh_ends);
    Some(Tokenized { text: text.to_string(), tokens, ends })
}

/// The index of the token that starts at byte `at` (a boundary of `ends`).
fn token_at(ends: &[usize], at: usize) -> Option<usize> {
    ends.binary_search(&at).ok().map(|i| i + 1)
}

fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// Two safe cuts c0 < c1 of `prev`, the later one at least one whole line before byte `changed`: the
/// latest such pair, so the least text is tokenized again.
fn cuts(prev: &Tokenized, changed: usize, kind: Cuts) -> Option<(usize, usize)> {
    // Bytes, not str: the first changed byte may sit inside a character.
    let same = &prev.text.as_bytes()[..changed.min(prev.text.len())];
    // The changed byte's line starts here; a line start before it leaves a whole line before the change.
    let line = same.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let below = prev.ends.partition_point(|&e| e < line);
    let mut safe = prev.ends[..below].iter().rev().copied().filter(|&b| is_safe_cut(&prev.text, b, kind));
    let c1 = safe.next()?;
    let c0 = safe.next()?;
    Some((c0, c1))
}

/// A line start whose line break follows a non-whitespace character and whose line begins with one (or,
/// with [`Cuts::Indented`], with spaces and tabs before one): no whitespace run is glued across it.
fn is_safe_cut(text: &str, at: usize, kind: Cuts) -> bool {
    if at == 0 || at >= text.len() || !text.is_char_boundary(at) {
        return false;
    }
    let (before, after) = text.split_at(at);
    let Some(before) = before.strip_suffix('\n') else {
        return false;
    };
    let before = before.strip_suffix('\r').unwrap_or(before);
    let last = before.chars().next_back();
    let first = match kind {
        Cuts::Unindented => after.chars().next(),
        Cuts::Indented => after.chars().find(|&c| c != ' ' && c != '\t'),
    };
    last.is_some_and(|c| !c.is_whitespace()) && first.is_some_and(|c| !c.is_whitespace())
}

/// The suffix window chosen for an `after` text, with the bytes that decided the choice: the chosen text
/// plus the next line that did not fit (or the end of the text).
#[derive(Debug, Clone)]
pub struct Suffix {
    decided: String,
    budget: usize,
    /// Where the window ends in `after`.
    pub end: usize,
    /// Its tokens, at most `budget` of them.
    pub tokens: Vec<Token>,
}

impl Suffix {
    /// Whether the same choice holds for `after`: the bytes that decided it are the same, and either a
    /// line that did not fit follows them whole or the text still ends there.
    fn holds_for(&self, after: &str, budget: usize) -> bool {
        self.budget == budget
            && after.starts_with(&self.decided)
            && (after.len() == self.decided.len() || (self.end < self.decided.len() && self.decided.ends_with('\n')))
    }
}

/// The suffix window for `after` (window::choose_suffix's), with `prev` (the document's last one) as is
/// when the text that decided it has not changed; `true` when it was.
pub fn suffix(prev: Option<&Suffix>, after: &str, budget: usize, tok: &dyn Tokenizer) -> (Suffix, bool) {
    if let Some(p) = prev.filter(|p| p.holds_for(after, budget)) {
        return (p.clone(), true);
    }
    let count = |t: &str| tok.tokenize(t).len();
    let end = crate::window::choose_suffix(after, budget, &count);
    let mut tokens = tok.tokenize(&after[..end]);
    tokens.truncate(budget);
    let decided = if end == after.len() { end } else { after[end..].find('\n').map_or(after.len(), |i| end + i + 1) };
    (Suffix { decided: after[..decided].to_string(), budget, end, tokens }, false)
}

#[cfg(test)]
#[path = "retok_tests.rs"]
mod tests;
