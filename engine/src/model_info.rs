//! What we know about a loaded model, read from its GGUF metadata. Plain data, so prompt building and the
//! model catalog can be tested without llama.cpp.
use serde::Serialize;

pub type Token = i32;

/// A special token as the vocabulary spells it; `text` drives template detection because the same ids
/// mean different things in different families.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SpecialToken {
    pub id: Token,
    pub text: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FimTokens {
    pub pre: Option<SpecialToken>,
    pub suf: Option<SpecialToken>,
    pub mid: Option<SpecialToken>,
    pub pad: Option<SpecialToken>,
    pub rep: Option<SpecialToken>,
    pub sep: Option<SpecialToken>,
}

impl FimTokens {
    pub fn is_complete(&self) -> bool {
        self.pre.is_some() && self.suf.is_some() && self.mid.is_some()
    }
    /// Ids that end a completion if the model emits them (it has started a new FIM frame or file).
    pub fn stop_ids(&self) -> Vec<Token> {
        [&self.pre, &self.suf, &self.mid, &self.pad, &self.rep, &self.sep].into_iter().flatten().map(|t| t.id).collect()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelInfo {
    pub path: String,
    pub name: Option<String>,
    pub architecture: String,
    pub n_layer: u32,
    pub n_ctx_train: u32,
    pub n_params: u64,
    pub size_bytes: u64,
    pub n_vocab: i32,
    pub bos: Option<Token>,
    pub add_bos: bool,
    pub fim: FimTokens,
    pub chat_template: Option<String>,
    /// Sliding-window attention size, where the architecture has one (gemma2/3, …).
    pub sliding_window: Option<u32>,
    /// Layers actually offloaded to the GPU (0 on a CPU build): never more than the model has.
    pub gpu_layers: u32,
}
