//! One running generation as resumable state: the tokens its KV sequence must hold, how many it holds, and
//! what it has written. Each model step it adds its next tokens to the shared batch (the rest of its prompt,
//! or the token it sampled last) and, once the batch is decoded, takes its own row of logits. A generation
//! left out of a step (a more urgent one needed the room) keeps its cells and continues where it stopped:
//! nothing is decoded twice.
//!
//! The per-token step is [`Gen::add_to_batch`] plus [`Gen::take_logits`]. A greedy generation may add
//! speculative drafts after its token (speculate.rs), each with its logits row: the rows are walked token by
//! token through the same stop rules, and the cells of drafts that were not kept are removed before the
//! next step, so `held` always counts exactly the generation's cells.
use crate::cancel::CancelToken;
use crate::model_info::Token;
use crate::postprocess::StopRules;
use crate::sampling::Sampler;
use crate::speculate::{argmax, walk, Speculator, Tuning};
use crate::stats::Pass;
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_batch::{BatchAddError, LlamaBatch};
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::token::LlamaToken;
use std::time::{Duration, Instant};

pub(crate) enum Stop {
    Completion(StopRules),
    Strings(Vec<String>),
}

/// What a generation needs besides its prompt.
pub(crate) struct GenSpec {
    pub max_tokens: usize,
    pub stop_ids: Vec<Token>,
    pub stop: Stop,
    pub sampler: Option<Sampler>,
    /// Workspace names the first tokens may follow ([`crate::names`]).
    pub names: Option<crate::names::NameChoice>,
    pub cancel: CancelToken,
}

pub(crate) struct Gen {
    pub seq: u32,
    /// The sequence's guard (worker.rs `swa_guards`): every cell this generation decodes carries it too.
    pub guard: Option<u32>,
    pub spec: GenSpec,
    /// What the sequence must hold: the prompt, then each sampled token (decoded in the next step).
    want: Vec<Token>,
    /// How many tokens of `want` the sequence holds now.
    held: usize,
    prompt_len: usize,
    /// Prompt positions `t0..t1` whose cells wait in the scratch sequence (prefix_cache.rs): decode up to t0,
    /// splice them back, go on from t1.
    tail: Option<(usize, usize)>,
    bytes: Vec<u8>,
    pub generated: usize,
    /// In the batch being decoded: how many tokens are this generation's, and the row of its logits.
    in_batch: usize,
    logits_row: Option<i32>,
    /// Drafts decoded after this step's token (their rows follow its row), and whether the step generates.
    drafts: Vec<Token>,
    gen_step: bool,
    pub speculator: Speculator,
    pub finished: bool,
    started: Instant,
    pass_start: Instant,
    pub passes: Vec<Pass>,
    first_sample: Option<Instant>,
    last_sample: Option<Instant>,
    samples: usize,
    pub ttft: Duration,
    pub first_sample_wait: Duration,
}

impl Gen {
    /// `keep` prompt tokens are in `seq` already; `started` is when the job began (for time to first token).
    pub fn new(
        seq: u32,
        prompt: Vec<Token>,
        keep: usize,
        tail: Option<(usize, usize)>,
        spec: GenSpec,
        speculator: Speculator,
        started: Instant,
    ) -> Self {
        let prompt_len = prompt.len();
        Gen {
            seq,
            guard: None,
            spec,
            want: prompt,
            held: keep,
            prompt_len,
            tail,
            bytes: Vec::new(),
            generated: 0,
            in_batch: 0,
            logits_row: None,
            drafts: Vec::new(),
            gen_step: false,
            speculator,
            finished: false,
            started,
            pass_start: Instant::now(),
            passes: Vec::new(),
            first_sample: None,
            last_sample: None,
            samples: 0,
            ttft: Duration::ZERO,
            first_sample_wait: Duration::ZERO,
        }
    }

    /// The parked span, once the tokens before it are in the sequence: the caller splices it back and
    /// calls [`Self::unparked`].
    pub fn due_splice(&self) -> Option<(usize, usize)> {
        self.tail.filter(|&(t0, _)| self.held == t0)
    }

    pub fn unparked(&mut self) {
        if let Some((_, t1)) = self.tail.take() {
            self.held = t1;
        }
    }

    /// Cells still parked for this generation (it must not be dropped without emptying the scratch sequence).
    pub fn has_parked(&self) -> bool {
        self.tail.is_some()
    }

    pub fn prefilling(&self) -> bool {
        self.held < self.prompt_len
    }

    /// The tokens the sequence holds, for the prefix cache's bookkeeping.
    pub fn held_tokens(&self) -> Vec<Token> {
        self.want[..self.held].to_vec()
    }

    /// Add up to `room` of this generation's next tokens to `batch`, logits only for the last token wanted;
    /// a generating step may add drafts after its token in the room left (logits on each). Returns how many
    /// were added.
    pub fn add_to_batch(
        &mut self,
        batch: &mut LlamaBatch,
        room: usize,
        tuning: &mut Tuning,
    ) -> Result<usize, BatchAddError> {
        let end = match self.tail {
            Some((t0, _)) if self.held < t0 => t0,
            _ => self.want.len(),
        };
        let n = end.saturating_sub(self.held).min(room);
        self.gen_step = !self.prefilling() && n == 1;
        self.drafts.clear();
        if self.gen_step {
            // Only tokens that may still be emitted: the token's pick and one per draft count against the
            // budget, and a steered or sampled generation is not greedy.
            let budget = self.spec.max_tokens.saturating_sub(self.generated + 1);
            let greedy = self.spec.sampler.is_none() && self.spec.names.as_ref().is_none_or(|n| !n.active());
            self.drafts = self.speculator.propose(&self.want, (room - 1).min(budget), greedy, tuning);
        }
        let pair = [self.seq as i32, self.guard.map_or(-1, |g| g as i32)];
        let seq_ids = if self.guard.is_some() { &pair[..] } else { &pair[..1] };
        for i in 0..n {
            let p = self.held + i;
            let last = p + 1 == self.want.len();
            batch.add(LlamaToken(self.want[p]), p as i32, seq_ids, last)?;
            if last {
                self.logits_row = Some(batch.n_tokens() - 1);
            }
        }
        for (i, &d) in self.drafts.iter().enumerate() {
            if let Err(e) = batch.add(LlamaToken(d), (self.held + n + i) as i32, seq_ids, true) {
                // The caller leaves this generation out of the step: its rows must not be read.
                self.logits_row = None;
                self.drafts.clear();
                return Err(e);
            }
        }
        self.in_batch = n + self.drafts.len();
        Ok(self.in_batch)
    }

    /// The batch was decoded: its tokens are in the sequence. A prompt pass is recorded for the phases.
    pub fn decoded(&mut self) {
        let was_prompt = self.prefilling();
        let n = std::mem::take(&mut self.in_batch);
        self.held += n;
        // While a prompt is decoded the batch holds only prompt tokens of this job (kept and spliced ones
        // are not decoded, so they are not in a pass).
        if was_prompt && n > 0 {
            self.passes.push(Pass { tokens: n, ms: self.pass_start.elapsed().as_secs_f64() * 1e3 });
        }
        self.pass_start = Instant::now();
    }

    /// The decode failed or was aborted: llama.cpp took that batch's cells back. `kv_len` is what the
    /// sequence holds now; the tokens past it are decoded again in a later step.
    pub fn not_decoded(&mut self, kv_len: usize) {
        self.in_batch = 0;
        self.logits_row = None;
        self.drafts.clear();
        self.held = self.held.min(kv_len);
    }

    /// Whether this step's batch carries this generation's logits row.
    pub fn wants_logits(&self) -> Option<i32> {
        self.logits_row
    }

    /// Pick the next token from this generation's logits row, and with drafts in the batch the tokens after
    /// it while the drafts match; sets `finished` when it stops. Returns the position from which the
    /// sequence's cells must be removed: the drafts that were not kept.
    pub fn take_logits(
        &mut self,
        ctx: &LlamaContext,
        row: i32,
        model: &LlamaModel,
        tuning: &mut Tuning,
    ) -> Option<usize> {
        self.logits_row = None;
        let drafts = std::mem::take(&mut self.drafts);
        let kept = walk(&drafts, |i| {
            let tok = self.sample(ctx.get_logits_ith(row + i as i32), model);
            (!self.finished).then_some(tok)
        });
        if self.gen_step {
            self.speculator.settle(drafts.len(), kept, tuning);
        }
        // The decode counted every draft as held; the ones not kept go.
        let rejected = drafts.len() - kept;
        self.held -= rejected;
        (rejected > 0).then_some(self.held)
    }

    /// Take one token off `logits`; sets `finished` when it stops, else the token is wanted next.
    fn sample(&mut self, logits: &[f32], model: &LlamaModel) -> Token {
        // Greedy straight off the logits: llama.cpp's greedy sampler first copies the whole vocabulary (262k
        // entries for Gemma 3) into a candidate array, which on a GPU costs as much as a small model's decode.
        let named = self.spec.names.as_mut().and_then(|n| n.pick(logits));
        let tok =
            LlamaToken(named.unwrap_or_else(|| {
                self.spec.sampler.as_mut().map_or_else(|| argmax(logits), |s| s.pick(logits)) as i32
            }));
        if let Some(n) = self.spec.names.as_mut() {
            n.took(tok.0);
        }
        let now = Instant::now();
        if self.first_sample.is_none() {
            self.first_sample = Some(now);
            self.ttft = self.started.elapsed();
            self.first_sample_wait = self.pass_start.elapsed();
        }
        self.last_sample = Some(now);
        self.samples += 1;
        let vocab = model.vocab();
        if vocab.is_eog(tok) || self.spec.stop_ids.contains(&tok.0) {
            self.finished = true;
            return tok.0;
        }
        self.generated += 1;
        self.bytes.extend(vocab.token_to_piece(tok, false, None));
        let text = String::from_utf8_lossy(&self.bytes);
        self.finished = self.generated >= self.spec.max_tokens
            || match &self.spec.stop {
                Stop::Completion(rules) => rules.should_stop(&text),
                Stop::Strings(s) => s.iter().any(|s| text.contains(s.as_str())),
            };
        if !self.finished {
            self.want.push(tok.0);
        }
        tok.0
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }

    /// Generated tokens per second from the first sample to the last. The first sample is not in it: it waits
    /// for the prompt's device work (llama_decode returns before a GPU is done).
    pub fn tokens_per_s(&self) -> f64 {
        let (Some(f), Some(l)) = (self.first_sample, self.last_sample) else { return 0.0 };
        let g = (l - f).as_secs_f64();
        let steps = self.samples.saturating_sub(1);
        if steps > 0 && g > 0.0 {
            steps as f64 / g
        } else {
            0.0
        }
    }
}
