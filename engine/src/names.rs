//! Completing a name the workspace defines. When the word being typed is the start of names the symbol
//! index knows (`quarantine_s` -> `quarantine_suspicious_entries`, defined in a file the user visited), a
//! small model often sees the definition in its context block and still spells its own name. Here the
//! first generated tokens may follow those names: the model chooses among them by its own logits, and
//! only when its best candidate is within a margin of its best token overall, so a new name the user is
//! inventing is left alone. The margin grows with the typed word: `reconcile_q` is far likelier the start
//! of the workspace's `reconcile_quarterly_balances` than `rec` is of anything. Once a name is complete,
//! generation is free again.
//!
//! Tokens are the names' rests tokenized on their own: any tokenization spells the same text, and the
//! logits of a few candidate ids per step cost nothing next to the decode.
use crate::model_info::Token;

/// How far (in logits, natural log units) the best candidate's token may sit below the model's best token
/// for the names to be followed: a base, a step per typed character, and a cap (e^-6 is 0.25% of the
/// best token's probability; e^-16 a name the model all but rules out).
const MARGIN_BASE: f32 = 4.0;
const MARGIN_PER_CHAR: f32 = 1.0;
const MARGIN_MAX: f32 = 16.0;

/// The margin for a typed word of `chars` characters.
pub fn margin(chars: usize) -> f32 {
    (MARGIN_BASE + MARGIN_PER_CHAR * chars as f32).min(MARGIN_MAX)
}

/// Workspace names that continue the word being typed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Names {
    pub typed: String,
    /// What each name adds to `typed`.
    pub rests: Vec<String>,
}
/// Names offered per request, at most (an index lookup by prefix gives them in name order).
pub const MAX_NAMES: usize = 16;

/// The candidates still in the running, each as the tokens of the rest of its name.
#[derive(Debug, Clone)]
pub struct NameChoice {
    rests: Vec<Vec<Token>>,
    margin: f32,
    alive: Vec<bool>,
    /// Tokens of the chosen name given so far.
    at: usize,
    state: State,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Undecided,
    Following,
    Done,
}

impl NameChoice {
    /// `None` without candidates, or when one of them is already complete (the user may be done typing
    /// the name: nothing to steer).
    pub fn new(rests: Vec<Vec<Token>>, margin: f32) -> Option<Self> {
        if rests.is_empty() || rests.iter().any(Vec::is_empty) {
            return None;
        }
        let alive = vec![true; rests.len()];
        Some(Self { rests, margin, alive, at: 0, state: State::Undecided })
    }

    pub fn active(&self) -> bool {
        self.state != State::Done
    }

    /// The token to generate next given this step's logits, or `None` to pick freely. Call once per
    /// generated token, in order, with the token actually taken passed to [`Self::took`].
    pub fn pick(&mut self, logits: &[f32]) -> Option<Token> {
        if self.state == State::Done {
            return None;
        }
        let logit = |t: Token| logits.get(t as usize).copied().unwrap_or(f32::NEG_INFINITY);
        let best = self
            .rests
            .iter()
            .zip(&self.alive)
            .filter(|(r, a)| **a && self.at < r.len())
            .map(|(r, _)| r[self.at])
            .max_by(|a, b| logit(*a).total_cmp(&logit(*b)))?;
        if self.state == State::Undecided {
            let top = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            if logit(best) < top - self.margin {
                self.state = State::Done;
                return None;
            }
            self.state = State::Following;
        }
        Some(best)
    }

    /// The token generated: candidates that disagree drop out; a finished name ends the steering.
    pub fn took(&mut self, tok: Token) {
        if self.state == State::Done {
            return;
        }
        let at = self.at;
        for (r, a) in self.rests.iter().zip(self.alive.iter_mut()) {
            *a &= r.get(at) == Some(&tok);
        }
        self.at += 1;
        let finished = self.rests.iter().zip(&self.alive).any(|(r, a)| *a && r.len() == self.at);
        if finished || !self.alive.iter().any(|a| *a) {
            self.state = State::Done;
        }
    }
}

/// Keywords after which a word names something new (Rust, Python, TypeScript/JavaScript, Go): no
/// existing name is meant there.
const DEFINING: &[&str] = &[
    "let",
    "mut",
    "fn",
    "struct",
    "enum",
    "trait",
    "type",
    "const",
    "static",
    "mod",
    "union",
    "def",
    "class",
    "var",
    "function",
    "func",
    "interface",
    "namespace",
    "package",
    "impl",
];

/// Whether the word being typed after `head` (the text before it) defines a new name: `let x`, `fn x`,
/// `def x`, or a parameter list's name in `fn f(x`. A new name is the user's to invent.
pub fn defines_new_name(head: &str) -> bool {
    let head = head.trim_end_matches([' ', '\t']);
    let last = head.rsplit(|c: char| !(c.is_alphanumeric() || c == '_')).next().unwrap_or("");
    if head.len() > last.len() && !head[..head.len() - last.len()].ends_with([' ', '\t', '\n', '(', '{']) {
        return false;
    }
    DEFINING.contains(&last)
}

/// The rests of `names` after the `typed` word, for names that continue it; none when the word is itself
/// one of the names (the user may be done typing it).
pub fn rests<'a>(typed: &str, names: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let names: Vec<&str> = names.into_iter().filter(|n| n.starts_with(typed)).collect();
    if names.contains(&typed) {
        return vec![];
    }
    let mut out: Vec<String> = names.iter().map(|n| n[typed.len()..].to_string()).collect();
    out.sort();
    out.dedup();
    out.truncate(MAX_NAMES);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logits(n: usize, set: &[(Token, f32)]) -> Vec<f32> {
        let mut v = vec![0.0; n];
        for &(t, x) in set {
            v[t as usize] = x;
        }
        v
    }

    #[test]
    fn follows_the_name_the_model_prefers_to_its_end_then_lets_go() {
        // Two names: [5, 6, 7] and [5, 8]; the model's own favourite is token 1.
        let mut c = NameChoice::new(vec![vec![5, 6, 7], vec![5, 8]], 8.0).unwrap();
        assert_eq!(c.pick(&logits(10, &[(1, 9.0), (5, 3.0)])), Some(5), "within the margin of 9");
        c.took(5);
        assert_eq!(c.pick(&logits(10, &[(1, 9.0), (6, 1.0), (8, 2.0)])), Some(8), "the likelier of the two");
        c.took(8);
        assert!(!c.active(), "the name is complete");
        assert_eq!(c.pick(&logits(10, &[(1, 9.0)])), None);
    }

    #[test]
    fn a_name_far_below_the_models_choice_is_left_alone() {
        let mut c = NameChoice::new(vec![vec![5, 6]], 8.0).unwrap();
        assert_eq!(c.pick(&logits(10, &[(1, 12.0), (5, 3.0)])), None);
        assert!(!c.active());
        // Once decided against, later steps stay free even if the name's token looks good.
        assert_eq!(c.pick(&logits(10, &[(5, 30.0)])), None);
    }

    #[test]
    fn a_complete_word_or_no_names_means_no_steering() {
        assert!(NameChoice::new(vec![], 8.0).is_none());
        assert!(NameChoice::new(vec![vec![5], vec![]], 8.0).is_none());
        assert!(margin(3) < margin(11) && margin(40) == MARGIN_MAX);
    }

    #[test]
    fn a_word_after_a_defining_keyword_is_a_new_name() {
        for head in ["    let ", "let mut ", "pub fn ", "def ", "class ", "const ", "\tfunc ", "type "] {
            assert!(defines_new_name(head), "{head:?}");
        }
        for head in ["    let x = ", "foo(", "self.", "x.let ", "    ", "", "return "] {
            assert!(!defines_new_name(head), "{head:?}");
        }
    }

    #[test]
    fn rests_continue_the_typed_word_only() {
        let names = ["quarantine_suspicious_entries", "quarantine_sum", "quarry", "reconcile"];
        assert_eq!(rests("quarantine_s", names), ["um", "uspicious_entries"]);
        assert_eq!(rests("qua", names), ["rantine_sum", "rantine_suspicious_entries", "rry"]);
        assert!(rests("zz", names).is_empty());
        assert!(rests("quarry", names).is_empty(), "a complete name: nothing to steer");
    }
}
