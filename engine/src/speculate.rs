//! Prompt-lookup speculative decoding (issue 18), lossless under greedy sampling.
//!
//! Generating one token per llama_decode is capped by reading the weights once per token. Code repeats
//! itself, so after each emitted token the drafter looks the last few tokens up in what came before (the
//! prompt: the file and the context block; the tokens generated so far; the document's previous suggestion)
//! and proposes the tokens that followed there. The emitted token and the drafts go into one batch with
//! logits on every position; a draft is kept only while it equals the model's own greedy pick before it, so
//! the tokens that come out are exactly those plain greedy decoding gives, one by one (the caller still
//! applies its stop rules to each), and the cells of rejected drafts are removed before anything else runs.
use crate::model_info::Token;
use serde::{Deserialize, Serialize};

/// Setting `speculative`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Speculative {
    /// One token per decode.
    #[default]
    Off,
    /// Drafts from n-grams of the prompt, the generation so far and the previous suggestion, as many as
    /// drafting pays for on this machine (learnt while generating: see [`Tuning`]).
    Auto,
    /// The same drafts, always up to `draftMax`.
    Lookup,
}

/// Longest n-gram looked up; shorter ones are tried when it is not found.
pub(crate) const NGRAM_MAX: usize = 3;

/// Index of the largest logit, the first one on ties (as llama.cpp's greedy sampler). Lane-wise maxima over
/// fixed chunks let the compiler vectorise the scan; a NaN logit is never chosen. The maximum is then found
/// block by block: a plain `position` over 262k logits is a scalar loop that cost ten times the scan.
pub(crate) fn argmax(logits: &[f32]) -> usize {
    let max = max_logit(logits);
    // Branch-free within a block, so it vectorises; the first block that holds the maximum is searched.
    const B: usize = 512;
    for (k, b) in logits.chunks(B).enumerate() {
        if b.iter().fold(0u32, |a, &v| a | (v == max) as u32) != 0 {
            return k * B + b.iter().position(|&v| v == max).unwrap_or(0);
        }
    }
    0
}

/// The largest logit, NaN aside (negative infinity for none).
fn max_logit(logits: &[f32]) -> f32 {
    const L: usize = 16;
    let mut lanes = [f32::NEG_INFINITY; L];
    let chunks = logits.chunks_exact(L);
    let rest = chunks.remainder();
    for c in chunks {
        for i in 0..L {
            lanes[i] = if c[i] > lanes[i] { c[i] } else { lanes[i] };
        }
    }
    let mut max = lanes.iter().copied().fold(f32::NEG_INFINITY, |a, b| if b > a { b } else { a });
    for &v in rest {
        if v > max {
            max = v;
        }
    }
    max
}

/// Up to `max` tokens that followed the latest earlier occurrence of `key` in `hay` (an occurrence at the
/// very end has nothing after it and does not count).
fn follow<'a>(hay: &'a [Token], key: &[Token], max: usize) -> Option<&'a [Token]> {
    let n = key.len();
    if n == 0 || hay.len() <= n {
        return None;
    }
    let i = (0..hay.len() - n).rev().find(|&i| &hay[i..i + n] == key)?;
    Some(&hay[i + n..(i + n + max).min(hay.len())])
}

/// A draft and the kind of match it came from: `class` is 0..3 for the previous suggestion and 3..6 for
/// the history, plus the n-gram length less one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Draft {
    pub class: usize,
    pub tokens: Vec<Token>,
}

pub(crate) const CLASSES: usize = 2 * NGRAM_MAX;

/// Draft up to `max` tokens to follow `history` (the sequence so far, ending with the token just emitted):
/// the longest of the last 3, 2, 1 tokens that occurs earlier, first in `previous` (the document's last
/// suggestion: a regenerated suggestion mostly repeats it), then in `history` itself, latest first.
pub(crate) fn lookup(history: &[Token], previous: &[Token], max: usize) -> Option<Draft> {
    if max == 0 {
        return None;
    }
    for n in (1..=NGRAM_MAX.min(history.len())).rev() {
        let key = &history[history.len() - n..];
        if let Some(d) = follow(previous, key, max) {
            return Some(Draft { class: n - 1, tokens: d.to_vec() });
        }
        if let Some(d) = follow(history, key, max) {
            return Some(Draft { class: NGRAM_MAX + n - 1, tokens: d.to_vec() });
        }
    }
    None
}

#[cfg(test)]
fn draft(history: &[Token], previous: &[Token], max: usize) -> Vec<Token> {
    lookup(history, previous, max).map(|d| d.tokens).unwrap_or_default()
}

/// What drafting pays on this machine, learnt while generating. A verified position costs the model's
/// pass over it, output layer included: on a 2-core CPU with Gemma 3's 262k-token vocabulary about half a
/// lone decode, on a GPU next to nothing. The i-th draft of a match is worth verifying while the chance
/// that it and all before it are accepted (p^i, p learnt per kind of match) beats that cost.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tuning {
    /// Learn from this session's decodes; off: draft up to the maximum whenever there is a match.
    pub adaptive: bool,
    /// Moving averages (ms): a lone token's decode, and each further token in a batch.
    single_ms: Option<f64>,
    extra_ms: Option<f64>,
    /// Per kind of match, decayed: drafted tokens accepted, and drafts cut short by a rejection.
    hits: [f64; CLASSES],
    misses: [f64; CLASSES],
    /// Matches not drafted since drafting was last tried anyway (so the estimates can recover).
    idle: u32,
}

impl Default for Tuning {
    fn default() -> Self {
        Self { adaptive: true, single_ms: None, extra_ms: None, hits: [2.0; CLASSES], misses: [1.0; CLASSES], idle: 0 }
    }
}

impl Tuning {
    /// `adaptive`: learn what pays (setting "auto"); otherwise draft up to the maximum.
    pub(crate) fn new(adaptive: bool) -> Self {
        Self { adaptive, ..Default::default() }
    }

    /// A machine where each further batch position costs `cost` of a lone decode (tests).
    #[cfg(test)]
    pub(crate) fn with_cost(cost: f64) -> Self {
        Self { single_ms: Some(1.0), extra_ms: Some(cost), ..Default::default() }
    }

    /// One more batch position as a fraction of a lone decode; a middling guess until both are measured.
    fn cost(&self) -> f64 {
        match (self.single_ms, self.extra_ms) {
            (Some(s), Some(e)) if s > 0.0 => (e / s).clamp(0.0, 4.0),
            _ => 0.3,
        }
    }

    fn chance(&self, class: usize) -> f64 {
        self.hits[class] / (self.hits[class] + self.misses[class])
    }

    /// How many of a `class` match's drafts to verify, at most `max`.
    fn worth(&mut self, class: usize, max: usize) -> usize {
        if !self.adaptive {
            return max;
        }
        let (p, c) = (self.chance(class), self.cost());
        let (mut k, mut all) = (0, p);
        while k < max && all > c {
            k += 1;
            all *= p;
        }
        if k == 0 {
            // Try one draft now and then, or a kind of match judged bad once would never be tried again.
            self.idle += 1;
            if self.idle >= 16 {
                self.idle = 0;
                k = max.min(1);
            }
        }
        k
    }

    /// A decode of `n` tokens, every one with logits, took `ms` until the last logits were read.
    pub(crate) fn observe_time(&mut self, n: usize, ms: f64) {
        let avg = |old: Option<f64>, new: f64| Some(old.map_or(new, |o| 0.8 * o + 0.2 * new));
        if n == 1 {
            self.single_ms = avg(self.single_ms, ms);
        } else if let Some(s) = self.single_ms {
            self.extra_ms = avg(self.extra_ms, ((ms - s) / (n - 1) as f64).max(0.0));
        }
    }

    fn observe(&mut self, class: usize, drafted: usize, accepted: usize) {
        self.hits[class] = 0.9 * self.hits[class] + accepted as f64;
        self.misses[class] = 0.9 * self.misses[class] + if accepted < drafted { 1.0 } else { 0.0 };
    }
}

/// How many drafts to keep: the longest prefix where each draft equals the model's pick before it. `picks[i]`
/// is the greedy token after batch position `i` (the emitted token, then the drafts).
#[cfg(test)]
pub(crate) fn accepted(drafts: &[Token], picks: &[Token]) -> usize {
    drafts.iter().zip(picks).take_while(|(d, p)| d == p).count()
}

/// Walk a verified batch token by token: `emit(i)` takes the greedy pick after batch position `i` (the
/// decoded token, then each draft) through the caller's stop rules, returning it, or `None` when the
/// generation stops there. A draft is kept while it equals the pick before it; the walk ends at the first
/// that does not, or when the generation stops. Returns how many drafts are kept: their cells hold tokens
/// the generation wants, the cells of the rest must be removed.
pub(crate) fn walk(drafts: &[Token], mut emit: impl FnMut(usize) -> Option<Token>) -> usize {
    let mut kept = 0;
    for i in 0..=drafts.len() {
        match emit(i) {
            Some(t) if drafts.get(i) == Some(&t) => kept += 1,
            _ => break,
        }
    }
    kept
}

/// Drafting for one generation in the shared batch. Each step the generation asks [`Speculator::propose`]
/// for drafts to decode after its token, walks the verified rows with [`walk`] and reports the outcome to
/// [`Speculator::settle`]. The accepted drafts' cells become the generation's; nothing is carried between
/// steps, so a generation left out of a step has no drafts in flight.
#[derive(Debug, Default)]
pub(crate) struct Speculator {
    /// The document's previous suggestion, a draft source.
    previous: Vec<Token>,
    draft_max: usize,
    /// The kind of match the drafts in flight came from.
    class: Option<usize>,
    pub drafted: usize,
    pub accepted: usize,
    /// Generation decodes (one batch each: the generated token and its drafts).
    pub decodes: usize,
}

impl Speculator {
    /// `draft_max` 0 decodes one token at a time.
    pub(crate) fn new(previous: Vec<Token>, draft_max: usize) -> Self {
        Self { previous, draft_max, ..Default::default() }
    }

    /// Drafts to follow `history` (the sequence's tokens, ending with the token about to be decoded), at
    /// most `room`. A sampled or steered generation passes `greedy` false and gets none: its next token
    /// cannot be checked against one pass's greedy picks.
    pub(crate) fn propose(&mut self, history: &[Token], room: usize, greedy: bool, tuning: &mut Tuning) -> Vec<Token> {
        self.class = None;
        if !greedy {
            return Vec::new();
        }
        let Some(d) = lookup(history, &self.previous, self.draft_max.min(room)) else { return Vec::new() };
        let k = tuning.worth(d.class, d.tokens.len());
        if k > 0 {
            self.class = Some(d.class);
        }
        d.tokens[..k].to_vec()
    }

    /// A generation decode verified `drafted` drafts and kept `kept` of them.
    pub(crate) fn settle(&mut self, drafted: usize, kept: usize, tuning: &mut Tuning) {
        self.decodes += 1;
        self.drafted += drafted;
        self.accepted += kept;
        if let Some(c) = self.class.take() {
            tuning.observe(c, drafted, kept);
        }
    }
}

#[cfg(test)]
#[path = "speculate_tests.rs"]
mod tests;
