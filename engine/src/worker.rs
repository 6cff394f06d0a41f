//! The model thread. llama.cpp contexts are not `Send`, so one OS thread loads the model, owns the context
//! and serves jobs from a channel, one at a time. Cancellation reaches it through llama.cpp's abort
//! callback (checked inside a decode) and between decode steps.
use crate::abort::{with_abort_callback, AbortSlot};
use crate::api::{Completion, CompletionRequest, EngineEvent, EngineState, GenerateRequest, Generation, Timings};
use crate::cancel::CancelToken;
use crate::config::EngineConfig;
use crate::error::{EngineError, Result};
use crate::fim::{FimLayout, PromptFormat};
use crate::llama_kv::Kv;
use crate::loader::{backend, load, model_info, prompt_format};
use crate::model_info::{ModelInfo, Token};
use crate::postprocess::{self, StopRules};
use crate::prefix_cache::{CacheConfig, KvOps, PrefixCache};
use crate::speculate::argmax;
use crate::speculate::{Speculative, Speculator};
use crate::stats::{DocStats, EngineStats};
use crate::window;
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::context::session::SeqState;
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::{LlamaChatMessage, LlamaModel};
use llama_cpp_2::token::LlamaToken;
use llama_cpp_2::DecodeError;
use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{oneshot, watch};

pub(crate) type Reply<T> = oneshot::Sender<Result<T>>;

pub(crate) enum Job {
    Complete { req: CompletionRequest, cancel: CancelToken, queued: Instant, reply: Reply<Completion> },
    Generate { req: GenerateRequest, cancel: CancelToken, queued: Instant, reply: Reply<Generation> },
    Close { doc: String },
    Stats { reply: oneshot::Sender<EngineStats> },
    Reload(Box<EngineConfig>),
    Shutdown,
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

fn serve_model(rx: &Receiver<Job>, cfg: &EngineConfig, model: &LlamaModel, info: ModelInfo) -> Option<EngineConfig> {
    let slot = Box::new(AbortSlot::new());
    let threads =
        cfg.threads.unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get() as i32).unwrap_or(4));
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
    let params = with_abort_callback(params, &slot);
    let ctx = match model.new_context(backend().ok()?, params) {
        Ok(c) => c,
        Err(e) => return serve_failed(rx, &format!("could not create a context of {n_ctx} cells: {e}")),
    };
    let mut s = Session::new(model, ctx, cfg, info, &slot);
    loop {
        let Ok(job) = rx.recv() else { return None };
        match job {
            Job::Complete { req, cancel, queued, reply } => {
                let r = s.complete(&req, &cancel, queued);
                let _ = reply.send(r);
            }
            Job::Generate { req, cancel, queued, reply } => {
                let r = s.generate(&req, &cancel, queued);
                let _ = reply.send(r);
            }
            Job::Close { doc } => s.close(&doc),
            Job::Stats { reply } => {
                let _ = reply.send(s.stats());
            }
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
    /// Set for one generation at a temperature above 0; greedy otherwise.
    sampler: Option<crate::sampling::Sampler>,
    /// Each document's last generated tokens: speculative drafts look them up (code repeats itself).
    suggested: HashMap<String, Vec<Token>>,
    /// What drafting pays on this machine, learnt across generations.
    tuning: crate::speculate::Tuning,
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
            sampler: None,
            suggested: HashMap::new(),
            tuning: Default::default(),
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

    /// The context block's tokens: repository-level tokens parsed as special only in a block that says it
    /// carries them (the server renders those from the index, never from document text as-is).
    fn context_tokens(&self, c: Option<&crate::api::ContextBlock>) -> Vec<Token> {
        match c {
            Some(c) if !c.text.is_empty() => {
                self.model.vocab().tokenize(c.text.as_bytes(), false, c.special).into_iter().map(|t| t.0).collect()
            }
            _ => Vec::new(),
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
        // The block goes in front of the prefix, where it changes only when its snippets do, so a keystroke
        // still re-decodes only the typed tokens; its tokens come out of the prefix budget.
        let block = self.context_tokens(req.context.as_ref());
        let budget = self.cfg.prefix_tokens.saturating_sub(block.len()).max(self.cfg.prefix_tokens / 4).max(1);
        let count = |t: &str| self.count(t);
        let prev = self.anchors.get(&req.doc).copied();
        let w = window::choose_prefix(&req.before, req.first_line, prev, budget, &count);
        let text = &req.before[w.start_byte..];
        let suffix = if self.format.uses_suffix() {
            let end = window::choose_suffix(&req.after, self.cfg.suffix_tokens, &count);
            let mut s = self.tokenize(&req.after[..end]);
            s.truncate(self.cfg.suffix_tokens);
            s
        } else {
            Vec::new()
        };
        self.anchors.insert(req.doc.clone(), w.anchor_line);
        // The repository-token style (Qwen) puts the block after BOS, outside the FIM markers; the comment
        // style puts it at the start of the prefix text. Either way it sits before everything that changes.
        let special = req.context.as_ref().is_some_and(|c| c.special) && !block.is_empty();
        let (outer, inner) = if special { (block, Vec::new()) } else { (Vec::new(), block) };
        let bos = if special { None } else { self.bos() };
        let infill = (self.cfg.fim_layout == FimLayout::Infill && self.format.uses_suffix())
            .then(|| {
                let cut = window::cursor_line_start(text);
                let (mut head, line) = (self.tokenize(&text[..cut]), self.tokenize(&text[cut..]));
                let keep = budget.saturating_sub(line.len());
                head.drain(..head.len().saturating_sub(keep));
                let head: Vec<Token> = inner.iter().copied().chain(head).collect();
                self.format.assemble_infill(bos, &head, &suffix, &line)
            })
            .flatten();
        let body = infill.unwrap_or_else(|| {
            let mut prefix = self.tokenize(text);
            prefix.drain(..prefix.len().saturating_sub(budget));
            let prefix: Vec<Token> = inner.iter().copied().chain(prefix).collect();
            self.format.assemble(bos, &prefix, &suffix)
        });
        let mut prompt: Vec<Token> =
            if special { self.bos().into_iter().chain(outer).chain(body).collect() } else { body };
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
        let mut prompt: Vec<Token> =
            self.model.vocab().tokenize(text.as_bytes(), false, true).into_iter().map(|t| t.0).collect();
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
        self.sampler = (req.temperature > 0.0).then(|| crate::sampling::Sampler::new(req.temperature, req.seed));
        let ran = self.run(&req.key, prompt.clone(), req.max_tokens, &stop_ids, Stop::Strings(&req.stop), cancel);
        self.sampler = None;
        let (out, keep, restored) = ran?;
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

    fn timings(
        &self,
        queued: Instant,
        start: Instant,
        prompt: &[Token],
        keep: usize,
        restored: bool,
        out: &GenOut,
    ) -> Timings {
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
    fn run(
        &mut self,
        doc: &str,
        prompt: Vec<Token>,
        max_tokens: usize,
        stop_ids: &[Token],
        stop: Stop,
        cancel: &CancelToken,
    ) -> Result<(GenOut, usize, bool)> {
        let started = Instant::now();
        let doc_key = doc.to_string();
        let mut kv = Kv::new(&mut self.ctx, self.pp_tokens_per_s, self.cfg.sequences);
        let plan = self.cache.prepare(&doc_key, &prompt, &mut kv);
        let kv_moved = kv.moved;
        let plan_time = started.elapsed();
        let seq = plan.seq;
        // Everything the job touches through the abort callback lives until the slot is cleared below.
        self.abort.arm(cancel);
        let k = if self.cfg.speculative == Speculative::Off { 0 } else { self.cfg.draft_max };
        self.tuning.adaptive = self.cfg.speculative == Speculative::Auto;
        let previous = self.suggested.get(doc).cloned().unwrap_or_default();
        let mut spec = Speculator::new(previous, k, self.sampler.is_none(), self.tuning);
        let result = self.decode_and_generate(
            seq, &prompt, plan.keep, plan.tail, max_tokens, stop_ids, stop, cancel, started, &mut spec,
        );
        let reused = plan.keep + plan.tail.map(|(a, b)| b - a).unwrap_or(0);
        self.abort.disarm();
        self.tuning = spec.tuning;
        let held = match &result {
            Ok((_, held)) => held.clone(),
            Err((_, held)) => held.clone(),
        };
        self.cache.commit(seq, held.clone());
        let st = self.docs.entry(doc_key.clone()).or_default();
        st.requests += 1;
        st.tokens_held = held.len();
        match result {
            Ok((out, held)) => {
                self.suggested.insert(doc_key, held.get(prompt.len()..).unwrap_or_default().to_vec());
                st.record_speculation(spec.drafted, spec.accepted, spec.decodes);
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
        spec: &mut Speculator,
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
                    return Err((
                        EngineError::Llama("could not splice the cached suffix back".into()),
                        self.resync(seq, held),
                    ));
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
        let mut bytes: Vec<u8> = Vec::new();
        let mut generated = 0usize;
        let (mut first_sample, mut samples): (Option<Instant>, usize) = (None, 0);
        let mut last_sample: Instant;
        let vocab = self.model.vocab();
        loop {
            // Greedy, straight off the logits: llama.cpp's greedy sampler first copies the whole vocabulary
            // (262k entries for Gemma 3) into a candidate array, which on a GPU costs as much as the decode of
            // a small model (docs/performance.md). A verified speculative batch may know the token already.
            let tok = LlamaToken(spec.known().unwrap_or_else(|| {
                let logits = self.ctx.get_logits_ith(self.batch.n_tokens() - 1);
                self.sampler.as_mut().map_or_else(|| argmax(logits), |s| s.pick(logits)) as i32
            }));
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
                spec.finish(&mut step::SeqStep { s: self, seq, cancel }, held.len());
                return Err((EngineError::Cancelled, held));
            }
            // Drafts only for tokens that may still be emitted and decoded: `max_tokens - generated - 1`.
            let room = max_tokens - generated - 1;
            if let Err(e) = spec.advance(&mut step::SeqStep { s: self, seq, cancel }, &mut held, tok.0, room) {
                return Err((e, self.resync(seq, held)));
            }
        }
        spec.finish(&mut step::SeqStep { s: self, seq, cancel }, held.len());
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let gen_time = first_sample.map(|f| last_sample - f).unwrap_or_default();
        Ok((
            GenOut {
                text,
                generated,
                ttft,
                gen_time,
                steps: samples.saturating_sub(1),
                passes,
                first_sample: first_sample_wait,
            },
            held,
        ))
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
        self.suggested.remove(doc);
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

#[path = "worker_step.rs"]
mod step;

#[cfg(test)]
#[path = "worker_tests.rs"]
mod tests;
