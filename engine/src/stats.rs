//! Counters that `lokal/stats` and the benchmark read.
use crate::model_info::ModelInfo;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DocStats {
    pub requests: u64,
    /// Served from the previous suggestion because the user typed its beginning (no model work).
    pub served_from_suggestion: u64,
    /// Completions computed ahead for the document as it would be after accepting the suggestion shown:
    /// started, computed to the end, dropped unused (stopped by a keystroke anywhere, or the document
    /// changed otherwise), and the requests they answered.
    pub prefetch_started: u64,
    pub prefetch_done: u64,
    pub prefetch_cancelled: u64,
    pub prefetch_used: u64,
    /// Requests that kept part of the KV cache / that had to start from nothing.
    pub hits: u64,
    pub misses: u64,
    /// Times the document's KV cells came back from host memory.
    pub restores: u64,
    /// KV cells the document's sequence holds now.
    pub tokens_held: usize,
    pub last_prompt_tokens: usize,
    pub last_reused_tokens: usize,
    /// Tokens decoded to process the last prompt (prompt minus what was reused).
    pub last_redecoded_tokens: usize,
    pub last_generated_tokens: usize,
    pub last_restored: bool,
    /// Of the reused tokens, those shifted into place from further on in the sequence.
    pub last_shifted_tokens: usize,
    /// Tokens of the workspace-context block at the head of the last prompt (0 without one).
    pub last_context_tokens: usize,
    pub last_ttft_ms: f64,
    pub last_total_ms: f64,
    pub last_prompt_ms: f64,
    pub last_gen_tokens_per_s: f64,
    /// Where the last request's time to first token went: matching the prompt against the cache (and
    /// parking a FIM suffix), each prompt pass, and the wait for the first sample.
    pub last_phases: Phases,
    /// Speculative decoding: draft tokens verified and accepted (their tokens kept by the generation, not
    /// ones that matched after a stop rule ended it) over all requests, and in the last one with
    /// its generation decodes (a batch each: the generated token and its drafts).
    pub drafted: u64,
    pub accepted: u64,
    pub last_drafted: usize,
    pub last_accepted: usize,
    pub last_gen_decodes: usize,
}

impl DocStats {
    pub(crate) fn record_speculation(&mut self, drafted: usize, accepted: usize, decodes: usize) {
        self.drafted += drafted as u64;
        self.accepted += accepted as u64;
        (self.last_drafted, self.last_accepted, self.last_gen_decodes) = (drafted, accepted, decodes);
    }
}

/// A request's time to first token, phase by phase (ms). Without `profileSync` a pass's time is the time to
/// submit it (llama_decode returns before a GPU finishes) and the GPU's work shows up in `first_sample_ms`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, rename_all = "camelCase")]
pub struct Phases {
    pub plan_ms: f64,
    /// One entry per prompt pass (llama_decode of up to 512 prompt tokens; a pending KV shift is applied by
    /// the pass after it).
    pub passes: Vec<Pass>,
    pub first_sample_ms: f64,
    /// Passes were followed by a synchronisation with the device, so their times are the device's.
    pub synced: bool,
    /// Cached cells were moved to new positions (a FIM suffix spliced after typing, chunks shifted into
    /// place): the first pass also paid llama.cpp's KV update.
    pub kv_shift: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, rename_all = "camelCase")]
pub struct Pass {
    pub tokens: usize,
    pub ms: f64,
}

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EngineStats {
    pub state: String,
    pub error: Option<String>,
    pub model: Option<ModelInfo>,
    pub cache_enabled: bool,
    pub sequences: u32,
    pub host_snapshot_bytes: usize,
    /// Model passes (prompt or generation decodes) since start: code that must not touch the model can be
    /// checked against this.
    pub decode_calls: u64,
    pub documents: BTreeMap<String, DocStats>,
    /// Jobs holding a sequence now (running or suspended by more urgent ones), and jobs waiting for one.
    pub running_jobs: usize,
    pub queued_jobs: usize,
    /// Whether running generations advance together in one batch (`batching`), or one at a time.
    pub batching: bool,
}
