//! Phone numbers: international (`+49 30 1234567`, `+49 (0)30 123-45-67`) and national (`030 1234567`,
//! `(030) 12 34 56`, `030/1234567`). A national number must start with 0, which keeps ordinary numbers,
//! versions and amounts out. Stand-ins keep the separators and put zeros before a counter
//! (`+00 00 0000001`): no real number starts with three zeros, so a later pass knows them.
use regex::Regex;
use std::ops::Range;
use std::sync::LazyLock;

static CANDIDATE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?:\+|\(0|\b0)[0-9][0-9 ()/.\-]{4,24}[0-9]").unwrap());
static DECIMAL_OR_ADDRESS: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^0\.[0-9]+$|^[0-9]+(?:\.[0-9]+){2,}$").unwrap());

fn shape_ok(s: &str) -> bool {
    let d = super::digits(s).len();
    (7..=15).contains(&d)
        && !["..", "//", "--", "((", "))", "  "].iter().any(|p| s.contains(p))
        && s.matches('(').count() == s.matches(')').count()
        && !DECIMAL_OR_ADDRESS.is_match(s)
}

pub fn is_standin(s: &str) -> bool {
    let d = super::digits(s);
    if s.starts_with('+') {
        d.starts_with("00")
    } else {
        d.starts_with("000")
    }
}

fn candidates(text: &str) -> impl Iterator<Item = Range<usize>> + '_ {
    CANDIDATE.find_iter(text).filter_map(move |m| {
        let glued = text[..m.start()]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_alphanumeric() || c == '+' || c == '.' || c == '-');
        if glued {
            return None;
        }
        // The greedy match may run into what follows (`030 1234567 (mobile)`): take the longest piece
        // that ends on a digit and has a phone number's shape.
        let s = m.as_str();
        s.char_indices()
            .rev()
            .filter(|(_, c)| c.is_ascii_digit())
            .map(|(i, _)| m.start()..m.start() + i + 1)
            .find(|r| shape_ok(&text[r.clone()]) && super::bounded(text, r))
    })
}

pub fn find(text: &str) -> Vec<Range<usize>> {
    candidates(text).filter(|r| !is_standin(&text[r.clone()])).collect()
}

pub fn standins(text: &str) -> Vec<Range<usize>> {
    candidates(text).filter(|r| is_standin(&text[r.clone()])).collect()
}

/// Whether the whole of `v` is one phone number.
pub fn is_phone(v: &str) -> bool {
    find(v).first().is_some_and(|r| r.start == 0 && r.end == v.len())
}

/// The `n`-th stand-in in the shape of `v`.
pub fn standin(v: &str, n: u64) -> String {
    let count = super::digits(v).len();
    let n = n.to_string();
    let pad = if count >= n.len() + 3 { n } else { String::new() };
    let mut fill = std::iter::repeat_n('0', count - pad.len()).chain(pad.chars());
    v.chars().map(|c| if c.is_ascii_digit() { fill.next().unwrap_or('0') } else { c }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(t: &str) -> Vec<&str> {
        find(t).into_iter().map(|r| &t[r]).collect()
    }

    #[test]
    fn formats_and_near_misses() {
        let t =
            "Tel. +49 30 1234567, Büro 030/98765-43, mobil (0171) 234 56 78 oder +49 (0)30 123-45-67; 0221 4711 0815.";
        assert_eq!(
            found(t),
            ["+49 30 1234567", "030/98765-43", "(0171) 234 56 78", "+49 (0)30 123-45-67", "0221 4711 0815"]
        );
        for miss in [
            "version 1.2.3",
            "amount 1234567.89",
            "0.123456789",
            "x = 1234567",
            "id 4711",
            "10.0.0.1",
            "v0.25.0",
            "+00 00 0000001",
            "000 0000002",
        ] {
            assert!(found(miss).is_empty(), "{miss}: {:?}", found(miss));
        }
    }

    #[test]
    fn stand_ins_keep_the_shape_and_are_known_again() {
        let s = standin("+49 (0)30 123-45-67", 7);
        assert_eq!(s, "+00 (0)00 000-00-07");
        assert!(is_standin(&s) && find(&s).is_empty());
        assert_eq!(standin("030 1234567", 12), "000 0000012");
    }
}
