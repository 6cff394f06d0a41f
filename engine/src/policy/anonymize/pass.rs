//! The one pass that any text bound for a Tier-2 payload goes through: free text, code, file paths and the
//! schema preview alike. Detectors ([`super::detect`]) find personal data and secrets; each value gets a
//! stand-in from the payload's one [`Synth`], shared with the schema, so the same value reads the same
//! everywhere. In code, string literals are masked on top; identifiers, keywords and layout stay.
//!
//! Stand-ins are recognisable (`@example.invalid`, IBAN country `XX`, phones and cards led by zeros, dates
//! in 0001-0099, `<redacted>`, placeholder words) or are the stand-ins this payload issued for its data
//! values: a second pass leaves all of them alone, so anonymizing twice changes nothing.
use super::detect::{self, known::Known, literal::Masker};
use super::synth::{Synth, REDACTED};
use crate::syntax::Lang;
use serde::Serialize;
use std::collections::{BTreeMap, HashSet};
use std::ops::Range;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Detector {
    Secret,
    Email,
    Iban,
    Card,
    Date,
    Phone,
    DataValue,
    StringLiteral,
}

impl Detector {
    pub fn name(self) -> &'static str {
        match self {
            Detector::Secret => "secret",
            Detector::Email => "e-mail",
            Detector::Iban => "IBAN",
            Detector::Card => "card number",
            Detector::Date => "date",
            Detector::Phone => "phone",
            Detector::DataValue => "data-file value",
            Detector::StringLiteral => "string literal",
        }
    }
}

/// What a text is, for the pass: prose, or code in a language (`None`: unknown, quote-delimited literals).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextKind {
    Prose,
    Code(Option<Lang>),
}

impl TextKind {
    /// From an editor's language id and a file path: markdown and plain text are prose, a language with a
    /// grammar is parsed, anything else is code with quote-delimited literals.
    pub fn of(language_id: &str, path: &str) -> TextKind {
        if let Some(l) = Lang::from_id_or_path(language_id, path) {
            return TextKind::Code(Some(l));
        }
        let lower = path.to_ascii_lowercase();
        let prose = ["markdown", "plaintext", "text", "restructuredtext", "asciidoc"].contains(&language_id)
            || [".md", ".markdown", ".txt", ".rst", ".adoc"].iter().any(|e| lower.ends_with(e));
        if prose {
            TextKind::Prose
        } else {
            TextKind::Code(None)
        }
    }
}

pub struct Pass {
    synth: Synth,
    known: Known,
    /// Stand-ins the schema issued (other than raw values): kept wherever they appear.
    issued: Vec<String>,
    keep: HashSet<String>,
    masker: Masker,
    counts: BTreeMap<Detector, usize>,
}

impl Default for Pass {
    fn default() -> Self {
        Pass::new(Synth::default())
    }
}

fn is_key(s: &str) -> bool {
    s.len() <= 40
        && s.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

fn overlaps(taken: &[(Range<usize>, Option<Detector>)], r: &Range<usize>) -> bool {
    taken.iter().any(|(t, _)| t.start < r.end && r.start < t.end)
}

impl Pass {
    /// A pass that continues `synth`'s mapping: its raw values are the folder's known data.
    pub fn new(synth: Synth) -> Self {
        let structure = synth.structure_names().clone();
        let known = Known::new(synth.raw_values(), &structure);
        let mut issued: Vec<String> = synth
            .issued()
            .filter(|s| s.chars().count() >= 3 && *s != REDACTED && !synth.is_raw(s))
            .cloned()
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        issued.sort_by_key(|s| (std::cmp::Reverse(s.len()), s.clone()));
        Pass { synth, known, issued, keep: structure, masker: Masker::default(), counts: BTreeMap::new() }
    }

    /// Replacements made so far, per detector.
    pub fn counts(&self) -> &BTreeMap<Detector, usize> {
        &self.counts
    }

    /// Spans that are exactly stand-ins this payload issued, or redactions.
    fn issued_spans(&self, text: &str) -> Vec<Range<usize>> {
        let mut out: Vec<Range<usize>> = text.match_indices(REDACTED).map(|(i, s)| i..i + s.len()).collect();
        for s in &self.issued {
            out.extend(
                text.match_indices(s.as_str()).map(|(i, s)| i..i + s.len()).filter(|r| detect::bounded(text, r)),
            );
        }
        out
    }

    fn stand_in(&mut self, det: Detector, raw: &str) -> String {
        match det {
            Detector::Secret => REDACTED.to_string(),
            Detector::Email => self.synth.value("email", raw),
            Detector::Phone => self.synth.value("phone", raw),
            Detector::Iban => self.synth.value("iban", raw),
            Detector::Card => self.synth.value("card", raw),
            Detector::Date => self.synth.value("date", raw),
            Detector::DataValue | Detector::StringLiteral => self.synth.value("", raw),
        }
    }

    /// `text` with every value found replaced.
    pub fn scrub(&mut self, text: &str, kind: TextKind) -> String {
        let mut taken: Vec<(Range<usize>, Option<Detector>)> = Vec::new();
        // In priority order; a detector's own stand-ins are claimed (and kept) just before its finds, so a
        // stand-in of a weaker kind cannot shadow a real value of a stronger one (zeros inside a card).
        let found: [(Option<Detector>, Vec<Range<usize>>); 13] = [
            (None, self.issued_spans(text)),
            (Some(Detector::Secret), detect::secret::find(text)),
            (None, detect::email::standins(text)),
            (Some(Detector::Email), detect::email::find(text)),
            (None, detect::iban::standins(text)),
            (Some(Detector::Iban), detect::iban::find(text)),
            (None, detect::card::standins(text)),
            (Some(Detector::Card), detect::card::find(text)),
            (None, detect::date::standins(text)),
            (Some(Detector::Date), detect::date::find(text)),
            (None, detect::phone::standins(text)),
            (Some(Detector::Phone), detect::phone::find(text)),
            (Some(Detector::DataValue), self.known.find(text)),
        ];
        for (det, ranges) in found {
            for r in ranges {
                if !r.is_empty() && !overlaps(&taken, &r) {
                    taken.push((r, det));
                }
            }
        }
        taken.sort_by_key(|(r, _)| r.start);
        let literals = match kind {
            TextKind::Prose => vec![],
            TextKind::Code(lang) => detect::literal::find(text, lang),
        };
        let mut out = String::with_capacity(text.len());
        let mut at = 0;
        for (r, det) in taken {
            self.plain(text, at..r.start, &literals, &mut out);
            match det {
                None => out.push_str(&text[r.clone()]),
                Some(d) => {
                    let s = self.stand_in(d, &text[r.clone()]);
                    *self.counts.entry(d).or_default() += 1;
                    out.push_str(&s);
                }
            }
            at = r.end;
        }
        self.plain(text, at..text.len(), &literals, &mut out);
        out
    }

    /// Text no detector claimed: copied, except the parts inside string literals, which are masked.
    fn plain(&mut self, text: &str, span: Range<usize>, literals: &[Range<usize>], out: &mut String) {
        let mut at = span.start;
        for l in literals.iter().filter(|l| l.start < span.end && span.start < l.end) {
            // A literal that is one lowercase name (`"email"`, `"customer_id"`) is a key: structure the
            // design needs. Values among such words come from the data files and are replaced above.
            if is_key(&text[l.clone()]) {
                continue;
            }
            let (a, b) = (l.start.max(span.start), l.end.min(span.end));
            out.push_str(&text[at..a]);
            let masked = self.masker.mask(&text[a..b], &self.keep);
            if masked != text[a..b] {
                *self.counts.entry(Detector::StringLiteral).or_default() += 1;
            }
            out.push_str(&masked);
            at = b;
        }
        out.push_str(&text[at..span.end]);
    }
}

#[cfg(test)]
#[path = "pass_tests.rs"]
mod tests;
