//! Choosing the text windows around the cursor that go into the prompt.
//!
//! The prefix window starts at an *anchor line* that stays put while the user types, so consecutive prompts
//! share their beginning and the KV cache can keep it. A window that slid with every keystroke would change
//! the first token of the prompt and invalidate everything. The anchor only moves when the prefix outgrows
//! the budget, and then it jumps far enough (to 3/4 of the budget) that it stays put for a while again.

/// Lines before the cursor that the server hands the engine at most: the window below picks its anchor
/// inside them.
pub const LINES_BEFORE: u32 = 600;
/// The first of those lines is rounded down to a multiple of this, so it stays put while the user types
/// (and moves at most once every this many lines).
pub const LINES_BEFORE_STEP: u32 = 200;

/// The first line of the text handed to the engine for a cursor on `cursor_line`.
pub fn first_line(cursor_line: u32) -> u32 {
    cursor_line.saturating_sub(LINES_BEFORE) / LINES_BEFORE_STEP * LINES_BEFORE_STEP
}

/// Byte offset in `before` where the prefix window starts, and that line's absolute number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrefixWindow {
    pub start_byte: usize,
    pub anchor_line: u32,
}

/// `before`: document text from line `first_line` up to the cursor. `prev_anchor`: the anchor this document
/// used last time. `count`: token count of a piece of text.
pub fn choose_prefix(
    before: &str,
    first_line: u32,
    prev_anchor: Option<u32>,
    budget: usize,
    count: &dyn Fn(&str) -> usize,
) -> PrefixWindow {
    let line_starts = line_starts(before);
    let last_line = first_line + line_starts.len() as u32 - 1;
    if let Some(a) = prev_anchor {
        if a >= first_line && a <= last_line {
            let start = line_starts[(a - first_line) as usize];
            if count(&before[start..]) <= budget {
                return PrefixWindow { start_byte: start, anchor_line: a };
            }
        }
    }
    // Walk back line by line until 3/4 of the budget is used; per-line counts slightly overestimate the
    // joined text, which errs on the safe side.
    let target = budget * 3 / 4;
    let mut used = 0usize;
    let mut chosen = line_starts.len() - 1;
    for i in (0..line_starts.len()).rev() {
        let end = line_starts.get(i + 1).copied().unwrap_or(before.len());
        let n = count(&before[line_starts[i]..end]);
        if used + n > target && i != line_starts.len() - 1 {
            break;
        }
        used += n;
        chosen = i;
    }
    PrefixWindow { start_byte: line_starts[chosen], anchor_line: first_line + chosen as u32 }
}

/// The suffix window: the rest of the cursor's line always, then whole lines while they fit the budget.
/// Ending on a line boundary keeps it identical while the user types on the cursor line.
pub fn choose_suffix(after: &str, budget: usize, count: &dyn Fn(&str) -> usize) -> usize {
    let mut end = after.find('\n').map(|i| i + 1).unwrap_or(after.len());
    let mut used = count(&after[..end]);
    while end < after.len() {
        let next = after[end..].find('\n').map(|i| end + i + 1).unwrap_or(after.len());
        let n = count(&after[end..next]);
        if used + n > budget {
            break;
        }
        used += n;
        end = next;
    }
    end
}

/// Where the cursor's line starts in `before` (the text up to the cursor): what [`crate::fim::FimLayout::Infill`]
/// moves behind the middle token.
pub fn cursor_line_start(before: &str) -> usize {
    before.rfind('\n').map_or(0, |i| i + 1)
}

/// Lines the infill layout's middle may span (counting the cursor's) before it starts again at the cursor's
/// line.
pub const INFILL_MIDDLE_LINES: usize = 8;
/// Bytes the infill layout's middle may hold before it starts again at the cursor's line.
pub const INFILL_MIDDLE_BYTES: usize = 1024;

/// Where the infill layout's middle starts in `text` (the prefix window up to the cursor). `head`: the text
/// before the middle last time. The middle keeps its start while that text is unchanged and the cursor is
/// at most a few lines past it, so pressing Enter and typing on the next lines only appends after the middle
/// token, as typing on one line does (a middle that starts a few lines back is what FIM training cuts at
/// random anyway). Otherwise it starts at the cursor's line.
pub fn infill_cut(text: &str, head: Option<&str>) -> usize {
    let line = cursor_line_start(text);
    let Some(head) = head.filter(|h| h.len() <= line && text.starts_with(h)) else { return line };
    let middle = &text[head.len()..];
    if middle.len() <= INFILL_MIDDLE_BYTES && middle.matches('\n').count() < INFILL_MIDDLE_LINES {
        head.len()
    } else {
        line
    }
}

fn line_starts(s: &str) -> Vec<usize> {
    std::iter::once(0).chain(s.match_indices('\n').map(|(i, _)| i + 1)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    // One token per whitespace-separated word, a stand-in for a tokenizer.
    fn words(s: &str) -> usize {
        s.split_whitespace().count()
    }

    fn doc(lines: usize) -> String {
        (0..lines).map(|i| format!("a{i} b c d\n")).collect()
    }

    #[test]
    fn first_line_steps_and_stays_put_between_steps() {
        assert_eq!(first_line(0), 0);
        assert_eq!(first_line(LINES_BEFORE + LINES_BEFORE_STEP - 1), 0);
        assert_eq!(first_line(LINES_BEFORE + LINES_BEFORE_STEP), LINES_BEFORE_STEP);
        for line in [0, 150, 799, 800, 1234, 100_000] {
            let f = first_line(line);
            assert!(f <= line && line - f < LINES_BEFORE + LINES_BEFORE_STEP, "{line} -> {f}");
            assert!(
                line < LINES_BEFORE || line - f >= LINES_BEFORE,
                "at least {LINES_BEFORE} lines of context: {line} -> {f}"
            );
            assert_eq!(f % LINES_BEFORE_STEP, 0);
        }
    }

    #[test]
    fn anchor_is_stable_while_typing() {
        let text = doc(100);
        let w1 = choose_prefix(&text, 0, None, 100, &words);
        // 3/4 of 100 tokens at 4 tokens a line -> 18 lines kept (the last, empty line counts 0).
        assert_eq!(w1.anchor_line, 100 - 18);
        let typed = format!("{text}x y");
        let w2 = choose_prefix(&typed, 0, Some(w1.anchor_line), 100, &words);
        assert_eq!(w2, w1, "typing must not move the anchor");
    }

    #[test]
    fn anchor_jumps_when_budget_exceeded() {
        let text = doc(100);
        let w = choose_prefix(&text, 0, Some(10), 100, &words);
        assert!(w.anchor_line > 10);
        assert!(words(&text[w.start_byte..]) <= 100);
    }

    #[test]
    fn anchor_outside_window_is_ignored() {
        let text = doc(10);
        let w = choose_prefix(&text, 50, Some(3), 1000, &words);
        assert_eq!(w.anchor_line, 50);
        assert_eq!(w.start_byte, 0);
    }

    #[test]
    fn infill_middle_keeps_its_start_over_a_few_new_lines() {
        let head = "fn main() {\n";
        // no earlier head, or one that no longer matches: the cursor's line
        assert_eq!(infill_cut("fn main() {\n    let x = 1;\n    ", None), 27);
        assert_eq!(infill_cut("fn mian() {\n    let x = 1;\n    ", Some(head)), 27);
        // Enter and the next lines typed: the middle still starts after the head
        assert_eq!(infill_cut("fn main() {\n    let x = 1;\n    ", Some(head)), head.len());
        assert_eq!(infill_cut("fn main() {\n    le", Some(head)), head.len());
        // the cursor moved back into the head (backspace over the line break): the cursor's line
        assert_eq!(infill_cut("fn main() {", Some(head)), 0);
        // an empty head (the window's first line) is a head too
        assert_eq!(infill_cut("a\nb", Some("")), 0);
        // too many lines or bytes past the head: the cursor's line again
        let lines = format!("{head}{}x", "y\n".repeat(INFILL_MIDDLE_LINES - 1));
        assert_eq!(infill_cut(&lines, Some(head)), head.len());
        let more = format!("{head}{}x", "y\n".repeat(INFILL_MIDDLE_LINES));
        assert_eq!(infill_cut(&more, Some(head)), cursor_line_start(&more));
        let long = format!("{head}{}\nx", "y".repeat(INFILL_MIDDLE_BYTES));
        assert_eq!(infill_cut(&long, Some(head)), cursor_line_start(&long));
    }

    #[test]
    fn suffix_keeps_rest_of_line_and_whole_lines() {
        let after = "x y)\nl1 a\nl2 b\nl3 c\n";
        assert_eq!(&after[..choose_suffix(after, 5, &words)], "x y)\nl1 a\n");
        assert_eq!(&after[..choose_suffix(after, 0, &words)], "x y)\n");
        assert_eq!(choose_suffix("", 10, &words), 0);
    }
}
