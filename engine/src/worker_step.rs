//! The model side of one speculative generation step (speculate.rs): a batch with logits on every position
//! and the greedy pick off each, on one document's sequence.
use super::Session;
use crate::cancel::CancelToken;
use crate::error::{EngineError, Result};
use crate::model_info::Token;
use crate::speculate::{argmax, Verifier};
use llama_cpp_2::token::LlamaToken;

pub(super) struct SeqStep<'a, 'm, 's> {
    pub s: &'a mut Session<'m, 's>,
    pub seq: u32,
    pub cancel: &'a CancelToken,
}

impl Verifier for SeqStep<'_, '_, '_> {
    type Error = EngineError;

    fn decode(&mut self, tokens: &[Token], pos: usize, picks: bool) -> Result<Vec<Token>> {
        let seq_ids = [self.seq as i32];
        self.s.batch.clear();
        for (i, &t) in tokens.iter().enumerate() {
            self.s
                .batch
                .add(LlamaToken(t), (pos + i) as i32, &seq_ids, true)
                .map_err(|e| EngineError::Llama(e.to_string()))?;
        }
        self.s.decode(self.seq, self.cancel)?;
        Ok(if picks {
            (0..tokens.len()).map(|i| argmax(self.s.ctx.get_logits_ith(i as i32)) as Token).collect()
        } else {
            Vec::new()
        })
    }

    fn truncate(&mut self, pos: usize) {
        // Removing cells at the end of the sequence cannot fail for llama.cpp's KV cache; a refusal would
        // leave cells the prefix cache does not know of, so it is logged.
        if !self.s.ctx.clear_kv_cache_seq(Some(self.seq), Some(pos as u32), None).unwrap_or(false) {
            tracing::warn!(seq = self.seq, pos, "could not remove rejected draft cells");
        }
    }
}
