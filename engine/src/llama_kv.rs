//! The prefix cache's operations ([`KvOps`]) on a llama.cpp context's KV cells. The cache itself
//! (prefix_cache.rs) decides what to keep; this only carries it out, so the cache can be tested on fakes.
use crate::prefix_cache::KvOps;
use llama_cpp_2::context::session::{LlamaStateSeqFlags, SeqState};
use llama_cpp_2::context::LlamaContext;

pub(crate) struct Kv<'a, 'm> {
    ctx: &'a mut LlamaContext<'m>,
    pp_tokens_per_s: f64,
    scratch: u32,
    /// Cells changed position (llama_memory_seq_add): the next decode first re-rotates the keys of every
    /// cell and llama.cpp then re-reserves its worst-case graph (docs/performance.md); the phases show such
    /// requests apart.
    pub(crate) moved: bool,
}

impl<'a, 'm> Kv<'a, 'm> {
    /// `pp_tokens_per_s`: the measured prompt rate, to weigh a snapshot restore against recomputing;
    /// `scratch`: the sequence that holds a parked FIM suffix.
    pub(crate) fn new(ctx: &'a mut LlamaContext<'m>, pp_tokens_per_s: f64, scratch: u32) -> Self {
        Self { ctx, pp_tokens_per_s, scratch, moved: false }
    }
}

impl KvOps for Kv<'_, '_> {
    type Snapshot = SeqState;
    fn truncate(&mut self, seq: u32, pos: usize) -> bool {
        self.ctx.clear_kv_cache_seq(Some(seq), Some(pos as u32), None).unwrap_or(false)
    }
    fn clear(&mut self, seq: u32) {
        let _ = self.ctx.clear_kv_cache_seq(Some(seq), None, None);
    }
    fn remove_range(&mut self, seq: u32, p0: usize, p1: usize) -> bool {
        p0 >= p1 || self.ctx.clear_kv_cache_seq(Some(seq), Some(p0 as u32), Some(p1 as u32)).unwrap_or(false)
    }
    fn shift(&mut self, seq: u32, p0: usize, p1: usize, delta: i64) -> bool {
        self.moved |= delta != 0;
        self.ctx.kv_cache_seq_add(seq as i32, Some(p0 as u32), Some(p1 as u32), delta as i32).is_ok()
    }
    fn snapshot(&mut self, seq: u32) -> Option<(SeqState, usize)> {
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
        let (s, x) = (seq as i32, self.scratch as i32);
        let _ = self.ctx.clear_kv_cache_seq(Some(self.scratch), None, None);
        self.ctx.copy_kv_cache_seq(s, x, Some(p0 as u32), Some(p1 as u32)).is_ok()
            && self.ctx.clear_kv_cache_seq(Some(seq), Some(p0 as u32), Some(p1 as u32)).unwrap_or(false)
            && (delta == 0 || self.shift(self.scratch, p0, p1, delta))
    }
    fn unpark(&mut self, seq: u32, p0: usize, p1: usize) -> bool {
        let ok = self.ctx.copy_kv_cache_seq(self.scratch as i32, seq as i32, Some(p0 as u32), Some(p1 as u32)).is_ok();
        self.drop_parked();
        ok
    }
    fn drop_parked(&mut self) {
        let _ = self.ctx.clear_kv_cache_seq(Some(self.scratch), None, None);
    }
    fn share(&mut self, from: u32, to: u32, p0: usize, p1: usize) -> bool {
        self.ctx.copy_kv_cache_seq(from as i32, to as i32, Some(p0 as u32), Some(p1 as u32)).is_ok()
    }
    fn restore_is_cheaper(&self, bytes: usize, tokens: usize) -> bool {
        // A host-to-KV copy runs at memory speed (a conservative 2 GB/s); recomputing costs the measured rate.
        let copy_s = bytes as f64 / 2e9;
        let recompute_s = tokens as f64 / self.pp_tokens_per_s.max(1.0);
        copy_s < recompute_s
    }
}
