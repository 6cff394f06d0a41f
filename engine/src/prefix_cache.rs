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
    owner: Vec<Option<K>>,
    /// Sequences a running (or suspended) generation holds: never evicted nor handed to another document.
    pinned: Vec<bool>,
    bound: LruCache<K, u32>,
    saved: LruCache<K, Saved<S>>,
    saved_bytes: usize,
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
            owner: vec![None; n],
            pinned: vec![false; n],
            bound: LruCache::unbounded(),
            saved: LruCache::unbounded(),
            saved_bytes: 0,
        }
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
        let slot = &mut self.slots[si];
        let mut keep = if self.cfg.enabled { common_prefix(slot, prompt) } else { 0 };
        if self.cfg.enabled && self.cfg.tail_max_stale > 0 {
            if let Some(t) =
                splice_tail(slot, old_prompt_len, prompt, keep, self.stale[si], self.cfg.tail_max_stale, seq, kv)
            {
                self.stale[si] += t.changed;
                slot.truncate(keep);
                return Plan { seq, keep, restored, evicted, shifted: 0, tail: Some((t.t0, t.t1)) };
            }
        }
        // Everything after `keep` is decoded fresh below.
        self.stale[si] = 0;
        let mut shifted = 0;
        if self.cfg.enabled && self.cfg.reuse_min_chunk > 0 {
            (keep, shifted) = reuse_chunks(slot, prompt, keep, self.cfg.reuse_min_chunk, seq, kv);
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
        Plan { seq, keep, restored, evicted, shifted, tail: None }
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
    changed: usize,
}

/// The edit sits at `keep`; if the old and new prompts (last token aside, it is decoded for logits anyway)
/// end in the same run of at least [`MIN_TAIL`] tokens, drop the old edited span and everything after the
/// old prompt, and park that run at its new positions. `None` leaves the cells as they were.
#[allow(clippy::too_many_arguments)]
fn splice_tail<O: KvOps>(
    slot: &[Token],
    old_prompt_len: usize,
    prompt: &[Token],
    keep: usize,
    stale: usize,
    max_stale: usize,
    seq: u32,
    kv: &mut O,
) -> Option<Splice> {
    let old_end = old_prompt_len.min(slot.len()).checked_sub(1)?;
    let new_end = prompt.len() - 1;
    if keep >= old_end || keep > new_end {
        return None;
    }
    let (old, new) = (&slot[keep..old_end], &prompt[keep..new_end]);
    let m = old.iter().rev().zip(new.iter().rev()).take_while(|(a, b)| a == b).count();
    let changed = (old.len() - m) + (new.len() - m);
    if m < MIN_TAIL || changed == 0 || stale + changed > max_stale {
        return None;
    }
    let (o0, n0) = (old_end - m, new_end - m);
    let ok =
        kv.truncate(seq, old_end) && kv.remove_range(seq, keep, o0) && kv.park(seq, o0, old_end, n0 as i64 - o0 as i64);
    if !ok {
        kv.drop_parked();
        return None;
    }
    // The sequence now holds `prompt[..keep]` and nothing past it.
    kv.truncate(seq, keep);
    Some(Splice { t0: n0, t1: new_end, changed })
}

/// After the common prefix, find runs of the prompt that the sequence holds further on (the window's start
/// moved down the file, say) and shift them into place. Returns the new number of usable cells and how
/// many of them were shifted. Only moves cells towards the start, like llama-server.
fn reuse_chunks<O: KvOps>(
    slot: &mut [Token],
    prompt: &[Token],
    mut n_past: usize,
    min: usize,
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
        if !kv.remove_range(seq, head_p, head_c) || !kv.shift(seq, head_c, head_c + n, delta) {
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
mod tests {
    use super::*;

    /// A fake KV that tracks cells per sequence, to check the cache keeps it consistent.
    #[derive(Default)]
    struct FakeKv {
        cells: std::collections::HashMap<u32, usize>,
        truncates: Vec<(u32, usize)>,
        restores: usize,
        can_truncate: bool,
        shifts: Vec<(u32, usize, usize, i64)>,
        parked: Vec<(u32, usize, usize, i64)>,
    }
    impl KvOps for FakeKv {
        type Snapshot = usize;
        fn truncate(&mut self, seq: u32, pos: usize) -> bool {
            self.truncates.push((seq, pos));
            if self.can_truncate {
                let c = self.cells.entry(seq).or_default();
                *c = (*c).min(pos);
            }
            self.can_truncate
        }
        fn clear(&mut self, seq: u32) {
            self.cells.insert(seq, 0);
        }
        fn remove_range(&mut self, _seq: u32, _p0: usize, _p1: usize) -> bool {
            true
        }
        fn shift(&mut self, seq: u32, p0: usize, p1: usize, delta: i64) -> bool {
            self.shifts.push((seq, p0, p1, delta));
            true
        }
        fn snapshot(&mut self, seq: u32) -> Option<(usize, usize)> {
            let n = *self.cells.get(&seq).unwrap_or(&0);
            Some((n, n * 10))
        }
        fn restore(&mut self, seq: u32, snap: &usize) -> bool {
            self.restores += 1;
            self.cells.insert(seq, *snap);
            true
        }
        fn restore_is_cheaper(&self, _bytes: usize, tokens: usize) -> bool {
            tokens >= 2
        }
        fn park(&mut self, seq: u32, p0: usize, p1: usize, delta: i64) -> bool {
            self.parked.push((seq, p0, p1, delta));
            true
        }
    }

    fn cfg(n: u32) -> CacheConfig {
        CacheConfig {
            sequences: n,
            enabled: true,
            host_budget: 1000,
            min_snapshot_tokens: 1,
            reuse_min_chunk: 0,
            tail_max_stale: 0,
        }
    }

    fn run(
        c: &mut PrefixCache<&'static str, usize>,
        kv: &mut FakeKv,
        doc: &'static str,
        p: &[Token],
    ) -> Plan<&'static str> {
        let plan = c.prepare(&doc, p, kv);
        kv.cells.insert(plan.seq, p.len());
        c.commit(plan.seq, p.to_vec());
        plan
    }

    #[test]
    fn keeps_common_prefix_and_truncates_the_rest() {
        let mut kv = FakeKv { can_truncate: true, ..Default::default() };
        let mut c = PrefixCache::new(cfg(2));
        assert_eq!(run(&mut c, &mut kv, "a", &[1, 2, 3, 4]).keep, 0);
        let p = run(&mut c, &mut kv, "a", &[1, 2, 3, 5, 6]);
        assert_eq!(p.keep, 3);
        assert_eq!(kv.truncates.last(), Some(&(p.seq, 3)));
        // Identical prompt: keep all but the last token, which must be decoded for logits.
        assert_eq!(run(&mut c, &mut kv, "a", &[1, 2, 3, 5, 6]).keep, 4);
    }

    #[test]
    fn documents_get_their_own_sequences() {
        let mut kv = FakeKv { can_truncate: true, ..Default::default() };
        let mut c = PrefixCache::new(cfg(2));
        let a = run(&mut c, &mut kv, "a", &[1, 2, 3]);
        let b = run(&mut c, &mut kv, "b", &[7, 8, 9]);
        assert_ne!(a.seq, b.seq);
        assert_eq!(run(&mut c, &mut kv, "a", &[1, 2, 3, 4]).keep, 3, "switching back keeps a's prefix");
    }

    #[test]
    fn lru_eviction_snapshots_and_restores() {
        let mut kv = FakeKv { can_truncate: true, ..Default::default() };
        let mut c = PrefixCache::new(cfg(2));
        run(&mut c, &mut kv, "a", &[1, 2, 3, 4]);
        run(&mut c, &mut kv, "b", &[5, 6]);
        run(&mut c, &mut kv, "b", &[5, 6, 7]); // b is now most recent
        let p = run(&mut c, &mut kv, "c", &[9, 9]);
        assert_eq!(p.evicted, Some("a"));
        assert!(c.is_saved(&"a"));
        let back = run(&mut c, &mut kv, "a", &[1, 2, 3, 4, 5]);
        assert!(back.restored);
        assert_eq!(back.keep, 4);
        assert_eq!(back.evicted, Some("b"));
        assert_eq!(kv.restores, 1);
    }

    #[test]
    fn host_budget_bounds_snapshots() {
        let mut kv = FakeKv { can_truncate: true, ..Default::default() };
        let mut c = PrefixCache::new(CacheConfig { host_budget: 50, ..cfg(1) });
        run(&mut c, &mut kv, "a", &[1, 2, 3, 4]); // 40 bytes
        run(&mut c, &mut kv, "b", &[1, 2, 3]); // evicts a (40 bytes saved)
        run(&mut c, &mut kv, "c", &[1]); // evicts b (30 bytes): a must go to stay within 50
        assert!(!c.is_saved(&"a"));
        assert!(c.is_saved(&"b"));
        assert!(c.saved_bytes() <= 50);
    }

    #[test]
    fn backend_that_cannot_truncate_falls_back_to_full_decode() {
        let mut kv = FakeKv { can_truncate: false, ..Default::default() };
        let mut c = PrefixCache::new(cfg(1));
        run(&mut c, &mut kv, "a", &[1, 2, 3]);
        assert_eq!(run(&mut c, &mut kv, "a", &[1, 2, 4]).keep, 0);
    }

    #[test]
    fn disabled_cache_never_reuses() {
        let mut kv = FakeKv { can_truncate: true, ..Default::default() };
        let mut c = PrefixCache::new(CacheConfig { enabled: false, ..cfg(2) });
        run(&mut c, &mut kv, "a", &[1, 2, 3]);
        assert_eq!(run(&mut c, &mut kv, "a", &[1, 2, 3, 4]).keep, 0);
    }

    #[test]
    fn a_window_that_moved_down_reuses_its_tail_by_shifting() {
        let mut kv = FakeKv { can_truncate: true, ..Default::default() };
        let mut c = PrefixCache::new(CacheConfig { reuse_min_chunk: 3, ..cfg(1) });
        // BOS, then lines 10..20 of a file; then the window starts at line 14 and goes further.
        run(&mut c, &mut kv, "a", &[0, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19]);
        let p = run(&mut c, &mut kv, "a", &[0, 14, 15, 16, 17, 18, 19, 20, 21]);
        assert_eq!(p.keep, 7, "BOS plus the six shifted tokens");
        assert_eq!(p.shifted, 6);
        assert_eq!(kv.shifts, vec![(p.seq, 5, 11, -4)]);
        // Runs shorter than the minimum are not worth the approximation.
        let mut c = PrefixCache::new(CacheConfig { reuse_min_chunk: 8, ..cfg(1) });
        run(&mut c, &mut kv, "b", &[0, 10, 11, 12, 13, 14, 15]);
        assert_eq!(run(&mut c, &mut kv, "b", &[0, 13, 14, 15, 16]).keep, 1);
    }

    #[test]
    fn a_pinned_sequence_is_never_evicted() {
        let mut kv = FakeKv { can_truncate: true, ..Default::default() };
        let mut c = PrefixCache::new(cfg(2));
        let a = run(&mut c, &mut kv, "a", &[1, 2, 3]);
        run(&mut c, &mut kv, "b", &[4, 5]);
        // "a" is the least recently used, but a suspended generation holds its cells.
        c.pin(a.seq);
        let p = run(&mut c, &mut kv, "c", &[6]);
        assert_eq!(p.evicted, Some("b"));
        assert_eq!(c.seq_of(&"a"), Some(a.seq));
        assert!(c.can_bind(&"d"), "c's sequence is free to take");
        c.pin(p.seq);
        assert!(!c.can_bind(&"d"), "both sequences held: a new document waits");
        assert!(c.can_bind(&"a"), "a document with its own sequence can always go on");
        c.unpin(a.seq);
        assert_eq!(run(&mut c, &mut kv, "d", &[7]).evicted, Some("a"));
    }

    #[test]
    fn release_frees_the_sequence() {
        let mut kv = FakeKv { can_truncate: true, ..Default::default() };
        let mut c = PrefixCache::new(cfg(1));
        run(&mut c, &mut kv, "a", &[1, 2, 3]);
        c.release(&"a", &mut kv);
        assert_eq!(c.held(&"a"), 0);
        let p = run(&mut c, &mut kv, "b", &[4]);
        assert_eq!(p.evicted, None, "the freed slot is reused without eviction");
    }

    fn tail_cfg(max_stale: usize) -> CacheConfig {
        CacheConfig { tail_max_stale: max_stale, ..cfg(2) }
    }

    /// prefix P, suffix S, middle marker M, as a FIM prompt lays them out.
    fn fim(prefix: &[Token], suffix: &[Token]) -> Vec<Token> {
        let mut v = vec![100];
        v.extend_from_slice(prefix);
        v.push(101);
        v.extend_from_slice(suffix);
        v.push(102);
        v
    }

    #[test]
    fn typing_before_the_suffix_splices_it_instead_of_decoding_it_again() {
        let mut kv = FakeKv { can_truncate: true, ..Default::default() };
        let mut c = PrefixCache::new(tail_cfg(8));
        let suffix: Vec<Token> = (50..70).collect();
        let first = fim(&[1, 2, 3], &suffix);
        let p = run(&mut c, &mut kv, "a", &first);
        assert_eq!((p.keep, p.tail), (0, None));
        // The answer's generated tokens follow the prompt in the sequence.
        let mut held = first.clone();
        held.extend([7, 7, 7]);
        c.commit(p.seq, held);
        // Type two tokens at the end of the prefix: the suffix (and its marker, 21 tokens) moves by two.
        let second = fim(&[1, 2, 3, 4, 5], &suffix);
        let p = c.prepare(&"a", &second, &mut kv);
        assert_eq!(p.keep, 4, "BOS and the old prefix");
        let t0 = second.len() - 1 - 21;
        assert_eq!(p.tail, Some((t0, second.len() - 1)));
        assert_eq!(kv.parked, vec![(p.seq, first.len() - 1 - 21, first.len() - 1, 2)]);
        assert_eq!(c.held(&"a"), 4, "the parked cells are not the sequence's until spliced back");
        c.commit(p.seq, second.clone());
        // Two more tokens fit the stale budget of 8; the next edit of 6 does not: a full tail decode.
        let third = fim(&[1, 2, 3, 4, 5, 6, 8], &suffix);
        assert!(run(&mut c, &mut kv, "a", &third).tail.is_some());
        let fourth = fim(&[1, 2, 3, 4, 5, 6, 8, 9, 9, 9, 9, 9, 9], &suffix);
        let p = run(&mut c, &mut kv, "a", &fourth);
        assert_eq!((p.keep, p.tail), (8, None));
        // The budget starts over after that fresh decode.
        let fifth = fim(&[1, 2, 3, 4, 5, 6, 8, 9, 9, 9, 9, 9, 9, 10], &suffix);
        assert!(run(&mut c, &mut kv, "a", &fifth).tail.is_some());
    }

    #[test]
    fn no_splice_for_short_tails_or_when_turned_off() {
        let mut kv = FakeKv { can_truncate: true, ..Default::default() };
        let mut c = PrefixCache::new(tail_cfg(64));
        run(&mut c, &mut kv, "a", &fim(&[1, 2], &[50, 51, 52]));
        let p = run(&mut c, &mut kv, "a", &fim(&[1, 2, 3], &[50, 51, 52]));
        assert_eq!(p.tail, None, "a tail of four tokens is decoded again");
        let mut c = PrefixCache::new(tail_cfg(0));
        let suffix: Vec<Token> = (50..70).collect();
        run(&mut c, &mut kv, "b", &fim(&[1, 2], &suffix));
        assert_eq!(run(&mut c, &mut kv, "b", &fim(&[1, 2, 3], &suffix)).tail, None);
        assert!(kv.parked.is_empty());
    }

    #[test]
    fn a_backend_that_cannot_park_decodes_the_tail() {
        struct NoPark(FakeKv);
        impl KvOps for NoPark {
            type Snapshot = usize;
            fn truncate(&mut self, seq: u32, pos: usize) -> bool {
                self.0.truncate(seq, pos)
            }
            fn clear(&mut self, seq: u32) {
                self.0.clear(seq)
            }
            fn remove_range(&mut self, seq: u32, p0: usize, p1: usize) -> bool {
                self.0.remove_range(seq, p0, p1)
            }
            fn shift(&mut self, seq: u32, p0: usize, p1: usize, delta: i64) -> bool {
                self.0.shift(seq, p0, p1, delta)
            }
            fn snapshot(&mut self, seq: u32) -> Option<(usize, usize)> {
                self.0.snapshot(seq)
            }
            fn restore(&mut self, seq: u32, snap: &usize) -> bool {
                self.0.restore(seq, snap)
            }
            fn restore_is_cheaper(&self, bytes: usize, tokens: usize) -> bool {
                self.0.restore_is_cheaper(bytes, tokens)
            }
        }
        let mut kv = NoPark(FakeKv { can_truncate: true, ..Default::default() });
        let mut c = PrefixCache::new(tail_cfg(64));
        let suffix: Vec<Token> = (50..70).collect();
        let first = fim(&[1, 2], &suffix);
        let p = c.prepare(&"a", &first, &mut kv);
        c.commit(p.seq, first);
        let p = c.prepare(&"a", &fim(&[1, 2, 3], &suffix), &mut kv);
        assert_eq!((p.keep, p.tail), (3, None));
    }
}
