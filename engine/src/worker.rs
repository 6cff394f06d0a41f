//! The model thread. llama.cpp contexts are not `Send`, so one OS thread loads the model, owns the context
//! and serves jobs from a channel. Jobs are scheduled (sched.rs): the most urgent first, and every running
//! generation advances in one shared batch per step (gen.rs), so a keystroke is answered while a long job
//! runs instead of after it. Cancellation reaches a decode through llama.cpp's abort callback, armed with the
//! most urgent job in the batch; other cancelled jobs drop out at the next step.
use crate::abort::{with_abort_callback, AbortSlot};
use crate::api::{Completion, CompletionRequest, EngineEvent, EngineState, GenerateRequest, Generation};
use crate::cancel::CancelToken;
use crate::config::EngineConfig;
use crate::error::{EngineError, Result};
use crate::fim::PromptFormat;
use crate::llama_kv::Kv;
use crate::loader::{backend, load, model_info, prompt_format};
use crate::model_info::{ModelInfo, Token};
use crate::prefix_cache::{CacheConfig, PrefixCache};
use crate::sched::{Limits, Meta, Priority, Sched};
use crate::stats::{DocStats, EngineStats, Part, StepClock};
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::context::session::SeqState;
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::LlamaModel;
use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{oneshot, watch};

#[path = "worker_prompt.rs"]
mod prompt;
#[path = "worker_step.rs"]
mod step;

pub(crate) type Reply<T> = oneshot::Sender<Result<T>>;

pub(crate) enum Job {
    /// `prefetch`: computed ahead at background priority (engine.rs `Engine::prefetch`), stopped by any
    /// other completion.
    Complete {
        req: CompletionRequest,
        cancel: CancelToken,
        queued: Instant,
        reply: Reply<Completion>,
        prefetch: bool,
    },
    Generate {
        req: GenerateRequest,
        cancel: CancelToken,
        queued: Instant,
        reply: Reply<Generation>,
    },
    Close {
        doc: String,
    },
    Stats {
        reply: oneshot::Sender<EngineStats>,
    },
    Reload(Box<EngineConfig>),
    Shutdown,
}

impl Job {
    fn cancelled(&self) -> bool {
        match self {
            Job::Complete { cancel, .. } | Job::Generate { cancel, .. } => cancel.is_cancelled(),
            _ => false,
        }
    }

    fn fail(self, e: EngineError) {
        match self {
            Job::Complete { reply, .. } => drop(reply.send(Err(e))),
            Job::Generate { reply, .. } => drop(reply.send(Err(e))),
            _ => {}
        }
    }
}

pub(crate) fn run(
    rx: Receiver<Job>,
    mut cfg: EngineConfig,
    state: Arc<watch::Sender<EngineState>>,
    events: Arc<dyn Fn(EngineEvent) + Send + Sync>,
) {
    loop {
        state.send_replace(EngineState::Loading);
        let next = match load(&cfg, &events) {
            Ok(loaded) => {
                let info = model_info(&loaded.model, &cfg, loaded.gpu_layers);
                state.send_replace(EngineState::Ready(Box::new(info.clone())));
                events(EngineEvent::Ready(Box::new(info.clone())));
                serve_model(&rx, &cfg, &loaded.model, info)
            }
            Err(e) => {
                tracing::error!("model load failed: {e}");
                state.send_replace(EngineState::Failed(e.clone()));
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
            Job::Stats { reply } => {
                drop(reply.send(EngineStats { state: "failed".into(), error: Some(why.into()), ..Default::default() }))
            }
            Job::Close { .. } => {}
            Job::Reload(cfg) => return Some(*cfg),
            Job::Shutdown => return None,
        }
    }
    None
}

/// Changed tokens a spliced FIM suffix may not have seen before it is decoded fresh: a line or two of typing.
const TAIL_MAX_STALE: usize = 48;

/// For a model with sliding-window layers, the first of the guard sequences (one per sequence and one for
/// the scratch sequence: guard of `s` is this plus `s`). When llama.cpp looks for free cells it takes a
/// sliding-window layer's cell that lies outside its only sequence's window, even with `swa_full`; the
/// prefix cache cuts sequences back and splices cells, after which those cells are inside the window again
/// and must be there. A cell that carries a second sequence is never taken: every cell of a sequence also
/// carries its guard (llama_kv.rs keeps them in step).
fn swa_guards(model: &LlamaModel, info: &ModelInfo, sequences: u32) -> Option<u32> {
    let window = model.meta_val_str(&format!("{}.attention.sliding_window", info.architecture)).ok()?;
    (window.trim().parse::<u64>().ok()? > 0).then_some(sequences + 1)
}

fn serve_model(rx: &Receiver<Job>, cfg: &EngineConfig, model: &LlamaModel, info: ModelInfo) -> Option<EngineConfig> {
    let slot = Box::new(AbortSlot::new());
    let threads =
        cfg.threads.unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get() as i32).unwrap_or(4));
    let n_ctx = cfg.sequences * cfg.ctx_per_sequence;
    let params = LlamaContextParams::default()
        .with_n_ctx(NonZeroU32::new(n_ctx))
        .with_n_batch(BATCH as u32)
        .with_n_ubatch(BATCH as u32)
        // One more than the documents' sequences: the scratch sequence that holds a FIM suffix while the
        // tokens typed before it are decoded (prefix_cache.rs).
        .with_n_seq_max(cfg.sequences + 1 + swa_guards(model, &info, cfg.sequences).map_or(0, |_| cfg.sequences + 1))
        // One pool of cells for all sequences: a document uses what its prompt needs, not n_ctx/sequences.
        .with_kv_unified(true)
        // Sliding-window models otherwise drop cells older than the window, and removing cells past an
        // edit could then not be undone by re-decoding the tail: reuse would silently degrade to zero.
        .with_swa_full(true)
        .with_n_threads(threads)
        .with_n_threads_batch(threads);
    let params = with_abort_callback(params, &slot);
    let ctx = match model.new_context(backend().ok()?, params) {
        Ok(c) => c,
        Err(e) => return serve_failed(rx, &format!("could not create a context of {n_ctx} cells: {e}")),
    };
    let mut s = Session::new(model, ctx, cfg, info, &slot);
    let mut sched: Sched<Job> = Sched::new(Limits {
        // Without batching one generation decodes at a time (the most urgent; the others wait suspended).
        batch: if cfg.batching { cfg.sequences as usize } else { 1 },
        running: cfg.sequences as usize,
        long_per_session: cfg.long_jobs_per_session,
        long_yields: cfg.long_jobs_yield,
    });
    // Set by Reload or Shutdown: what was asked before it is served first, what comes after waits for it.
    let mut stopping: Option<Option<EngineConfig>> = None;
    let mut closed = false;
    let mut rejoin = Rejoin::default();
    // The prefetches received since the last keystroke's completion.
    let mut prefetches: Vec<CancelToken> = Vec::new();
    loop {
        let mut turn = Instant::now();
        if stopping.is_none() && !closed {
            // Block only when nothing runs; otherwise take what arrived and go on with the next step.
            let mut first = None;
            if sched.is_idle() {
                // A held context block is decoded once the user pauses: nothing arrived for a while.
                let got = match s.warm_due() {
                    None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
                    Some(due) => rx.recv_timeout(due.saturating_duration_since(Instant::now())),
                };
                match got {
                    Ok(j) => first = Some(j),
                    // At background priority, and stopped by any keystroke like a prefetch (below).
                    Err(RecvTimeoutError::Timeout) => first = s.take_warm(),
                    Err(RecvTimeoutError::Disconnected) => return None,
                }
                turn = Instant::now();
            } else if let Some(wait) = rejoin.wait(&sched) {
                let t = Instant::now();
                match rx.recv_timeout(wait) {
                    Ok(j) => {
                        first = Some(j);
                        rejoin.came(true);
                    }
                    Err(RecvTimeoutError::Timeout) => rejoin.came(false),
                    Err(RecvTimeoutError::Disconnected) => closed = true,
                }
                s.clock.add(Part::Wait, t.elapsed().as_secs_f64() * 1e3);
            }
            loop {
                let job = match first.take().map(Ok).unwrap_or_else(|| rx.try_recv()) {
                    Ok(j) => j,
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        closed = true;
                        break;
                    }
                };
                match job {
                    Job::Complete { ref req, prefetch: true, ref cancel, .. } => {
                        prefetches.push(cancel.clone());
                        let m = Meta::new(Priority::Background, &req.doc);
                        sched.push(m, job);
                    }
                    Job::Complete { ref req, .. } => {
                        // Someone is typing: work done ahead must not take a step from them (the engine
                        // cancels its prefetches before it sends a completion; this holds whatever sent them).
                        for c in prefetches.drain(..) {
                            c.cancel();
                        }
                        let m = Meta::new(Priority::Inline, &req.doc);
                        sched.push(m, job);
                    }
                    Job::Generate { ref req, .. } => {
                        let m = Meta::new(req.priority, &req.key);
                        sched.push(m, job);
                    }
                    Job::Close { doc } => s.closing.push(doc),
                    Job::Stats { reply } => drop(reply.send(s.stats(&sched))),
                    Job::Reload(c) => {
                        stopping = Some(Some(*c));
                        break;
                    }
                    Job::Shutdown => {
                        stopping = Some(None);
                        break;
                    }
                }
            }
        }
        if closed && sched.is_idle() {
            return None;
        }
        prefetches.retain(|c| !c.is_cancelled());
        for job in sched.remove_queued(Job::cancelled) {
            job.fail(EngineError::Cancelled);
        }
        for id in s.drop_cancelled() {
            sched.finish(id);
        }
        // A new job's plan may park cells in the one scratch sequence: one at a time until spliced back.
        while !s.scratch_busy() {
            let Some((id, meta, job)) = sched.admit(|m| s.cache.can_bind(&m.doc.to_string())) else { break };
            let t = Instant::now();
            let started = s.start(id, meta, job);
            s.clock.add(Part::Start, t.elapsed().as_secs_f64() * 1e3);
            if !started {
                sched.finish(id);
            }
        }
        rejoin.answered = false;
        if sched.running() > 0 {
            for id in s.step(&sched.step()) {
                sched.finish(id);
                rejoin.answered = true;
            }
            rejoin.decode = s.last_decode;
        }
        s.close_pending(|d| sched.holds(d));
        s.clock.end_turn(turn.elapsed().as_secs_f64() * 1e3);
        if sched.is_idle() {
            if let Some(next) = stopping.take() {
                return next;
            }
        }
    }
}

/// Whether to wait a moment for a job before the next step. A session answered in a step usually asks again
/// at once (the next keystroke of a typing trace, a client's next request): arriving during the next decode,
/// its prompt would wait that whole step while the batch runs one generation short. So after a step that
/// answered a job, with nothing queued and room in the batch, the thread waits up to half a decode (at most
/// [`REJOIN_MAX`]) for it. A wait that saw nothing (a person typing, not a client in a loop) turns waiting
/// off for the next [`REJOIN_SKIP`] answers, so the jobs still running lose little to it.
#[derive(Default)]
struct Rejoin {
    /// The last step answered a job.
    answered: bool,
    /// The last step's llama_decode.
    decode: Duration,
    /// Answers to let pass without waiting.
    skip: u32,
}

const REJOIN_MAX: Duration = Duration::from_millis(2);
const REJOIN_SKIP: u32 = 8;

impl Rejoin {
    fn wait(&mut self, sched: &Sched<Job>) -> Option<Duration> {
        if !self.answered || sched.queued() > 0 || sched.running() == 0 || sched.running() >= sched.limits().batch {
            return None;
        }
        self.answered = false;
        if self.skip > 0 {
            self.skip -= 1;
            return None;
        }
        Some((self.decode / 2).min(REJOIN_MAX))
    }

    fn came(&mut self, yes: bool) {
        if !yes {
            self.skip = REJOIN_SKIP;
        }
    }
}

/// Tokens one llama_decode takes (the context's n_batch and n_ubatch): a prompt longer than that goes in
/// several steps, with the running generations' next tokens riding along in each.
pub(crate) const BATCH: usize = 512;

/// What a document's last completion prompt was built from: the next keystroke's is built from it in
/// proportion to what changed.
#[derive(Default)]
struct DocPrompt {
    /// The prefix window's anchor line (window.rs: stable while typing).
    anchor: Option<u32>,
    /// The context block: text, parsed as special, tokens.
    block: Option<(String, bool, Vec<Token>)>,
    /// The prefix window with its tokens: the next is tokenized from a cut before what changed (retok.rs).
    prefix: Option<crate::retok::Tokenized>,
    /// The suffix window, kept while the text that decided it stays the same.
    suffix: Option<crate::retok::Suffix>,
    /// The infill layout's head (the window up to where the middle starts) and its tokens.
    infill_head: Option<(String, Vec<Token>)>,
    /// When the last completion for this document came, and the cursor's line then: the context block is
    /// held while the user types (worker_prompt.rs `context_tokens`).
    last: Option<(Instant, usize)>,
    /// The last request whose new context block was held back: decoded ahead once the thread is idle.
    warm: Option<CompletionRequest>,
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
    /// Per document, what its last prompt was built from (worker_prompt.rs): kept so the next is built in
    /// proportion to what changed.
    prompts: HashMap<String, DocPrompt>,
    /// Measured prompt processing rate, for deciding whether restoring a snapshot beats recomputing.
    pp_tokens_per_s: f64,
    decode_calls: u64,
    /// The admitted jobs, by scheduler id: running or suspended, each holding its own sequence.
    gens: HashMap<u64, step::Running>,
    /// Documents closed while a job held their sequence: released when it is done.
    closing: Vec<String>,
    /// Each document's last generated tokens: speculative drafts look them up (code repeats itself).
    suggested: HashMap<String, Vec<Token>>,
    /// What drafting pays on this machine, learnt across generations.
    tuning: crate::speculate::Tuning,
    /// llama.cpp's serialised size of the empty KV cache: what `kv_bytes` counts from.
    empty_kv_bytes: usize,
    /// See [`swa_guards`].
    guards: Option<u32>,
    clock: StepClock,
    /// How long the last step's llama_decode took.
    last_decode: Duration,
    /// Where this vocabulary may be cut for incremental tokenization (probed once).
    cuts: crate::retok::Cuts,
    /// Held context blocks decoded ahead while the user paused (worker_prompt.rs `take_warm`).
    warms: u64,
}

impl<'m, 's> Session<'m, 's> {
    fn new(
        model: &'m LlamaModel,
        ctx: LlamaContext<'m>,
        cfg: &EngineConfig,
        info: ModelInfo,
        abort: &'s AbortSlot,
    ) -> Self {
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
        })
        .with_sharing(|a: &String, b: &String| crate::sched::session_of(a) == crate::sched::session_of(b));
        let empty_kv_bytes = all_cells_bytes(&ctx);
        let guards = swa_guards(model, &info, cfg.sequences);
        let cuts = crate::retok::Cuts::probe(&crate::retok::Vocab(model.vocab()));
        tracing::debug!(?cuts, "incremental tokenization");
        Self {
            model,
            ctx,
            cfg: cfg.clone(),
            info,
            format,
            cache,
            // Two sequence ids a token: its sequence and, for sliding-window models, its guard (llama.cpp
            // allocates each token's id list at this size; a second id in a list of one writes past it).
            batch: LlamaBatch::new(BATCH, 2),
            abort,
            docs: HashMap::new(),
            prompts: HashMap::new(),
            pp_tokens_per_s: 300.0,
            decode_calls: 0,
            gens: HashMap::new(),
            closing: Vec::new(),
            suggested: HashMap::new(),
            tuning: crate::speculate::Tuning::new(cfg.speculative == crate::speculate::Speculative::Auto),
            empty_kv_bytes,
            guards,
            clock: StepClock::default(),
            last_decode: Duration::ZERO,
            cuts,
            warms: 0,
        }
    }

    fn scratch_busy(&self) -> bool {
        self.gens.values().any(|r| r.gen.has_parked())
    }

    /// Release the closed documents no job holds any more.
    fn close_pending(&mut self, held: impl Fn(&str) -> bool) {
        let docs = std::mem::take(&mut self.closing);
        for doc in docs {
            if held(&doc) {
                self.closing.push(doc);
                continue;
            }
            let mut kv = Kv::new(&mut self.ctx, self.pp_tokens_per_s, self.cfg.sequences, self.guards);
            self.cache.release(&doc, &mut kv);
            self.docs.remove(&doc);
            self.prompts.remove(&doc);
            self.suggested.remove(&doc);
        }
    }

    fn stats(&self, sched: &Sched<Job>) -> EngineStats {
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
            running_jobs: sched.running(),
            queued_jobs: sched.queued(),
            batching: self.cfg.batching,
            kv_bytes: all_cells_bytes(&self.ctx).saturating_sub(self.empty_kv_bytes),
            steps: self.clock.stats(),
            context_warms: self.warms,
            pending_warms: self.prompts.values().filter(|p| p.warm.is_some()).count(),
        }
    }
}

/// The bytes llama.cpp would save for every occupied KV cell, each once however many sequences share it
/// (sequence -1 is all of them): how the memory of shared context blocks shows, since this llama.cpp has no
/// count of used cells.
fn all_cells_bytes(ctx: &LlamaContext) -> usize {
    ctx.state_seq_get_size_ext(-1, llama_cpp_2::context::session::LlamaStateSeqFlags::empty())
}

#[cfg(test)]
#[path = "worker_tests.rs"]
mod tests;
