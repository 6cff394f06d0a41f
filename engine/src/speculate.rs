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
    Off,
    /// Drafts from n-grams of the prompt, the generation so far and the previous suggestion.
    #[default]
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

/// Draft up to `max` tokens to follow `history` (the sequence so far, ending with the token just emitted):
/// the longest of the last 3, 2, 1 tokens that occurs earlier, first in `previous` (the document's last
/// suggestion: a regenerated suggestion mostly repeats it), then in `history` itself, latest first.
pub(crate) fn draft(history: &[Token], previous: &[Token], max: usize) -> Vec<Token> {
    if max == 0 {
        return Vec::new();
    }
    for n in (1..=NGRAM_MAX.min(history.len())).rev() {
        let key = &history[history.len() - n..];
        if let Some(d) = follow(previous, key, max).or_else(|| follow(history, key, max)) {
            return d.to_vec();
        }
    }
    Vec::new()
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
    pub drafted: usize,
    pub accepted: usize,
    /// Generation decodes (one batch each).
    pub decodes: usize,
}

impl Speculator {
    /// `draft_max` 0 decodes one token at a time. With a sampler (`greedy` false) nothing is drafted: a
    /// sampled token cannot be checked against one pass's logits.
    pub(crate) fn new(previous: Vec<Token>, draft_max: usize, greedy: bool) -> Self {
        let draft_max = if greedy { draft_max } else { 0 };
        Self { previous, draft_max, greedy, ..Default::default() }
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
            let picks = v.decode(&batch, pos, self.greedy)?;
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
        batch.extend(draft(&history, &self.previous, self.draft_max.min(room)));
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
