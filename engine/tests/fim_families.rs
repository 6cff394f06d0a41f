//! Template choice per code-model family, on tiny GGUF files written here (no real FIM model can be
//! downloaded): each file carries a family's architecture and tokenizer with its FIM tokens, and llama.cpp
//! reads it (vocabulary only, so the files need no weights) through `lokal_engine::inspect`.
use lokal_engine::fim::{FimFamily, Order, PromptFormat};
use std::path::PathBuf;

/// A minimal GGUF v3 writer: metadata only.
#[derive(Default)]
struct Gguf {
    kv: Vec<u8>,
    n: u64,
}

fn gstr(out: &mut Vec<u8>, s: &str) {
    out.extend((s.len() as u64).to_le_bytes());
    out.extend(s.as_bytes());
}

impl Gguf {
    fn key(&mut self, k: &str, ty: u32) {
        gstr(&mut self.kv, k);
        self.kv.extend(ty.to_le_bytes());
        self.n += 1;
    }
    fn string(&mut self, k: &str, v: &str) -> &mut Self {
        self.key(k, 8);
        gstr(&mut self.kv, v);
        self
    }
    fn u32(&mut self, k: &str, v: u32) -> &mut Self {
        self.key(k, 4);
        self.kv.extend(v.to_le_bytes());
        self
    }
    fn f32(&mut self, k: &str, v: f32) -> &mut Self {
        self.key(k, 6);
        self.kv.extend(v.to_le_bytes());
        self
    }
    fn strings(&mut self, k: &str, v: &[String]) -> &mut Self {
        self.key(k, 9);
        self.kv.extend(8u32.to_le_bytes());
        self.kv.extend((v.len() as u64).to_le_bytes());
        for s in v {
            gstr(&mut self.kv, s);
        }
        self
    }
    fn f32s(&mut self, k: &str, v: &[f32]) -> &mut Self {
        self.key(k, 9);
        self.kv.extend(6u32.to_le_bytes());
        self.kv.extend((v.len() as u64).to_le_bytes());
        v.iter().for_each(|x| self.kv.extend(x.to_le_bytes()));
        self
    }
    fn i32s(&mut self, k: &str, v: &[i32]) -> &mut Self {
        self.key(k, 9);
        self.kv.extend(5u32.to_le_bytes());
        self.kv.extend((v.len() as u64).to_le_bytes());
        v.iter().for_each(|x| self.kv.extend(x.to_le_bytes()));
        self
    }
    fn bytes(&self) -> Vec<u8> {
        let mut out = b"GGUF".to_vec();
        out.extend(3u32.to_le_bytes());
        out.extend(0u64.to_le_bytes()); // tensors
        out.extend(self.n.to_le_bytes());
        out.extend(&self.kv);
        while out.len() % 32 != 0 {
            out.push(0);
        }
        out
    }
}

struct Family {
    arch: &'static str,
    fim: Option<[&'static str; 3]>,
    explicit_ids: bool,
}

/// Token ids: 0 <unk>, 1 <s>, 2 </s>, 3..6 the FIM tokens (if any), then plain pieces.
fn model(name: &str, f: &Family) -> PathBuf {
    let mut tokens: Vec<String> = vec!["<unk>".into(), "<s>".into(), "</s>".into()];
    let mut types = vec![2, 3, 3];
    if let Some(fim) = f.fim {
        for t in fim {
            tokens.push(t.into());
            types.push(3);
        }
    }
    for p in ["▁fn", "▁main", "(", ")", "{", "}", "▁", "a", "b", "c", "\n"] {
        tokens.push(p.into());
        types.push(1);
    }
    let scores: Vec<f32> = (0..tokens.len()).map(|i| -(i as f32)).collect();
    let mut g = Gguf::default();
    let a = f.arch;
    g.string("general.architecture", a)
        .string("general.name", name)
        .u32(&format!("{a}.context_length"), 256)
        .u32(&format!("{a}.embedding_length"), 16)
        .u32(&format!("{a}.block_count"), 1)
        .u32(&format!("{a}.feed_forward_length"), 32)
        .u32(&format!("{a}.attention.head_count"), 2)
        .u32(&format!("{a}.attention.head_count_kv"), 1)
        .u32(&format!("{a}.attention.key_length"), 8)
        .u32(&format!("{a}.attention.value_length"), 8)
        .u32(&format!("{a}.rope.dimension_count"), 8)
        .f32(&format!("{a}.attention.layer_norm_rms_epsilon"), 1e-6)
        .f32(&format!("{a}.attention.layer_norm_epsilon"), 1e-6)
        .string("tokenizer.ggml.model", "llama")
        .strings("tokenizer.ggml.tokens", &tokens)
        .f32s("tokenizer.ggml.scores", &scores)
        .i32s("tokenizer.ggml.token_type", &types)
        .u32("tokenizer.ggml.bos_token_id", 1)
        .u32("tokenizer.ggml.eos_token_id", 2);
    if f.fim.is_some() && f.explicit_ids {
        g.u32("tokenizer.ggml.fim_pre_token_id", 3).u32("tokenizer.ggml.fim_suf_token_id", 4).u32("tokenizer.ggml.fim_mid_token_id", 5);
    }
    let path = std::env::temp_dir().join(format!("lokal-fim-{}-{name}.gguf", std::process::id()));
    std::fs::write(&path, g.bytes()).unwrap();
    path
}

#[test]
fn each_family_gets_its_template_from_the_file() {
    let cases = [
        ("qwen", Family { arch: "qwen2", fim: Some(["<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"]), explicit_ids: true }, FimFamily::QwenCoder, Order::PrefixSuffixMiddle),
        ("codegemma", Family { arch: "gemma", fim: Some(["<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"]), explicit_ids: true }, FimFamily::CodeGemma, Order::PrefixSuffixMiddle),
        ("starcoder", Family { arch: "starcoder2", fim: Some(["<fim_prefix>", "<fim_suffix>", "<fim_middle>"]), explicit_ids: true }, FimFamily::StarCoder, Order::PrefixSuffixMiddle),
        ("deepseek", Family { arch: "llama", fim: Some(["<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>"]), explicit_ids: true }, FimFamily::DeepSeekCoder, Order::PrefixSuffixMiddle),
        ("codellama", Family { arch: "llama", fim: Some(["▁<PRE>", "▁<SUF>", "▁<MID>"]), explicit_ids: true }, FimFamily::CodeLlama, Order::SuffixPrefixMiddle),
        ("codestral", Family { arch: "llama", fim: Some(["[PREFIX]", "[SUFFIX]", "[MIDDLE]"]), explicit_ids: true }, FimFamily::Codestral, Order::SuffixPrefixMiddle),
        // No id keys: llama.cpp finds the FIM tokens by their text, and so do we.
        ("qwen-by-text", Family { arch: "qwen2", fim: Some(["<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"]), explicit_ids: false }, FimFamily::QwenCoder, Order::PrefixSuffixMiddle),
    ];
    let mut loaded = 0;
    for (name, fam, want, order) in cases {
        let path = model(name, &fam);
        let (info, format) = match lokal_engine::inspect(&path) {
            Ok(x) => x,
            Err(e) => panic!("{name}: llama.cpp could not read the generated file: {e}"),
        };
        assert_eq!(info.architecture, fam.arch, "{name}");
        let fim = fam.fim.unwrap();
        assert_eq!(info.fim.pre.as_ref().map(|t| (t.id, t.text.as_str())), Some((3, fim[0])), "{name}: {:?}", info.fim);
        assert_eq!(info.fim.suf.as_ref().map(|t| t.id), Some(4), "{name}");
        assert_eq!(info.fim.mid.as_ref().map(|t| t.id), Some(5), "{name}");
        let PromptFormat::Fim(t) = &format else { panic!("{name}: expected a FIM template, got {format:?}") };
        assert_eq!((t.family, t.order), (want, order), "{name}");
        // The family's tokens land where its layout puts them; the prefix ends the prompt in SPM.
        let p = format.assemble(Some(1), &[100, 101], &[200]);
        match order {
            Order::PrefixSuffixMiddle => assert_eq!(p, vec![1, 3, 100, 101, 4, 200, 5], "{name}"),
            Order::SuffixPrefixMiddle => assert_eq!(&p[p.len() - 2..], &[100, 101], "{name}: {p:?}"),
        }
        let _ = std::fs::remove_file(path);
        loaded += 1;
    }
    assert_eq!(loaded, 7);
}

#[test]
fn a_model_without_fim_tokens_continues_the_prefix() {
    let path = model("base", &Family { arch: "llama", fim: None, explicit_ids: false });
    let (info, format) = lokal_engine::inspect(&path).unwrap();
    assert!(!info.fim.is_complete());
    assert_eq!(format, PromptFormat::Continuation);
    let _ = std::fs::remove_file(path);
}

#[test]
fn broken_files_are_errors_not_crashes() {
    let good = model("trunc", &Family { arch: "llama", fim: None, explicit_ids: false });
    let bytes = std::fs::read(&good).unwrap();
    let truncated = good.with_extension("cut.gguf");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    assert!(lokal_engine::inspect(&truncated).unwrap_err().contains("corrupt or truncated"));
    let not = good.with_extension("txt.gguf");
    std::fs::write(&not, b"hello").unwrap();
    assert!(lokal_engine::inspect(&not).unwrap_err().contains("GGUF"));
    assert!(lokal_engine::inspect(std::path::Path::new("/nonexistent/x.gguf")).is_err());
    for p in [good, truncated, not] {
        let _ = std::fs::remove_file(p);
    }
}
