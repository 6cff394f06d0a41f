use super::*;
use std::cell::RefCell;

/// A stand-in vocabulary: `split` cuts a text into pieces, each distinct piece gets an id.
struct Fake<F: Fn(&str) -> Vec<String>> {
    split: F,
    table: RefCell<Vec<String>>,
    calls: RefCell<Vec<usize>>,
}

impl<F: Fn(&str) -> Vec<String>> Fake<F> {
    fn new(split: F) -> Self {
        Fake { split, table: RefCell::new(Vec::new()), calls: RefCell::new(Vec::new()) }
    }

    /// The bytes each call to `tokenize` was given.
    fn tokenized_bytes(&self) -> Vec<usize> {
        self.calls.take()
    }
}

impl<F: Fn(&str) -> Vec<String>> Tokenizer for Fake<F> {
    fn tokenize(&self, text: &str) -> Vec<Token> {
        self.calls.borrow_mut().push(text.len());
        let mut table = self.table.borrow_mut();
        (self.split)(text)
            .into_iter()
            .map(|p| match table.iter().position(|t| *t == p) {
                Some(i) => i as Token,
                None => {
                    table.push(p);
                    (table.len() - 1) as Token
                }
            })
            .collect()
    }

    fn piece(&self, t: Token, out: &mut Vec<u8>) {
        out.extend(self.table.borrow()[t as usize].as_bytes());
    }
}

#[derive(PartialEq, Clone, Copy)]
enum Class {
    Space,
    Newline,
    Word,
    Other,
}

fn class(c: char) -> Class {
    if c == '\n' || c == '\r' {
        Class::Newline
    } else if c.is_whitespace() {
        Class::Space
    } else if c.is_alphanumeric() || c == '_' {
        Class::Word
    } else {
        Class::Other
    }
}

/// Like a BPE pre-tokenizer, only more so: every run of whitespace (newlines and indentation together)
/// is one piece, every word one piece, any other character one piece.
fn glue_whitespace(text: &str) -> Vec<String> {
    split(text, |c| if class(c) == Class::Newline { Class::Space } else { class(c) })
}

/// Like Qwen's and Llama 3's pre-tokenizers: line breaks are pieces of their own, apart from indentation.
fn split_lines(text: &str) -> Vec<String> {
    split(text, class)
}

fn split(text: &str, class: impl Fn(char) -> Class) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut last = None;
    for c in text.chars() {
        let k = class(c);
        match out.last_mut() {
            Some(p) if last == Some(k) && k != Class::Other => p.push(c),
            _ => out.push(c.to_string()),
        }
        last = Some(k);
    }
    out
}

/// Context reaching far: lines inside ``` fences are one piece each, so where a tokenization starts
/// (inside a fence or not) changes the pieces after it.
fn fenced(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut inside = false;
    for line in text.split_inclusive('\n') {
        if line.starts_with("```") {
            inside = !inside;
            out.extend(glue_whitespace(line));
        } else if inside {
            out.push(line.to_string());
        } else {
            out.extend(glue_whitespace(line));
        }
    }
    out
}

/// Replays `edits` (byte range replaced by text) from `text`: after each, the incremental tokens must be
/// the full tokenization's. Returns the paths taken.
fn replay(tok: &dyn Tokenizer, text: &str, edits: &[(usize, usize, &str)]) -> Vec<Path> {
    let cuts = Cuts::probe(tok);
    let (mut prev, _) = tokenize(None, text, tok, cuts);
    let mut text = text.to_string();
    let mut paths = Vec::new();
    for &(from, to, with) in edits {
        text.replace_range(from..to, with);
        let (t, path) = tokenize(Some(&prev), &text, tok, cuts);
        assert_eq!(t.tokens(), &tok.tokenize(&text)[..], "after replacing {from}..{to} by {with:?}: {text:?}");
        assert_eq!(t.text(), text);
        paths.push(path);
        prev = t;
    }
    paths
}

const CODE: &str = "fn main() {\n    let x = 1;\n}\n\nfn other() {\n    call(x);\n}\n\nfn last() {\n    \
                    done();\n}\n";

#[test]
fn typing_at_the_end_re_tokenizes_only_the_last_lines() {
    let tok = Fake::new(glue_whitespace);
    let (prev, _) = tokenize(None, CODE, &tok, Cuts::Unindented);
    tok.tokenized_bytes();
    let typed = format!("{CODE}fn n");
    let (t, path) = tokenize(Some(&prev), &typed, &tok, Cuts::Unindented);
    assert_eq!(path, Path::Incremental);
    assert_eq!(t.tokens(), &tok.tokenize(&typed)[..]);
    let calls = tok.tokenized_bytes();
    // From the cut before "fn last" (the one before "fn other" is c1's earlier partner): well under the text.
    assert!(calls[0] < typed.len() / 2, "re-tokenized {} of {} bytes", calls[0], typed.len());
}

#[test]
fn edits_give_the_full_tokenization() {
    let tok = Fake::new(glue_whitespace);
    let end = CODE.len();
    // (from, to, text): typing, newlines with indentation, deletions, a pasted block, edits at the start.
    let edits: &[(usize, usize, &str)] = &[
        (end, end, "f"),
        (end + 1, end + 1, "n x() {\n"),
        (end + 9, end + 9, "        "),
        (end + 17, end + 17, "  y\n\n\n"),
        (end + 5, end + 9, ""),
        (end, end, "\n"),
        (end, end, " "),
        (end, end, "fn pasted() {\n    a();\n\n    b();\n}\n"),
        (0, 0, " "),
        (0, 1, ""),
        (12, 16, ""),
        (40, 40, "\n"),
    ];
    let paths = replay(&tok, CODE, edits);
    let incremental = paths.iter().filter(|p| **p == Path::Incremental).count();
    assert!(incremental >= 6, "{paths:?}");
}

#[test]
fn a_cut_never_sits_in_a_run_of_whitespace() {
    let tok = Fake::new(glue_whitespace);
    // Indented lines, blank lines and lines after a blank one give no cut; the only ones are "b" and "d".
    let text = "a\n  x\n\n  y\nb\n    z\n\nc\nd\n    w\n";
    let (prev, _) = tokenize(None, text, &tok, Cuts::Unindented);
    let safe: Vec<usize> = (0..=text.len()).filter(|&at| is_safe_cut(text, at, Cuts::Unindented)).collect();
    assert_eq!(safe, [11, 22]);
    // The change is on the last line: c1 = 22 ("d"), c0 = 11 ("b"); on "d"'s line there is one cut only.
    assert_eq!(cuts(&prev, text.len() - 2, Cuts::Unindented), Some((11, 22)));
    assert_eq!(cuts(&prev, 23, Cuts::Unindented), None);
    // Where the vocabulary keeps a line break apart from indentation, indented lines are cuts too (not
    // a blank line, nor a line after one).
    let indented: Vec<usize> = (0..=text.len()).filter(|&at| is_safe_cut(text, at, Cuts::Indented)).collect();
    assert_eq!(indented, [2, 11, 13, 22, 24]);
    // Trailing spaces before the line break make a line start unsafe too.
    for kind in [Cuts::Unindented, Cuts::Indented] {
        assert!(!is_safe_cut("a \nb", 3, kind));
        assert!(is_safe_cut("a\r\nb", 3, kind));
        assert!(!is_safe_cut("a \r\nb", 4, kind));
        assert!(!is_safe_cut("a\n \u{a0}b", 2, kind), "only spaces and tabs count as indentation");
    }
}

#[test]
fn falls_back_when_the_tokens_do_not_re_synchronise() {
    // Both cuts sit inside a fence: tokenized from c0 the fence's lines come out as words, not as lines,
    // so the re-sync check fails and the full tokenization is used.
    let tok = Fake::new(fenced);
    let text = "```\nalpha\nbeta\ngamma\ndelta\n";
    let typed = format!("{text}x");
    let (prev, _) = tokenize(None, text, &tok, Cuts::Unindented);
    assert!(cuts(&prev, text.len(), Cuts::Unindented).is_some(), "the cuts look safe");
    let (t, path) = tokenize(Some(&prev), &typed, &tok, Cuts::Unindented);
    assert_eq!(path, Path::Full);
    assert_eq!(t.tokens(), &tok.tokenize(&typed)[..]);
    // Outside a fence the same tokenizer re-synchronises.
    let plain = "alpha\nbeta\ngamma\ndelta\n";
    let paths = replay(&tok, plain, &[(plain.len(), plain.len(), "x")]);
    assert_eq!(paths, [Path::Incremental]);
}

#[test]
fn pieces_that_do_not_add_up_mean_a_full_tokenization() {
    // A tokenizer that adds a leading space: its pieces are one byte longer than the text.
    let tok = Fake::new(|t: &str| glue_whitespace(&format!(" {t}")));
    let paths = replay(&tok, CODE, &[(CODE.len(), CODE.len(), "x"), (CODE.len() + 1, CODE.len() + 1, "y")]);
    assert_eq!(paths, [Path::Full, Path::Full]);
}

#[test]
fn unchanged_text_is_the_same_tokens() {
    let tok = Fake::new(glue_whitespace);
    let (prev, _) = tokenize(None, CODE, &tok, Cuts::Unindented);
    tok.tokenized_bytes();
    let (t, path) = tokenize(Some(&prev), CODE, &tok, Cuts::Unindented);
    assert_eq!((path, t.tokens()), (Path::Same, prev.tokens()));
    assert!(tok.tokenized_bytes().is_empty());
}

#[test]
fn a_change_inside_a_character_is_handled() {
    let tok = Fake::new(glue_whitespace);
    // "é" and "è" share their first byte: the first changed byte sits inside a character.
    let text = "a\nb\nc\nd é";
    let paths = replay(&tok, text, &[(text.len() - 2, text.len(), "è")]);
    assert_eq!(paths, [Path::Incremental]);
}

#[test]
fn suffix_is_remembered_while_the_deciding_text_stays() {
    let tok = Fake::new(glue_whitespace);
    // (after, budget, reused): the window is "x)\nl1 a\n" (4 + 3 pieces); "l2 b\n" did not fit.
    let cases: &[(&str, usize, bool)] = &[
        ("x)\nl1 a\nl2 b\nl3 c\n", 8, false),
        ("x)\nl1 a\nl2 b\nl3 c changed\n", 8, true),
        ("x)\nl1 a\nl2 b\n", 8, true),
        ("x)\nl1 a\nl2 bb\n", 8, false),
        ("x)\nl1 a\nl2 bb\n", 9, false),
        ("x)\nl1 a", 9, false),
        ("x)\nl1 a and more", 9, false),
        ("", 9, false),
        ("", 9, true),
    ];
    let mut prev: Option<Suffix> = None;
    for &(after, budget, reused) in cases {
        let (s, hit) = suffix(prev.as_ref(), after, budget, &tok);
        let end = crate::window::choose_suffix(after, budget, &|t: &str| tok.tokenize(t).len());
        let mut want = tok.tokenize(&after[..end]);
        want.truncate(budget);
        assert_eq!((s.end, &s.tokens, hit), (end, &want, reused), "{after:?} {budget}");
        prev = Some(s);
    }
}

#[test]
fn indented_lines_are_cuts_where_the_vocabulary_splits_line_breaks() {
    assert_eq!(Cuts::probe(&Fake::new(glue_whitespace)), Cuts::Unindented);
    let tok = Fake::new(split_lines);
    assert_eq!(Cuts::probe(&tok), Cuts::Indented);
    // Deep inside an impl block: with indented cuts only the last lines are tokenized again.
    let body: String = (0..40).map(|i| format!("        let v{i} = f({i});\n")).collect();
    let text = format!("impl A {{\n    fn f() {{\n{body}        ");
    let typed = format!("{text}g");
    for (kind, most) in [(Cuts::Indented, 80), (Cuts::Unindented, typed.len())] {
        let (prev, _) = tokenize(None, &text, &tok, kind);
        tok.tokenized_bytes();
        let (t, path) = tokenize(Some(&prev), &typed, &tok, kind);
        assert_eq!(t.tokens(), &tok.tokenize(&typed)[..]);
        let retokenized = tok.tokenized_bytes()[0];
        assert!(retokenized <= most, "{kind:?}: {path:?}, {retokenized} bytes");
    }
    let end = typed.len();
    let paths = replay(&tok, &typed, &[(end, end, "\n"), (end + 1, end + 1, "    }\n"), (end - 1, end, "")]);
    assert_eq!(paths, [Path::Incremental; 3]);
}
