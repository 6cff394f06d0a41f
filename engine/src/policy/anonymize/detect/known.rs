//! Values that occur in the folder's data files (INSERT rows, CSV records, JSON/YAML values, `.env`):
//! known personal data, replaced wherever they occur, in any case, longest first, on word boundaries.
//! Values too short or too common to identify anyone are skipped, and so are table, column and key names.
use regex::{Regex, RegexBuilder};
use std::collections::HashSet;
use std::ops::Range;

/// Words a data file holds as flags or enumerations; replacing them would gut the requirement's prose.
const COMMON: &[&str] = &[
    "yes",
    "no",
    "true",
    "false",
    "null",
    "none",
    "nil",
    "n/a",
    "undefined",
    "active",
    "inactive",
    "enabled",
    "disabled",
    "open",
    "closed",
    "paid",
    "unpaid",
    "pending",
    "new",
    "draft",
    "done",
    "ok",
    "error",
    "default",
    "admin",
    "user",
    "users",
    "test",
    "todo",
    "eur",
    "usd",
    "gbp",
    "chf",
    "male",
    "female",
    "other",
    "unknown",
    "high",
    "low",
    "medium",
    "and",
    "the",
    "for",
    "with",
    "not",
    "all",
    "any",
];

/// Most values held at once: the pattern is one alternation.
const MAX_VALUES: usize = 20_000;

/// Whether a data value can identify anyone or anything.
pub fn identifying(v: &str, structure: &HashSet<String>) -> bool {
    let v = v.trim();
    let lower = v.to_lowercase();
    if v.chars().count() < 3
        || v.chars().count() > 500
        || COMMON.contains(&lower.as_str())
        || structure.contains(&lower)
    {
        return false;
    }
    if v.chars().all(|c| c.is_ascii_digit() || "+-.,".contains(c)) {
        return super::digits(v).len() >= 3;
    }
    v.chars().any(char::is_alphanumeric) && v != super::super::synth::REDACTED
}

pub struct Known {
    re: Option<Regex>,
}

impl Known {
    pub fn new<'a>(values: impl IntoIterator<Item = &'a String>, structure: &HashSet<String>) -> Self {
        let mut vals: Vec<&str> = values.into_iter().map(|v| v.trim()).filter(|v| identifying(v, structure)).collect();
        vals.sort_by_key(|v| std::cmp::Reverse(v.chars().count()));
        vals.dedup_by_key(|v| v.to_lowercase());
        vals.truncate(MAX_VALUES);
        if vals.is_empty() {
            return Known { re: None };
        }
        let alternation = vals.iter().map(|v| regex::escape(v)).collect::<Vec<_>>().join("|");
        let re = RegexBuilder::new(&format!("(?:{alternation})"))
            .case_insensitive(true)
            .size_limit(256 << 20)
            .dfa_size_limit(64 << 20)
            .build();
        if let Err(e) = &re {
            tracing::warn!("data values too many for one pattern ({e}); the other detectors still run");
        }
        Known { re: re.ok() }
    }

    pub fn find(&self, text: &str) -> Vec<Range<usize>> {
        let Some(re) = &self.re else { return vec![] };
        let mut out = Vec::new();
        let mut at = 0;
        while let Some(m) = re.find_at(text, at) {
            if super::bounded(text, &m.range()) {
                out.push(m.range());
                at = m.end();
            } else {
                // A shorter value may still start here or just after: move one character on.
                at = m.start() + text[m.start()..].chars().next().map_or(1, char::len_utf8);
            }
            if at >= text.len() {
                break;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_first_any_case_on_word_boundaries() {
        let names: HashSet<String> = ["customers", "full_name", "status"].iter().map(|s| s.to_string()).collect();
        let vals: Vec<String> = ["Erika", "Erika Mustermann", "4711", "42", "active", "customers", "Köln", "Anna"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let k = Known::new(&vals, &names);
        let t = "ERIKA MUSTERMANN from köln (id 4711, 47110, x4711) joined customers; Erika; Annabelle; 42 active";
        let found: Vec<&str> = k.find(t).into_iter().map(|r| &t[r]).collect();
        assert_eq!(found, ["ERIKA MUSTERMANN", "köln", "4711", "Erika"]);
    }
}
