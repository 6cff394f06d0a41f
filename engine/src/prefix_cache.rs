//! The per-document KV prefix cache: which sequence of the llama.cpp context holds which document's prompt,
//! and how much of a new prompt can be kept.
//!
//! Pure bookkeeping over a [`KvOps`] trait, so the policy is unit-tested without a model. Every open document
//! is bound to one sequence (LRU when there are more documents than sequences). A request keeps the longest
//! common token prefix of its prompt with what the sequence holds and decodes only the tail. A document that
//! loses its sequence may leave a snapshot of its KV cells in host memory (bounded), restored when it comes
//! back if copying is cheaper than recomputing.
//!
//! Typing in the middle of a fill-in-the-middle prompt (prefix, then suffix, then the middle marker) changes
//! the prefix's end and so, by plain prefix matching, the whole suffix after it. Instead the suffix's cells
//! are parked in a scratch sequence, moved to their new positions, and spliced back after the typed tokens
//! are decoded: a keystroke re-processes the typed tokens and the last prompt token, not the suffix. The
//! parked cells were computed before the edit (the approximation llama-server's `--cache-reuse` makes for
//! chunks); a budget of such stale tokens per sequence bounds how far they drift before a full re-decode.
use crate::model_info::Token;
use lru::LruCache;
use std::hash::Hash;

pub trait KvOps {
    type Snapshot;
    /// Remove cells at positions `>= pos`. `false` if the backend cannot (then the sequence is cleared).
    fn truncate(&mut self, seq: u32, pos: usize) -> bool;
    fn clear(&mut self, seq: u32);
    /// Remove cells at positions `p0..p1`.
    fn remove_range(&mut self, seq: u32, p0: usize, p1: usize) -> bool;
    /// Move cells at positions `p0..p1` by `delta` positions (RoPE is re-applied by llama.cpp).
    fn shift(&mut self, seq: u32, p0: usize, p1: usize, delta: i64) -> bool;
    /// Copy a sequence's cells to host memory; returns the snapshot and its size in bytes.
    fn snapshot(&mut self, seq: u32) -> Option<(Self::Snapshot, usize)>;
    fn restore(&mut self, seq: u32, snap: &Self::Snapshot) -> bool;
    /// Estimated cost ratio: restoring `bytes` vs decoding `tokens`. `true` when restoring is cheaper.
    fn restore_is_cheaper(&self, bytes: usize, tokens: usize) -> bool;
    /// Move `seq`'s cells at `p0..p1` into the scratch sequence, `delta` positions further on. `false` if the
    /// backend cannot (nothing is parked then).
    fn park(&mut self, _seq: u32, _p0: usize, _p1: usize, _delta: i64) -> bool {
        false
    }
    /// Give the parked cells at `p0..p1` (their new positions) back to `seq` and empty the scratch sequence.
    fn unpark(&mut self, _seq: u32, _p0: usize, _p1: usize) -> bool {
        false
    }
    /// Empty the scratch sequence (after a failed splice).
    fn drop_parked(&mut self) {}
    /// Give `to` the cells `from` holds at `p0..p1` (`to` holds none there). In a unified KV cache this
    /// tags the cells with a second sequence: nothing is copied, and they count once. `false` if the backend
    /// cannot (then `to` holds nothing there).
    fn share(&mut self, _from: u32, _to: u32, _p0: usize, _p1: usize) -> bool {
        false
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CacheConfig {
    pub sequences: u32,
    pub enabled: bool,
    /// Host memory for snapshots of evicted documents, in bytes. 0 disables snapshots.
    pub host_budget: usize,
    /// Do not snapshot sequences shorter than this: recomputing them is cheap anyway.
    pub min_snapshot_tokens: usize,
    /// Reuse runs of at least this many cached tokens found later in the sequence by shifting them into
    /// place (as llama-server's `--cache-reuse`); 0 turns it off. The shifted cells were computed after
    /// slightly different text, an approximation llama.cpp's own server makes too.
    pub reuse_min_chunk: usize,
    /// Splice a prompt's unchanged tail (the FIM suffix) back after an edit before it, while the sequence has
    /// seen at most this many changed tokens since its tail was last decoded fresh; 0 turns it off.
    pub tail_max_stale: usize,
}

/// A tail shorter than this is cheaper to decode again than to splice.
const MIN_TAIL: usize = 8;
/// A moved run shorter than this is cheaper to decode again than to park and shift (the shift re-rotates
/// every cell of the run, and the search costs a pass over both prompts).
const MIN_RUN: usize = 64;
/// A changed context block may change more tokens than a keystroke before the file's text: the stale budget
/// for moving a run is this many times the tail's.
const RUN_STALE_FACTOR: usize = 8;
/// Run starts are found through n-grams of this many tokens.
const RUN_GRAM: usize = 4;
/// Take a prefix from another document's sequence when it gives at least this many tokens more than the
/// document's own cells: below that, decoding them is as cheap as the bookkeeping.
const MIN_SHARE: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan<K> {
    pub seq: u32,
    /// Prompt tokens already in the sequence; decode `prompt[keep..]` at positions `keep..`.
    pub keep: usize,
    pub restored: bool,
    pub evicted: Option<K>,
    /// Of `keep`, tokens that came from shifting later chunks into place.
    pub shifted: usize,
    /// Prompt positions `t0..t1` whose cells are parked (see [`KvOps::park`]): decode `prompt[keep..t0]`,
    /// unpark, then decode `prompt[t1..]`.
    pub tail: Option<(usize, usize)>,
    /// Of `keep`, tokens whose cells another document's sequence holds too (see [`KvOps::share`]).
    pub shared: usize,
}

struct Saved<S> {
    snap: S,
    tokens: Vec<Token>,
    prompt_len: usize,
    stale: usize,
    bytes: usize,
}

pub struct PrefixCache<K: Hash + Eq + Clone, S> {
    cfg: CacheConfig,
    slots: Vec<Vec<Token>>,
    /// Per sequence: how many of its tokens were the last prompt (the rest were generated), and how many
    /// changed tokens its spliced tail has not seen.
    prompt_len: Vec<usize>,
    stale: Vec<usize>,
    /// Per sequence: the prompt its FIM tail was last decoded fresh with. Staleness is measured against it,
    /// so an edit that is undone (a prefetch that appended a suggestion, then the keystroke that came
    /// instead) costs nothing, where a running sum would count it twice and spend the budget.
    basis: Vec<Option<Vec<Token>>>,
    owner: Vec<Option<K>>,
    /// Sequences a running (or suspended) generation holds: never evicted nor handed to another document.
    pinned: Vec<bool>,
    /// Per sequence: its cells at positions below this may be tagged with another sequence too (a shared
    /// prefix). llama.cpp keeps one position per cell, so moving such a cell would move it for the other
    /// sequence as well: no splice or shift may touch them.
    shared: Vec<usize>,
    bound: LruCache<K, u32>,
    saved: LruCache<K, Saved<S>>,
    saved_bytes: usize,
    /// Whether two documents may share cells: only a session's own (one user's window never finds out,
    /// by a faster answer, what another's documents hold).
    may_share: fn(&K, &K) -> bool,
}

pub fn common_prefix(a: &[Token], b: &[Token]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

impl<K: Hash + Eq + Clone, S> PrefixCache<K, S> {
    pub fn new(cfg: CacheConfig) -> Self {
        let n = cfg.sequences.max(1) as usize;
        Self {
            cfg,
            slots: vec![Vec::new(); n],
            prompt_len: vec![0; n],
            stale: vec![0; n],
            basis: vec![None; n],
            owner: vec![None; n],
            pinned: vec![false; n],
            shared: vec![0; n],
            bound: LruCache::unbounded(),
            saved: LruCache::unbounded(),
            saved_bytes: 0,
            may_share: |_, _| true,
        }
    }

    /// Documents share cells only where `f` says they may (see [`Self::prepare`]).
    pub fn with_sharing(mut self, f: fn(&K, &K) -> bool) -> Self {
        self.may_share = f;
        self
    }

    pub fn config(&self) -> CacheConfig {
        self.cfg
    }

    pub fn set_enabled(&mut self, on: bool) {
        self.cfg.enabled = on;
    }

    /// Tokens the sequence of `doc` holds now (0 when unbound).
    pub fn held(&self, doc: &K) -> usize {
        self.bound.peek(doc).map(|&s| self.slots[s as usize].len()).unwrap_or(0)
    }

    pub fn seq_of(&self, doc: &K) -> Option<u32> {
        self.bound.peek(doc).copied()
    }

    pub fn saved_bytes(&self) -> usize {
        self.saved_bytes
    }

    pub fn is_saved(&self, doc: &K) -> bool {
        self.saved.contains(doc)
    }

    /// Keep `seq` bound to its document until [`Self::unpin`]: a suspended generation resumes from its cells.
    pub fn pin(&mut self, seq: u32) {
        self.pinned[seq as usize] = true;
    }

    pub fn unpin(&mut self, seq: u32) {
        self.pinned[seq as usize] = false;
    }

    pub fn is_pinned(&self, seq: u32) -> bool {
        self.pinned[seq as usize]
    }

    /// Whether [`Self::prepare`] can give `doc` a sequence now (its own, a free one, or an unpinned one).
    pub fn can_bind(&self, doc: &K) -> bool {
        self.bound.contains(doc) || self.owner.iter().any(Option::is_none) || self.pinned.iter().any(|p| !p)
    }

    /// Panics when every sequence is pinned by other documents: check [`Self::can_bind`] first.
    pub fn prepare<O: KvOps<Snapshot = S>>(&mut self, doc: &K, prompt: &[Token], kv: &mut O) -> Plan<K> {
        assert!(!prompt.is_empty(), "a prompt has at least one token");
        let mut evicted = None;
        let mut restored = false;
        let seq = match self.bound.get(doc) {
            Some(&s) => s,
            None => {
                let s = match self.owner.iter().position(Option::is_none) {
                    Some(free) => free as u32,
                    None => {
                        // The least recently used document whose sequence no generation holds.
                        let old = self
                            .bound
                            .iter()
                            .rev()
                            .find(|(_, &s)| !self.pinned[s as usize])
                            .map(|(k, _)| k.clone())
                            .expect("a sequence no generation holds (see can_bind)");
                        let s = self.bound.pop(&old).expect("just found");
                        self.stash(&old, s, kv);
                        evicted = Some(old);
                        s
                    }
                };
                kv.clear(s);
                self.slots[s as usize].clear();
                self.prompt_len[s as usize] = 0;
                self.stale[s as usize] = 0;
                self.basis[s as usize] = None;
                self.shared[s as usize] = 0;
                self.owner[s as usize] = Some(doc.clone());
                self.bound.put(doc.clone(), s);
                if let Some(saved) = self.saved.pop(doc) {
                    self.saved_bytes -= saved.bytes;
                    let gain = common_prefix(&saved.tokens, prompt);
                    if self.cfg.enabled
                        && gain > 0
                        && kv.restore_is_cheaper(saved.bytes, gain)
                        && kv.restore(s, &saved.snap)
                    {
                        self.slots[s as usize] = saved.tokens;
                        self.prompt_len[s as usize] = saved.prompt_len;
                        self.stale[s as usize] = saved.stale;
                        restored = true;
                    }
                }
                s
            }
        };
        let si = seq as usize;
        let old_prompt_len = std::mem::replace(&mut self.prompt_len[si], prompt.len());
        let min_pos = self.shared[si];
        let slot = &mut self.slots[si];
        let mut keep = if self.cfg.enabled { common_prefix(slot, prompt) } else { 0 };
        let mut tail = None;
        if self.cfg.enabled && self.cfg.tail_max_stale > 0 {
            let max_run_stale = self.cfg.tail_max_stale * RUN_STALE_FACTOR;
            let edit = Edit { slot, old_prompt_len, prompt, keep, stale: self.stale[si], min_pos, seq };
            let splice = splice_tail(&edit, self.basis[si].as_deref(), self.cfg.tail_max_stale, kv)
                .or_else(|| splice_run(&edit, max_run_stale, kv));
            if let Some(t) = splice {
                self.stale[si] = t.stale;
                slot.truncate(keep);
                tail = Some((t.t0, t.t1));
            }
        }
        // Where a prompt parts from the cells (LOKAL_LOG=lokal_engine::prefix_cache=debug): a block or window
        // that changed while the user typed shows up as a small `keep`.
        let at = |t: &[Token]| t[keep.min(t.len())..(keep + 4).min(t.len())].to_vec();
        tracing::debug!(seq, keep, old = slot.len(), new = prompt.len(), ?tail, old_at = ?at(slot), new_at = ?at(prompt), "plan");
        let mut shifted = 0;
        if tail.is_none() {
            // Everything after `keep` is decoded fresh below.
            self.stale[si] = 0;
            self.basis[si] = Some(prompt.to_vec());
            if self.cfg.enabled && self.cfg.reuse_min_chunk > 0 {
                (keep, shifted) = reuse_chunks(slot, prompt, keep, self.cfg.reuse_min_chunk, min_pos, seq, kv);
            }
            // The last prompt token must be decoded again to get logits for the first new token.
            keep = keep.min(prompt.len() - 1);
            if keep < slot.len() {
                if !kv.truncate(seq, keep) {
                    kv.clear(seq);
                    keep = 0;
                }
                slot.truncate(keep);
            }
            shifted = shifted.min(keep);
        }
        // The sequence now holds `prompt[..keep]` and nothing after it (a parked tail waits in scratch).
        self.shared[si] = self.shared[si].min(keep);
        let shared = self.share_prefix(si, prompt, keep, tail.map_or(prompt.len() - 1, |t| t.0), kv);
        keep += shared;
        Plan { seq, keep, restored, evicted, shifted, tail, shared }
    }

    /// Another document's sequence may hold more of this prompt than this one does (the same context
    /// block, the same file header): tag its cells `keep..` with `seq` too instead of decoding them again.
    /// Returns how many tokens that gave, at most `end - keep`.
    fn share_prefix<O: KvOps<Snapshot = S>>(
        &mut self,
        si: usize,
        prompt: &[Token],
        keep: usize,
        end: usize,
        kv: &mut O,
    ) -> usize {
        if !self.cfg.enabled || end <= keep {
            return 0;
        }
        let me = self.owner[si].as_ref().expect("a bound sequence has its document");
        let Some((j, n)) = (0..self.slots.len())
            .filter(|&j| j != si && self.owner[j].as_ref().is_some_and(|o| (self.may_share)(me, o)))
            .map(|j| (j, common_prefix(&self.slots[j], prompt).min(end)))
            .max_by_key(|&(j, n)| (n, std::cmp::Reverse(j)))
        else {
            return 0;
        };
        if n < keep + MIN_SHARE || !kv.share(j as u32, si as u32, keep, n) {
            return 0;
        }
        self.slots[si].extend_from_slice(&prompt[keep..n]);
        // The cells were computed by the other sequence; whatever it spliced in counts here too.
        self.stale[si] = self.stale[si].max(self.stale[j]);
        self.basis[si] = None;
        self.shared[si] = n;
        self.shared[j] = self.shared[j].max(n);
        n - keep
    }

    /// Record what the sequence holds after decoding (prompt plus the generated tokens that were decoded).
    pub fn commit(&mut self, seq: u32, tokens: Vec<Token>) {
        self.slots[seq as usize] = tokens;
    }

    /// The document is closed: free its sequence and snapshot.
    pub fn release<O: KvOps<Snapshot = S>>(&mut self, doc: &K, kv: &mut O) {
        if let Some(s) = self.bound.pop(doc) {
            kv.clear(s);
            self.slots[s as usize].clear();
            self.prompt_len[s as usize] = 0;
            self.basis[s as usize] = None;
            self.shared[s as usize] = 0;
            self.owner[s as usize] = None;
        }
        if let Some(saved) = self.saved.pop(doc) {
            self.saved_bytes -= saved.bytes;
        }
    }

    fn stash<O: KvOps<Snapshot = S>>(&mut self, doc: &K, seq: u32, kv: &mut O) {
        let tokens = std::mem::take(&mut self.slots[seq as usize]);
        let (prompt_len, stale) = (self.prompt_len[seq as usize], self.stale[seq as usize]);
        self.owner[seq as usize] = None;
        if !self.cfg.enabled || self.cfg.host_budget == 0 || tokens.len() < self.cfg.min_snapshot_tokens {
            return;
        }
        let Some((snap, bytes)) = kv.snapshot(seq) else { return };
        if bytes > self.cfg.host_budget {
            return;
        }
        while self.saved_bytes + bytes > self.cfg.host_budget {
            match self.saved.pop_lru() {
                Some((_, old)) => self.saved_bytes -= old.bytes,
                None => break,
            }
        }
        self.saved_bytes += bytes;
        self.saved.put(doc.clone(), Saved { snap, tokens, prompt_len, stale, bytes });
    }
}

struct Splice {
    t0: usize,
    t1: usize,
    /// The spliced cells' staleness afterwards.
    stale: usize,
}

/// What a plan knows about the edit: the sequence's tokens and the new prompt, `keep` of them in common.
struct Edit<'a> {
    slot: &'a [Token],
    old_prompt_len: usize,
    prompt: &'a [Token],
    keep: usize,
    /// Changed tokens the sequence's spliced cells have not seen.
    stale: usize,
    /// Cells below this may be shared with another sequence: never moved.
    min_pos: usize,
    seq: u32,
}

/// The edit sits at `keep`; if the old and new prompts (last token aside, it is decoded for logits anyway)
/// end in the same run of at least [`MIN_TAIL`] tokens, drop the old edited span and everything after the
/// old prompt, and park that run at its new places. `None` leaves the cells as they were.
fn splice_tail<O: KvOps>(e: &Edit, basis: Option<&[Token]>, max_stale: usize, kv: &mut O) -> Option<Splice> {
    let (slot, prompt, keep) = (e.slot, e.prompt, e.keep);
    // The old prompt's last token (the FIM middle marker) is not part of the tail. A job stopped before it
    // decoded that token (a superseded request, a prefetch stopped by a keystroke) leaves the sequence
    // holding the whole tail but not the marker: the tail then ends at the sequence's end.
    let old_end = e.old_prompt_len.checked_sub(1)?.min(slot.len());
    let new_end = prompt.len() - 1;
    if keep >= old_end || keep > new_end {
        return None;
    }
    let (old, new) = (&slot[keep..old_end], &prompt[keep..new_end]);
    let m = old.iter().rev().zip(new.iter().rev()).take_while(|(a, b)| a == b).count();
    let changed = (old.len() - m) + (new.len() - m);
    let (o0, n0) = (old_end - m, new_end - m);
    if m < MIN_TAIL || changed == 0 || o0 < e.min_pos {
        return None;
    }
    let stale = basis.and_then(|b| drift_from(b, prompt, n0, new_end)).unwrap_or(e.stale + changed);
    if stale > max_stale {
        return None;
    }
    park_run(kv, e.seq, keep, o0..old_end, n0).then_some(Splice { t0: n0, t1: new_end, stale })
}

/// How many tokens before the tail `prompt[n0..end]` differ from what they were when the tail was decoded
/// fresh with `basis` (tokens that left plus tokens that came, after their common start); `None` when the
/// basis does not end in that tail (the suffix changed since).
fn drift_from(basis: &[Token], prompt: &[Token], n0: usize, end: usize) -> Option<usize> {
    let tail = &prompt[n0..end];
    let b_end = basis.len().checked_sub(1)?;
    let b0 = b_end.checked_sub(tail.len())?;
    if &basis[b0..b_end] != tail {
        return None;
    }
    let d = common_prefix(&basis[..b0], &prompt[..n0]);
    Some((b0 - d) + (n0 - d))
}

/// Drop the sequence's cells past `run` and between `keep` and it, and park the run `n0 - run.start` positions
/// on. Afterwards the sequence holds `prompt[..keep]` and nothing past it; `false` (nothing parked) if the
/// backend could not.
fn park_run<O: KvOps>(kv: &mut O, seq: u32, keep: usize, run: std::ops::Range<usize>, n0: usize) -> bool {
    let ok = kv.truncate(seq, run.end)
        && kv.remove_range(seq, keep, run.start)
        && kv.park(seq, run.start, run.end, n0 as i64 - run.start as i64);
    if !ok {
        kv.drop_parked();
        return false;
    }
    kv.truncate(seq, keep);
    true
}

/// A context block that changed at the head of the prompt moves the file's text after it, usually further
/// on (a definition was added). Find the longest run after `keep` that the sequence holds at another
/// position, drop what came before it, and park it at its new place: the block's new tokens and what follows
/// the run are decoded, the run is spliced back (the same staleness bound as the FIM tail, scaled). Moves in
/// both directions, which llama-server's chunk reuse does not.
fn splice_run<O: KvOps>(e: &Edit, max_stale: usize, kv: &mut O) -> Option<Splice> {
    let (slot, prompt, keep) = (e.slot, e.prompt, e.keep);
    // The last prompt token is decoded for its logits anyway.
    let new_end = prompt.len().checked_sub(1)?;
    if keep + MIN_RUN > new_end || keep + MIN_RUN > slot.len() {
        return None;
    }
    let mut starts: std::collections::HashMap<&[Token], usize> = std::collections::HashMap::new();
    for (j, g) in slot[keep..].windows(RUN_GRAM).enumerate() {
        starts.entry(g).or_insert(keep + j);
    }
    let (mut best, mut i) = ((0, 0, 0), keep);
    while i + RUN_GRAM <= new_end {
        let Some(&j) = starts.get(&prompt[i..i + RUN_GRAM]) else {
            i += 1;
            continue;
        };
        let m = slot[j..].iter().zip(&prompt[i..new_end]).take_while(|(a, b)| a == b).count();
        if m > best.2 {
            best = (i, j, m);
        }
        i += m.max(1);
    }
    let (n0, o0, m) = best;
    let changed = (o0 - keep) + (n0 - keep);
    // A run that ends both prompts is the FIM tail, whose own (tighter) budget just said no.
    let tail = n0 + m == new_end && o0 + m + 1 == e.old_prompt_len;
    if m < MIN_RUN || tail || e.stale + changed > max_stale || o0 < e.min_pos {
        return None;
    }
    park_run(kv, e.seq, keep, o0..o0 + m, n0).then_some(Splice { t0: n0, t1: n0 + m, stale: e.stale + changed })
}

/// After the common prefix, find runs of the prompt that the sequence holds further on (the window's start
/// moved down the file, say) and shift them into place. Returns the new number of usable cells and how
/// many of them were shifted. Only moves cells towards the start, like llama-server.
fn reuse_chunks<O: KvOps>(
    slot: &mut [Token],
    prompt: &[Token],
    mut n_past: usize,
    min: usize,
    min_pos: usize,
    seq: u32,
    kv: &mut O,
) -> (usize, usize) {
    let (mut head_c, mut head_p, mut moved) = (n_past, n_past, 0);
    while head_c < slot.len() && head_p < prompt.len() {
        let n = slot[head_c..].iter().zip(&prompt[head_p..]).take_while(|(a, b)| a == b).count();
        if n < min {
            head_c += 1;
            continue;
        }
        let delta = head_p as i64 - head_c as i64;
        if head_c < min_pos || !kv.remove_range(seq, head_p, head_c) || !kv.shift(seq, head_c, head_c + n, delta) {
            break;
        }
        slot.copy_within(head_c..head_c + n, head_p);
        n_past += n;
        moved += n;
        head_c += n;
        head_p += n;
    }
    (n_past, moved)
}

#[cfg(test)]
#[path = "prefix_cache_tests.rs"]
mod tests;
