//! Dates: ISO `yyyy-mm-dd` (with an optional time), `dd.mm.yyyy` and `dd/mm/yyyy`, checked for a month
//! and day that exist. Version strings (`1.2.3`) and amounts have no four-digit year and stay. Stand-ins
//! are well-formed dates in the years 0001-0099, which no real date a person has falls in, so a later pass
//! knows them and every real date is replaced.
use regex::Regex;
use std::ops::Range;
use std::sync::LazyLock;

static ISO: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b([0-9]{4})-([0-9]{2})-([0-9]{2})(?:[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]+)?)?(?:Z|[+-][0-9]{2}:?[0-9]{2})?)?").unwrap()
});
static DMY: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b([0-9]{1,2})([./])([0-9]{1,2})([./])([0-9]{4})\b").unwrap());

fn real(y: &str, m: u32, d: u32) -> bool {
    let y: u32 = y.parse().unwrap_or(0);
    (1..=12).contains(&m) && (1..=31).contains(&d) && (y >= 1000 || (1..=99).contains(&y))
}

fn candidates(text: &str) -> Vec<(Range<usize>, String)> {
    let mut out = Vec::new();
    for c in ISO.captures_iter(text) {
        let m = c.get(0).unwrap();
        let after = text[m.end()..].chars().next();
        if real(&c[1], c[2].parse().unwrap_or(0), c[3].parse().unwrap_or(0))
            && !after.is_some_and(|c| c.is_ascii_digit() || c == '-')
        {
            out.push((m.range(), c[1].to_string()));
        }
    }
    for c in DMY.captures_iter(text) {
        let m = c.get(0).unwrap();
        let (a, b): (u32, u32) = (c[1].parse().unwrap_or(0), c[3].parse().unwrap_or(0));
        let before = text[..m.start()].chars().next_back();
        let ok = if &c[2] == "/" { real(&c[5], a, b) || real(&c[5], b, a) } else { real(&c[5], b, a) };
        if c[2] == c[4] && ok && !before.is_some_and(|c| c == '.' || c == '/') {
            out.push((m.range(), c[5].to_string()));
        }
    }
    out.sort_by_key(|(r, _)| r.start);
    out
}

pub fn is_standin_year(y: &str) -> bool {
    y.len() == 4 && y.starts_with("00") && y != "0000"
}

pub fn find(text: &str) -> Vec<Range<usize>> {
    candidates(text).into_iter().filter(|(_, y)| !is_standin_year(y)).map(|(r, _)| r).collect()
}

pub fn standins(text: &str) -> Vec<Range<usize>> {
    candidates(text).into_iter().filter(|(_, y)| is_standin_year(y)).map(|(r, _)| r).collect()
}

/// The `n`-th stand-in date (1-based): day `n` counted from 0001-01-01, in 0001-0099 (no leap days).
pub fn nth_day(n: u64) -> (u64, u64, u64) {
    const DAYS: [u64; 12] = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    let mut k = (n.max(1) - 1) % (99 * 365);
    let year = 1 + k / 365;
    k %= 365;
    let mut month = 0;
    while k >= DAYS[month] {
        k -= DAYS[month];
        month += 1;
    }
    (year, month as u64 + 1, k + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(t: &str) -> Vec<&str> {
        find(t).into_iter().map(|r| &t[r]).collect()
    }

    #[test]
    fn formats_and_near_misses() {
        assert_eq!(
            found("born 1985-03-12, seit 15.03.2024 bzw. 03/15/2024; at 2024-03-15T10:22:33Z."),
            ["1985-03-12", "15.03.2024", "03/15/2024", "2024-03-15T10:22:33Z"]
        );
        for miss in [
            "version 1.2.3",
            "v2024.1.5",
            "1.2.3.4",
            "2024-13-01",
            "32.01.2024",
            "12345-67-89",
            "0001-01-05",
            "05.01.0042",
            "0000-01-05",
            "rate 1.5.2024x",
        ] {
            assert!(found(miss).is_empty(), "{miss}: {:?}", found(miss));
        }
        // Dates in the old stand-in range are real birth dates; they are found like any other.
        assert_eq!(found("born 1900-01-05 or 05.01.1909"), ["1900-01-05", "05.01.1909"]);
        assert_eq!(nth_day(1), (1, 1, 1));
        assert_eq!(nth_day(60), (1, 3, 1));
        assert_eq!(nth_day(366), (2, 1, 1));
        assert_eq!(nth_day(99 * 365), (99, 12, 31));
        assert_eq!(nth_day(99 * 365 + 1), (1, 1, 1));
    }
}
