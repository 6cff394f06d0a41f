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
use std::collections::VecDeque;

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
/// fixed chunks let the compiler vectorise the scan; a NaN logit is never chosen.
pub(crate) fn argmax(logits: &[f32]) -> usize {
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
    logits.iter().position(|&v| v == max).unwrap_or(0)
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

    fn observe_time(&mut self, n: usize, ms: f64) {
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
pub(crate) fn accepted(drafts: &[Token], picks: &[Token]) -> usize {
    drafts.iter().zip(picks).take_while(|(d, p)| d == p).count()
}

/// What the per-token step needs from the model's sequence.
pub(crate) trait Verifier {
    type Error;
    /// Decode `tokens` at positions `pos..`, with logits on every one; the greedy pick after each when
    /// `picks` (empty otherwise: a sampler reads the logits of the last one).
    fn decode(&mut self, tokens: &[Token], pos: usize, picks: bool) -> Result<Vec<Token>, Self::Error>;
    /// Remove the sequence's cells from `pos` on.
    fn truncate(&mut self, pos: usize);
}

/// Drafting and verification for one generation. The caller's loop asks [`Speculator::known`] for the next
/// token (else samples it), applies its stop rules, then hands the token to [`Speculator::advance`], and
/// calls [`Speculator::finish`] whenever it stops.
#[derive(Debug, Default)]
pub(crate) struct Speculator {
    /// The document's previous suggestion, a draft source.
    previous: Vec<Token>,
    draft_max: usize,
    greedy: bool,
    /// Accepted drafts: their cells are decoded, past the caller's `held`, in this order.
    ahead: VecDeque<Token>,
    /// The model's greedy picks from the last verification, not yet emitted.
    next: VecDeque<Token>,
    /// The kind of match the drafts in flight came from.
    class: Option<usize>,
    /// Carried from one generation to the next by the caller.
    pub tuning: Tuning,
    pub drafted: usize,
    pub accepted: usize,
    /// Generation decodes (one batch each).
    pub decodes: usize,
}

impl Speculator {
    /// `draft_max` 0 decodes one token at a time. With a sampler (`greedy` false) nothing is drafted: a
    /// sampled token cannot be checked against one pass's logits.
    pub(crate) fn new(previous: Vec<Token>, draft_max: usize, greedy: bool, tuning: Tuning) -> Self {
        let draft_max = if greedy { draft_max } else { 0 };
        Self { previous, draft_max, greedy, tuning, ..Default::default() }
    }

    /// The next token of the greedy generation when the last batch already told it.
    pub(crate) fn known(&mut self) -> Option<Token> {
        self.next.pop_front()
    }

    /// Put the emitted `tok` into the sequence after `held` (the sequence's tokens; `tok` is pushed on
    /// success). An accepted draft already has its cell; otherwise one batch decodes `tok` and up to
    /// `room` drafts (the tokens that may still be emitted and decoded after it).
    pub(crate) fn advance<V: Verifier>(
        &mut self,
        v: &mut V,
        held: &mut Vec<Token>,
        tok: Token,
        room: usize,
    ) -> Result<(), V::Error> {
        let batch = self.batch(held, tok, room);
        if !batch.is_empty() {
            let pos = held.len();
            let t = std::time::Instant::now();
            let picks = v.decode(&batch, pos, self.greedy)?;
            self.tuning.observe_time(batch.len(), t.elapsed().as_secs_f64() * 1e3);
            if let Some(from) = self.settle(pos, &batch, &picks) {
                v.truncate(from);
            }
        }
        held.push(tok);
        Ok(())
    }

    /// The tokens to decode at position `held.len()` for the emitted `tok`: none when its cell exists
    /// already (an accepted draft), else `tok` and its drafts. For a step that batches several sequences.
    pub(crate) fn batch(&mut self, held: &[Token], tok: Token, room: usize) -> Vec<Token> {
        if let Some(a) = self.ahead.pop_front() {
            debug_assert_eq!(a, tok, "the known token is the accepted draft");
            return Vec::new();
        }
        let mut history = Vec::with_capacity(held.len() + 1);
        history.extend_from_slice(held);
        history.push(tok);
        let mut batch = vec![tok];
        self.class = None;
        if let Some(d) = lookup(&history, &self.previous, self.draft_max.min(room)) {
            let k = self.tuning.worth(d.class, d.tokens.len());
            if k > 0 {
                batch.extend_from_slice(&d.tokens[..k]);
                self.class = Some(d.class);
            }
        }
        batch
    }

    /// `batch` was decoded at `pos` with `picks` (the greedy token after each position; empty without
    /// drafts under a sampler). Returns where the rejected drafts' cells begin, when there are any.
    pub(crate) fn settle(&mut self, pos: usize, batch: &[Token], picks: &[Token]) -> Option<usize> {
        self.decodes += 1;
        let drafts = &batch[1..];
        self.drafted += drafts.len();
        if !self.greedy {
            return None;
        }
        let m = accepted(drafts, picks);
        self.accepted += m;
        if let Some(c) = self.class {
            self.tuning.observe(c, drafts.len(), m);
        }
        self.ahead.extend(&drafts[..m]);
        self.next.extend(&picks[..=m]);
        (m < drafts.len()).then_some(pos + 1 + m)
    }

    /// Generation stopped with `held` tokens in the sequence: remove the cells of drafts decoded past it.
    pub(crate) fn finish<V: Verifier>(&mut self, v: &mut V, held: usize) {
        if !self.ahead.is_empty() {
            v.truncate(held);
            self.ahead.clear();
        }
        self.next.clear();
    }
}

#[cfg(test)]
#[path = "speculate_tests.rs"]
mod tests;
