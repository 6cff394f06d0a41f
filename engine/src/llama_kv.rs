//! The prefix cache's operations ([`KvOps`]) on a llama.cpp context's KV cells. The cache itself
//! (prefix_cache.rs) decides what to keep; this only carries it out, so the cache can be tested on fakes.
//!
//! With guard sequences (worker.rs `swa_guards`, models with sliding-window layers) every cell of sequence
//! `s` also carries sequence `guard + s`, so llama.cpp never hands it to another sequence: each removal here
//! is done for both, each copy gives both, and a shift moves the cells (and with them the guard's) once.
use crate::prefix_cache::KvOps;
use llama_cpp_2::context::session::{LlamaStateSeqFlags, SeqState};
use llama_cpp_2::context::LlamaContext;

pub(crate) struct Kv<'a, 'm> {
    ctx: &'a mut LlamaContext<'m>,
    pp_tokens_per_s: f64,
    scratch: u32,
    guards: Option<u32>,
    /// Cells changed position (llama_memory_seq_add): the next decode first re-rotates the keys of every
    /// cell and llama.cpp then re-reserves its worst-case graph (docs/performance.md); the phases show such
    /// requests apart.
    pub(crate) moved: bool,
}

impl<'a, 'm> Kv<'a, 'm> {
    /// `pp_tokens_per_s`: the measured prompt rate, to weigh a snapshot restore against recomputing;
    /// `scratch`: the sequence that holds a parked FIM suffix; `guards`: the first guard sequence, if any.
    pub(crate) fn new(ctx: &'a mut LlamaContext<'m>, pp_tokens_per_s: f64, scratch: u32, guards: Option<u32>) -> Self {
        Self { ctx, pp_tokens_per_s, scratch, guards, moved: false }
    }

    fn guard(&self, seq: u32) -> Option<u32> {
        self.guards.map(|g| g + seq)
    }

    /// Remove `seq`'s cells at `p0..p1` (`None`: to the end), and its guard's.
    fn rm(&mut self, seq: u32, p0: Option<u32>, p1: Option<u32>) -> bool {
        let ok = self.ctx.clear_kv_cache_seq(Some(seq), p0, p1).unwrap_or(false);
        if let Some(g) = self.guard(seq) {
            let _ = self.ctx.clear_kv_cache_seq(Some(g), p0, p1);
        }
        ok
    }

    /// Give `to` (and its guard) the cells `from` holds at `p0..p1`.
    fn cp(&mut self, from: u32, to: u32, p0: usize, p1: usize) -> bool {
        let (a, b) = (Some(p0 as u32), Some(p1 as u32));
        let ok = self.ctx.copy_kv_cache_seq(from as i32, to as i32, a, b).is_ok();
        if let Some(g) = self.guard(to) {
            let _ = self.ctx.copy_kv_cache_seq(from as i32, g as i32, a, b);
        }
        ok
    }
}

impl KvOps for Kv<'_, '_> {
    type Snapshot = SeqState;
    fn truncate(&mut self, seq: u32, pos: usize) -> bool {
        self.rm(seq, Some(pos as u32), None)
    }
    fn clear(&mut self, seq: u32) {
        self.rm(seq, None, None);
    }
    fn remove_range(&mut self, seq: u32, p0: usize, p1: usize) -> bool {
        p0 >= p1 || self.rm(seq, Some(p0 as u32), Some(p1 as u32))
    }
    fn shift(&mut self, seq: u32, p0: usize, p1: usize, delta: i64) -> bool {
        self.moved |= delta != 0;
        self.ctx.kv_cache_seq_add(seq as i32, Some(p0 as u32), Some(p1 as u32), delta as i32).is_ok()
    }
    // llama.cpp saves a sequence without its cells outside the sliding window, so a restored sequence could
    // only be appended to: with sliding-window layers there are no snapshots (decoding again is right).
    fn snapshot(&mut self, seq: u32) -> Option<(SeqState, usize)> {
        if self.guards.is_some() {
            return None;
        }
        let s = self.ctx.state_seq_get(seq as i32, LlamaStateSeqFlags::empty()).ok()?;
        let n = s.byte_len();
        Some((s, n))
    }
    fn restore(&mut self, seq: u32, snap: &SeqState) -> bool {
        self.ctx.state_seq_set(snap, seq as i32).is_ok()
    }
    // With one unified pool of cells, copying a range to another sequence only tags the cells: no KV data
    // moves, and the positions are per cell, so the shift applies to the parked run alone.
    fn park(&mut self, seq: u32, p0: usize, p1: usize, delta: i64) -> bool {
        let scratch = self.scratch;
        self.rm(scratch, None, None);
        self.cp(seq, scratch, p0, p1)
            && self.rm(seq, Some(p0 as u32), Some(p1 as u32))
            && (delta == 0 || self.shift(scratch, p0, p1, delta))
    }
    fn unpark(&mut self, seq: u32, p0: usize, p1: usize) -> bool {
        let ok = self.cp(self.scratch, seq, p0, p1);
        self.drop_parked();
        ok
    }
    fn drop_parked(&mut self) {
        let scratch = self.scratch;
        self.rm(scratch, None, None);
    }
    fn share(&mut self, from: u32, to: u32, p0: usize, p1: usize) -> bool {
        self.cp(from, to, p0, p1)
    }
    fn restore_is_cheaper(&self, bytes: usize, tokens: usize) -> bool {
        // A host-to-KV copy runs at memory speed (a conservative 2 GB/s); recomputing costs the measured rate.
        let copy_s = bytes as f64 / 2e9;
        let recompute_s = tokens as f64 / self.pp_tokens_per_s.max(1.0);
        copy_s < recompute_s
    }
}
