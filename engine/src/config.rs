//! Engine settings. The server fills them from `initializationOptions` / `workspace/configuration`.
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

pub const DEFAULT_MODEL_FILE: &str = "gemma-3-270m-q4_k_m.gguf";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct EngineConfig {
    /// GGUF file to load; `None` means the embedded default fetched by `scripts/fetch-model.sh`.
    pub model_path: Option<PathBuf>,
    /// Documents that keep their KV cells resident at once (llama.cpp sequences).
    pub sequences: u32,
    /// KV cells each sequence may use; the context holds `sequences * ctx_per_sequence` cells.
    pub ctx_per_sequence: u32,
    pub prefix_tokens: usize,
    pub suffix_tokens: usize,
    pub max_tokens: usize,
    pub max_lines: usize,
    /// CPU threads for llama.cpp; `None` uses every core.
    pub threads: Option<i32>,
    /// Layers to offload to a GPU; `None` offloads all when a GPU backend is compiled in. Clamped to the
    /// model's real layer count.
    pub gpu_layers: Option<u32>,
    /// Turn the per-document prefix cache off (for benchmarks that compare against it).
    pub cache_enabled: bool,
    /// Host memory for KV snapshots of documents that lost their sequence.
    pub host_cache_mb: usize,
    /// Minimum run of cached tokens worth shifting into place when the prompt window moved (0: off).
    pub reuse_min_chunk: usize,
    /// Wait for the device after each prompt pass so `lastPhases` shows where a request's time goes (`lokal
    /// bench --profile`). Costs the overlap of a pass's graph building with the previous pass's GPU work.
    pub profile_sync: bool,
    /// Prompt layout for prefix-suffix-middle FIM families (`fimLayout`: "native" or "infill").
    pub fim_layout: crate::fim::FimLayout,
    /// Context from the rest of the workspace (definitions, visited chunks, recent edits) in the prompt.
    pub context_enabled: bool,
    /// Tokens of the prompt the context block may take (out of `prefix_tokens`).
    pub context_tokens: usize,
    /// Advance every running generation in one shared decode per token (continuous batching); off, the most
    /// urgent job decodes alone and the others wait suspended (the one-at-a-time baseline for benchmarks).
    pub batching: bool,
    /// While a keystroke's completion runs, long jobs (actions, design documents) skip the steps and resume
    /// after it; off, they ride along in its batch (cheap on a GPU, a cost per step on a CPU).
    pub long_jobs_yield: bool,
    /// After answering a completion, compute at background priority the next one, for the document as it
    /// will be once the suggestion is accepted (`prefetch`); any keystroke stops it.
    pub prefetch: bool,
    /// Code actions and design documents one session (editor window) may run at once; the rest queue.
    pub long_jobs_per_session: usize,
    /// While a document's completions come closer together than this (ms: the user is typing on), a changed
    /// context block waits and the one its cells hold is used; once the model thread has been idle this
    /// long the new block is decoded ahead (`contextHoldMs`, 0: every change is taken at once).
    pub context_hold_ms: u64,
    /// Speculative decoding under greedy sampling (`speculative`: "off", "auto" or "lookup").
    pub speculative: crate::speculate::Speculative,
    /// Most draft tokens verified with each generated token (`draftMax`).
    pub draft_max: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            model_path: None,
            sequences: 8,
            ctx_per_sequence: 2048,
            prefix_tokens: 1024,
            suffix_tokens: 128,
            max_tokens: 64,
            max_lines: 8,
            threads: None,
            gpu_layers: None,
            cache_enabled: true,
            host_cache_mb: 512,
            reuse_min_chunk: 64,
            profile_sync: false,
            fim_layout: crate::fim::FimLayout::Native,
            // On: `lokal eval` with the embedded model, cross-file cases 0/6 -> 6/6 exact, for 1.05-1.09x a
            // keystroke's time to first token on a GPU (docs/performance.md, issue 17).
            context_enabled: true,
            context_tokens: 384,
            batching: true,
            long_jobs_yield: true,
            long_jobs_per_session: 2,
            // A typing pace is a key every 100-300 ms; a pause to read or think is longer.
            context_hold_ms: 1000,
            prefetch: true,
            // Off until a quiet run shows it pays on CPU: there a verified position costs about half a decode
            // (Gemma 3's 262k-token output layer), and the trace's drafts are accepted 28-36% of the time
            // (docs/performance.md). On a GPU a position costs next to nothing: "auto" or "lookup".
            speculative: crate::speculate::Speculative::Off,
            draft_max: 8,
        }
    }
}

impl EngineConfig {
    /// The model file: `model_path` (modelPath), else `LOKAL_MODEL`, else `lokal models use`'s choice, else
    /// the embedded default (the order lives in [`crate::catalog::choice`]).
    pub fn resolved_model_path(&self) -> PathBuf {
        crate::catalog::choice::resolve(self.model_path.as_deref()).0
    }

    /// Settings that cannot work together, reported before anything is loaded.
    pub fn validate(&self) -> Result<(), String> {
        if self.sequences == 0 || self.sequences > 64 {
            return Err(format!("sequences must be 1..=64, got {}", self.sequences));
        }
        let need = self.prefix_tokens + self.suffix_tokens + self.max_tokens + 8;
        if (self.ctx_per_sequence as usize) < need {
            return Err(format!(
                "ctxPerSequence ({}) must hold prefixTokens + suffixTokens + maxTokens + 8 = {need}",
                self.ctx_per_sequence
            ));
        }
        Ok(())
    }
}

/// An XDG base directory: `$var`, else `~/<home_rel>`, else the temp dir (no home at all).
pub fn xdg_dir(var: &str, home_rel: &str) -> PathBuf {
    std::env::var_os(var)
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(home_rel)))
        .unwrap_or_else(std::env::temp_dir)
}

/// `$LOKAL_MODEL_DIR`, else `$XDG_CACHE_HOME/lokal/models`, else `~/.cache/lokal/models` (the same rule as
/// scripts/fetch-model.sh).
pub fn default_model_dir() -> PathBuf {
    match std::env::var_os("LOKAL_MODEL_DIR") {
        Some(d) => PathBuf::from(d),
        None => xdg_dir("XDG_CACHE_HOME", ".cache").join("lokal").join("models"),
    }
}
