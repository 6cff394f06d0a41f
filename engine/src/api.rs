//! The engine's public request and answer types: what the server sends in and gets back, no protocol types
//! and no llama.cpp types.
use crate::model_info::ModelInfo;

/// A completion request in engine terms: text around the cursor, no protocol types.
#[derive(Debug, Clone)]
pub struct CompletionRequest {
    /// Cache key: one per open document (the server uses the URI).
    pub doc: String,
    /// Document text from line `first_line` up to the cursor.
    pub before: String,
    pub first_line: u32,
    /// Document text from the cursor to the end (or a generous window of it).
    pub after: String,
    pub max_tokens: Option<usize>,
    pub max_lines: Option<usize>,
    /// Workspace context for the local model, placed before the file's prefix. Local-only data: a remote
    /// engine never sends it.
    pub context: Option<ContextBlock>,
}

/// An assembled context block ([`crate::context::WorkspaceContext::assemble`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextBlock {
    pub text: String,
    /// Repository-level special tokens in `text` (Qwen's `<|file_sep|>`): tokenized with special tokens
    /// parsed and placed after BOS, before the FIM prefix token. Otherwise plain text (comments) at the
    /// start of the prefix.
    pub special: bool,
    /// Workspace names that continue the word being typed ([`crate::names`]): the first generated tokens
    /// may follow one of them.
    pub names: crate::names::Names,
}

#[derive(Debug, Clone, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Timings {
    pub queue_ms: f64,
    pub prompt_ms: f64,
    pub ttft_ms: f64,
    pub total_ms: f64,
    pub prompt_tokens: usize,
    pub reused_tokens: usize,
    pub redecoded_tokens: usize,
    pub generated_tokens: usize,
    pub gen_tokens_per_s: f64,
    pub restored: bool,
    pub from_suggestion: bool,
    /// Answered from a completion computed ahead while the user looked at the previous suggestion.
    pub from_prefetch: bool,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Completion {
    /// `None`: the model produced nothing worth showing.
    pub text: Option<String>,
    pub timings: Timings,
}

/// Free-form generation for instructions (code actions, design docs).
#[derive(Debug, Clone)]
pub struct GenerateRequest {
    /// Cache key, so repeated actions on one document reuse their prompt prefix.
    pub key: String,
    pub system: Option<String>,
    pub user: String,
    /// Text the answer starts with (e.g. an opening code fence), appended after the assistant turn opens.
    pub answer_prefix: String,
    pub max_tokens: usize,
    /// Generation stops when the text contains one of these; the stop string is not returned.
    pub stop: Vec<String>,
    /// 0: greedy. Above 0: sampled from the softmax at this temperature, reproducibly from `seed`, so
    /// best-of-N candidates differ from each other.
    pub temperature: f32,
    pub seed: u64,
    /// Where the job stands in the model thread's queue against others (sched.rs).
    pub priority: crate::sched::Priority,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Generation {
    pub text: String,
    pub timings: Timings,
}

#[derive(Debug, Clone)]
pub enum EngineEvent {
    Loading { path: String },
    Progress(f32),
    Ready(Box<ModelInfo>),
    Failed(String),
}

/// Shared, cheap view of the engine's state for the async side.
#[derive(Debug, Clone)]
pub enum EngineState {
    Loading,
    Ready(Box<ModelInfo>),
    Failed(String),
}
