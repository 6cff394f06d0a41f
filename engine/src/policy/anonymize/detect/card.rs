//! Payment card numbers: 13 to 19 digits, compact or in groups split by one kind of separator, passing
//! the Luhn check, first digit not 0. Stand-ins start with zeros and fail the Luhn check on purpose, so
//! they are never a card number and a later pass knows them.
use regex::Regex;
use std::ops::Range;
use std::sync::LazyLock;

static CANDIDATE: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\b[0-9](?:[ -]?[0-9]){12,}\b").unwrap());

pub fn luhn(digits: &str) -> bool {
    let mut sum = 0;
    for (i, c) in digits.chars().rev().enumerate() {
        let mut d = c.to_digit(10).unwrap_or(0);
        if i % 2 == 1 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    sum % 10 == 0
}

fn separators_ok(s: &str) -> bool {
    let seps: std::collections::HashSet<char> = s.chars().filter(|c| !c.is_ascii_digit()).collect();
    seps.len() <= 1
}

fn valid(s: &str) -> bool {
    let d = super::digits(s);
    !s.starts_with('0') && separators_ok(s) && (13..=19).contains(&d.len()) && luhn(&d)
}

/// A run of digit groups may hold a card number after other numbers (`v1.2.3 4111 1111 1111 1111`):
/// the longest stretch of whole groups that `ok` accepts is taken, from each group on.
fn stretches(text: &str, ok: impl Fn(&str) -> bool) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    for m in CANDIDATE.find_iter(text) {
        let s = m.as_str();
        let mut groups: Vec<Range<usize>> = Vec::new();
        let mut start = 0;
        for (i, c) in s.char_indices() {
            if !c.is_ascii_digit() {
                groups.push(start..i);
                start = i + 1;
            }
        }
        groups.push(start..s.len());
        let mut i = 0;
        while i < groups.len() {
            match (i + 1..=groups.len()).rev().find(|&j| ok(&s[groups[i].start..groups[j - 1].end])) {
                Some(j) => {
                    out.push(m.start() + groups[i].start..m.start() + groups[j - 1].end);
                    i = j;
                }
                None => i += 1,
            }
        }
    }
    out
}

pub fn find(text: &str) -> Vec<Range<usize>> {
    stretches(text, valid)
}

/// Stand-ins: card-length runs led by three zeros (no card number starts with 0).
pub fn standins(text: &str) -> Vec<Range<usize>> {
    stretches(text, |s| {
        let d = super::digits(s);
        separators_ok(s) && (13..=19).contains(&d.len()) && d.starts_with("000")
    })
}

/// Whether the whole of `v` is one card number.
pub fn is_card(v: &str) -> bool {
    find(v).first().is_some_and(|r| r.start == 0 && r.end == v.len())
}

/// A stand-in in the shape of `v`: zeros, then the counter `n` (advanced past any value that would pass
/// the Luhn check).
pub fn standin(v: &str, n: &mut u64) -> String {
    let count = super::digits(v).len();
    loop {
        let s = format!("{:0>count$}", *n);
        if !luhn(&s) && s.len() == count {
            let mut fill = s.chars();
            return v.chars().map(|c| if c.is_ascii_digit() { fill.next().unwrap_or('0') } else { c }).collect();
        }
        *n += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(t: &str) -> Vec<&str> {
        find(t).into_iter().map(|r| &t[r]).collect()
    }

    #[test]
    fn luhn_valid_numbers_and_near_misses() {
        assert_eq!(
            found("Visa 4111 1111 1111 1111, Amex 378282246310005, MC 5555-5555-5555-4444."),
            ["4111 1111 1111 1111", "378282246310005", "5555-5555-5555-4444"]
        );
        for miss in
            ["4111 1111 1111 1112", "1234567812345678", "4111 1111-1111 1111", "0000 0000 0000 0001", "12345678"]
        {
            assert!(found(miss).is_empty(), "{miss}");
        }
        let mut n = 1;
        let s = standin("4111 1111 1111 1111", &mut n);
        assert!(s.starts_with("0000 ") && !luhn(&super::super::digits(&s)) && found(&s).is_empty(), "{s}");
    }
}
