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
fn a_job_stopped_before_the_middle_marker_still_leaves_a_tail_to_splice() {
    // The request after a superseded one (or after a prefetch that a keystroke stopped) finds the sequence
    // holding the whole suffix but not the old marker: that tail is spliced, not decoded again.
    let mut kv = FakeKv { can_truncate: true, ..Default::default() };
    let mut c = PrefixCache::new(tail_cfg(8));
    let suffix: Vec<Token> = (50..70).collect();
    let first = fim(&[1, 2, 3], &suffix);
    let p = run(&mut c, &mut kv, "a", &first);
    kv.cells.insert(p.seq, first.len() - 1);
    c.commit(p.seq, first[..first.len() - 1].to_vec());
    let second = fim(&[1, 2, 3, 4], &suffix);
    let p = c.prepare(&"a", &second, &mut kv);
    assert_eq!(p.tail, Some((second.len() - 1 - 21, second.len() - 1)), "the suffix and its marker, spliced");
    assert_eq!(kv.parked, vec![(p.seq, first.len() - 1 - 21, first.len() - 1, 1)]);
}

#[test]
fn an_edit_that_is_undone_does_not_spend_the_stale_budget() {
    // A prefetch appends the shown suggestion (6 tokens) and the keystroke that comes instead takes it out
    // again and adds one: the suffix's cells have seen one changed token, not 13.
    let mut kv = FakeKv { can_truncate: true, ..Default::default() };
    let mut c = PrefixCache::new(tail_cfg(8));
    let suffix: Vec<Token> = (50..70).collect();
    run(&mut c, &mut kv, "a", &fim(&[1, 2, 3], &suffix));
    let prefetched = fim(&[1, 2, 3, 9, 9, 9, 9, 9, 9], &suffix);
    assert!(run(&mut c, &mut kv, "a", &prefetched).tail.is_some());
    let typed = fim(&[1, 2, 3, 4], &suffix);
    let p = run(&mut c, &mut kv, "a", &typed);
    assert_eq!(p.tail, Some((typed.len() - 1 - 21, typed.len() - 1)), "spliced, one token from its basis");
    // Typing on from there still counts against the basis: 1 + 8 more is over the budget.
    let far = fim(&[1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12, 13], &suffix);
    assert_eq!(run(&mut c, &mut kv, "a", &far).tail, None);
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

/// llama.cpp's unified KV cache in miniature: cells with one position each and a set of sequences, so a
/// shift of one sequence's cells moves them for every sequence that shares them, as it does there.
#[derive(Default)]
struct CellKv {
    cells: Vec<(i64, Token, std::collections::BTreeSet<u32>)>,
    scratch: u32,
}

impl CellKv {
    fn new(scratch: u32) -> Self {
        Self { cells: vec![], scratch }
    }
    fn untag(&mut self, seq: u32, p0: usize, p1: usize) {
        for c in &mut self.cells {
            if (p0 as i64..p1 as i64).contains(&c.0) {
                c.2.remove(&seq);
            }
        }
        self.cells.retain(|c| !c.2.is_empty());
    }
    fn tag(&mut self, from: u32, to: u32, p0: usize, p1: usize) {
        for c in &mut self.cells {
            if c.2.contains(&from) && (p0 as i64..p1 as i64).contains(&c.0) {
                c.2.insert(to);
            }
        }
    }
    fn decode(&mut self, seq: u32, from: usize, toks: &[Token]) {
        for (i, &t) in toks.iter().enumerate() {
            self.cells.push(((from + i) as i64, t, [seq].into()));
        }
    }
    /// What the worker does with a plan: decode the prompt's new parts, splice a parked tail back.
    fn apply(&mut self, plan: &Plan<&'static str>, prompt: &[Token]) {
        match plan.tail {
            Some((t0, t1)) => {
                self.decode(plan.seq, plan.keep, &prompt[plan.keep..t0]);
                assert!(self.unpark(plan.seq, t0, t1));
                self.decode(plan.seq, t1, &prompt[t1..]);
            }
            None => self.decode(plan.seq, plan.keep, &prompt[plan.keep..]),
        }
    }
    /// The sequence's cells, by position: each position once, and the token the cell was computed for.
    fn held(&self, seq: u32) -> Vec<(i64, Token)> {
        let mut v: Vec<_> = self.cells.iter().filter(|c| c.2.contains(&seq)).map(|c| (c.0, c.1)).collect();
        v.sort_unstable();
        v
    }
}

impl KvOps for CellKv {
    type Snapshot = Vec<(i64, Token)>;
    fn truncate(&mut self, seq: u32, pos: usize) -> bool {
        self.untag(seq, pos, usize::MAX / 2);
        true
    }
    fn clear(&mut self, seq: u32) {
        self.untag(seq, 0, usize::MAX / 2);
    }
    fn remove_range(&mut self, seq: u32, p0: usize, p1: usize) -> bool {
        self.untag(seq, p0, p1);
        true
    }
    fn shift(&mut self, seq: u32, p0: usize, p1: usize, delta: i64) -> bool {
        for c in &mut self.cells {
            if c.2.contains(&seq) && (p0 as i64..p1 as i64).contains(&c.0) {
                c.0 += delta;
            }
        }
        true
    }
    fn snapshot(&mut self, seq: u32) -> Option<(Self::Snapshot, usize)> {
        let h = self.held(seq);
        let n = h.len();
        Some((h, n * 10))
    }
    fn restore(&mut self, seq: u32, snap: &Self::Snapshot) -> bool {
        self.clear(seq);
        self.cells.extend(snap.iter().map(|&(p, t)| (p, t, [seq].into())));
        true
    }
    fn restore_is_cheaper(&self, _bytes: usize, tokens: usize) -> bool {
        tokens >= 2
    }
    fn park(&mut self, seq: u32, p0: usize, p1: usize, delta: i64) -> bool {
        let x = self.scratch;
        self.clear(x);
        self.tag(seq, x, p0, p1);
        self.untag(seq, p0, p1);
        self.shift(x, p0, p1, delta)
    }
    fn unpark(&mut self, seq: u32, p0: usize, p1: usize) -> bool {
        let x = self.scratch;
        self.tag(x, seq, p0, p1);
        self.clear(x);
        true
    }
    fn drop_parked(&mut self) {
        let x = self.scratch;
        self.clear(x);
    }
    fn share(&mut self, from: u32, to: u32, p0: usize, p1: usize) -> bool {
        self.tag(from, to, p0, p1);
        true
    }
}

fn cell_cfg(sequences: u32) -> CacheConfig {
    CacheConfig { reuse_min_chunk: 16, ..tail_cfg(64) }.with_sequences(sequences)
}

impl CacheConfig {
    fn with_sequences(mut self, n: u32) -> Self {
        self.sequences = n;
        self
    }
}

fn cell_run(
    c: &mut PrefixCache<&'static str, Vec<(i64, Token)>>,
    kv: &mut CellKv,
    doc: &'static str,
    p: &[Token],
) -> Plan<&'static str> {
    let plan = c.prepare(&doc, p, kv);
    kv.apply(&plan, p);
    c.commit(plan.seq, p.to_vec());
    // Every sequence, not only this one: a move of shared cells would show up in the others.
    for s in 0..c.config().sequences {
        let want: Vec<(i64, Token)> = c.slots[s as usize].iter().enumerate().map(|(i, &t)| (i as i64, t)).collect();
        assert_eq!(kv.held(s), want, "sequence {s} after {doc}'s request");
    }
    plan
}

#[test]
fn documents_with_the_same_context_block_hold_its_cells_once() {
    let block: Vec<Token> = (1000..1200).collect();
    let mut kv = CellKv::new(8);
    let mut c = PrefixCache::new(cell_cfg(8));
    let docs = ["a", "b", "c", "d", "e", "f", "g", "h"];
    for (i, d) in docs.iter().enumerate() {
        let file: Vec<Token> = (0..40).map(|k| (i as Token) * 100 + k).collect();
        let plan = cell_run(&mut c, &mut kv, d, &with_block(&block, &file));
        assert_eq!(plan.shared, if i == 0 { 0 } else { block.len() + 1 }, "{d}");
    }
    // The block (and its opening token) once, then each document's own text.
    assert_eq!(kv.cells.len(), block.len() + 1 + docs.len() * 40);
}

#[test]
fn shared_cells_never_move_whatever_the_documents_do() {
    // Three documents behind two context blocks, typed into, their blocks changed and swapped back, with
    // fewer sequences than documents: after every request each sequence holds its tokens at their
    // positions, which a shift of a shared cell would break.
    let blocks: [Vec<Token>; 3] =
        [(1000..1120).collect(), (1000..1060).chain(2000..2090).collect(), (3000..3100).collect()];
    let mut files: Vec<Vec<Token>> = (0..3).map(|i| (0..150).map(|k| i * 1000 + 5000 + k).collect()).collect();
    let docs = ["x", "y", "z"];
    let mut kv = CellKv::new(2);
    let mut c = PrefixCache::new(cell_cfg(2));
    let (mut seed, mut shared, mut spliced) = (7u64, 0, 0);
    let mut rnd = |n: usize| {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (seed >> 33) as usize % n
    };
    let mut next_tok = 90_000;
    for _ in 0..300 {
        let d = rnd(3);
        let b = rnd(3);
        let cut = 20 + rnd(120);
        match rnd(3) {
            0 => {
                files[d].insert(cut, next_tok);
                next_tok += 1;
            }
            1 if files[d].len() > 40 => {
                files[d].remove(cut);
            }
            _ => {}
        }
        let (pre, suf) = files[d].split_at(cut);
        let mut p = blocks[b].clone();
        p.extend(fim(pre, suf));
        let plan = cell_run(&mut c, &mut kv, docs[d], &p);
        shared += plan.shared;
        spliced += plan.tail.is_some() as usize;
    }
    assert!(shared > 0 && spliced > 0, "both paths ran: shared {shared} tokens, {spliced} splices");
}

#[test]
fn documents_of_different_sessions_never_share_cells() {
    // A faster answer would tell one window (one user, on the team daemon) what another's documents hold.
    let block: Vec<Token> = (1000..1200).collect();
    let mut kv = CellKv::new(8);
    let mut c = PrefixCache::new(cell_cfg(8)).with_sharing(|a: &&str, b: &&str| a.as_bytes()[0] == b.as_bytes()[0]);
    let file = |i: Token| -> Vec<Token> { (0..40).map(|k| i * 100 + k).collect() };
    assert_eq!(cell_run(&mut c, &mut kv, "a1", &with_block(&block, &file(1))).shared, 0);
    assert_eq!(cell_run(&mut c, &mut kv, "b1", &with_block(&block, &file(2))).shared, 0, "another session");
    assert_eq!(cell_run(&mut c, &mut kv, "a2", &with_block(&block, &file(3))).shared, block.len() + 1);
}
