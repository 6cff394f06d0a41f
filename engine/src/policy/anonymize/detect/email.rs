//! E-mail addresses. Stand-ins are `userN@example.invalid` (a domain that cannot exist, RFC 2606).
use regex::Regex;
use std::ops::Range;
use std::sync::LazyLock;

static EMAIL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"[A-Za-z0-9][A-Za-z0-9._%+-]*@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*\.[A-Za-z]{2,}").unwrap()
});

pub fn is_standin(s: &str) -> bool {
    s.to_ascii_lowercase().ends_with("@example.invalid")
}

pub fn find(text: &str) -> Vec<Range<usize>> {
    EMAIL
        .find_iter(text)
        .map(|m| m.range())
        .filter(|r| !is_standin(&text[r.clone()]) && super::bounded(text, r))
        .collect()
}

pub fn standins(text: &str) -> Vec<Range<usize>> {
    EMAIL.find_iter(text).map(|m| m.range()).filter(|r| is_standin(&text[r.clone()])).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(t: &str) -> Vec<&str> {
        find(t).into_iter().map(|r| &t[r]).collect()
    }

    #[test]
    fn addresses_and_near_misses() {
        assert_eq!(
            found("mail erika.mustermann@bank.de, or <Max+x@sub.firma-b.co.uk>."),
            ["erika.mustermann@bank.de", "Max+x@sub.firma-b.co.uk"]
        );
        for miss in ["customer_email", "user@localhost", "@decorator", "a @ b.de", "user1@example.invalid", "x@y.c"] {
            assert!(found(miss).is_empty(), "{miss}");
        }
    }
}
