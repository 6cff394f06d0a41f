//! IBANs, compact or grouped in fours, accepted only when the ISO 7064 mod-97 check holds, so a random
//! run of letters and digits is not one. Stand-ins use the country code `XX` (no country has it) with
//! valid check digits.
use regex::Regex;
use std::ops::Range;
use std::sync::LazyLock;

static CANDIDATE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b").unwrap());

/// ISO 7064 mod 97-10 over the rearranged IBAN.
pub fn checksum_ok(compact: &str) -> bool {
    if compact.len() < 15
        || compact.len() > 34
        || !compact.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
    {
        return false;
    }
    let (head, tail) = compact.split_at(4);
    let mut rem: u32 = 0;
    for c in tail.chars().chain(head.chars()) {
        let n = c.to_digit(36).unwrap_or(0);
        rem = if n >= 10 { (rem * 100 + n) % 97 } else { (rem * 10 + n) % 97 };
    }
    rem == 1
}

pub fn is_standin(s: &str) -> bool {
    s.starts_with("XX")
}

/// The longest prefix of a candidate (whole groups) that is a valid IBAN.
fn valid_prefix(s: &str) -> Option<usize> {
    let mut ends: Vec<usize> = s.match_indices(' ').map(|(i, _)| i).collect();
    ends.push(s.len());
    if !s.contains(' ') {
        // Compact: every length from the longest down.
        ends = (15..=s.len()).rev().collect();
    } else {
        ends.reverse();
    }
    ends.into_iter().find(|&e| checksum_ok(&s[..e].replace(' ', "")))
}

fn candidates(text: &str) -> Vec<(Range<usize>, bool)> {
    CANDIDATE
        .find_iter(text)
        .filter_map(|m| {
            let s = m.as_str();
            valid_prefix(s).map(|e| (m.start()..m.start() + e, is_standin(s)))
        })
        .collect()
}

pub fn find(text: &str) -> Vec<Range<usize>> {
    candidates(text).into_iter().filter(|(_, standin)| !standin).map(|(r, _)| r).collect()
}

pub fn standins(text: &str) -> Vec<Range<usize>> {
    candidates(text).into_iter().filter(|(_, standin)| *standin).map(|(r, _)| r).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(t: &str) -> Vec<&str> {
        find(t).into_iter().map(|r| &t[r]).collect()
    }

    #[test]
    fn valid_ibans_and_near_misses() {
        let t = "Konto DE89370400440532013000 bzw. DE89 3704 0044 0532 0130 00, GB82 WEST 1234 5698 7654 32.";
        assert_eq!(found(t), ["DE89370400440532013000", "DE89 3704 0044 0532 0130 00", "GB82 WEST 1234 5698 7654 32"]);
        for miss in [
            "DE88370400440532013000",
            "DE89 3704 0044 0532 0130 01",
            "AB12CDEFGHIJKLMNOP",
            "customer_iban",
            "XX82370400440532013000",
        ] {
            assert!(found(miss).is_empty(), "{miss}");
        }
    }
}
