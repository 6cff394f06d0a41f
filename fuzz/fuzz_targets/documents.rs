//! Incremental document sync against a reference string: random edits in UTF-16 and UTF-8 positions (and
//! positions past the end, which clamp) must leave the rope holding exactly what the reference holds.
#![no_main]
use libfuzzer_sys::fuzz_target;
use ls_types::{Position, Range, TextDocumentContentChangeEvent};

#[allow(dead_code)]
#[path = "../../server/src/documents.rs"]
mod documents;
use documents::{Document, Encoding};

const PIECES: [&str; 8] = ["a", "é", "😀", "\n", "\r\n", " ", "中", "\u{2028}"];

fn text(b: &[u8]) -> String {
    b.iter().map(|&x| PIECES[usize::from(x) % PIECES.len()]).collect()
}

fn pos_of(s: &str, c: usize, enc: Encoding) -> Position {
    let before: String = s.chars().take(c).collect();
    let line_start = before.rfind(['\n', '\r']).map(|i| i + 1).unwrap_or(0);
    let line = before.matches('\n').count() + before.matches('\r').count() - before.matches("\r\n").count();
    let col = &before[line_start..];
    let units = match enc {
        Encoding::Utf8 => col.len(),
        Encoding::Utf16 => col.encode_utf16().count(),
    };
    Position::new(line as u32, units as u32)
}

/// Move a char index off the middle of a "\r\n" pair, which is no position.
fn fix(s: &str, c: usize) -> usize {
    let v: Vec<char> = s.chars().collect();
    let c = c % (v.len() + 1);
    if c > 0 && c < v.len() && v[c - 1] == '\r' && v[c] == '\n' { c + 1 } else { c }
}

fuzz_target!(|data: &[u8]| {
    let Some((&n0, rest)) = data.split_first() else { return };
    let (init, ops) = rest.split_at((usize::from(n0) % 32).min(rest.len()));
    for enc in [Encoding::Utf16, Encoding::Utf8] {
        let mut reference = text(init);
        let mut doc = Document::new(&reference, 1, "plaintext".into());
        for op in ops.chunks(6) {
            let [a, b, flags, t @ ..] = op else { break };
            let t = text(t);
            let (x, y) = (fix(&reference, usize::from(*a)), fix(&reference, usize::from(*b)));
            let (s, e) = (x.min(y), x.max(y));
            let mut range = Range::new(pos_of(&reference, s, enc), pos_of(&reference, e, enc));
            let (bs, mut be) = (reference.char_indices().nth(s).map(|(i, _)| i).unwrap_or(reference.len()), reference.char_indices().nth(e).map(|(i, _)| i).unwrap_or(reference.len()));
            if flags & 1 == 1 {
                // Past the end: the protocol says such an end means the document's end.
                range.end = Position::new(range.end.line + 1000, 5);
                be = reference.len();
            }
            doc.apply_change(&TextDocumentContentChangeEvent { range: Some(range), range_length: None, text: t.clone() }, enc);
            reference.replace_range(bs..be, &t);
            assert_eq!(doc.text(), reference, "{enc:?}");
            let c = fix(&reference, usize::from(flags >> 1));
            assert_eq!(doc.char_at(pos_of(&reference, c, enc), enc), Ok(c));
        }
    }
});
