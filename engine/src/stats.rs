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
    /// Of the reused tokens, those whose cells another document's sequence holds too (a shared context
    /// block, taken without decoding it again), and over all requests.
    pub last_shared_tokens: usize,
    pub shared_tokens: u64,
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
    /// KV memory of every occupied cell, counted once however many documents share it (a context block
    /// several documents start with), as llama.cpp serialises it.
    pub kv_bytes: usize,
    /// Where the model thread's time goes, step by step: llama_decode vs the host work around it.
    pub steps: StepStats,
    /// Context blocks held back while the user typed and decoded ahead once they paused (`contextHoldMs`),
    /// and documents with one still waiting for a pause.
    pub context_warms: u64,
    pub pending_warms: usize,
}

/// The model thread's steps (one llama_decode each) since the engine started: what the decode took and what
/// the host work around it took (everything else the thread did while jobs ran: starting jobs, building the
/// batch, picking tokens, answering). On a GPU llama_decode returns before the device is done and the wait
/// lands in the first logits read (`sample_ms`); on a CPU the split is exact.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct StepStats {
    pub steps: u64,
    pub decode_ms_p50: f64,
    pub decode_ms_mean: f64,
    pub host_ms_p50: f64,
    pub host_ms_mean: f64,
    /// The host work per step by part (means): starting jobs (prompt, tokenization, cache plan), building
    /// the batch, picking tokens off the logits (with stop rules and detokenization), answering finished
    /// jobs (post-processing, statistics, the reply), and the rest (the job channel, the scheduler).
    pub start_ms_mean: f64,
    pub batch_ms_mean: f64,
    pub sample_ms_mean: f64,
    pub finish_ms_mean: f64,
    pub other_ms_mean: f64,
    /// Of `start_ms_mean`: building the prompt (windows, tokenization), and the prefix cache's plan.
    pub prompt_ms_mean: f64,
    pub plan_ms_mean: f64,
    /// Not host work: the thread waited for a session it had just answered to ask again, so that its next
    /// keystroke joins this step instead of the one after (worker.rs, `Rejoin`).
    pub wait_ms_mean: f64,
    /// Batch occupancy: tokens and generations per decode.
    pub tokens_per_step: f64,
    pub gens_per_step: f64,
}

/// Steps kept for the medians: the latest ones.
const STEP_SAMPLES: usize = 1 << 14;

/// Accumulates [`StepStats`] on the model thread. Host time that passes without a decode (a job answered at
/// once) is carried into the next step's.
#[derive(Debug, Default)]
pub(crate) struct StepClock {
    samples: std::collections::VecDeque<(f32, f32)>,
    steps: u64,
    sums: [f64; 10],
    /// This step so far: decode, start, batch, sample, finish, of start prompt and plan, and wait (ms).
    now: [f64; 8],
    batch: (usize, usize),
    decoded: bool,
    tokens_gens: (u64, u64),
}

#[derive(Clone, Copy)]
pub(crate) enum Part {
    Decode,
    Start,
    Batch,
    Sample,
    Finish,
    Prompt,
    Plan,
    Wait,
}

impl StepClock {
    pub fn add(&mut self, part: Part, ms: f64) {
        self.now[part as usize] += ms;
    }

    /// This step's time in `part` so far.
    pub fn part(&self, part: Part) -> f64 {
        self.now[part as usize]
    }

    pub fn decoded(&mut self, tokens: usize, gens: usize) {
        self.decoded = true;
        self.batch.0 += tokens;
        self.batch.1 += gens;
    }

    /// The end of one turn of the model thread's loop that took `total_ms` (waiting for a job left out).
    pub fn end_turn(&mut self, total_ms: f64) {
        if !self.decoded {
            return;
        }
        let [decode, start, batch, sample, finish, prompt, plan, wait] = std::mem::take(&mut self.now);
        let host = (total_ms - decode - wait).max(0.0);
        let other = (host - start - batch - sample - finish).max(0.0);
        let (tokens, gens) = std::mem::take(&mut self.batch);
        self.decoded = false;
        self.steps += 1;
        for (s, v) in self.sums.iter_mut().zip([decode, start, batch, sample, finish, other, host, prompt, plan, wait])
        {
            *s += v;
        }
        if self.samples.len() == STEP_SAMPLES {
            self.samples.pop_front();
        }
        self.samples.push_back((host as f32, decode as f32));
        self.tokens_gens.0 += tokens as u64;
        self.tokens_gens.1 += gens as u64;
    }

    pub fn stats(&self) -> StepStats {
        let n = self.steps.max(1) as f64;
        let median = |f: fn(&(f32, f32)) -> f32| {
            let mut v: Vec<f32> = self.samples.iter().map(f).collect();
            v.sort_by(f32::total_cmp);
            v.get(v.len() / 2).copied().unwrap_or(0.0) as f64
        };
        let [decode, start, batch, sample, finish, other, host, prompt, plan, wait] = self.sums.map(|s| s / n);
        StepStats {
            steps: self.steps,
            decode_ms_p50: median(|s| s.1),
            decode_ms_mean: decode,
            host_ms_p50: median(|s| s.0),
            host_ms_mean: host,
            start_ms_mean: start,
            batch_ms_mean: batch,
            sample_ms_mean: sample,
            finish_ms_mean: finish,
            other_ms_mean: other,
            prompt_ms_mean: prompt,
            plan_ms_mean: plan,
            wait_ms_mean: wait,
            tokens_per_step: self.tokens_gens.0 as f64 / n,
            gens_per_step: self.tokens_gens.1 as f64 / n,
        }
    }
}
