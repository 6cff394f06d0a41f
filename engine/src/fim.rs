//! Prompt layouts for code completion: fill-in-the-middle templates of the main code-model families, chosen
//! from the model's own FIM tokens, and plain prefix continuation for models without them.
//!
//! The layout decides what a keystroke invalidates in the KV cache (see ARCHITECTURE.md): everything after
//! the first changed token must be re-decoded, so the part that changes while typing (the end of the prefix)
//! should sit as late in the prompt as the model's training allows.
use crate::model_info::{FimTokens, ModelInfo, SpecialToken, Token};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FimFamily {
    QwenCoder,
    CodeGemma,
    StarCoder,
    DeepSeekCoder,
    CodeLlama,
    Codestral,
    /// FIM tokens we do not recognise by name: assume the common PSM order.
    Generic,
}

impl FimFamily {
    /// The family whose prefix token is spelled `pre` (the architecture tells CodeGemma from Qwen).
    pub fn of(pre: &str, arch: &str) -> FimFamily {
        match pre.trim_start_matches('▁').trim() {
            "<|fim_prefix|>" if arch.starts_with("gemma") => FimFamily::CodeGemma,
            "<|fim_prefix|>" => FimFamily::QwenCoder,
            "<fim_prefix>" | "<fim-prefix>" => FimFamily::StarCoder,
            "<｜fim▁begin｜>" | "<|fim▁begin|>" => FimFamily::DeepSeekCoder,
            "<PRE>" => FimFamily::CodeLlama,
            "[PREFIX]" => FimFamily::Codestral,
            _ => FimFamily::Generic,
        }
    }

    /// Texts of the tokens that end a fill in this family, looked up in the vocabulary when the model loads:
    /// llama.cpp marks only the end-of-generation tokens it finds through id keys or its own list of texts,
    /// which misses CodeGemma's `<|file_separator|>` (the converter writes no key for it) and CodeLlama's
    /// `▁<EOT>` in files without `eot_token_id` (llama.cpp's list spells it with an ASCII underscore).
    pub fn stop_texts(self) -> &'static [&'static str] {
        match self {
            FimFamily::QwenCoder => &["<|endoftext|>", "<|file_sep|>", "<|repo_name|>"],
            FimFamily::CodeGemma => &["<|file_separator|>", "<eos>", "<end_of_turn>"],
            FimFamily::StarCoder => &["<|endoftext|>", "<file_sep>", "<repo_name>"],
            FimFamily::DeepSeekCoder => &["<｜end▁of▁sentence｜>", "<|EOT|>"],
            FimFamily::CodeLlama => &["▁<EOT>", "<EOT>"],
            FimFamily::Codestral => &["</s>"],
            FimFamily::Generic => &[],
        }
    }
}

/// Prefix, suffix and middle token texts of the known families, as their vocabularies spell them. llama.cpp
/// finds most of these by text itself when a file has no FIM id keys, but not Codestral's.
pub const FIM_TOKEN_TEXTS: &[[&str; 3]] = &[
    ["<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"], // Qwen2.5-Coder, CodeGemma
    ["<fim_prefix>", "<fim_suffix>", "<fim_middle>"],       // StarCoder
    ["<fim-prefix>", "<fim-suffix>", "<fim-middle>"],       // SantaCoder
    ["<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>"], // DeepSeek-Coder
    ["<|fim▁begin|>", "<|fim▁hole|>", "<|fim▁end|>"],
    ["▁<PRE>", "▁<SUF>", "▁<MID>"], // CodeLlama
    ["<PRE>", "<SUF>", "<MID>"],
    ["[PREFIX]", "[SUFFIX]", "[MIDDLE]"], // Codestral
];

/// When the model did not name all three FIM tokens, look for a known family's set in its vocabulary
/// (`lookup`: a token's id by its exact text). A set is taken whole or not at all, so tokens of two
/// families are never mixed.
pub fn fill_fim_by_text(fim: &mut FimTokens, lookup: impl Fn(&str) -> Option<Token>) {
    if fim.is_complete() {
        return;
    }
    for texts in FIM_TOKEN_TEXTS {
        let found = texts.map(|t| lookup(t).map(|id| SpecialToken { id, text: t.to_string() }));
        if let [Some(pre), Some(suf), Some(mid)] = found {
            tracing::info!(prefix = %pre.text, "FIM tokens found by their text in the vocabulary");
            (fim.pre, fim.suf, fim.mid) = (Some(pre), Some(suf), Some(mid));
            return;
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Order {
    /// prefix, suffix, then middle: a keystroke re-decodes the typed tokens plus the suffix window.
    PrefixSuffixMiddle,
    /// suffix first, prefix last: a keystroke re-decodes only the typed tokens.
    SuffixPrefixMiddle,
}

/// Where the typed part of the cursor's line goes in a prefix-suffix-middle prompt (setting `fimLayout`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum FimLayout {
    /// The family's trained layout: in PSM a keystroke changes the prefix, so the suffix window behind it is
    /// decoded again.
    #[default]
    Native,
    /// llama.cpp's /infill layout, `<PRE>{lines before the cursor's}<SUF>{rest of the line, suffix}<MID>{the
    /// cursor's line up to the cursor}`: typing only appends tokens, so a keystroke is one pass over what was
    /// typed. The middle keeps its start over the next few lines (window.rs `infill_cut`), so Enter and the
    /// lines typed after it append too. Families whose layout already ends with the prefix (SPM) keep theirs.
    Infill,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Tok(Token),
    Prefix,
    Suffix,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FimTemplate {
    pub family: FimFamily,
    pub order: Order,
    parts: Vec<Part>,
    /// The family's prefix, suffix and middle tokens.
    psm: [Token; 3],
    pub stop_ids: Vec<Token>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PromptFormat {
    Fim(FimTemplate),
    /// Base models without FIM tokens: the prompt is the prefix, and the suffix only guides trimming.
    Continuation,
}

impl PromptFormat {
    pub fn detect(info: &ModelInfo) -> PromptFormat {
        let fim = &info.fim;
        let (Some(pre), Some(suf), Some(mid)) = (&fim.pre, &fim.suf, &fim.mid) else {
            return PromptFormat::Continuation;
        };
        let family = FimFamily::of(&pre.text, &info.architecture);
        use Part::*;
        let (order, parts) = match family {
            // Codestral's native layout is [SUFFIX]…[PREFIX]…, and CodeLlama was trained on an SPM variant
            // (<PRE> <SUF>suffix <MID> prefix): both let the typed text sit at the very end.
            FimFamily::Codestral => (Order::SuffixPrefixMiddle, vec![Tok(suf.id), Suffix, Tok(pre.id), Prefix]),
            FimFamily::CodeLlama => {
                (Order::SuffixPrefixMiddle, vec![Tok(pre.id), Tok(suf.id), Suffix, Tok(mid.id), Prefix])
            }
            _ => (Order::PrefixSuffixMiddle, vec![Tok(pre.id), Prefix, Tok(suf.id), Suffix, Tok(mid.id)]),
        };
        PromptFormat::Fim(FimTemplate { family, order, parts, psm: [pre.id, suf.id, mid.id], stop_ids: fim.stop_ids() })
    }

    pub fn family(&self) -> Option<FimFamily> {
        match self {
            PromptFormat::Fim(t) => Some(t.family),
            PromptFormat::Continuation => None,
        }
    }

    pub fn uses_suffix(&self) -> bool {
        matches!(self, PromptFormat::Fim(_))
    }

    /// Assemble the token prompt. `bos` is prepended when the model wants one.
    pub fn assemble(&self, bos: Option<Token>, prefix: &[Token], suffix: &[Token]) -> Vec<Token> {
        let mut out = Vec::with_capacity(prefix.len() + suffix.len() + 5);
        out.extend(bos);
        match self {
            PromptFormat::Continuation => out.extend_from_slice(prefix),
            PromptFormat::Fim(t) => {
                for p in &t.parts {
                    match p {
                        Part::Tok(id) => out.push(*id),
                        Part::Prefix => out.extend_from_slice(prefix),
                        Part::Suffix => out.extend_from_slice(suffix),
                    }
                }
            }
        }
        out
    }

    /// The [`FimLayout::Infill`] prompt: `head` is the prefix up to the cursor's line, `line` that line up to
    /// the cursor. `None` where the family's layout is not prefix-suffix-middle.
    pub fn assemble_infill(
        &self,
        bos: Option<Token>,
        head: &[Token],
        suffix: &[Token],
        line: &[Token],
    ) -> Option<Vec<Token>> {
        let PromptFormat::Fim(t) = self else { return None };
        if t.order != Order::PrefixSuffixMiddle {
            return None;
        }
        let [pre, suf, mid] = t.psm;
        let mut out = Vec::with_capacity(head.len() + suffix.len() + line.len() + 4);
        out.extend(bos);
        out.push(pre);
        out.extend_from_slice(head);
        out.push(suf);
        out.extend_from_slice(suffix);
        out.push(mid);
        out.extend_from_slice(line);
        Some(out)
    }

    pub fn stop_ids(&self) -> &[Token] {
        match self {
            PromptFormat::Fim(t) => &t.stop_ids,
            PromptFormat::Continuation => &[],
        }
    }

    /// Add the family's end-of-fill tokens ([`FimFamily::stop_texts`]) that the vocabulary has (`lookup`: a
    /// token's id by its exact text) to the ids that end a completion.
    pub fn with_family_stops(mut self, lookup: impl Fn(&str) -> Option<Token>) -> PromptFormat {
        if let PromptFormat::Fim(t) = &mut self {
            for id in t.family.stop_texts().iter().filter_map(|text| lookup(text)) {
                if !t.stop_ids.contains(&id) {
                    t.stop_ids.push(id);
                }
            }
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model_info::{FimTokens, SpecialToken};

    fn info(arch: &str, pre: &str, suf: &str, mid: &str) -> ModelInfo {
        let t = |id, s: &str| Some(SpecialToken { id, text: s.to_string() });
        ModelInfo {
            path: String::new(),
            name: None,
            architecture: arch.into(),
            n_layer: 1,
            n_ctx_train: 4096,
            n_params: 0,
            size_bytes: 0,
            n_vocab: 100,
            bos: None,
            add_bos: false,
            fim: FimTokens { pre: t(1, pre), suf: t(2, suf), mid: t(3, mid), ..Default::default() },
            chat_template: None,
            sliding_window: None,
            gpu_layers: 0,
        }
    }

    #[test]
    fn families_by_token_text_and_arch() {
        let cases = [
            ("qwen2", "<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>", FimFamily::QwenCoder),
            ("gemma", "<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>", FimFamily::CodeGemma),
            ("starcoder2", "<fim_prefix>", "<fim_suffix>", "<fim_middle>", FimFamily::StarCoder),
            ("llama", "<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>", FimFamily::DeepSeekCoder),
            ("llama", "▁<PRE>", "▁<SUF>", "▁<MID>", FimFamily::CodeLlama),
            ("llama", "[PREFIX]", "[SUFFIX]", "[MIDDLE]", FimFamily::Codestral),
            ("llama", "<pre>", "<suf>", "<mid>", FimFamily::Generic),
        ];
        for (arch, p, s, m, fam) in cases {
            assert_eq!(PromptFormat::detect(&info(arch, p, s, m)).family(), Some(fam), "{arch} {p}");
        }
    }

    #[test]
    fn the_infill_layout_only_appends_while_the_cursor_line_is_typed() {
        let qwen = PromptFormat::detect(&info("qwen2", "<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"));
        // One token per byte stands in for a tokenizer.
        let toks = |s: &str| s.bytes().map(|b| 100 + b as Token).collect::<Vec<_>>();
        let prompt = |before: &str| {
            let cut = crate::window::cursor_line_start(before);
            qwen.assemble_infill(Some(0), &toks(&before[..cut]), &toks(")\n}\n"), &toks(&before[cut..])).unwrap()
        };
        let a = prompt("fn f() {\n    g(");
        assert_eq!(a, [&[0, 1][..], &toks("fn f() {\n"), &[2], &toks(")\n}\n"), &[3], &toks("    g(")].concat());
        let b = prompt("fn f() {\n    g(x");
        assert_eq!(&b[..a.len()], &a[..], "a keystroke keeps every earlier token");
        assert_eq!(b.len(), a.len() + 1);
        // The PSM layout changes the prefix in the middle of the prompt instead.
        let psm = |before: &str| qwen.assemble(Some(0), &toks(before), &toks(")\n}\n"));
        let (c, d) = (psm("fn f() {\n    g("), psm("fn f() {\n    g(x"));
        assert!(c.iter().zip(&d).take_while(|(x, y)| x == y).count() < c.len() - 5);
        // Families trained suffix-first already end with the prefix and keep their layout.
        let llama = PromptFormat::detect(&info("llama", "▁<PRE>", "▁<SUF>", "▁<MID>"));
        assert_eq!(llama.assemble_infill(None, &[9], &[8], &[7]), None);
        assert_eq!(PromptFormat::Continuation.assemble_infill(None, &[9], &[8], &[7]), None);
    }

    /// A vocabulary lookup over (id, text) pairs.
    fn vocab<'a>(tokens: &'a [(Token, &'a str)]) -> impl Fn(&str) -> Option<Token> + 'a {
        move |text| tokens.iter().find(|(_, t)| *t == text).map(|(id, _)| *id)
    }

    #[test]
    fn family_stop_tokens_are_found_by_text() {
        let gemma = PromptFormat::detect(&info("gemma", "<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"));
        assert_eq!(gemma.stop_ids(), &[1, 2, 3]);
        let gemma = gemma.with_family_stops(vocab(&[(1, "<|fim_prefix|>"), (7, "<|file_separator|>"), (8, "<eos>")]));
        assert_eq!(gemma.stop_ids(), &[1, 2, 3, 7, 8]);
        let llama = PromptFormat::detect(&info("llama", "▁<PRE>", "▁<SUF>", "▁<MID>"));
        assert_eq!(
            llama.with_family_stops(vocab(&[(40, "▁<EOT>"), (41, "<|file_separator|>")])).stop_ids(),
            &[1, 2, 3, 40]
        );
        // Continuation has no family, so nothing to add.
        let none = PromptFormat::Continuation.with_family_stops(vocab(&[(1, "</s>")]));
        assert!(none.stop_ids().is_empty());
    }

    #[test]
    fn fim_tokens_by_text_are_taken_as_whole_sets() {
        let mut fim = FimTokens::default();
        fill_fim_by_text(&mut fim, vocab(&[(5, "[SUFFIX]"), (6, "[PREFIX]"), (7, "[MIDDLE]"), (9, "<fim_prefix>")]));
        let t = |id, s: &str| Some(SpecialToken { id, text: s.to_string() });
        assert_eq!((fim.pre, fim.suf, fim.mid), (t(6, "[PREFIX]"), t(5, "[SUFFIX]"), t(7, "[MIDDLE]")));
        // Part of a set is not enough, and no set is mixed from two families.
        let mut fim = FimTokens::default();
        fill_fim_by_text(&mut fim, vocab(&[(5, "[SUFFIX]"), (6, "[PREFIX]"), (9, "<fim_middle>")]));
        assert!(!fim.is_complete() && fim.pre.is_none());
        // What the model names itself is kept.
        let mut i = info("llama", "<pre>", "<suf>", "<mid>");
        fill_fim_by_text(&mut i.fim, vocab(&[(5, "[SUFFIX]"), (6, "[PREFIX]"), (7, "[MIDDLE]")]));
        assert_eq!(i.fim.pre, t(1, "<pre>"));
    }

    #[test]
    fn no_fim_tokens_means_continuation() {
        let mut i = info("gemma3", "", "", "");
        i.fim = FimTokens::default();
        assert_eq!(PromptFormat::detect(&i), PromptFormat::Continuation);
        assert_eq!(PromptFormat::Continuation.assemble(Some(9), &[5, 6], &[7]), vec![9, 5, 6]);
    }

    #[test]
    fn psm_and_spm_layouts() {
        let psm = PromptFormat::detect(&info("qwen2", "<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"));
        assert_eq!(psm.assemble(None, &[10, 11], &[20]), vec![1, 10, 11, 2, 20, 3]);
        let spm = PromptFormat::detect(&info("llama", "[PREFIX]", "[SUFFIX]", "[MIDDLE]"));
        assert_eq!(spm.assemble(Some(0), &[10, 11], &[20]), vec![0, 2, 20, 1, 10, 11]);
        // In SPM the prefix ends the prompt, so appending a typed token keeps everything before it.
        let a = spm.assemble(None, &[10, 11], &[20]);
        let b = spm.assemble(None, &[10, 11, 12], &[20]);
        assert!(b.starts_with(&a));
    }
}
