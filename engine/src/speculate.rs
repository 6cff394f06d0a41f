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
/// pass over it, output layer and the read of its logits included: on a 2-core CPU with Gemma 3's
/// 262k-token vocabulary about half a lone decode each; on a GPU the first one costs most (llama.cpp's CUDA
/// backend replays a captured graph only for one-token decodes) and the rest next to nothing. So the time of
/// a decode is learnt per number of rows, and a match verifies the number of drafts that gives the most
/// expected tokens per millisecond (the i-th draft is kept with chance p^i, p learnt per kind of match).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tuning {
    /// Learn from this session's decodes; off: draft up to the maximum whenever there is a match.
    pub adaptive: bool,
    /// Moving averages (ms) of a decode of `n` rows, every one with logits, at index `n` (0 unused).
    times: [Option<f64>; ROWS_MAX + 1],
    /// Per kind of match, decayed: drafted tokens accepted, and drafts cut short by a rejection.
    hits: [f64; CLASSES],
    misses: [f64; CLASSES],
    /// Matches not drafted since drafting was last tried anyway (so the estimates can recover).
    idle: u32,
}

/// Rows a decode's time is learnt for: a token and up to 64 drafts (`draftMax` is at most 64).
const ROWS_MAX: usize = 65;
/// Matches not drafted before a full draft is tried anyway: rare, since where drafting does not pay each
/// try costs a long decode (on a GPU about three lone ones).
const EXPLORE_EVERY: u32 = 64;
/// What each further row is guessed to cost, as a share of a lone decode, before it is measured.
const GUESS_EXTRA: f64 = 0.3;

impl Default for Tuning {
    fn default() -> Self {
        Self { adaptive: true, times: [None; ROWS_MAX + 1], hits: [2.0; CLASSES], misses: [1.0; CLASSES], idle: 0 }
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
        let mut t = Self::default();
        for n in 1..=ROWS_MAX {
            t.times[n] = Some(1.0 + cost * (n - 1) as f64);
        }
        t
    }

    /// The time of a decode of `n` rows: measured, else between the nearest measured sizes, else further
    /// rows at the slope of the last measured span (a guessed share of a lone decode beyond the first).
    pub(crate) fn time(&self, n: usize) -> f64 {
        let n = n.clamp(1, ROWS_MAX);
        if let Some(t) = self.times[n] {
            return t;
        }
        let below = (1..n).rev().find_map(|i| self.times[i].map(|t| (i, t)));
        let above = (n + 1..=ROWS_MAX).find_map(|i| self.times[i].map(|t| (i, t)));
        let one = self.times[1].unwrap_or(1.0);
        match (below, above) {
            (Some((a, ta)), Some((b, tb))) => ta + (tb - ta) * (n - a) as f64 / (b - a) as f64,
            (Some((a, ta)), None) => {
                let slope = (1..a)
                    .rev()
                    .find_map(|i| self.times[i].map(|t| (ta - t) / (a - i) as f64))
                    .unwrap_or(GUESS_EXTRA * one);
                ta + slope.max(0.0) * (n - a) as f64
            }
            (None, Some((b, tb))) => one + (tb - one) * (n - 1) as f64 / (b - 1).max(1) as f64,
            (None, None) => one + GUESS_EXTRA * one * (n - 1) as f64,
        }
    }

    fn chance(&self, class: usize) -> f64 {
        self.hits[class] / (self.hits[class] + self.misses[class])
    }

    /// How many of a `class` match's drafts to verify, at most `max`: the most expected tokens (the token,
    /// then each draft while all before it held) per unit of decode time.
    fn worth(&mut self, class: usize, max: usize) -> usize {
        if !self.adaptive {
            return max;
        }
        let p = self.chance(class);
        let (mut best, mut best_rate) = (0, 1.0 / self.time(1));
        let (mut expected, mut all) = (1.0, 1.0);
        for k in 1..=max.min(ROWS_MAX - 1) {
            all *= p;
            expected += all;
            let rate = expected / self.time(k + 1);
            if rate > best_rate * (1.0 + 1e-9) {
                (best, best_rate) = (k, rate);
            }
        }
        if best == 0 && max > 0 {
            // Try a full draft now and then: a kind of match judged bad once would never be tried again,
            // and the time of a long batch is learnt only by decoding one.
            self.idle += 1;
            if self.idle >= EXPLORE_EVERY {
                self.idle = 0;
                best = max;
            }
        }
        best
    }

    /// A decode of `n` rows, every one with logits, took `ms` until the last logits were read.
    pub(crate) fn observe_time(&mut self, n: usize, ms: f64) {
        if (1..=ROWS_MAX).contains(&n) {
            self.times[n] = Some(self.times[n].map_or(ms, |o| 0.8 * o + 0.2 * ms));
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
