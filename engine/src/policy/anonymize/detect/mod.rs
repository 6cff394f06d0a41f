//! Detectors for the text pass ([`super::pass`]): each finds one kind of personal data or secret in any
//! text and says where it is; the pass decides what replaces it. A detector also knows the stand-ins it
//! causes (`is_standin`), so a second pass over anonymized text leaves them alone.
pub mod card;
pub mod date;
pub mod email;
pub mod iban;
pub mod known;
pub mod literal;
pub mod phone;
pub mod secret;

use std::ops::Range;

/// Whether the match at `r` stands on its own: no letter or digit glued to either end of it.
pub(crate) fn bounded(text: &str, r: &Range<usize>) -> bool {
    let glued = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
    let first_word = text[r.clone()].chars().next().is_some_and(char::is_alphanumeric);
    let last_word = text[r.clone()].chars().next_back().is_some_and(char::is_alphanumeric);
    let glued_before = first_word && glued(text[..r.start].chars().next_back());
    let glued_after = last_word && glued(text[r.end..].chars().next());
    !glued_before && !glued_after
}

pub(crate) fn digits(s: &str) -> String {
    s.chars().filter(char::is_ascii_digit).collect()
}
