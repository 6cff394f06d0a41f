//! Tiny but complete llama.cpp models: a vocabulary (SentencePiece "llama" or byte-level BPE "gpt2"), the
//! hyperparameters each architecture's `load_arch_hparams` requires, and the tensors its
//! `load_arch_tensors` creates, for one transformer block.
//!
//! What llama.cpp insists on, from src/llama-model.cpp (`load_hparams`), src/models/<arch>.cpp and
//! src/llama-vocab.cpp (`load`):
//! - every arch: `<arch>.context_length`, `.embedding_length`, `.block_count`; heads and feed-forward
//!   length are optional there but the tensor shapes need them; llama checks `rope.dimension_count` equals
//!   the head size; qwen2 and starcoder2 assert it in their graphs;
//! - llama, qwen2, gemma: `attention.layer_norm_rms_epsilon`; starcoder2: `attention.layer_norm_epsilon`;
//! - the file must hold exactly the tensors the arch creates (an extra one fails the load), with the shapes
//!   it expects (`token_embd` is `{n_embd, n_vocab}` with n_vocab the length of the token list);
//! - the vocabulary: no duplicate token texts (a GGML_ASSERT, so an abort, not an error); "gpt2" needs
//!   `tokenizer.ggml.merges` and a known `tokenizer.ggml.pre`; SentencePiece looks the newline up as
//!   `<0x0A>`, and tokenizing text it has no pieces for falls back to `<0xXX>` byte tokens, which throws if
//!   they are missing, so SPM vocabularies carry all 256.
use super::gguf::{Gguf, Value, XorShift};
use std::collections::HashSet;

pub const N_EMBD: u64 = 64;
pub const N_HEAD: u64 = 4;
pub const N_HEAD_KV: u64 = 2;
pub const HEAD_DIM: u64 = N_EMBD / N_HEAD;
pub const N_FF: u64 = 128;
pub const N_CTX_TRAIN: u32 = 512;
pub const N_LAYER: u32 = 1;

/// `enum llama_token_type` as GGUF stores it in `tokenizer.ggml.token_type`.
pub mod tt {
    pub const NORMAL: i32 = 1;
    pub const UNKNOWN: i32 = 2;
    pub const CONTROL: i32 = 3;
    pub const USER_DEFINED: i32 = 4;
    pub const BYTE: i32 = 6;
}

/// Code-ish words the tokenizers get real pieces for, so tokenizing code does not fall back to bytes only.
const WORDS: &[&str] =
    &["fn", "main", "def", "let", "return", "print", "self", "x", "y", "=", "()", "{", "}", "  ", "    "];

#[derive(Debug, Clone)]
pub struct Vocab {
    /// `tokenizer.ggml.model`: "llama" (SentencePiece) or "gpt2" (byte-level BPE).
    pub model: &'static str,
    /// `tokenizer.ggml.pre`, for BPE.
    pub pre: Option<&'static str>,
    pub tokens: Vec<String>,
    pub types: Vec<i32>,
    pub scores: Vec<f32>,
    pub merges: Vec<String>,
    seen: HashSet<String>,
}

/// GPT-2's `bytes_to_unicode`, in GPT-2's vocabulary order: the printable byte values stand for
/// themselves, the others are shifted to U+0100 and up.
pub fn byte_table() -> Vec<(u8, char)> {
    let printable: Vec<u32> = (b'!' as u32..=b'~' as u32).chain(0xA1..=0xAC).chain(0xAE..=0xFF).collect();
    let mut table: Vec<(u8, char)> = printable.iter().map(|&b| (b as u8, char::from_u32(b).unwrap())).collect();
    let mut shifted = 0;
    for b in 0..256u32 {
        if !printable.contains(&b) {
            table.push((b as u8, char::from_u32(256 + shifted).unwrap()));
            shifted += 1;
        }
    }
    table
}

/// The byte-level form of a byte (how GPT-2 writes it in token texts: a space is `Ġ`, a newline `Ċ`).
pub fn byte_char(b: u8) -> char {
    byte_table().into_iter().find(|&(x, _)| x == b).unwrap().1
}

impl Vocab {
    pub fn spm() -> Vocab {
        Vocab {
            model: "llama",
            pre: None,
            tokens: vec![],
            types: vec![],
            scores: vec![],
            merges: vec![],
            seen: HashSet::new(),
        }
    }

    pub fn bpe(pre: &'static str) -> Vocab {
        Vocab { model: "gpt2", pre: Some(pre), ..Vocab::spm() }
    }

    pub fn n_tokens(&self) -> usize {
        self.tokens.len()
    }

    pub fn push(&mut self, text: &str, ty: i32) -> u32 {
        self.push_scored(text, ty, 0.0)
    }

    pub fn push_scored(&mut self, text: &str, ty: i32, score: f32) -> u32 {
        assert!(self.seen.insert(text.to_string()), "duplicate token {text:?}: llama.cpp would abort");
        self.tokens.push(text.to_string());
        self.types.push(ty);
        self.scores.push(score);
        (self.tokens.len() - 1) as u32
    }

    /// Several tokens of one type; returns their ids in order.
    pub fn push_all(&mut self, texts: &[&str], ty: i32) -> Vec<u32> {
        texts.iter().map(|t| self.push(t, ty)).collect()
    }

    pub fn id(&self, text: &str) -> u32 {
        self.tokens.iter().position(|t| t == text).unwrap_or_else(|| panic!("no token {text:?}")) as u32
    }

    /// The ordinary tokens of a SentencePiece vocabulary: the 256 byte tokens, `▁` and printable ASCII,
    /// and every prefix of the code words (SentencePiece only merges a pair whose concatenation is a piece).
    pub fn push_spm_body(&mut self) {
        for b in 0..=255u8 {
            self.push(&format!("<0x{b:02X}>"), tt::BYTE);
        }
        let mut score = -1.0;
        let mut piece = |v: &mut Vocab, s: &str| {
            if !v.seen.contains(s) {
                v.push_scored(s, tt::NORMAL, score);
                score -= 1.0;
            }
        };
        piece(self, "▁");
        for c in b'!'..=b'~' {
            piece(self, &(c as char).to_string());
        }
        for w in WORDS {
            for word in [w.replace(' ', "▁"), format!("▁{}", w.replace(' ', "▁"))] {
                let chars: Vec<char> = word.chars().collect();
                for n in 2..=chars.len() {
                    piece(self, &chars[..n].iter().collect::<String>());
                }
            }
        }
    }

    /// The ordinary tokens of a byte-level BPE vocabulary: the 256 byte symbols, then the code words built
    /// by left-to-right merges (each merge's result is a token, as BPE needs).
    pub fn push_bpe_body(&mut self) {
        for (_, c) in byte_table() {
            self.push(&c.to_string(), tt::NORMAL);
        }
        let to_bytes = |w: &str| w.bytes().map(byte_char).collect::<Vec<char>>();
        for w in WORDS {
            for word in [to_bytes(w), to_bytes(&format!(" {w}"))] {
                let mut left = word[0].to_string();
                for c in &word[1..] {
                    let merged = format!("{left}{c}");
                    let rule = format!("{left} {c}");
                    if !self.merges.contains(&rule) {
                        self.merges.push(rule);
                    }
                    if !self.seen.contains(&merged) {
                        self.push(&merged, tt::NORMAL);
                    }
                    left = merged;
                }
            }
        }
    }

    pub fn write(&self, g: &mut Gguf) {
        g.set("tokenizer.ggml.model", self.model);
        if let Some(p) = self.pre {
            g.set("tokenizer.ggml.pre", p);
        }
        g.set("tokenizer.ggml.tokens", Value::Strs(self.tokens.clone()));
        g.set("tokenizer.ggml.token_type", Value::I32s(self.types.clone()));
        if self.model == "llama" {
            g.set("tokenizer.ggml.scores", Value::F32s(self.scores.clone()));
        }
        if !self.merges.is_empty() {
            g.set("tokenizer.ggml.merges", Value::Strs(self.merges.clone()));
        }
    }
}

/// What the tensors hold.
#[derive(Debug, Clone, Copy)]
pub enum Weights {
    /// Random weights from this seed (norms at 1): a real, if useless, model.
    Random(u64),
    /// A model that writes this token after any input: every block writes zeros (attention and
    /// feed-forward weights and biases are 0), every embedding row is the same vector `c` except the
    /// token's own row, `2c`, and the output head is the embedding matrix (tied), so after the final norm
    /// the token's logit is twice any other.
    Emit(u32),
}

/// The architecture-specific part of a model file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    Llama,
    Qwen2,
    Gemma,
    StarCoder2,
}

impl Arch {
    pub fn name(self) -> &'static str {
        match self {
            Arch::Llama => "llama",
            Arch::Qwen2 => "qwen2",
            Arch::Gemma => "gemma",
            Arch::StarCoder2 => "starcoder2",
        }
    }

    pub fn hparams(self, g: &mut Gguf, n_vocab: usize) {
        let a = self.name();
        let k = |s: &str| format!("{a}.{s}");
        g.set(&k("context_length"), N_CTX_TRAIN)
            .set(&k("embedding_length"), N_EMBD as u32)
            .set(&k("block_count"), N_LAYER)
            .set(&k("feed_forward_length"), N_FF as u32)
            .set(&k("attention.head_count"), N_HEAD as u32)
            .set(&k("attention.head_count_kv"), N_HEAD_KV as u32)
            .set(&k("rope.freq_base"), 10000.0f32);
        match self {
            Arch::Llama => {
                g.set(&k("rope.dimension_count"), HEAD_DIM as u32)
                    .set(&k("vocab_size"), n_vocab as u32)
                    .set(&k("attention.layer_norm_rms_epsilon"), 1e-5f32);
            }
            Arch::Qwen2 => {
                g.set(&k("attention.layer_norm_rms_epsilon"), 1e-6f32);
            }
            Arch::Gemma => {
                g.set(&k("attention.key_length"), HEAD_DIM as u32)
                    .set(&k("attention.value_length"), HEAD_DIM as u32)
                    .set(&k("attention.layer_norm_rms_epsilon"), 1e-6f32);
            }
            Arch::StarCoder2 => {
                g.set(&k("attention.layer_norm_epsilon"), 1e-5f32);
            }
        }
    }

    /// The tensors `load_arch_tensors` creates for this arch, one block.
    pub fn tensors(self, g: &mut Gguf, n_vocab: u64, weights: Weights) {
        let (e, ff, q, kv) = (N_EMBD, N_FF, N_HEAD * HEAD_DIM, N_HEAD_KV * HEAD_DIM);
        let mut rng = XorShift::new(match weights {
            Weights::Random(seed) => seed,
            Weights::Emit(_) => 0,
        });
        let random = matches!(weights, Weights::Random(_));
        // A matrix `{n_in, n_out}` (n_out rows of n_in): scaled like a usual init, or zero.
        let mut mat = |g: &mut Gguf, name: &str, n_in: u64, n_out: u64| {
            let data = if random {
                rng.fill((n_in * n_out) as usize, 1.0 / (n_in as f32).sqrt())
            } else {
                vec![0.0; (n_in * n_out) as usize]
            };
            g.tensor(name, &[n_in, n_out], data);
        };
        let norm = |g: &mut Gguf, name: &str| {
            g.tensor(name, &[e], vec![1.0; e as usize]);
        };
        let bias = |g: &mut Gguf, name: &str, n: u64| {
            // Small fixed values when random (the generator above is borrowed by `mat`).
            let data = (0..n).map(|i| if random { ((i % 7) as f32 - 3.0) * 0.01 } else { 0.0 }).collect();
            g.tensor(name, &[n], data);
        };
        let c = |j: u64| if j.is_multiple_of(2) { 1.0f32 } else { -1.0 };
        match weights {
            Weights::Random(_) => mat(g, "token_embd.weight", e, n_vocab),
            Weights::Emit(tok) => {
                let mut data = Vec::with_capacity((e * n_vocab) as usize);
                for row in 0..n_vocab {
                    let scale = if row == tok as u64 { 2.0 } else { 1.0 };
                    data.extend((0..e).map(|j| scale * c(j)));
                }
                g.tensor("token_embd.weight", &[e, n_vocab], data);
            }
        }
        norm(g, "output_norm.weight");
        if self == Arch::StarCoder2 {
            bias(g, "output_norm.bias", e);
        }
        // Gemma always ties the output head to the embedding; the others use `output.weight` when the file
        // has one (the emitting model relies on the tie).
        if random && self != Arch::Gemma {
            mat(g, "output.weight", e, n_vocab);
        }
        let b = |s: &str| format!("blk.0.{s}");
        norm(g, &b("attn_norm.weight"));
        if self == Arch::StarCoder2 {
            bias(g, &b("attn_norm.bias"), e);
        }
        mat(g, &b("attn_q.weight"), e, q);
        mat(g, &b("attn_k.weight"), e, kv);
        mat(g, &b("attn_v.weight"), e, kv);
        if matches!(self, Arch::Qwen2 | Arch::StarCoder2) {
            bias(g, &b("attn_q.bias"), q);
            bias(g, &b("attn_k.bias"), kv);
            bias(g, &b("attn_v.bias"), kv);
        }
        mat(g, &b("attn_output.weight"), q, e);
        if self == Arch::StarCoder2 {
            bias(g, &b("attn_output.bias"), e);
        }
        norm(g, &b("ffn_norm.weight"));
        if self == Arch::StarCoder2 {
            bias(g, &b("ffn_norm.bias"), e);
            mat(g, &b("ffn_up.weight"), e, ff);
            bias(g, &b("ffn_up.bias"), ff);
            mat(g, &b("ffn_down.weight"), ff, e);
            bias(g, &b("ffn_down.bias"), e);
        } else {
            mat(g, &b("ffn_gate.weight"), e, ff);
            mat(g, &b("ffn_up.weight"), e, ff);
            mat(g, &b("ffn_down.weight"), ff, e);
        }
    }
}

/// A whole model file: metadata, vocabulary and tensors.
pub fn build(arch: Arch, name: &str, vocab: &Vocab, weights: Weights) -> Gguf {
    let mut g = Gguf::new();
    g.set("general.architecture", arch.name()).set("general.name", name).set("general.file_type", 0u32);
    arch.hparams(&mut g, vocab.n_tokens());
    vocab.write(&mut g);
    arch.tensors(&mut g, vocab.n_tokens() as u64, weights);
    g
}
