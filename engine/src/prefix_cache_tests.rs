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

/// A context block of `defs` tokens, then a file's text of `file` tokens.
fn with_block(defs: &[Token], file: &[Token]) -> Vec<Token> {
    let mut v = vec![1];
    v.extend_from_slice(defs);
    v.extend_from_slice(file);
    v
}

#[test]
fn a_grown_context_block_splices_the_text_after_it_back_in() {
    let mut kv = FakeKv { can_truncate: true, ..Default::default() };
    let mut c = PrefixCache::new(tail_cfg(48));
    let file: Vec<Token> = (1000..1300).collect();
    let first = with_block(&[10, 11, 12, 13], &file);
    let p = run(&mut c, &mut kv, "a", &first);
    let mut held = first.clone();
    held.extend([7, 7]);
    c.commit(p.seq, held);
    // A definition joins the middle of the block, and a token is typed at the end of the file's text.
    let mut typed = file.clone();
    typed.push(1300);
    let second = with_block(&[10, 11, 20, 21, 22, 12, 13], &typed);
    let p = c.prepare(&"a", &second, &mut kv);
    assert_eq!(p.keep, 3, "BOS and the block's unchanged start");
    // The longest run is the two remaining block tokens and the file's text, now three tokens on.
    let (o0, n0) = (3, 6);
    assert_eq!(p.tail, Some((n0, n0 + 2 + 300)));
    assert_eq!(kv.parked, vec![(p.seq, o0, o0 + 302, 3)]);
    // Decoded: the three new block tokens and the typed one (with the last), not the file's 300.
    let (t0, t1) = p.tail.unwrap();
    assert_eq!((t0 - p.keep) + (second.len() - t1), 4);
    c.commit(p.seq, second.clone());
    // A block that shrinks moves the text towards the start, the same way.
    let third = with_block(&[10, 13], &typed);
    let p = run(&mut c, &mut kv, "a", &third);
    assert_eq!(p.keep, 2);
    // The run is `13` and the file's text (the last prompt token aside), from 7 to 2.
    assert_eq!(kv.parked.last(), Some(&(p.seq, 7, 7 + 301, -5)));
}

#[test]
fn a_moved_run_is_decoded_again_past_its_stale_budget_or_when_short() {
    let mut kv = FakeKv { can_truncate: true, ..Default::default() };
    let mut c = PrefixCache::new(tail_cfg(4));
    let file: Vec<Token> = (1000..1300).collect();
    run(&mut c, &mut kv, "a", &with_block(&[10], &file));
    // 40 new tokens before the text: over 4 x 8 = 32 stale tokens.
    let block: Vec<Token> = (100..140).collect();
    let p = run(&mut c, &mut kv, "a", &with_block(&block, &file));
    assert_eq!((p.keep, p.tail), (1, None));
    assert!(kv.parked.is_empty());
    // A text of fewer than MIN_RUN tokens is not worth the shift (a typed token at its end, so it is not
    // the tail splice's case either).
    let short: Vec<Token> = (2000..2040).collect();
    run(&mut c, &mut kv, "b", &with_block(&[10], &short));
    let mut typed = short.clone();
    typed.push(5);
    assert_eq!(run(&mut c, &mut kv, "b", &with_block(&[10, 11], &typed)).tail, None);
    // Turned off with the tail splice.
    let mut c = PrefixCache::new(tail_cfg(0));
    run(&mut c, &mut kv, "c", &with_block(&[10], &file));
    assert_eq!(run(&mut c, &mut kv, "c", &with_block(&[10, 11], &file)).tail, None);
    assert!(kv.parked.is_empty());
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
