//! The model thread's steps: starting a job (its prompt, its sequence's plan), one shared decode for every
//! generation that takes part, and finishing a job (its answer, the cache's bookkeeping, the statistics).
use super::{Job, Reply, Session, BATCH};
use crate::api::{Completion, Generation, Timings};
use crate::error::EngineError;
use crate::gen::{Gen, GenSpec, Stop};
use crate::llama_kv::Kv;
use crate::model_info::Token;
use crate::postprocess::{self, StopRules};
use crate::prefix_cache::KvOps;
use crate::sched::Meta;
use crate::speculate::{Speculative, Speculator};
use crate::stats::Part;
use llama_cpp_2::DecodeError;
use std::time::{Duration, Instant};

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

enum Answer {
    Complete { after: String, reply: Reply<Completion>, prefetch: bool },
    Generate { reply: Reply<Generation> },
}

/// An admitted job: its generation and what its answer and statistics need at the end.
pub(super) struct Running {
    pub gen: Gen,
    meta: Meta,
    answer: Answer,
    queued: Instant,
    start: Instant,
    prompt_len: usize,
    reused: usize,
    restored: bool,
    shifted: usize,
    shared: usize,
    plan_ms: f64,
    kv_moved: bool,
    context_tokens: usize,
}

impl Session<'_, '_> {
    /// Plan the job's sequence and make it a running generation. `false`: it was answered at once (cancelled,
    /// or its prompt does not fit).
    pub(super) fn start(&mut self, id: u64, meta: Meta, job: Job) -> bool {
        let start = Instant::now();
        let mut context_tokens = 0;
        let (prompt, spec, answer, queued) = match job {
            Job::Complete { req, cancel, queued, reply, prefetch } => {
                if cancel.is_cancelled() {
                    let _ = reply.send(Err(EngineError::Cancelled));
                    return false;
                }
                let t = Instant::now();
                let (prompt, block_len) = self.completion_prompt(&req);
                self.clock.add(Part::Prompt, ms(t.elapsed()));
                context_tokens = block_len;
                let rules = StopRules::new(
                    &req.after,
                    req.max_lines.unwrap_or(self.cfg.max_lines),
                    postprocess::is_mid_line(&req.after),
                );
                let names = req.context.as_ref().and_then(|c| {
                    let rests = c.names.rests.iter().map(|n| self.tokenize(n)).collect();
                    crate::names::NameChoice::new(rests, crate::names::margin(c.names.typed.chars().count()))
                });
                let spec = GenSpec {
                    max_tokens: req.max_tokens.unwrap_or(self.cfg.max_tokens).clamp(1, 512),
                    stop_ids: self.format.stop_ids().to_vec(),
                    stop: Stop::Completion(rules),
                    sampler: None,
                    names,
                    cancel,
                };
                (prompt, spec, Answer::Complete { after: req.after, reply, prefetch }, queued)
            }
            Job::Generate { req, cancel, queued, reply } => {
                if cancel.is_cancelled() {
                    let _ = reply.send(Err(EngineError::Cancelled));
                    return false;
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
                    let _ = reply.send(Err(EngineError::PromptTooLong(format!(
                        "{} prompt tokens + {} to generate exceed the {} cells of a sequence (raise ctxPerSequence)",
                        prompt.len(),
                        req.max_tokens,
                        room
                    ))));
                    return false;
                }
                let spec = GenSpec {
                    max_tokens: req.max_tokens,
                    stop_ids: self.format.stop_ids().to_vec(),
                    stop: Stop::Strings(req.stop),
                    sampler: (req.temperature > 0.0).then(|| crate::sampling::Sampler::new(req.temperature, req.seed)),
                    names: None,
                    cancel,
                };
                (prompt, spec, Answer::Generate { reply }, queued)
            }
            _ => unreachable!("only completions and generations are scheduled"),
        };
        let t = Instant::now();
        let mut kv = Kv::new(&mut self.ctx, self.pp_tokens_per_s, self.cfg.sequences, self.guards);
        let mut plan = self.cache.prepare(&meta.doc, &prompt, &mut kv);
        self.clock.add(Part::Plan, ms(t.elapsed()));
        let mut kv_moved = kv.moved;
        // A safety net: a sequence that does not end where the cache says (cells llama.cpp took for another
        // sequence, which the guards of worker.rs `swa_guards` now prevent) would refuse the next tokens or
        // attend to a hole, so it is decoded afresh.
        let held = self.kv_len(plan.seq);
        if plan.tail.is_none() && plan.keep > 0 && held != plan.keep {
            tracing::warn!(doc = %meta.doc, keep = plan.keep, held, "KV cells lost; decoding the prompt afresh");
            let mut kv = Kv::new(&mut self.ctx, self.pp_tokens_per_s, self.cfg.sequences, self.guards);
            kv.clear(plan.seq);
            self.cache.commit(plan.seq, Vec::new());
            plan = self.cache.prepare(&meta.doc, &prompt, &mut kv);
            kv_moved |= kv.moved;
        }
        self.cache.pin(plan.seq);
        let reused = plan.keep + plan.tail.map(|(a, b)| b - a).unwrap_or(0);
        let prompt_len = prompt.len();
        let draft_max = if self.cfg.speculative == Speculative::Off { 0 } else { self.cfg.draft_max };
        let previous = self.suggested.get(&meta.doc).cloned().unwrap_or_default();
        let speculator = Speculator::new(previous, draft_max);
        let mut gen = Gen::new(plan.seq, prompt, plan.keep, plan.tail, spec, speculator, start);
        gen.guard = self.guards.map(|g| g + plan.seq);
        let r = Running {
            gen,
            meta,
            answer,
            queued,
            start,
            prompt_len,
            reused,
            restored: plan.restored,
            shifted: plan.shifted,
            shared: plan.shared,
            plan_ms: start.elapsed().as_secs_f64() * 1e3,
            kv_moved,
            context_tokens,
        };
        self.gens.insert(id, r);
        true
    }

    /// Answer the running jobs that were cancelled, whether or not they would take part in the next step: one
    /// that sits out a keystroke's steps (a long job yielding) would otherwise keep its sequence, and the
    /// document's next request would wait for it.
    pub(super) fn drop_cancelled(&mut self) -> Vec<u64> {
        let ids: Vec<u64> =
            self.gens.iter().filter(|(_, r)| r.gen.spec.cancel.is_cancelled()).map(|(&id, _)| id).collect();
        for &id in &ids {
            self.finish(id, Err(EngineError::Cancelled));
        }
        ids
    }

    /// One decode for the jobs in `ids` (most urgent first): each adds its next token, or a chunk of its
    /// prompt where the batch has room. Returns the jobs that are done.
    pub(super) fn step(&mut self, ids: &[u64]) -> Vec<u64> {
        let t_step = Instant::now();
        let mut done = Vec::new();
        let mut part: Vec<u64> = Vec::new();
        // A job with cells parked in the scratch sequence must go on until they are spliced back.
        let parked: Vec<u64> = self.gens.iter().filter(|(_, r)| r.gen.has_parked()).map(|(&id, _)| id).collect();
        for id in ids.iter().copied().chain(parked) {
            if part.contains(&id) || done.contains(&id) {
                continue;
            }
            let r = self.gens.get_mut(&id).expect("scheduled jobs run");
            // A cancelled job drops out at the token boundary; one that was not in the batch costs nothing.
            if r.gen.spec.cancel.is_cancelled() {
                self.finish(id, Err(EngineError::Cancelled));
                done.push(id);
                continue;
            }
            if let Some((t0, t1)) = r.gen.due_splice() {
                let seq = r.gen.seq;
                let mut kv = Kv::new(&mut self.ctx, self.pp_tokens_per_s, self.cfg.sequences, self.guards);
                if !kv.unpark(seq, t0, t1) {
                    self.finish(id, Err(EngineError::Llama("could not splice the cached suffix back".into())));
                    done.push(id);
                    continue;
                }
                self.gens.get_mut(&id).expect("still running").gen.unparked();
            }
            part.push(id);
        }
        if part.is_empty() {
            return done;
        }
        // Prompts first (most urgent first), in the room the generating jobs' one token each leaves, then those
        // tokens, each with the drafts the room left by the prompts allows (a job's drafts never take the
        // room of a prompt or of a less urgent job's token: they are a guess, the others sure progress). The
        // order matters for losslessness: llama.cpp fills free cells from the lowest index, and flash
        // attention sums a sequence's cells in index order, so a generating job's token placed in a hole
        // before its earlier cells (a prompt's re-decoded tail often leaves one) would change its sums; a
        // prompt placed first fills the hole it left itself.
        self.batch.clear();
        let generating = part.iter().filter(|id| !self.gens[id].gen.prefilling()).count();
        let mut room = BATCH - generating.min(BATCH - 1);
        let mut added = Vec::new();
        for pass_prompts in [true, false] {
            let mut waiting = generating;
            if !pass_prompts {
                room = BATCH - self.batch.n_tokens() as usize;
            }
            for &id in &part {
                let g = &mut self.gens.get_mut(&id).expect("running").gen;
                if g.prefilling() != pass_prompts || room == 0 {
                    continue;
                }
                // The generating jobs after this one keep one position each.
                let own = if pass_prompts {
                    room
                } else {
                    waiting -= 1;
                    room.saturating_sub(waiting).max(1)
                };
                match g.add_to_batch(&mut self.batch, own, &mut self.tuning) {
                    Ok(n) if n > 0 => {
                        room -= n;
                        added.push(id);
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::error!("batch: {e}");
                        g.not_decoded(usize::MAX);
                    }
                }
            }
        }
        if added.is_empty() {
            return done;
        }
        // A batch of generating rows only, every one with logits, tells what a verified position costs.
        let all_rows =
            added.iter().all(|id| !self.gens[id].gen.prefilling() && self.gens[id].gen.wants_logits().is_some());
        // The abort callback watches the most urgent job in the batch: its cancellation stops the decode at
        // once; the others are dropped at the next boundary.
        let lead = added.iter().copied().min_by_key(|id| (self.gens[id].meta.prio, part.iter().position(|p| p == id)));
        let lead = lead.expect("a non-empty batch");
        let cancel = self.gens[&lead].gen.spec.cancel.clone();
        self.abort.arm(&cancel);
        let t = Instant::now();
        self.clock.add(Part::Batch, ms(t - t_step));
        let decoded = self.decode();
        if self.cfg.profile_sync && decoded.is_ok() {
            // `profileSync`: llama_decode returns before a GPU is done; waiting here makes each pass's time
            // the device's (the phases of `lokal bench --profile`) at the cost of the next step's overlap.
            self.ctx.synchronize();
        }
        let t_sample = Instant::now();
        self.last_decode = t_sample - t;
        self.clock.add(Part::Decode, ms(self.last_decode));
        self.clock.decoded(self.batch.n_tokens() as usize, added.len());
        let finish_before = self.clock.part(Part::Finish);
        self.abort.disarm();
        match decoded {
            Ok(()) => {
                // Until the last row's logits are read: on a GPU llama_decode returns before the device is
                // done, and the cost of a verified position (the copy of its logits, the pick) comes after.
                let mut read = t_sample;
                for &id in &added {
                    let r = self.gens.get_mut(&id).expect("running");
                    r.gen.decoded();
                    if let Some(row) = r.gen.wants_logits() {
                        let from = r.gen.take_logits(&self.ctx, row, self.model, &mut self.tuning);
                        read = Instant::now();
                        if let Some(from) = from {
                            // Removing cells at a sequence's end cannot fail for llama.cpp's KV cache; a
                            // refusal would leave cells the prefix cache does not know of, so it is logged.
                            let seq = r.gen.seq;
                            let mut kv = Kv::new(&mut self.ctx, self.pp_tokens_per_s, self.cfg.sequences, self.guards);
                            if !kv.truncate(seq, from) {
                                tracing::warn!(seq, from, "could not remove rejected draft cells");
                            }
                        }
                    }
                    if r.gen.finished {
                        self.finish(id, Ok(()));
                        done.push(id);
                    }
                }
                if all_rows {
                    self.tuning.observe_time(self.batch.n_tokens() as usize, ms(read - t));
                }
            }
            Err(e) => {
                for &id in &added {
                    let seq = self.gens[&id].gen.seq;
                    let n = self.kv_len(seq);
                    self.gens.get_mut(&id).expect("running").gen.not_decoded(n);
                }
                if cancel.is_cancelled() {
                    self.finish(lead, Err(EngineError::Cancelled));
                    done.push(lead);
                } else {
                    // Not a cancellation: the model cannot go on with this batch; every job in it is told why.
                    for &id in &added {
                        self.finish(id, Err(e.clone()));
                        done.push(id);
                    }
                }
            }
        }
        let finishing = self.clock.part(Part::Finish) - finish_before;
        self.clock.add(Part::Sample, (ms(t_sample.elapsed()) - finishing).max(0.0));
        done
    }

    fn decode(&mut self) -> Result<(), EngineError> {
        self.decode_calls += 1;
        let r = self.ctx.decode(&mut self.batch);
        if r.is_err() {
            self.sync_guards();
        }
        match r {
            Ok(()) => Ok(()),
            Err(DecodeError::NoKvCacheSlot) => {
                // The shared cell pool is full: drop every document no job holds and try once more.
                tracing::warn!("KV cache full; evicting idle documents");
                let mut kv = Kv::new(&mut self.ctx, self.pp_tokens_per_s, self.cfg.sequences, self.guards);
                for d in self.docs.keys() {
                    if self.cache.seq_of(d).is_some_and(|s| !self.cache.is_pinned(s)) {
                        self.cache.release(d, &mut kv);
                    }
                }
                self.decode_calls += 1;
                let r = self.ctx.decode(&mut self.batch).map_err(|e| EngineError::Llama(e.to_string()));
                if r.is_err() {
                    self.sync_guards();
                }
                r
            }
            Err(e) => Err(EngineError::Llama(e.to_string())),
        }
    }

    /// After a failed or aborted decode llama.cpp removes that batch's cells for one sequence of each
    /// token only (seen: the guard, not the sequence): both are cut back to the shorter, or the cells of the
    /// batch that never finished would stay in one of them and the next tokens be refused as out of order.
    fn sync_guards(&mut self) {
        let Some(base) = self.guards else { return };
        for seq in 0..=self.cfg.sequences {
            let n = self.kv_len(seq).min(self.kv_len(base + seq));
            let _ = self.ctx.clear_kv_cache_seq(Some(seq), Some(n as u32), None);
            let _ = self.ctx.clear_kv_cache_seq(Some(base + seq), Some(n as u32), None);
        }
    }

    /// After a failed or aborted decode llama.cpp removes that batch's cells; trust its count, not ours.
    fn kv_len(&self, seq: u32) -> usize {
        let max = self.ctx.kv_cache_seq_pos_max(seq as i32);
        if max < 0 {
            0
        } else {
            max as usize + 1
        }
    }

    /// Answer the job and give its sequence back to the cache with exactly the tokens it holds.
    fn finish(&mut self, id: u64, result: Result<(), EngineError>) {
        let t = Instant::now();
        self.answer(id, result);
        self.clock.add(Part::Finish, ms(t.elapsed()));
    }

    fn answer(&mut self, id: u64, result: Result<(), EngineError>) {
        let Some(r) = self.gens.remove(&id) else { return };
        let mut kv = Kv::new(&mut self.ctx, self.pp_tokens_per_s, self.cfg.sequences, self.guards);
        if r.gen.has_parked() {
            kv.drop_parked();
        }
        let held = r.gen.held_tokens();
        let seq = r.gen.seq;
        self.cache.commit(seq, held.clone());
        self.cache.unpin(seq);
        let st = self.docs.entry(r.meta.doc.clone()).or_default();
        st.tokens_held = held.len();
        // Work done ahead is counted apart: the request it may answer is counted when it does, and the
        // last request's figures stay those of a request someone waited for.
        if let Answer::Complete { prefetch: true, .. } = &r.answer {
            if result.is_ok() {
                st.prefetch_done += 1;
            }
            if let (Answer::Complete { after, reply, .. }, Stop::Completion(rules)) = (r.answer, &r.gen.spec.stop) {
                let _ = reply.send(match result {
                    Ok(()) => Ok(Completion {
                        text: postprocess::finalize(&r.gen.text(), &after, rules),
                        timings: Timings::default(),
                    }),
                    Err(e) => Err(e),
                });
            }
            return;
        }
        st.requests += 1;
        if let Err(e) = result {
            match r.answer {
                Answer::Complete { reply, .. } => drop(reply.send(Err(e))),
                Answer::Generate { reply } => drop(reply.send(Err(e))),
            }
            return;
        }
        let g = &r.gen;
        let sp = &g.speculator;
        st.record_speculation(sp.drafted, sp.accepted, sp.decodes);
        self.suggested.insert(r.meta.doc.clone(), held.get(r.prompt_len..).unwrap_or_default().to_vec());
        if r.reused > 0 {
            st.hits += 1;
        } else {
            st.misses += 1;
        }
        if r.restored {
            st.restores += 1;
        }
        st.last_prompt_tokens = r.prompt_len;
        st.last_reused_tokens = r.reused;
        st.last_redecoded_tokens = r.prompt_len - r.reused;
        st.last_generated_tokens = g.generated;
        st.last_restored = r.restored;
        st.last_shifted_tokens = r.shifted;
        st.last_shared_tokens = r.shared;
        st.shared_tokens += r.shared as u64;
        st.last_context_tokens = r.context_tokens;
        st.last_prompt_ms = ms(g.ttft);
        st.last_ttft_ms = ms(g.ttft);
        st.last_total_ms = ms(r.start.elapsed());
        st.last_gen_tokens_per_s = g.tokens_per_s();
        st.last_phases = crate::stats::Phases {
            plan_ms: r.plan_ms,
            passes: g.passes.clone(),
            first_sample_ms: ms(g.first_sample_wait),
            synced: self.cfg.profile_sync,
            kv_shift: r.kv_moved,
        };
        let decoded = r.prompt_len - r.reused;
        if decoded >= 64 {
            let rate = decoded as f64 / g.ttft.as_secs_f64().max(1e-6);
            self.pp_tokens_per_s = 0.7 * self.pp_tokens_per_s + 0.3 * rate;
        }
        let timings = Timings {
            queue_ms: ms(r.start - r.queued),
            prompt_ms: ms(g.ttft),
            ttft_ms: ms(g.ttft + (r.start - r.queued)),
            total_ms: ms(r.queued.elapsed()),
            prompt_tokens: r.prompt_len,
            reused_tokens: r.reused,
            redecoded_tokens: r.prompt_len - r.reused,
            generated_tokens: g.generated,
            gen_tokens_per_s: g.tokens_per_s(),
            restored: r.restored,
            from_suggestion: false,
            from_prefetch: false,
        };
        let raw = g.text();
        match (r.answer, &g.spec.stop) {
            (Answer::Complete { after, reply, .. }, Stop::Completion(rules)) => {
                let text = postprocess::finalize(&raw, &after, rules);
                let _ = reply.send(Ok(Completion { text, timings }));
            }
            (Answer::Generate { reply }, stop) => {
                let mut text = raw;
                if let Stop::Strings(stop) = stop {
                    if let Some(cut) = stop.iter().filter_map(|s| text.find(s.as_str())).min() {
                        text.truncate(cut);
                    }
                }
                let _ = reply.send(Ok(Generation { text, timings }));
            }
            (Answer::Complete { reply, .. }, _) => {
                let _ = reply.send(Err(EngineError::Llama("a completion without its stop rules".into())));
            }
        }
    }
}
