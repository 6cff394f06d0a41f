//! The per-document KV prefix cache: which sequence of the llama.cpp context holds which document's prompt,
//! and how much of a new prompt can be kept.
//!
//! Pure bookkeeping over a [`KvOps`] trait, so the policy is unit-tested without a model. Every open document
//! is bound to one sequence (LRU when there are more documents than sequences). A request keeps the longest
//! common token prefix of its prompt with what the sequence holds and decodes only the tail. A document that
//! loses its sequence may leave a snapshot of its KV cells in host memory (bounded), restored when it comes
//! back if copying is cheaper than recomputing.
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
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan<K> {
    pub seq: u32,
    /// Prompt tokens already in the sequence; decode `prompt[keep..]` at positions `keep..`.
    pub keep: usize,
    pub restored: bool,
    pub evicted: Option<K>,
    /// Of `keep`, tokens that came from shifting later chunks into place.
    pub shifted: usize,
}

struct Saved<S> {
    snap: S,
    tokens: Vec<Token>,
    bytes: usize,
}

pub struct PrefixCache<K: Hash + Eq + Clone, S> {
    cfg: CacheConfig,
    slots: Vec<Vec<Token>>,
    owner: Vec<Option<K>>,
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
            owner: vec![None; n],
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
                        let (old, s) = self.bound.pop_lru().expect("all slots are bound");
                        self.stash(&old, s, kv);
                        evicted = Some(old);
                        s
                    }
                };
                kv.clear(s);
                self.slots[s as usize].clear();
                self.owner[s as usize] = Some(doc.clone());
                self.bound.put(doc.clone(), s);
                if let Some(saved) = self.saved.pop(doc) {
                    self.saved_bytes -= saved.bytes;
                    let gain = common_prefix(&saved.tokens, prompt);
                    if self.cfg.enabled && gain > 0 && kv.restore_is_cheaper(saved.bytes, gain) && kv.restore(s, &saved.snap) {
                        self.slots[s as usize] = saved.tokens;
                        restored = true;
                    }
                }
                s
            }
        };
        let slot = &mut self.slots[seq as usize];
        let mut keep = if self.cfg.enabled { common_prefix(slot, prompt) } else { 0 };
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
        Plan { seq, keep, restored, evicted, shifted }
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
            self.owner[s as usize] = None;
        }
        if let Some(saved) = self.saved.pop(doc) {
            self.saved_bytes -= saved.bytes;
        }
    }

    fn stash<O: KvOps<Snapshot = S>>(&mut self, doc: &K, seq: u32, kv: &mut O) {
        let tokens = std::mem::take(&mut self.slots[seq as usize]);
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
        self.saved.put(doc.clone(), Saved { snap, tokens, bytes });
    }
}

/// After the common prefix, find runs of the prompt that the sequence holds further on (the window's start
/// moved down the file, say) and shift them into place. Returns the new number of usable cells and how
/// many of them were shifted. Only moves cells towards the start, like llama-server.
fn reuse_chunks<O: KvOps>(slot: &mut [Token], prompt: &[Token], mut n_past: usize, min: usize, seq: u32, kv: &mut O) -> (usize, usize) {
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
    }

    fn cfg(n: u32) -> CacheConfig {
        CacheConfig { sequences: n, enabled: true, host_budget: 1000, min_snapshot_tokens: 1, reuse_min_chunk: 0 }
    }

    fn run(c: &mut PrefixCache<&'static str, usize>, kv: &mut FakeKv, doc: &'static str, p: &[Token]) -> Plan<&'static str> {
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
    fn release_frees_the_sequence() {
        let mut kv = FakeKv { can_truncate: true, ..Default::default() };
        let mut c = PrefixCache::new(cfg(1));
        run(&mut c, &mut kv, "a", &[1, 2, 3]);
        c.release(&"a", &mut kv);
        assert_eq!(c.held(&"a"), 0);
        let p = run(&mut c, &mut kv, "b", &[4]);
        assert_eq!(p.evicted, None, "the freed slot is reused without eviction");
    }
}
