//! Stop rules and trimming of a generated completion. Pure text functions.

/// Decides, after each generated piece, whether generation should stop.
#[derive(Debug, Clone)]
pub struct StopRules {
    pub max_lines: usize,
    /// The first non-empty line after the cursor's line: when the model writes it, it is repeating the
    /// text that is already there.
    next_line: Option<String>,
    single_line: bool,
    /// The first bracket the text after the cursor closes without opening it: a closing bracket of that
    /// kind from the model would be a second one.
    suffix_closer: Option<u8>,
}

impl StopRules {
    pub fn new(suffix: &str, max_lines: usize, single_line: bool) -> Self {
        let next_line = suffix.split('\n').skip(1).map(str::trim).find(|l| !l.is_empty()).map(str::to_string);
        let suffix_closer = block_close(suffix).map(|i| suffix.as_bytes()[i]);
        Self { max_lines: max_lines.max(1), next_line, single_line, suffix_closer }
    }

    /// Where the suggestion is complete: the block the cursor is in closes in `text` (bracket depth below
    /// the cursor's). When the text after the cursor closes it already (the same kind of bracket), the
    /// suggestion ends before the closing bracket; otherwise it ends with that bracket's line (`Some(x` with
    /// only the function's `}` after the cursor: the model's `) = y {` is the line's rest).
    fn complete_at(&self, text: &str) -> Option<usize> {
        let at = block_close(text)?;
        if self.suffix_closer == Some(text.as_bytes()[at]) {
            return Some(at);
        }
        text[at..].find('\n').map(|n| at + n)
    }

    /// `text` is everything generated so far.
    pub fn should_stop(&self, text: &str) -> bool {
        if self.complete_at(text).is_some() {
            return true;
        }
        let newlines = text.matches('\n').count();
        if self.single_line && newlines >= 1 && !text.trim().is_empty() {
            return true;
        }
        if newlines >= self.max_lines {
            return true;
        }
        if let Some(next) = &self.next_line {
            // Only whole lines are compared: a partial line may still diverge.
            if let Some(done) = text.rsplit_once('\n').map(|(d, _)| d) {
                if done.split('\n').skip(1).any(|l| l.trim() == next.as_str()) {
                    return true;
                }
            }
        }
        false
    }
}

/// Byte offset of the first closing bracket in `text` that has no opening one before it: the end of the
/// block `text` starts in. Brackets in string and character literals and in comments do not count (a light
/// lexer for C-like and Python-like code: `'` opens a literal only as `'x'` or `'\x'`, so Rust lifetimes stay
/// code).
pub fn block_close(text: &str) -> Option<usize> {
    let b = text.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => {
                if depth == 0 {
                    return Some(i);
                }
                depth -= 1;
            }
            q @ (b'"' | b'`') => {
                i += 1;
                while i < b.len() && b[i] != q && !(q == b'"' && b[i] == b'\n') {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'\'' if b.get(i + 1) == Some(&b'\\') => {
                i += 2;
                while i < b.len() && b[i] != b'\'' && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'\'' if b.get(i + 2) == Some(&b'\'') => i += 2,
            b'#' => i = skip_line(b, i),
            b'/' if b.get(i + 1) == Some(&b'/') => i = skip_line(b, i),
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i = text[i + 2..].find("*/").map_or(b.len(), |e| i + 2 + e + 1);
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// The index of the newline that ends the line `i` is on (or the end), so the caller's `+ 1` goes past it.
fn skip_line(b: &[u8], i: usize) -> usize {
    b[i..].iter().position(|&c| c == b'\n').map_or(b.len(), |n| i + n - 1)
}

/// Whether the cursor sits before real text on its line, where only a single-line suggestion makes sense.
pub fn is_mid_line(suffix: &str) -> bool {
    suffix.split('\n').next().is_some_and(|rest| !rest.trim().is_empty())
}

/// Cut the raw generation down to the suggestion shown to the user, or `None` when nothing useful is left.
pub fn finalize(raw: &str, suffix: &str, rules: &StopRules) -> Option<String> {
    // A model may end lines with \r\n or a lone \r; the suggestion takes the document's line ending, or
    // accepting it would mix endings (and a \r typed before the file's \n becomes one CRLF break).
    let mut raw = raw.replace("\r\n", "\n").replace('\r', "\n");
    if let Some(end) = rules.complete_at(&raw) {
        raw.truncate(end);
    }
    let mut lines: Vec<&str> = raw.split('\n').collect();
    if rules.single_line {
        lines.truncate(1);
    }
    lines.truncate(rules.max_lines);
    // Drop lines from the one that repeats the text after the cursor.
    if let Some(next) = &rules.next_line {
        if let Some(i) = lines.iter().skip(1).position(|l| l.trim() == next.as_str()) {
            lines.truncate(i + 1);
        }
    }
    let mut text = lines.join("\n");
    // Trailing blank lines and spaces add nothing the user wants to accept.
    let trimmed_len = text.trim_end().len();
    text.truncate(trimmed_len);
    // If the suggestion ends with what already follows the cursor on its line (a closing bracket, say),
    // drop that overlap so accepting it does not duplicate text.
    let rest = suffix.split('\n').next().unwrap_or("").trim_end();
    if !rest.is_empty() {
        for k in (1..=rest.len()).rev() {
            if rest.is_char_boundary(k) && text.ends_with(&rest[..k]) {
                text.truncate(text.len() - k);
                break;
            }
        }
    }
    if text.trim().is_empty() {
        None
    } else if suffix.contains("\r\n") {
        Some(text.replace('\n', "\r\n"))
    } else {
        Some(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_take_the_documents_line_ending() {
        let r = StopRules::new("", 5, false);
        assert_eq!(finalize("a\rb\r\nc", "\n}\n", &r).as_deref(), Some("a\nb\nc"));
        assert_eq!(finalize("a\nb\rc", "\r\n}\r\n", &r).as_deref(), Some("a\r\nb\r\nc"));
    }

    #[test]
    fn stops_on_line_budget() {
        let r = StopRules::new("", 2, false);
        assert!(!r.should_stop("a\nb"));
        assert!(r.should_stop("a\nb\n"));
        assert_eq!(finalize("a\nb\nc\n", "", &r).as_deref(), Some("a\nb"));
    }

    #[test]
    fn single_line_when_text_follows_cursor() {
        assert!(is_mid_line("foo)\nbar"));
        assert!(!is_mid_line("   \nbar"));
        let r = StopRules::new("b)\n", 8, true);
        assert!(r.should_stop("a, b)\n"));
        assert_eq!(finalize("a, b)\nmore", "b)\n", &r).as_deref(), Some("a, "));
    }

    #[test]
    fn stops_when_repeating_the_next_line() {
        let suffix = "\n    return x\n}\n";
        let r = StopRules::new(suffix, 8, false);
        assert!(!r.should_stop("let y = 1;\n    return x"));
        assert!(r.should_stop("let y = 1;\n    return x\n"));
        assert_eq!(finalize("let y = 1;\n    return x\n}", suffix, &r).as_deref(), Some("let y = 1;"));
    }

    #[test]
    fn empty_or_whitespace_is_no_suggestion() {
        let r = StopRules::new("", 4, false);
        assert_eq!(finalize("   \n\n", "", &r), None);
        assert_eq!(finalize("", "", &r), None);
        // A suggestion that only re-types the closing bracket after the cursor is empty too.
        let r = StopRules::new(")", 4, true);
        assert_eq!(finalize(")", ")", &r), None);
    }

    #[test]
    fn block_close_skips_nested_brackets_literals_and_comments() {
        assert_eq!(block_close("a(b[c]{d}) }"), Some(11));
        assert_eq!(block_close("(x)"), None);
        assert_eq!(block_close("print(\")\") )"), Some(11));
        assert_eq!(block_close("let c = '}'; }"), Some(13));
        assert_eq!(block_close("let c = '\\\\'; )"), Some(14));
        assert_eq!(block_close("fn f<'a>(x: &'a str) {} ]"), Some(24), "lifetimes are code");
        assert_eq!(block_close("x // }\ny # )\n/* ] */ }"), Some(21));
        assert_eq!(block_close("s = \"unterminated ]\n]"), Some(20), "a string ends at its line");
    }

    #[test]
    fn stops_when_the_cursors_block_closes() {
        // The suffix closes the function: a closing brace from the model is a second one, cut before it.
        let suffix = "\n    more();\n}\n";
        let r = StopRules::new(suffix, 8, false);
        assert!(!r.should_stop("x += 1;\n    if x > 2 {\n        y();\n    }\n"));
        assert!(r.should_stop("x += 1;\n}"));
        assert_eq!(finalize("x += 1;\n}\n\nfn next() {", suffix, &r).as_deref(), Some("x += 1;"));
        // At the end of the file nothing closes the block: the model's closing line is the suggestion's end.
        let r = StopRules::new("", 8, false);
        assert!(!r.should_stop("    x\n}"), "the closing line is not over yet");
        assert!(r.should_stop("    x\n};\n"));
        assert_eq!(finalize("    x\n};\nfn other() {}\n", "", &r).as_deref(), Some("    x\n};"));
        // A bracket in a string does not end anything.
        let r = StopRules::new("\n}\n", 8, false);
        assert!(!r.should_stop("println!(\"}\");\n"));
        // The suffix closes the function, not the parenthesis the model closes: the line runs to its end.
        let r = StopRules::new("\n    more();\n}\n", 8, false);
        assert!(!r.should_stop("rate) = self.rate() {"));
        assert!(r.should_stop("rate) = self.rate() {\n"));
        assert_eq!(
            finalize("rate) = self.rate() {\n    x", "\n    more();\n}\n", &r).as_deref(),
            Some("rate) = self.rate() {")
        );
        // Mid-line: the call's closing parenthesis is already there.
        let r = StopRules::new(")\n", 8, true);
        assert_eq!(finalize("a, b)", ")\n", &r).as_deref(), Some("a, b"));
    }
}
