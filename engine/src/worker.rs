//! The model thread. llama.cpp contexts are not `Send`, so one OS thread loads the model, owns the context
//! and serves jobs from a channel, one at a time. Cancellation reaches it through llama.cpp's abort
//! callback (checked inside a decode) and between decode steps.
use crate::cancel::CancelToken;
use crate::config::EngineConfig;
use crate::error::{EngineError, Result};
use crate::fim::{self, PromptFormat};
use crate::model_info::{FimTokens, ModelInfo, SpecialToken, Token};
use crate::postprocess::{self, StopRules};
use crate::prefix_cache::{CacheConfig, KvOps, PrefixCache};
use crate::stats::{DocStats, EngineStats};
use crate::window;
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::context::session::{LlamaStateSeqFlags, SeqState};
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::{LlamaChatMessage, LlamaModel};
use llama_cpp_2::token::LlamaToken;
use llama_cpp_2::DecodeError;
use std::collections::HashMap;
use std::ffi::c_void;
use std::num::NonZeroU32;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicPtr, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

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

pub(crate) type Reply<T> = oneshot::Sender<Result<T>>;

pub(crate) enum Job {
    Complete { req: CompletionRequest, cancel: CancelToken, queued: Instant, reply: Reply<Completion> },
    Generate { req: GenerateRequest, cancel: CancelToken, queued: Instant, reply: Reply<Generation> },
    Tokenize { text: String, reply: Reply<usize> },
    Close { doc: String },
    Stats { reply: oneshot::Sender<EngineStats> },
    SetCacheEnabled(bool),
    Reload(Box<EngineConfig>),
    Shutdown,
}

/// Shared, cheap view of the engine's state for the async side.
#[derive(Debug, Clone)]
pub enum EngineState {
    Loading,
    Ready(Box<ModelInfo>),
    Failed(String),
}

fn backend() -> std::result::Result<&'static LlamaBackend, String> {
    static BACKEND: OnceLock<std::result::Result<LlamaBackend, String>> = OnceLock::new();
    BACKEND
        .get_or_init(|| {
            // llama.cpp logs go to tracing (stderr or a file), never stdout, which is the LSP channel.
            llama_cpp_2::send_logs_to_tracing(llama_cpp_2::LogOptions::default());
            LlamaBackend::init().map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(Clone::clone)
}

pub(crate) fn run(rx: Receiver<Job>, mut cfg: EngineConfig, state: Arc<RwLock<EngineState>>, events: Arc<dyn Fn(EngineEvent) + Send + Sync>) {
    loop {
        *state.write().unwrap() = EngineState::Loading;
        let next = match load(&cfg, &events) {
            Ok(model) => {
                let info = model_info(&model, &cfg);
                *state.write().unwrap() = EngineState::Ready(Box::new(info.clone()));
                events(EngineEvent::Ready(Box::new(info.clone())));
                serve_model(&rx, &cfg, &model, info)
            }
            Err(e) => {
                tracing::error!("model load failed: {e}");
                *state.write().unwrap() = EngineState::Failed(e.clone());
                events(EngineEvent::Failed(e.clone()));
                serve_failed(&rx, &e)
            }
        };
        match next {
            Some(new_cfg) => cfg = new_cfg,
            None => return,
        }
    }
}

/// With no model, every request gets the reason; the server keeps running and a reload can fix it.
fn serve_failed(rx: &Receiver<Job>, why: &str) -> Option<EngineConfig> {
    let err = || EngineError::ModelUnavailable(why.to_string());
    while let Ok(job) = rx.recv() {
        match job {
            Job::Complete { reply, .. } => drop(reply.send(Err(err()))),
            Job::Generate { reply, .. } => drop(reply.send(Err(err()))),
            Job::Tokenize { reply, .. } => drop(reply.send(Err(err()))),
            Job::Stats { reply } => {
                drop(reply.send(EngineStats { state: "failed".into(), error: Some(why.into()), ..Default::default() }))
            }
            Job::Close { .. } | Job::SetCacheEnabled(_) => {}
            Job::Reload(cfg) => return Some(*cfg),
            Job::Shutdown => return None,
        }
    }
    None
}

fn load(cfg: &EngineConfig, events: &Arc<dyn Fn(EngineEvent) + Send + Sync>) -> std::result::Result<LlamaModel, String> {
    cfg.validate()?;
    let path = cfg.resolved_model_path();
    events(EngineEvent::Loading { path: path.display().to_string() });
    check_gguf(&path)?;
    let n_layer = gguf_layer_count(&path);
    let backend = backend()?;
    // Asked at run time, not from our cargo features: with the `dynamic-link` build the GPU backend comes
    // from the llama.cpp libraries found at run time.
    let gpu = backend.supports_gpu_offload();
    // llama.cpp counts the output layer as one more offloadable layer; never ask for more than exist.
    let max_layers = n_layer.map(|n| n + 1).unwrap_or(0);
    let layers = if gpu { cfg.gpu_layers.unwrap_or(max_layers).min(max_layers) } else { 0 };
    let ev = events.clone();
    let params = LlamaModelParams::default().with_n_gpu_layers(layers).with_progress_callback(move |p| {
        ev(EngineEvent::Progress(p));
        true
    });
    let started = Instant::now();
    let model = LlamaModel::load_from_file(backend, &path, &params)
        .map_err(|e| format!("llama.cpp could not load {}: {e}", path.display()))?;
    tracing::info!(path = %path.display(), ms = started.elapsed().as_millis() as u64, "model loaded");
    Ok(model)
}

/// Fail early with a readable message instead of letting llama.cpp print to stderr and return null.
fn check_gguf(path: &Path) -> std::result::Result<(), String> {
    use std::io::Read;
    let mut f = std::fs::File::open(path).map_err(|e| {
        format!(
            "model file {}: {e}. Fetch the default model with scripts/fetch-model.sh or set lokal.modelPath",
            path.display()
        )
    })?;
    let mut magic = [0u8; 4];
    f.read_exact(&mut magic).map_err(|_| format!("model file {} is too short to be a GGUF file", path.display()))?;
    if &magic != b"GGUF" {
        return Err(format!("model file {} is not a GGUF file (bad magic)", path.display()));
    }
    if llama_cpp_2::gguf::GgufContext::from_file(path).is_none() {
        return Err(format!("model file {} is a corrupt or truncated GGUF file", path.display()));
    }
    // ggml reads only the header; a file cut inside its tensor data (an interrupted download) passes that,
    // and llama.cpp's loader then fails with no message we can show.
    let len = f.metadata().map(|m| m.len()).map_err(|e| format!("model file {}: {e}", path.display()))?;
    match crate::catalog::gguf_meta::read_header(path) {
        Ok(h) if len < h.data_end() => Err(format!(
            "model file is truncated: {len} bytes, expected at least {} ({}; download it again)",
            h.data_end(),
            path.display()
        )),
        Ok(_) => Ok(()),
        Err(e) => {
            // ggml accepted the header, so leave the verdict to llama.cpp.
            tracing::warn!("could not check the length of {}: {e}", path.display());
            Ok(())
        }
    }
}

fn gguf_layer_count(path: &Path) -> Option<u32> {
    let g = llama_cpp_2::gguf::GgufContext::from_file(path)?;
    let arch_idx = g.find_key("general.architecture");
    if arch_idx < 0 {
        return None;
    }
    let arch = g.val_str(arch_idx)?.to_string();
    let idx = g.find_key(&format!("{arch}.block_count"));
    (idx >= 0).then(|| g.val_u32(idx))
}

/// Whether this build of llama.cpp can offload layers to a GPU (CUDA, Metal, Vulkan).
pub fn gpu_offload_supported() -> bool {
    backend().map(|b| b.supports_gpu_offload()).unwrap_or(false)
}

/// Read a GGUF's metadata and vocabulary (no weights) and report what the engine would make of it: the
/// model catalog and the template tests use this.
pub fn inspect(path: &Path) -> std::result::Result<(ModelInfo, PromptFormat), String> {
    check_gguf(path)?;
    let backend = backend()?;
    let params = LlamaModelParams::default().with_vocab_only(true);
    let model = LlamaModel::load_from_file(backend, path, &params)
        .map_err(|e| format!("llama.cpp could not read {}: {e}", path.display()))?;
    let cfg = EngineConfig { model_path: Some(path.to_path_buf()), ..Default::default() };
    let info = model_info(&model, &cfg);
    let format = prompt_format(&model, &info);
    Ok((info, format))
}

/// The ids of the vocabulary's tokens whose text is one of `texts`, in one pass over the vocabulary.
fn tokens_by_text(model: &LlamaModel, texts: &[&'static str]) -> HashMap<&'static str, Token> {
    let v = model.vocab();
    let mut found = HashMap::new();
    for t in v.tokens() {
        let Some(text) = v.text(t) else { continue };
        let Ok(text) = text.to_str() else { continue };
        if let Some(&known) = texts.iter().find(|k| **k == text) {
            found.entry(known).or_insert(t.0);
        }
    }
    found
}

/// The template for the model's family, with the family's end-of-fill tokens that its vocabulary has.
fn prompt_format(model: &LlamaModel, info: &ModelInfo) -> PromptFormat {
    let format = PromptFormat::detect(info);
    let Some(family) = format.family() else { return format };
    let found = tokens_by_text(model, family.stop_texts());
    format.with_family_stops(|text| found.get(text).copied())
}

fn special(model: &LlamaModel, t: LlamaToken) -> Option<SpecialToken> {
    if t.0 < 0 {
        return None;
    }
    let text = String::from_utf8_lossy(&model.vocab().token_to_piece(t, true, None)).into_owned();
    Some(SpecialToken { id: t.0, text })
}

/// The FIM tokens llama.cpp reports (from id keys, or found by texts it knows), else a known family's set
/// found by text (Codestral's `[PREFIX]`/`[SUFFIX]`/`[MIDDLE]` are not in llama.cpp's list).
fn fim_tokens(model: &LlamaModel) -> FimTokens {
    let v = model.vocab();
    let mut fim = FimTokens {
        pre: special(model, v.fim_pre()),
        suf: special(model, v.fim_suf()),
        mid: special(model, v.fim_mid()),
        pad: special(model, v.fim_pad()),
        rep: special(model, v.fim_rep()),
        sep: special(model, v.fim_sep()),
    };
    if !fim.is_complete() {
        let texts: Vec<&'static str> = fim::FIM_TOKEN_TEXTS.iter().flatten().copied().collect();
        let found = tokens_by_text(model, &texts);
        fim::fill_fim_by_text(&mut fim, |text| found.get(text).copied());
    }
    fim
}

fn model_info(model: &LlamaModel, cfg: &EngineConfig) -> ModelInfo {
    let v = model.vocab();
    let arch = model.meta_val_str("general.architecture").unwrap_or_default();
    let gpu = backend().map(|b| b.supports_gpu_offload()).unwrap_or(false);
    let n_layer = model.n_layer();
    ModelInfo {
        path: cfg.resolved_model_path().display().to_string(),
        name: model.meta_val_str("general.name").ok(),
        sliding_window: model.meta_val_str(&format!("{arch}.attention.sliding_window")).ok().and_then(|s| s.parse().ok()),
        architecture: arch,
        n_layer,
        n_ctx_train: model.n_ctx_train(),
        n_params: model.n_params(),
        size_bytes: model.size(),
        n_vocab: model.n_vocab(),
        bos: (v.bos().0 >= 0).then_some(v.bos().0),
        add_bos: v.should_add_bos(),
        fim: fim_tokens(model),
        chat_template: model.chat_template(None).ok().and_then(|t| t.to_string().ok()),
        gpu_layers: if gpu { cfg.gpu_layers.unwrap_or(n_layer + 1).min(n_layer + 1) } else { 0 },
    }
}

/// Index of the largest logit, the first one on ties (as llama.cpp's greedy sampler). Lane-wise maxima over
/// fixed chunks let the compiler vectorise the scan; a NaN logit is never chosen.
pub(crate) fn argmax(logits: &[f32]) -> usize {
    const L: usize = 16;
    let mut lanes = [f32::NEG_INFINITY; L];
    let chunks = logits.chunks_exact(L);
    let rest = chunks.remainder();
    for c in chunks {
        for i in 0..L {
            lanes[i] = if c[i] > lanes[i] { c[i] } else { lanes[i] };
        }
    }
    let mut max = lanes.iter().copied().fold(f32::NEG_INFINITY, |a, b| if b > a { b } else { a });
    for &v in rest {
        if v > max {
            max = v;
        }
    }
    logits.iter().position(|&v| v == max).unwrap_or(0)
}

/// Changed tokens a spliced FIM suffix may not have seen before it is decoded fresh: a line or two of typing.
const TAIL_MAX_STALE: usize = 48;

/// Where llama.cpp's abort callback looks for the current request's cancellation flag.
struct AbortSlot(AtomicPtr<AtomicBool>);

extern "C" fn abort_callback(data: *mut c_void) -> bool {
    // SAFETY: `data` is the AbortSlot boxed in `serve_model`, which outlives the context.
    let slot = unsafe { &*(data as *const AbortSlot) };
    let flag = slot.0.load(Ordering::Acquire);
    // SAFETY: a non-null flag points into a CancelToken that the running job keeps alive.
    !flag.is_null() && unsafe { (*flag).load(Ordering::Acquire) }
}

/// llama-cpp-2 0.1.160 has no safe setter for the abort callback; the context parameters carry it, so we set
/// the raw field. `LlamaContextParams` is a one-field wrapper around `llama_context_params`; `transmute`
/// refuses to compile if the sizes ever differ.
fn with_abort_callback(params: LlamaContextParams, slot: *const AbortSlot) -> LlamaContextParams {
    // SAFETY: same size (checked by transmute) and the only field is the raw struct.
    let mut raw: llama_cpp_sys_2::llama_context_params = unsafe { std::mem::transmute(params) };
    raw.abort_callback = Some(abort_callback);
    raw.abort_callback_data = slot as *mut c_void;
    unsafe { std::mem::transmute(raw) }
}

fn serve_model(rx: &Receiver<Job>, cfg: &EngineConfig, model: &LlamaModel, info: ModelInfo) -> Option<EngineConfig> {
    let slot = Box::new(AbortSlot(AtomicPtr::new(std::ptr::null_mut())));
    let threads = cfg.threads.unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get() as i32).unwrap_or(4));
    let n_ctx = cfg.sequences * cfg.ctx_per_sequence;
    let params = LlamaContextParams::default()
        .with_n_ctx(NonZeroU32::new(n_ctx))
        .with_n_batch(512)
        .with_n_ubatch(512)
        // One more than the documents' sequences: the scratch sequence that holds a FIM suffix while the
        // tokens typed before it are decoded (prefix_cache.rs).
        .with_n_seq_max(cfg.sequences + 1)
        // One pool of cells for all sequences: a document uses what its prompt needs, not n_ctx/sequences.
        .with_kv_unified(true)
        // Sliding-window models otherwise drop cells older than the window, and removing cells past an
        // edit could then not be undone by re-decoding the tail: reuse would silently degrade to zero.
        .with_swa_full(true)
        .with_n_threads(threads)
        .with_n_threads_batch(threads);
    let params = with_abort_callback(params, &*slot);
    let ctx = match model.new_context(backend().ok()?, params) {
        Ok(c) => c,
        Err(e) => return serve_failed(rx, &format!("could not create a context of {n_ctx} cells: {e}")),
    };
    let mut s = Session::new(model, ctx, cfg, info, &slot);
    loop {
        let job = match rx.recv_timeout(Duration::from_secs(3600)) {
            Ok(j) => j,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => return None,
        };
        match job {
            Job::Complete { req, cancel, queued, reply } => {
                let r = s.complete(&req, &cancel, queued);
                let _ = reply.send(r);
            }
            Job::Generate { req, cancel, queued, reply } => {
                let r = s.generate(&req, &cancel, queued);
                let _ = reply.send(r);
            }
            Job::Tokenize { text, reply } => {
                let _ = reply.send(Ok(s.tokenize(&text).len()));
            }
            Job::Close { doc } => s.close(&doc),
            Job::Stats { reply } => {
                let _ = reply.send(s.stats());
            }
            Job::SetCacheEnabled(on) => s.cache.set_enabled(on),
            Job::Reload(cfg) => return Some(*cfg),
            Job::Shutdown => return None,
        }
    }
}

struct Session<'m, 's> {
    model: &'m LlamaModel,
    ctx: LlamaContext<'m>,
    cfg: EngineConfig,
    info: ModelInfo,
    format: PromptFormat,
    cache: PrefixCache<String, SeqState>,
    batch: LlamaBatch<'static>,
    abort: &'s AbortSlot,
    docs: HashMap<String, DocStats>,
    anchors: HashMap<String, u32>,
    /// Measured prompt processing rate, for deciding whether restoring a snapshot beats recomputing.
    pp_tokens_per_s: f64,
    decode_calls: u64,
}

/// The prefix cache's view of the llama.cpp context.
struct Kv<'a, 'm> {
    ctx: &'a mut LlamaContext<'m>,
    pp_tokens_per_s: f64,
    scratch: u32,
    /// Cells changed position (llama_memory_seq_add): the next decode first re-rotates the keys of every
    /// cell and llama.cpp then re-reserves its worst-case graph (docs/performance.md); the phases show such
    /// requests apart.
    moved: bool,
}

impl<'a, 'm> Kv<'a, 'm> {
    fn new(ctx: &'a mut LlamaContext<'m>, pp_tokens_per_s: f64, scratch: u32) -> Self {
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
    fn restore_is_cheaper(&self, bytes: usize, tokens: usize) -> bool {
        // A host-to-KV copy runs at memory speed (a conservative 2 GB/s); recomputing costs the measured rate.
        let copy_s = bytes as f64 / 2e9;
        let recompute_s = tokens as f64 / self.pp_tokens_per_s.max(1.0);
        copy_s < recompute_s
    }
}

enum Stop<'a> {
    Completion(&'a StopRules),
    Strings(&'a [String]),
}

struct GenOut {
    text: String,
    generated: usize,
    ttft: Duration,
    /// From the first sampled token to the last: `steps` decode-and-sample rounds. The first sample is not in
    /// it, since it waits for the prompt's GPU work to finish (llama_decode returns before the GPU does).
    gen_time: Duration,
    steps: usize,
    /// The prompt passes (tokens, time) and the wait from the last one to the first sample.
    passes: Vec<crate::stats::Pass>,
    first_sample: Duration,
}

impl GenOut {
    fn tokens_per_s(&self) -> f64 {
        let g = self.gen_time.as_secs_f64();
        if self.steps > 0 && g > 0.0 {
            self.steps as f64 / g
        } else {
            0.0
        }
    }
}

impl<'m, 's> Session<'m, 's> {
    fn new(model: &'m LlamaModel, ctx: LlamaContext<'m>, cfg: &EngineConfig, info: ModelInfo, abort: &'s AbortSlot) -> Self {
        let format = prompt_format(model, &info);
        tracing::info!(family = ?format.family(), arch = %info.architecture, "prompt format");
        let cache = PrefixCache::new(CacheConfig {
            sequences: cfg.sequences,
            enabled: cfg.cache_enabled,
            host_budget: cfg.host_cache_mb * 1024 * 1024,
            min_snapshot_tokens: 32,
            reuse_min_chunk: cfg.reuse_min_chunk,
            // Approximate reuse is one switch: `reuseMinChunk: 0` turns off chunk shifting and tail splicing.
            tail_max_stale: if cfg.reuse_min_chunk > 0 { TAIL_MAX_STALE } else { 0 },
        });
        Self {
            model,
            ctx,
            cfg: cfg.clone(),
            info,
            format,
            cache,
            batch: LlamaBatch::new(512, 1),
            abort,
            docs: HashMap::new(),
            anchors: HashMap::new(),
            pp_tokens_per_s: 300.0,
            decode_calls: 0,
        }
    }

    fn tokenize(&self, text: &str) -> Vec<Token> {
        // parse_special = false: code that contains "<|fim_prefix|>" must stay text, not become a control token.
        self.model.vocab().tokenize(text.as_bytes(), false, false).into_iter().map(|t| t.0).collect()
    }

    fn count(&self, text: &str) -> usize {
        if text.is_empty() {
            0
        } else {
            self.model.vocab().tokenize(text.as_bytes(), false, false).len()
        }
    }

    fn bos(&self) -> Option<Token> {
        if self.info.add_bos {
            self.info.bos
        } else {
            None
        }
    }

    fn completion_prompt(&mut self, req: &CompletionRequest) -> Vec<Token> {
        let count = |t: &str| self.count(t);
        let prev = self.anchors.get(&req.doc).copied();
        let w = window::choose_prefix(&req.before, req.first_line, prev, self.cfg.prefix_tokens, &count);
        let mut prefix = self.tokenize(&req.before[w.start_byte..]);
        if prefix.len() > self.cfg.prefix_tokens {
            prefix.drain(..prefix.len() - self.cfg.prefix_tokens);
        }
        let suffix = if self.format.uses_suffix() {
            let end = window::choose_suffix(&req.after, self.cfg.suffix_tokens, &count);
            let mut s = self.tokenize(&req.after[..end]);
            s.truncate(self.cfg.suffix_tokens);
            s
        } else {
            Vec::new()
        };
        self.anchors.insert(req.doc.clone(), w.anchor_line);
        let mut prompt = self.format.assemble(self.bos(), &prefix, &suffix);
        if prompt.is_empty() {
            // An empty document: give the model at least a newline to continue from.
            prompt = self.tokenize("\n");
        }
        prompt
    }

    fn complete(&mut self, req: &CompletionRequest, cancel: &CancelToken, queued: Instant) -> Result<Completion> {
        let start = Instant::now();
        if cancel.is_cancelled() {
            return Err(EngineError::Cancelled);
        }
        let prompt = self.completion_prompt(req);
        let max_tokens = req.max_tokens.unwrap_or(self.cfg.max_tokens).clamp(1, 512);
        let rules = StopRules::new(
            &req.after,
            req.max_lines.unwrap_or(self.cfg.max_lines),
            postprocess::is_mid_line(&req.after),
        );
        let stop_ids = self.format.stop_ids().to_vec();
        let (out, plan_keep, restored) =
            self.run(&req.doc, prompt.clone(), max_tokens, &stop_ids, Stop::Completion(&rules), cancel)?;
        let text = postprocess::finalize(&out.text, &req.after, &rules);
        let t = self.timings(queued, start, &prompt, plan_keep, restored, &out);
        Ok(Completion { text, timings: t })
    }

    fn generate(&mut self, req: &GenerateRequest, cancel: &CancelToken, queued: Instant) -> Result<Generation> {
        let start = Instant::now();
        if cancel.is_cancelled() {
            return Err(EngineError::Cancelled);
        }
        let text = self.chat_prompt(req.system.as_deref(), &req.user) + &req.answer_prefix;
        // Templates contain control tokens by design, so this tokenization parses them.
        let mut prompt: Vec<Token> = self.model.vocab().tokenize(text.as_bytes(), false, true).into_iter().map(|t| t.0).collect();
        if let Some(b) = self.bos() {
            if prompt.first() != Some(&b) {
                prompt.insert(0, b);
            }
        }
        let room = self.cfg.ctx_per_sequence as usize;
        if prompt.len() + req.max_tokens > room {
            return Err(EngineError::PromptTooLong(format!(
                "{} prompt tokens + {} to generate exceed the {} cells of a sequence (raise ctxPerSequence)",
                prompt.len(),
                req.max_tokens,
                room
            )));
        }
        let stop_ids = self.format.stop_ids().to_vec();
        let (out, keep, restored) = self.run(&req.key, prompt.clone(), req.max_tokens, &stop_ids, Stop::Strings(&req.stop), cancel)?;
        let mut text = out.text.clone();
        if let Some(cut) = req.stop.iter().filter_map(|s| text.find(s.as_str())).min() {
            text.truncate(cut);
        }
        let t = self.timings(queued, start, &prompt, keep, restored, &out);
        Ok(Generation { text, timings: t })
    }

    /// The model's own chat template where it has one; a plain instruction layout otherwise (base models).
    fn chat_prompt(&self, system: Option<&str>, user: &str) -> String {
        if let Ok(tmpl) = self.model.chat_template(None) {
            let mut msgs = Vec::new();
            if let Some(s) = system {
                msgs.extend(LlamaChatMessage::new("system".into(), s.into()));
            }
            msgs.extend(LlamaChatMessage::new("user".into(), user.into()));
            if let Ok(p) = self.model.apply_chat_template(&tmpl, &msgs, true) {
                return p;
            }
        }
        match system {
            Some(s) => format!("{s}\n\n### Instruction\n{user}\n\n### Response\n"),
            None => format!("### Instruction\n{user}\n\n### Response\n"),
        }
    }

    fn timings(&self, queued: Instant, start: Instant, prompt: &[Token], keep: usize, restored: bool, out: &GenOut) -> Timings {
        Timings {
            queue_ms: (start - queued).as_secs_f64() * 1e3,
            prompt_ms: out.ttft.as_secs_f64() * 1e3,
            ttft_ms: (out.ttft + (start - queued)).as_secs_f64() * 1e3,
            total_ms: queued.elapsed().as_secs_f64() * 1e3,
            prompt_tokens: prompt.len(),
            reused_tokens: keep,
            redecoded_tokens: prompt.len() - keep,
            generated_tokens: out.generated,
            gen_tokens_per_s: out.tokens_per_s(),
            restored,
            from_suggestion: false,
        }
    }

    /// Bring the document's sequence up to `prompt` (decoding only the tail), then generate.
    fn run(&mut self, doc: &str, prompt: Vec<Token>, max_tokens: usize, stop_ids: &[Token], stop: Stop, cancel: &CancelToken) -> Result<(GenOut, usize, bool)> {
        let started = Instant::now();
        let doc_key = doc.to_string();
        let mut kv = Kv::new(&mut self.ctx, self.pp_tokens_per_s, self.cfg.sequences);
        let plan = self.cache.prepare(&doc_key, &prompt, &mut kv);
        let kv_moved = kv.moved;
        let plan_time = started.elapsed();
        let seq = plan.seq;
        // Everything the job touches through the abort callback lives until the slot is cleared below.
        self.abort.0.store(cancel.flag_ptr() as *mut AtomicBool, Ordering::Release);
        let result = self.decode_and_generate(seq, &prompt, plan.keep, plan.tail, max_tokens, stop_ids, stop, cancel, started);
        let reused = plan.keep + plan.tail.map(|(a, b)| b - a).unwrap_or(0);
        self.abort.0.store(std::ptr::null_mut(), Ordering::Release);
        let held = match &result {
            Ok((_, held)) => held.clone(),
            Err((_, held)) => held.clone(),
        };
        self.cache.commit(seq, held.clone());
        let st = self.docs.entry(doc_key.clone()).or_default();
        st.requests += 1;
        st.tokens_held = held.len();
        match result {
            Ok((out, _)) => {
                if reused > 0 {
                    st.hits += 1;
                } else {
                    st.misses += 1;
                }
                if plan.restored {
                    st.restores += 1;
                }
                st.last_prompt_tokens = prompt.len();
                st.last_reused_tokens = reused;
                st.last_redecoded_tokens = prompt.len() - reused;
                st.last_generated_tokens = out.generated;
                st.last_restored = plan.restored;
                st.last_shifted_tokens = plan.shifted;
                st.last_prompt_ms = out.ttft.as_secs_f64() * 1e3;
                st.last_ttft_ms = out.ttft.as_secs_f64() * 1e3;
                st.last_total_ms = started.elapsed().as_secs_f64() * 1e3;
                st.last_gen_tokens_per_s = out.tokens_per_s();
                st.last_phases = crate::stats::Phases {
                    plan_ms: plan_time.as_secs_f64() * 1e3,
                    passes: out.passes.clone(),
                    first_sample_ms: out.first_sample.as_secs_f64() * 1e3,
                    synced: self.cfg.profile_sync,
                    kv_shift: kv_moved,
                };
                let decoded = prompt.len() - reused;
                if decoded >= 64 {
                    let rate = decoded as f64 / out.ttft.as_secs_f64().max(1e-6);
                    self.pp_tokens_per_s = 0.7 * self.pp_tokens_per_s + 0.3 * rate;
                }
                Ok((out, reused, plan.restored))
            }
            Err((e, _)) => Err(e),
        }
    }

    /// Returns the generation and the exact tokens the sequence holds afterwards (also on error, so the
    /// cache bookkeeping never drifts from the KV cells).
    #[allow(clippy::too_many_arguments)]
    fn decode_and_generate(
        &mut self,
        seq: u32,
        prompt: &[Token],
        keep: usize,
        tail: Option<(usize, usize)>,
        max_tokens: usize,
        stop_ids: &[Token],
        stop: Stop,
        cancel: &CancelToken,
        started: Instant,
    ) -> std::result::Result<(GenOut, Vec<Token>), (EngineError, Vec<Token>)> {
        let mut held: Vec<Token> = prompt[..keep].to_vec();
        // With a parked tail: the edited span, the splice, then the rest (the last token, for its logits).
        let spans: Vec<(usize, usize)> = match tail {
            Some((t0, t1)) => vec![(keep, t0), (t1, prompt.len())],
            None => vec![(keep, prompt.len())],
        };
        let mut passes = Vec::new();
        let mut pass_start = Instant::now();
        for (si, &(a, b)) in spans.iter().enumerate() {
            if si == 1 {
                let (t0, t1) = tail.expect("two spans only with a tail");
                let mut kv = Kv::new(&mut self.ctx, self.pp_tokens_per_s, self.cfg.sequences);
                if !kv.unpark(seq, t0, t1) {
                    return Err((EngineError::Llama("could not splice the cached suffix back".into()), self.resync(seq, held)));
                }
                held.extend_from_slice(&prompt[t0..t1]);
            }
            if let Err(e) = self.decode_span(seq, &prompt[a..b], &mut held, si + 1 == spans.len(), cancel) {
                if tail.is_some() {
                    let mut kv = Kv::new(&mut self.ctx, self.pp_tokens_per_s, self.cfg.sequences);
                    kv.drop_parked();
                }
                return Err(e);
            }
            // A span of up to 512 tokens is one llama_decode: one pass of the model over the weights.
            if b > a {
                if self.cfg.profile_sync {
                    self.ctx.synchronize();
                }
                passes.push(crate::stats::Pass { tokens: b - a, ms: pass_start.elapsed().as_secs_f64() * 1e3 });
            }
            pass_start = Instant::now();
        }
        let ttft_start = started;
        let mut ttft = Duration::ZERO;
        let mut first_sample_wait = Duration::ZERO;
        let seq_ids = [seq as i32];
        let mut bytes: Vec<u8> = Vec::new();
        let mut generated = 0usize;
        let (mut first_sample, mut samples): (Option<Instant>, usize) = (None, 0);
        let mut last_sample: Instant;
        let vocab = self.model.vocab();
        loop {
            // Greedy, straight off the logits: llama.cpp's greedy sampler first copies the whole vocabulary
            // (262k entries for Gemma 3) into a candidate array, which on a GPU costs as much as the decode of
            // a small model (docs/performance.md).
            let tok = LlamaToken(argmax(self.ctx.get_logits_ith(self.batch.n_tokens() - 1)) as i32);
            last_sample = Instant::now();
            samples += 1;
            if first_sample.is_none() {
                first_sample = Some(last_sample);
                ttft = ttft_start.elapsed();
                first_sample_wait = pass_start.elapsed();
            }
            if vocab.is_eog(tok) || stop_ids.contains(&tok.0) {
                break;
            }
            generated += 1;
            bytes.extend(vocab.token_to_piece(tok, false, None));
            let text = String::from_utf8_lossy(&bytes);
            let done = generated >= max_tokens
                || match &stop {
                    Stop::Completion(rules) => rules.should_stop(&text),
                    Stop::Strings(s) => s.iter().any(|s| text.contains(s.as_str())),
                };
            if done {
                break;
            }
            if cancel.is_cancelled() {
                return Err((EngineError::Cancelled, held));
            }
            self.batch.clear();
            if let Err(e) = self.batch.add(tok, held.len() as i32, &seq_ids, true) {
                return Err((EngineError::Llama(e.to_string()), held));
            }
            if let Err(e) = self.decode(seq, cancel) {
                return Err((e, self.resync(seq, held)));
            }
            held.push(tok.0);
        }
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let gen_time = first_sample.map(|f| last_sample - f).unwrap_or_default();
        Ok((GenOut { text, generated, ttft, gen_time, steps: samples.saturating_sub(1), passes, first_sample: first_sample_wait }, held))
    }

    /// Decode `tokens` after `held`, in batch-sized chunks; cancellation is checked between chunks and,
    /// through the abort callback, inside each one. Logits for the very last token when `logits_at_end`.
    fn decode_span(
        &mut self,
        seq: u32,
        tokens: &[Token],
        held: &mut Vec<Token>,
        logits_at_end: bool,
        cancel: &CancelToken,
    ) -> std::result::Result<(), (EngineError, Vec<Token>)> {
        let seq_ids = [seq as i32];
        let chunks = tokens.chunks(512).count();
        for (ci, chunk) in tokens.chunks(512).enumerate() {
            if cancel.is_cancelled() {
                return Err((EngineError::Cancelled, std::mem::take(held)));
            }
            self.batch.clear();
            let base = held.len();
            for (i, &t) in chunk.iter().enumerate() {
                let last = logits_at_end && ci + 1 == chunks && i + 1 == chunk.len();
                if let Err(e) = self.batch.add(LlamaToken(t), (base + i) as i32, &seq_ids, last) {
                    return Err((EngineError::Llama(e.to_string()), std::mem::take(held)));
                }
            }
            if let Err(e) = self.decode(seq, cancel) {
                let h = std::mem::take(held);
                return Err((e, self.resync(seq, h)));
            }
            held.extend_from_slice(chunk);
        }
        Ok(())
    }

    fn decode(&mut self, seq: u32, cancel: &CancelToken) -> Result<()> {
        self.decode_calls += 1;
        match self.ctx.decode(&mut self.batch) {
            Ok(()) => Ok(()),
            Err(_) if cancel.is_cancelled() => Err(EngineError::Cancelled),
            Err(DecodeError::NoKvCacheSlot) => {
                // The shared cell pool is full: drop every other document's cells and try once more.
                tracing::warn!("KV cache full; evicting other documents");
                let mut kv = Kv::new(&mut self.ctx, self.pp_tokens_per_s, self.cfg.sequences);
                let others: Vec<String> = self.docs.keys().cloned().collect();
                for d in others {
                    if self.cache.held(&d) > 0 && self.cache.seq_of(&d) != Some(seq) {
                        self.cache.release(&d, &mut kv);
                    }
                }
                self.decode_calls += 1;
                self.ctx.decode(&mut self.batch).map_err(|e| EngineError::Llama(e.to_string()))
            }
            Err(e) => Err(EngineError::Llama(e.to_string())),
        }
    }

    /// After a failed or aborted decode llama.cpp removes that batch's cells; trust its count, not ours.
    fn resync(&mut self, seq: u32, mut held: Vec<Token>) -> Vec<Token> {
        let max = self.ctx.kv_cache_seq_pos_max(seq as i32);
        let n = if max < 0 { 0 } else { max as usize + 1 };
        held.truncate(n);
        held
    }

    fn close(&mut self, doc: &str) {
        let mut kv = Kv::new(&mut self.ctx, self.pp_tokens_per_s, self.cfg.sequences);
        self.cache.release(&doc.to_string(), &mut kv);
        self.docs.remove(doc);
        self.anchors.remove(doc);
    }

    fn stats(&self) -> EngineStats {
        let mut documents = std::collections::BTreeMap::new();
        for (k, v) in &self.docs {
            let mut v = v.clone();
            v.tokens_held = self.cache.held(k);
            documents.insert(k.clone(), v);
        }
        EngineStats {
            state: "ready".into(),
            error: None,
            model: Some(self.info.clone()),
            cache_enabled: self.cache.config().enabled,
            sequences: self.cfg.sequences,
            host_snapshot_bytes: self.cache.saved_bytes(),
            decode_calls: self.decode_calls,
            documents,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::argmax;

    #[test]
    fn argmax_takes_the_first_maximum_and_skips_nan() {
        let mut v: Vec<f32> = (0..1000).map(|i| ((i * 7919) % 1000) as f32 / 10.0).collect();
        let want = v.iter().enumerate().fold(0, |b, (i, &x)| if x > v[b] { i } else { b });
        assert_eq!(argmax(&v), want);
        // A tie later in the array loses to the first; the tail past the last full chunk counts too.
        v[want + 17] = v[want];
        assert_eq!(argmax(&v), want);
        v[999] = 1e9;
        assert_eq!(argmax(&v), 999);
        v[3] = f32::NAN;
        assert_eq!(argmax(&v), 999);
        assert_eq!(argmax(&[f32::NAN, -1.0, -0.5, -0.5]), 2);
    }
}
