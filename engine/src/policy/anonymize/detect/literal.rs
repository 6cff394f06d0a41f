//! String literals in code: where they are (tree-sitter for Rust, Python, TypeScript/JavaScript and Go; a
//! quote scanner for other languages) and how their text is masked. Letters become placeholder words of the
//! same length and case, digit runs of three or more become zeros before a counter; escapes, `{name}`
//! placeholders and the names of the folder's tables and columns stay, so the code still reads the same.
//! Masked words and zero-led numbers are recognised on a second pass and kept, so masking is idempotent.
use crate::syntax::{parser, Lang};
use std::collections::{HashMap, HashSet};
use std::ops::Range;

const CONTENT_KINDS: &[&str] =
    &["string_content", "string_fragment", "interpreted_string_literal_content", "raw_string_literal_content"];

/// Words kept in literals: SQL in a string keeps its shape (the folder's table and column names are
/// kept separately).
const KEEP: &[&str] = &[
    "select",
    "from",
    "where",
    "insert",
    "into",
    "values",
    "update",
    "set",
    "delete",
    "join",
    "left",
    "inner",
    "on",
    "and",
    "or",
    "order",
    "by",
    "group",
    "limit",
    "as",
    "null",
    "not",
    "is",
    "in",
    "like",
    "returning",
    "count",
    "desc",
    "asc",
    "http",
    "https",
];

/// Byte ranges of the text inside string literals.
pub fn find(text: &str, lang: Option<Lang>) -> Vec<Range<usize>> {
    match lang {
        Some(l) => tree_sitter(text, l),
        None => quoted(text),
    }
}

fn tree_sitter(text: &str, lang: Lang) -> Vec<Range<usize>> {
    let Some(tree) = parser(lang).parse(text, None) else { return quoted(text) };
    let mut out = Vec::new();
    let mut cursor = tree.walk();
    let mut stack = vec![tree.root_node()];
    while let Some(n) = stack.pop() {
        if CONTENT_KINDS.contains(&n.kind()) {
            // A Python docstring is documentation, not data: the other detectors still read it.
            let docstring = lang == Lang::Python
                && n.parent()
                    .and_then(|s| s.parent())
                    .is_some_and(|p| p.kind() == "expression_statement" && p.child_count() == 1);
            if !docstring {
                out.push(n.byte_range());
            }
            continue;
        }
        stack.extend(n.children(&mut cursor).collect::<Vec<_>>());
    }
    out.sort_by_key(|r| r.start);
    out
}

/// Quote-delimited runs on one line, with backslash escapes. A `'` glued to a letter is an apostrophe.
fn quoted(text: &str) -> Vec<Range<usize>> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let q = b[i];
        let apostrophe = q == b'\'' && i > 0 && (b[i - 1] as char).is_alphanumeric();
        if !(q == b'"' || q == b'\'' || q == b'`') || apostrophe {
            i += 1;
            continue;
        }
        let mut j = i + 1;
        while j < b.len() && b[j] != q && b[j] != b'\n' {
            j += if b[j] == b'\\' { 2 } else { 1 };
        }
        if j < b.len() && b[j] == q {
            if j > i + 1 {
                out.push(i + 1..j);
            }
            i = j + 1;
        } else {
            i += 1;
        }
    }
    out
}

/// Whether a lowercase word is one that [`placeholder`] makes.
pub fn is_placeholder(word: &str) -> bool {
    word.is_ascii()
        && !word.is_empty()
        && (0..super::super::synth::LOREM.len()).any(|k| placeholder(word.len(), k) == word)
}

fn placeholder(len: usize, k: usize) -> String {
    let lorem = super::super::synth::LOREM;
    let exact: Vec<&&str> = lorem.iter().filter(|w| w.len() == len).collect();
    if !exact.is_empty() {
        return exact[k % exact.len()].to_string();
    }
    let mut s = String::new();
    let mut i = k;
    while s.len() < len {
        s.push_str(lorem[i % lorem.len()]);
        i += 1;
    }
    s.truncate(len);
    s
}

fn with_case(like: &[char], word: &str) -> String {
    if like.len() > 1 && like.iter().all(|c| !c.is_lowercase()) {
        word.to_uppercase()
    } else if like[0].is_uppercase() {
        let mut w = word.chars();
        w.next().map(|f| f.to_ascii_uppercase()).into_iter().chain(w).collect()
    } else {
        word.to_string()
    }
}

/// Masks literal text with one mapping for the whole payload.
#[derive(Default)]
pub struct Masker {
    words: HashMap<String, String>,
    numbers: HashMap<String, String>,
}

impl Masker {
    /// `keep`: lowercase words that stay (the folder's structure names).
    pub fn mask(&mut self, s: &str, keep: &HashSet<String>) -> String {
        let c: Vec<char> = s.chars().collect();
        let mut out = String::with_capacity(s.len());
        let mut i = 0;
        while i < c.len() {
            let ch = c[i];
            if ch == '\\' {
                // An escape stays as it is, `\u{…}` and `\x41` included.
                let mut j = (i + 2).min(c.len());
                if i + 1 < c.len() && (c[i + 1] == 'u' || c[i + 1] == 'x') {
                    while j < c.len() && (c[j].is_ascii_hexdigit() || c[j] == '{' || c[j] == '}') {
                        j += 1;
                    }
                }
                out.extend(&c[i..j]);
                i = j;
            } else if ch == '{' {
                // A format placeholder names code (`{name}`, `{0}`, `{:>8}`); it stays.
                let close = c[i..].iter().position(|&x| x == '}').map(|p| i + p);
                match close {
                    Some(e)
                        if e - i <= 40
                            && c[i + 1..e].iter().all(|x| x.is_alphanumeric() || "_.:<>^+-#".contains(*x)) =>
                    {
                        out.extend(&c[i..=e]);
                        i = e + 1;
                    }
                    _ => {
                        out.push(ch);
                        i += 1;
                    }
                }
            } else if ch.is_alphabetic() {
                let mut j = i;
                while j < c.len() && c[j].is_alphabetic() {
                    j += 1;
                }
                let run: String = c[i..j].iter().collect();
                let lower = run.to_lowercase();
                // Right after `%` it is a printf conversion (`%s`).
                if keep.contains(&lower)
                    || KEEP.contains(&lower.as_str())
                    || is_placeholder(&lower)
                    || (i > 0 && c[i - 1] == '%' && j - i == 1)
                {
                    out.push_str(&run);
                } else {
                    let k = self.words.len();
                    let w = self.words.entry(lower).or_insert_with(|| placeholder(j - i, k)).clone();
                    out.push_str(&with_case(&c[i..j], &w));
                }
                i = j;
            } else if ch.is_ascii_digit() {
                let mut j = i;
                while j < c.len() && c[j].is_ascii_digit() {
                    j += 1;
                }
                let run: String = c[i..j].iter().collect();
                if run.len() <= 2 || run.starts_with("00") {
                    out.push_str(&run);
                } else {
                    let n = (self.numbers.len() + 1).to_string();
                    let len = run.len();
                    let z = self
                        .numbers
                        .entry(run)
                        .or_insert_with(|| if len >= n.len() + 2 { format!("{n:0>len$}") } else { "0".repeat(len) })
                        .clone();
                    out.push_str(&z);
                }
                i = j;
            } else {
                out.push(ch);
                i += 1;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contents(text: &str, lang: Option<Lang>) -> Vec<&str> {
        find(text, lang).into_iter().map(|r| &text[r]).collect()
    }

    #[test]
    fn literals_per_language() {
        assert_eq!(
            contents("let a = \"Erika\"; let b = r#\"raw x\"#; // \"not code\"\n", Some(Lang::Rust)),
            ["Erika", "raw x"]
        );
        assert_eq!(
            contents("def f():\n    \"\"\"Docs.\"\"\"\n    x = 'Erika'\n    y = f\"Hi {name}!\"\n", Some(Lang::Python)),
            ["Erika", "Hi ", "!"]
        );
        assert_eq!(contents("const a = 'Erika'; const b = `t ${x} u`;", Some(Lang::TypeScript)), ["Erika", "t ", " u"]);
        assert_eq!(contents("a := \"Erika\"\nb := `raw`\n", Some(Lang::Go)).len(), 2);
        assert_eq!(contents("x = \"Erika\" + 'Max' // don't", None), ["Erika", "Max"]);
    }

    #[test]
    fn masking_keeps_the_shape_and_is_idempotent() {
        let keep: HashSet<String> = ["customers".to_string()].into();
        let mut m = Masker::default();
        let s = m.mask("Hallo Erika, Kunde 4711 in customers: {name} %s\\n ERIKA", &keep);
        assert!(!s.contains("Erika") && !s.contains("Hallo") && !s.contains("4711"), "{s}");
        assert!(s.contains("customers") && s.contains("{name}") && s.contains("%s") && s.contains("\\n"), "{s}");
        assert_eq!(s.len(), "Hallo Erika, Kunde 4711 in customers: {name} %s\\n ERIKA".len());
        assert_eq!(Masker::default().mask(&s, &keep), s, "masked text is left alone");
        assert_eq!(m.mask("Erika", &keep), m.mask("Erika", &keep));
    }
}
