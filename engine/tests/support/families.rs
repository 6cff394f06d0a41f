//! One tiny model per code-model family, with the family's architecture, tokenizer kind and special
//! tokens laid out the way the real conversions have them (ids differ: the vocabularies are small).
use super::gguf::{Gguf, Value};
use super::model::{build, tt, Arch, Vocab, Weights};

/// How the file names its FIM tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keys {
    /// `tokenizer.ggml.fim_pre_token_id`, `fim_suf_token_id`, `fim_mid_token_id`.
    Fim,
    /// The older `tokenizer.ggml.prefix_token_id`, `suffix_token_id`, `middle_token_id` (and
    /// `eot_token_id`), which convert_hf_to_gguf.py still writes for CodeLlama and CodeGemma.
    Legacy,
    /// No id keys: llama.cpp finds the tokens by their text, as for Qwen2.5-Coder and DeepSeek-Coder files.
    None,
}

#[derive(Debug, Clone)]
pub struct Model {
    pub name: &'static str,
    pub arch: Arch,
    pub vocab: Vocab,
    pub keys: Keys,
    /// Prefix, suffix and middle tokens (id, text), when the family has FIM.
    pub fim: Option<[(u32, &'static str); 3]>,
    pub bos: u32,
    pub add_bos: bool,
    /// The token the family writes when the middle is done.
    pub end: &'static str,
    /// Special-token keys of the file.
    special: Vec<(String, Value)>,
}

impl Model {
    fn new(name: &'static str, arch: Arch, vocab: Vocab, keys: Keys) -> Model {
        Model { name, arch, vocab, keys, fim: None, bos: 0, add_bos: false, end: "", special: vec![] }
    }

    fn key(&mut self, k: &str, v: impl Into<Value>) {
        self.special.push((format!("tokenizer.ggml.{k}"), v.into()));
    }

    fn ids(&mut self, bos: &str, eos: &str, add_bos: bool) {
        let (b, e) = (self.vocab.id(bos), self.vocab.id(eos));
        self.bos = b;
        self.add_bos = add_bos;
        self.key("bos_token_id", b);
        self.key("eos_token_id", e);
        self.key("add_bos_token", add_bos);
    }

    /// Records the FIM tokens and writes their ids under the `keys` style (`eot`: the family's
    /// end-of-infill token, written with the legacy keys as the converter does).
    fn fim(&mut self, texts: [&'static str; 3], eot: Option<&str>) {
        let ids = texts.map(|t| self.vocab.id(t));
        self.fim = Some([(ids[0], texts[0]), (ids[1], texts[1]), (ids[2], texts[2])]);
        match self.keys {
            Keys::Fim => {
                self.key("fim_pre_token_id", ids[0]);
                self.key("fim_suf_token_id", ids[1]);
                self.key("fim_mid_token_id", ids[2]);
            }
            Keys::Legacy => {
                self.key("prefix_token_id", ids[0]);
                self.key("suffix_token_id", ids[1]);
                self.key("middle_token_id", ids[2]);
                if let Some(t) = eot {
                    let id = self.vocab.id(t);
                    self.key("eot_token_id", id);
                }
            }
            Keys::None => {}
        }
    }

    pub fn id(&self, text: &str) -> u32 {
        self.vocab.id(text)
    }

    pub fn gguf(&self, weights: Weights) -> Gguf {
        let mut g = build(self.arch, self.name, &self.vocab, weights);
        for (k, v) in &self.special {
            g.set(k, v.clone());
        }
        g
    }

    /// Random weights (seeded by the name, so each family's file is the same on every run).
    pub fn random(&self) -> Gguf {
        self.gguf(Weights::Random(self.name.bytes().fold(7u64, |h, b| h.wrapping_mul(31).wrapping_add(b as u64))))
    }

    /// A model that writes `text` (one token) whatever the prompt.
    pub fn emitting(&self, text: &str) -> Gguf {
        self.gguf(Weights::Emit(self.id(text)))
    }
}

/// Qwen2.5-Coder: byte-level BPE ("qwen2" pre-tokenizer), special tokens after the ordinary ones, all
/// CONTROL; the base models do not add a BOS. Real files have no FIM id keys.
pub fn qwen_coder(keys: Keys) -> Model {
    let mut v = Vocab::bpe("qwen2");
    v.push_bpe_body();
    v.push_all(
        &[
            "<|endoftext|>",
            "<|im_start|>",
            "<|im_end|>",
            "<|fim_prefix|>",
            "<|fim_middle|>",
            "<|fim_suffix|>",
            "<|fim_pad|>",
            "<|repo_name|>",
            "<|file_sep|>",
        ],
        tt::CONTROL,
    );
    let mut m = Model::new("qwen-coder", Arch::Qwen2, v, keys);
    m.ids("<|endoftext|>", "<|endoftext|>", false);
    m.key("padding_token_id", m.id("<|endoftext|>"));
    m.fim(["<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"], None);
    m.end = "<|endoftext|>";
    m
}

/// CodeGemma: arch gemma, SentencePiece with `<pad> <eos> <bos> <unk>` first, the FIM tokens and
/// `<|file_separator|>` as user-defined pieces, no space prefix.
pub fn codegemma(keys: Keys) -> Model {
    let mut v = Vocab::spm();
    v.push_all(&["<pad>", "<eos>", "<bos>"], tt::CONTROL);
    v.push("<unk>", tt::UNKNOWN);
    v.push("<mask>", tt::USER_DEFINED);
    v.push_all(&["<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|file_separator|>"], tt::USER_DEFINED);
    v.push_all(&["<start_of_turn>", "<end_of_turn>"], tt::CONTROL);
    v.push_spm_body();
    let mut m = Model::new("codegemma", Arch::Gemma, v, keys);
    m.ids("<bos>", "<eos>", true);
    m.key("unknown_token_id", m.id("<unk>"));
    m.key("padding_token_id", m.id("<pad>"));
    m.key("add_space_prefix", false);
    m.fim(["<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"], Some("<end_of_turn>"));
    m.end = "<|file_separator|>";
    m
}

/// StarCoder2: byte-level BPE ("starcoder"), `<|endoftext|>` and the FIM tokens first, CONTROL.
pub fn starcoder2(keys: Keys) -> Model {
    let mut v = Vocab::bpe("starcoder");
    v.push_all(
        &["<|endoftext|>", "<fim_prefix>", "<fim_middle>", "<fim_suffix>", "<fim_pad>", "<repo_name>", "<file_sep>"],
        tt::CONTROL,
    );
    v.push_bpe_body();
    let mut m = Model::new("starcoder2", Arch::StarCoder2, v, keys);
    m.ids("<|endoftext|>", "<|endoftext|>", false);
    m.fim(["<fim_prefix>", "<fim_suffix>", "<fim_middle>"], None);
    m.end = "<|endoftext|>";
    m
}

/// DeepSeek-Coder (v1): arch llama, byte-level BPE ("deepseek-coder"), BOS added; the FIM tokens are
/// user-defined (llama.cpp promotes them to CONTROL when it finds them by text).
pub fn deepseek_coder(keys: Keys) -> Model {
    let mut v = Vocab::bpe("deepseek-coder");
    v.push_bpe_body();
    v.push_all(&["<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>"], tt::CONTROL);
    v.push_all(&["<｜fim▁hole｜>", "<｜fim▁begin｜>", "<｜fim▁end｜>"], tt::USER_DEFINED);
    v.push("<|EOT|>", tt::CONTROL);
    let mut m = Model::new("deepseek-coder", Arch::Llama, v, keys);
    m.ids("<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>", true);
    m.fim(["<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>"], None);
    m.end = "<｜end▁of▁sentence｜>";
    m
}

/// CodeLlama: arch llama, SentencePiece, `▁<PRE> ▁<SUF> ▁<MID> ▁<EOT>` after the ordinary pieces.
pub fn codellama(keys: Keys) -> Model {
    let mut v = Vocab::spm();
    v.push("<unk>", tt::UNKNOWN);
    v.push_all(&["<s>", "</s>"], tt::CONTROL);
    v.push_spm_body();
    v.push_all(&["▁<PRE>", "▁<SUF>", "▁<MID>", "▁<EOT>"], tt::CONTROL);
    let mut m = Model::new("codellama", Arch::Llama, v, keys);
    m.ids("<s>", "</s>", true);
    m.key("unknown_token_id", m.id("<unk>"));
    m.fim(["▁<PRE>", "▁<SUF>", "▁<MID>"], Some("▁<EOT>"));
    m.end = "▁<EOT>";
    m
}

/// Codestral: arch llama, SentencePiece (Mistral v3) with the control tokens first, `[SUFFIX]` before
/// `[PREFIX]`. llama.cpp does not know these texts, so only id keys make them FIM tokens.
pub fn codestral(keys: Keys) -> Model {
    let mut v = Vocab::spm();
    v.push("<unk>", tt::UNKNOWN);
    v.push_all(
        &[
            "<s>",
            "</s>",
            "[INST]",
            "[/INST]",
            "[TOOL_CALLS]",
            "[AVAILABLE_TOOLS]",
            "[/AVAILABLE_TOOLS]",
            "[TOOL_RESULTS]",
            "[/TOOL_RESULTS]",
            "[SUFFIX]",
            "[PREFIX]",
            "[MIDDLE]",
        ],
        tt::CONTROL,
    );
    v.push_spm_body();
    let mut m = Model::new("codestral", Arch::Llama, v, keys);
    m.ids("<s>", "</s>", true);
    m.key("unknown_token_id", m.id("<unk>"));
    m.fim(["[PREFIX]", "[SUFFIX]", "[MIDDLE]"], None);
    m.end = "</s>";
    m
}

/// A base model without FIM tokens (llama, SentencePiece).
pub fn base_llama() -> Model {
    let mut v = Vocab::spm();
    v.push("<unk>", tt::UNKNOWN);
    v.push_all(&["<s>", "</s>"], tt::CONTROL);
    v.push_spm_body();
    let mut m = Model::new("base-llama", Arch::Llama, v, Keys::None);
    m.ids("<s>", "</s>", true);
    m.end = "</s>";
    m
}
