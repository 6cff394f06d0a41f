//! Open documents as ropes, with LSP positions (UTF-16 by default, UTF-8 when negotiated) converted here
//! and nowhere else.
use ls_types::{Position, Range, TextDocumentContentChangeEvent};
use ropey::Rope;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Utf8,
    Utf16,
}

/// Files above this size are not kept: a completion prompt only ever needs a window of them.
pub const MAX_DOCUMENT_BYTES: usize = 16 * 1024 * 1024;

/// Characters of one line around the cursor above which only a part of the line goes to the engine.
pub const LONG_LINE: usize = 4096;
const LONG_LINE_STEP: usize = 1024;

#[derive(Debug)]
pub struct Document {
    pub rope: Rope,
    pub version: i32,
    pub language_id: String,
    /// Why the document cannot be completed in (binary, too large); it is still tracked so that later
    /// changes and requests get a clear answer.
    pub unusable: Option<String>,
}

/// Byte offsets (start, old end) and (row, byte column) points (start, old end) of the span a change
/// replaces.
pub type ChangeSpan = (usize, usize, (usize, usize), (usize, usize));

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PositionError(pub String);

impl std::fmt::Display for PositionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn classify(text: &str) -> Option<String> {
    if text.len() > MAX_DOCUMENT_BYTES {
        Some(format!("file is too large ({} bytes; limit {MAX_DOCUMENT_BYTES})", text.len()))
    } else if text.as_bytes().iter().take(8192).any(|&b| b == 0) {
        Some("file looks binary (contains NUL bytes)".into())
    } else {
        None
    }
}

impl Document {
    pub fn new(text: &str, version: i32, language_id: String) -> Self {
        let unusable = classify(text);
        let rope = if unusable.is_some() { Rope::new() } else { Rope::from_str(text) };
        Self { rope, version, language_id, unusable }
    }

    /// Strict conversion for requests: a line or column past the end is an error, not a clamp.
    pub fn char_at(&self, pos: Position, enc: Encoding) -> Result<usize, PositionError> {
        let line = pos.line as usize;
        if line >= self.rope.len_lines() {
            return Err(PositionError(format!(
                "position {}:{} is past the end of the document ({} lines)",
                pos.line,
                pos.character,
                self.rope.len_lines()
            )));
        }
        let (start, len) = self.line_span(line, enc);
        let col = pos.character as usize;
        if col > len {
            return Err(PositionError(format!(
                "position {}:{} is past the end of line {} ({len} code units)",
                pos.line, pos.character, pos.line
            )));
        }
        Ok(self.units_to_char(start, col, enc))
    }

    /// Lenient conversion for edits, as the protocol asks: columns past a line's end mean its end, lines
    /// past the document's end mean its end.
    fn char_clamped(&self, pos: Position, enc: Encoding) -> usize {
        let line = pos.line as usize;
        if line >= self.rope.len_lines() {
            return self.rope.len_chars();
        }
        let (start, len) = self.line_span(line, enc);
        self.units_to_char(start, (pos.character as usize).min(len), enc)
    }

    /// First char of the line and its length in code units, without the line break.
    fn line_span(&self, line: usize, enc: Encoding) -> (usize, usize) {
        let slice = self.rope.line(line);
        let mut chars = slice.len_chars();
        // A line's length excludes its terminator ("\n" or "\r\n").
        if chars > 0 && slice.char(chars - 1) == '\n' {
            chars -= 1;
            if chars > 0 && slice.char(chars - 1) == '\r' {
                chars -= 1;
            }
        }
        let body = slice.slice(..chars);
        let len = match enc {
            Encoding::Utf8 => body.len_bytes(),
            Encoding::Utf16 => body.len_utf16_cu(),
        };
        (self.rope.line_to_char(line), len)
    }

    fn units_to_char(&self, line_start: usize, units: usize, enc: Encoding) -> usize {
        match enc {
            Encoding::Utf8 => {
                let b = self.rope.char_to_byte(line_start) + units;
                // A column inside a multi-byte char lands on that char.
                self.rope.byte_to_char(b)
            }
            Encoding::Utf16 => {
                let u = self.rope.char_to_utf16_cu(line_start) + units;
                self.rope.utf16_cu_to_char(u)
            }
        }
    }

    pub fn position_of(&self, char_idx: usize, enc: Encoding) -> Position {
        let char_idx = char_idx.min(self.rope.len_chars());
        let line = self.rope.char_to_line(char_idx);
        let start = self.rope.line_to_char(line);
        let col = match enc {
            Encoding::Utf8 => self.rope.char_to_byte(char_idx) - self.rope.char_to_byte(start),
            Encoding::Utf16 => self.rope.char_to_utf16_cu(char_idx) - self.rope.char_to_utf16_cu(start),
        };
        Position::new(line as u32, col as u32)
    }

    /// The span a change replaces, before it is applied: what an incremental re-parse needs.
    pub fn change_span(&self, change: &TextDocumentContentChangeEvent, enc: Encoding) -> Option<ChangeSpan> {
        let r = change.range?;
        let s = self.char_clamped(r.start, enc);
        let e = self.char_clamped(r.end, enc).max(s);
        let pt = |c: usize| {
            let line = self.rope.char_to_line(c);
            (line, self.rope.char_to_byte(c) - self.rope.line_to_byte(line))
        };
        Some((self.rope.char_to_byte(s), self.rope.char_to_byte(e), pt(s), pt(e)))
    }

    pub fn apply_change(&mut self, change: &TextDocumentContentChangeEvent, enc: Encoding) {
        match change.range {
            None => {
                *self = Document::new(&change.text, self.version, std::mem::take(&mut self.language_id));
            }
            Some(Range { start, end }) => {
                if self.unusable.is_some() {
                    return;
                }
                let s = self.char_clamped(start, enc);
                let e = self.char_clamped(end, enc).max(s);
                self.rope.remove(s..e);
                self.rope.insert(s, &change.text);
                if self.rope.len_bytes() > MAX_DOCUMENT_BYTES {
                    self.unusable = classify(&" ".repeat(MAX_DOCUMENT_BYTES + 1));
                    self.rope = Rope::new();
                }
            }
        }
    }

    /// Where the text around `cursor` handed to the engine must start and end when the cursor's line is
    /// too long to go into a prompt whole (minified or generated files): the prompt window always keeps the
    /// cursor's whole line, and a 3 MB line would take the model minutes to read and block every other
    /// request meanwhile. The start moves in steps, so it stays put while the user types and the cache holds.
    pub fn long_line_window(&self, line: usize, cursor: usize) -> (Option<usize>, Option<usize>) {
        let ls = self.rope.line_to_char(line);
        let le = ls + self.rope.line(line).len_chars();
        let start =
            (cursor - ls > LONG_LINE).then(|| ls + (cursor - ls - LONG_LINE / 2) / LONG_LINE_STEP * LONG_LINE_STEP);
        let end = (le - cursor > LONG_LINE).then_some(cursor + LONG_LINE / 2);
        (start, end)
    }

    pub fn text(&self) -> String {
        self.rope.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(sl: u32, sc: u32, el: u32, ec: u32, text: &str) -> TextDocumentContentChangeEvent {
        TextDocumentContentChangeEvent {
            range: Some(Range::new(Position::new(sl, sc), Position::new(el, ec))),
            range_length: None,
            text: text.into(),
        }
    }

    #[test]
    fn utf16_and_utf8_columns() {
        // "é" is 1 UTF-16 unit and 2 UTF-8 bytes; "😀" is 2 UTF-16 units and 4 bytes.
        let d = Document::new("aé😀b\nx", 1, "rust".into());
        assert_eq!(d.char_at(Position::new(0, 4), Encoding::Utf16).unwrap(), 3);
        assert_eq!(d.char_at(Position::new(0, 7), Encoding::Utf8).unwrap(), 3);
        assert_eq!(d.position_of(3, Encoding::Utf16), Position::new(0, 4));
        assert_eq!(d.position_of(3, Encoding::Utf8), Position::new(0, 7));
    }

    #[test]
    fn positions_past_the_end_are_errors() {
        let d = Document::new("ab\ncd", 1, "rust".into());
        assert!(d.char_at(Position::new(5, 0), Encoding::Utf16).is_err());
        assert!(d.char_at(Position::new(0, 3), Encoding::Utf16).is_err());
        assert_eq!(d.char_at(Position::new(0, 2), Encoding::Utf16).unwrap(), 2);
        assert_eq!(d.char_at(Position::new(1, 2), Encoding::Utf16).unwrap(), 5);
    }

    #[test]
    fn incremental_changes() {
        let mut d = Document::new("fn main() {\n}\n", 1, "rust".into());
        d.apply_change(&change(0, 11, 0, 11, "\n    let x = 1;"), Encoding::Utf16);
        assert_eq!(d.text(), "fn main() {\n    let x = 1;\n}\n");
        d.apply_change(&change(1, 8, 1, 9, "yy"), Encoding::Utf16);
        assert_eq!(d.text(), "fn main() {\n    let yy = 1;\n}\n");
        // Past-the-end edit ranges clamp, as the protocol says.
        d.apply_change(&change(9, 0, 9, 0, "// end\n"), Encoding::Utf16);
        assert!(d.text().ends_with("// end\n"));
    }

    #[test]
    fn lines_break_where_the_protocol_says() {
        // \n, \r\n and a lone \r end lines; U+2028, NEL, VT and FF do not (ropey's default would split there).
        let d = Document::new("a\u{2028}b\u{85}c\u{b}d\u{c}e\rf\r\ng\nh", 1, "plaintext".into());
        assert_eq!(d.char_at(Position::new(0, 9), Encoding::Utf16).unwrap(), 9);
        assert_eq!(d.char_at(Position::new(1, 1), Encoding::Utf16).unwrap(), 11);
        assert_eq!(d.char_at(Position::new(2, 0), Encoding::Utf16).unwrap(), 13);
        assert_eq!(d.char_at(Position::new(3, 1), Encoding::Utf16).unwrap(), 16);
        assert!(d.char_at(Position::new(4, 0), Encoding::Utf16).is_err());
    }

    #[test]
    fn a_long_line_is_cut_around_the_cursor_at_steps_that_hold_while_typing() {
        let mut d = Document::new(&format!("a\n{}\nb", "x".repeat(100_000)), 1, "js".into());
        let ls = 2;
        assert_eq!(d.long_line_window(0, 1), (None, None), "short lines stay whole");
        let (s1, e1) = d.long_line_window(1, ls + 50_000);
        let s1 = s1.unwrap();
        assert!(ls + 50_000 - s1 > LONG_LINE / 2 && ls + 50_000 - s1 <= LONG_LINE / 2 + LONG_LINE_STEP, "{s1}");
        assert_eq!(e1, Some(ls + 50_000 + LONG_LINE / 2));
        d.apply_change(&change(1, 50_000, 1, 50_000, "y"), Encoding::Utf16);
        assert_eq!(d.long_line_window(1, ls + 50_001).0, Some(s1), "one keystroke does not move the start");
        assert_eq!(d.long_line_window(1, ls + 10).0, None);
    }

    #[test]
    fn edits_are_parsed_when_the_tree_is_read_and_match_a_fresh_parse() {
        use lokal_engine::syntax::{Lang, SyntaxTree};
        // Many rope chunks, so the chunked parse crosses chunk boundaries.
        let src: String = (0..400).map(|i| format!("fn f{i}() -> u32 {{ {i} }}\n")).collect();
        let mut d = Document::new(&src, 1, "rust".into());
        let mut t = SyntaxTree::new(Lang::Rust, &src);
        let before = t.sexp();
        let batch = [change(200, 15, 200, 15, "é + unknown("), change(10, 0, 10, 0, "struct S;\n")];
        d.apply_changes(&batch, Encoding::Utf16, Some(&mut t));
        assert!(t.is_stale(), "a keystroke only records the edit");
        assert_eq!(t.sexp(), before, "and does not parse");
        d.fresh_tree(&mut t);
        assert!(!t.is_stale());
        assert_eq!(t.sexp(), SyntaxTree::new(Lang::Rust, &d.text()).sexp());
        assert!(t.sexp().contains("ERROR"), "the unclosed call is seen");
        let whole = TextDocumentContentChangeEvent { range: None, range_length: None, text: "fn g() {}\n".into() };
        d.apply_changes(&[change(0, 0, 0, 0, "x"), whole], Encoding::Utf16, Some(&mut t));
        assert_eq!(t.sexp(), SyntaxTree::new(Lang::Rust, "fn g() {}\n").sexp());
    }

    #[test]
    fn binary_is_flagged() {
        let d = Document::new("abc\0def", 1, "plaintext".into());
        assert!(d.unusable.as_deref().unwrap().contains("binary"));
    }
}
