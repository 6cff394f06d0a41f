//! `cargo bench -p lokal-server --bench did_change`: what one didChange costs on a 50,000-line Rust file,
//! before the completion request behind it can be served. "eager" is the old handler (copy the rope into a
//! String and re-parse on every change), "lazy" the current one (record the edit; parse when the tree is
//! read); "query" is the deferred parse from the rope's chunks that the next reader of the tree pays.
//! Prints p50/p99; asserts nothing about speed.
use lokal_engine::syntax::{Lang, SyntaxTree};
use lokal_server::documents::{Document, Encoding};
use std::time::Instant;
use tower_lsp_server::ls_types::{Position, Range, TextDocumentContentChangeEvent};

const LINES: usize = 50_000;
const KEYS: usize = 400;

fn source() -> String {
    (0..LINES / 5)
        .map(|i| {
            format!(
                "fn compute_{i}(input: u32) -> u32 {{\n    let scaled = input * {i} + OFFSET;\n    let shifted \
                 = scaled.rotate_left(3) ^ MASK;\n    shifted.wrapping_add(input) % MODULUS\n}}\n"
            )
        })
        .collect()
}

fn key(line: u32, col: u32, text: &str) -> TextDocumentContentChangeEvent {
    let p = Position::new(line, col);
    TextDocumentContentChangeEvent { range: Some(Range::new(p, p)), range_length: None, text: text.into() }
}

fn pct(mut v: Vec<f64>, p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn report(name: &str, v: Vec<f64>) {
    println!("{name:>6}: p50 {:.3} ms  p99 {:.3} ms  (n={})", pct(v.clone(), 0.5), pct(v.clone(), 0.99), v.len());
}

/// Types `n` characters into line 25,002 (mid-file: `let y = x * …`), one didChange each.
fn typing(n: usize, mut step: impl FnMut(&TextDocumentContentChangeEvent)) -> Vec<f64> {
    let word = "abcdefghij";
    (0..n)
        .map(|k| {
            let ch = key(25_002, 16 + k as u32, &word[k % 10..k % 10 + 1]);
            let t = Instant::now();
            step(&ch);
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect()
}

fn main() {
    let text = source();
    println!("document: {} lines, {} bytes", LINES, text.len());
    let enc = Encoding::Utf16;

    let mut doc = Document::new(&text, 1, "rust".into());
    let mut tree = SyntaxTree::new(Lang::Rust, &text);
    let eager = typing(KEYS, |ch| {
        doc.apply_changes(std::slice::from_ref(ch), enc, Some(&mut tree));
        let text = doc.text();
        tree.reparse_incremental(&text);
    });

    let mut doc = Document::new(&text, 1, "rust".into());
    let mut tree = SyntaxTree::new(Lang::Rust, &text);
    let (mut lazy, mut query) = (vec![], vec![]);
    // A reader of the tree (code actions) every 20 keystrokes pays the deferred parse; then the round's
    // typing is undone so that every round types at the same place.
    for _ in 0..KEYS / 20 {
        lazy.extend(typing(20, |ch| doc.apply_changes(std::slice::from_ref(ch), enc, Some(&mut tree))));
        let t = Instant::now();
        doc.fresh_tree(&mut tree);
        query.push(t.elapsed().as_secs_f64() * 1e3);
        let undo = TextDocumentContentChangeEvent {
            range: Some(Range::new(Position::new(25_002, 16), Position::new(25_002, 36))),
            range_length: None,
            text: String::new(),
        };
        doc.apply_changes(std::slice::from_ref(&undo), enc, Some(&mut tree));
        doc.fresh_tree(&mut tree);
    }
    report("eager", eager);
    report("lazy", lazy);
    report("query", query);
}
