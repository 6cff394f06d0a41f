//! Tests of the GGUF header reader, and the GGUF writer other catalog tests build files with.
use super::*;
use std::io::Cursor;

/// Builds GGUF v3 (or v1) bytes for tests.
pub(crate) struct Builder {
    v1: bool,
    kv: Vec<u8>,
    n_kv: u64,
    tensors: Vec<u8>,
    n_tensors: u64,
}

impl Builder {
    pub(crate) fn new() -> Self {
        Builder { v1: false, kv: vec![], n_kv: 0, tensors: vec![], n_tensors: 0 }
    }
    pub(crate) fn v1() -> Self {
        Builder { v1: true, ..Builder::new() }
    }
    fn len(&self, out: &mut Vec<u8>, n: u64) {
        if self.v1 {
            out.extend((n as u32).to_le_bytes());
        } else {
            out.extend(n.to_le_bytes());
        }
    }
    fn s(&self, out: &mut Vec<u8>, s: &str) {
        self.len(out, s.len() as u64);
        out.extend(s.as_bytes());
    }
    fn key(&mut self, k: &str, t: u32) -> Vec<u8> {
        self.n_kv += 1;
        let mut b = vec![];
        self.s(&mut b, k);
        b.extend(t.to_le_bytes());
        b
    }
    pub(crate) fn u32(mut self, k: &str, v: u32) -> Self {
        let mut b = self.key(k, 4);
        b.extend(v.to_le_bytes());
        self.kv.extend(b);
        self
    }
    pub(crate) fn u8(mut self, k: &str, v: u8) -> Self {
        let mut b = self.key(k, 0);
        b.push(v);
        self.kv.extend(b);
        self
    }
    pub(crate) fn f32(mut self, k: &str, v: f32) -> Self {
        let mut b = self.key(k, 6);
        b.extend(v.to_le_bytes());
        self.kv.extend(b);
        self
    }
    pub(crate) fn u64(mut self, k: &str, v: u64) -> Self {
        let mut b = self.key(k, 10);
        b.extend(v.to_le_bytes());
        self.kv.extend(b);
        self
    }
    pub(crate) fn bool(mut self, k: &str, v: bool) -> Self {
        let mut b = self.key(k, 7);
        b.push(v as u8);
        self.kv.extend(b);
        self
    }
    pub(crate) fn str(mut self, k: &str, v: &str) -> Self {
        let mut b = self.key(k, 8);
        self.s(&mut b, v);
        self.kv.extend(b);
        self
    }
    pub(crate) fn i32s(mut self, k: &str, v: &[i32]) -> Self {
        let mut b = self.key(k, 9);
        b.extend(5u32.to_le_bytes());
        self.len(&mut b, v.len() as u64);
        for x in v {
            b.extend(x.to_le_bytes());
        }
        self.kv.extend(b);
        self
    }
    pub(crate) fn f32s(mut self, k: &str, n: usize) -> Self {
        let mut b = self.key(k, 9);
        b.extend(6u32.to_le_bytes());
        self.len(&mut b, n as u64);
        for i in 0..n {
            b.extend((i as f32).to_le_bytes());
        }
        self.kv.extend(b);
        self
    }
    pub(crate) fn strs(mut self, k: &str, v: &[&str]) -> Self {
        let mut b = self.key(k, 9);
        b.extend(8u32.to_le_bytes());
        self.len(&mut b, v.len() as u64);
        for x in v {
            self.s(&mut b, x);
        }
        self.kv.extend(b);
        self
    }
    pub(crate) fn tensor(self, name: &str, dims: &[u64], ggml_type: u32) -> Self {
        self.tensor_at(name, dims, ggml_type, 0)
    }
    pub(crate) fn tensor_at(mut self, name: &str, dims: &[u64], ggml_type: u32, offset: u64) -> Self {
        self.n_tensors += 1;
        let mut b = vec![];
        self.s(&mut b, name);
        b.extend((dims.len() as u32).to_le_bytes());
        for d in dims {
            b.extend(d.to_le_bytes());
        }
        b.extend(ggml_type.to_le_bytes());
        b.extend(offset.to_le_bytes());
        self.tensors.extend(b);
        self
    }
    pub(crate) fn bytes(&self) -> Vec<u8> {
        let mut out = b"GGUF".to_vec();
        out.extend(if self.v1 { 1u32 } else { 3u32 }.to_le_bytes());
        self.len(&mut out, self.n_tensors);
        self.len(&mut out, self.n_kv);
        out.extend(&self.kv);
        out.extend(&self.tensors);
        out
    }
}

/// A small hybrid MoE model: 8 layers, full attention every 4th, 4 of 16 experts used, a FIM vocabulary.
pub(crate) fn moe_model() -> Builder {
    let mut vocab: Vec<String> = (0..3000).map(|i| format!("tok{i}")).collect();
    vocab[2500] = "<|fim_prefix|>".into();
    let vocab: Vec<&str> = vocab.iter().map(String::as_str).collect();
    Builder::new()
        .str("general.architecture", "qwen35moe")
        .str("general.name", "Tiny Hybrid Coder")
        .u32("general.file_type", 15)
        .u32("qwen35moe.block_count", 8)
        .u32("qwen35moe.context_length", 262144)
        .u32("qwen35moe.embedding_length", 256)
        .u32("qwen35moe.attention.head_count", 8)
        .u32("qwen35moe.attention.head_count_kv", 2)
        .u32("qwen35moe.attention.key_length", 64)
        .u32("qwen35moe.attention.value_length", 64)
        .u32("qwen35moe.full_attention_interval", 4)
        .u32("qwen35moe.expert_count", 16)
        .u32("qwen35moe.expert_used_count", 4)
        .u32("qwen35moe.ssm.inner_size", 512)
        .u32("qwen35moe.ssm.state_size", 128)
        .u32("qwen35moe.ssm.group_count", 4)
        .u32("qwen35moe.ssm.conv_kernel", 4)
        .f32("qwen35moe.rope.freq_base", 1e7)
        .bool("tokenizer.ggml.add_bos_token", false)
        .u8("some.u8", 7)
        .u64("some.u64", 1 << 40)
        .i32s("tokenizer.ggml.token_type", &[1; 10])
        .f32s("tokenizer.ggml.scores", 5000) // long numeric array: skipped
        .strs("tokenizer.ggml.tokens", &vocab)
        .str("tokenizer.chat_template", &"x".repeat(10_000)) // long string: skipped
        .tensor("token_embd.weight", &[256, 3000], 12)
        .tensor("blk.0.ffn_up_exps.weight", &[256, 64, 16], 12)
        .tensor("blk.0.attn_q.weight", &[256, 512], 12)
}

#[test]
fn parses_a_hand_built_header() {
    let h = parse(Cursor::new(moe_model().bytes())).unwrap();
    assert_eq!(h.version, 3);
    assert_eq!(h.tensor_count, 3);
    assert_eq!(h.architecture(), Some("qwen35moe"));
    assert_eq!(h.arch_u64("block_count"), Some(8));
    assert_eq!(h.u64("some.u64"), Some(1 << 40));
    assert_eq!(h.u64("some.u8"), Some(7));
    assert_eq!(h.get("tokenizer.ggml.add_bos_token"), Some(&Value::Bool(false)));
    assert_eq!(h.get("tokenizer.chat_template"), Some(&Value::LongStr(10_000)));
    assert_eq!(h.get("tokenizer.ggml.scores"), Some(&Value::Array { elem_type: 6, len: 5000 }));
    assert_eq!(h.get("tokenizer.ggml.token_type"), Some(&Value::Nums(vec![1.0; 10])));
    assert_eq!(h.vocab_len, Some(3000));
    assert!(h.vocab_has_fim);
    assert_eq!(h.tensors[1].dims, vec![256, 64, 16]);

    let e = entry_from_header(&h, Path::new("/models/tiny.gguf"), 1_000_000).unwrap();
    assert_eq!(e.source, Source::File);
    assert_eq!((e.n_layers, e.n_kv_layers, e.n_kv_heads, e.head_dim, e.mla), (8, 2, 2, 64, false));
    assert_eq!(e.quant, "Q4_K_M");
    assert_eq!(e.context, 262144);
    assert_eq!(e.n_vocab, 3000);
    assert!(e.fim && e.role == Role::Code);
    let expert = 256 * 64 * 16;
    let total = 256 * 3000 + expert + 256 * 512;
    assert_eq!(e.params, total);
    assert_eq!(e.active_params, Some(total - expert + expert / 4));
    // 6 recurrent layers, each 512*128 f32 state + 3 conv rows of (512 + 2*4*128) f32.
    assert_eq!(e.state_bytes_per_seq, 6 * (512 * 128 * 4 + 3 * (512 + 1024) * 4));
    assert_eq!(e.kv_bytes_per_token(), 2 * 2 * 2 * 64 * 2);
}

#[test]
fn where_the_tensor_data_ends() {
    // F32 {10, 3}: 120 bytes; Q4_K {512, 2}: 2 blocks of 144 bytes a row; Q8_0 {64}: 2 blocks of 34.
    let b = Builder::new()
        .str("general.architecture", "llama")
        .tensor_at("a", &[10, 3], 0, 0)
        .tensor_at("b", &[512, 2], 12, 128)
        .tensor_at("c", &[64], 8, 704);
    let bytes = b.bytes();
    let h = parse(Cursor::new(bytes.clone())).unwrap();
    assert_eq!(
        h.tensors.iter().map(|t| (t.offset, t.data_bytes())).collect::<Vec<_>>(),
        [(0, Some(120)), (128, Some(576)), (704, Some(68))]
    );
    assert_eq!(h.alignment(), 32);
    assert_eq!(h.data_offset, (bytes.len() as u64).next_multiple_of(32));
    assert!(h.data_offset > bytes.len() as u64, "the header is padded here");
    assert_eq!(h.data_end(), h.data_offset + 704 + 68);

    // general.alignment moves the data section; a type ggml does not know counts up to its start.
    let b = Builder::new()
        .u32("general.alignment", 256)
        .tensor_at("a", &[8], 0, 0)
        .tensor_at("b", &[8], 4, 32)
        .tensor_at("x", &[8], 31, 64);
    let bytes = b.bytes();
    let h = parse(Cursor::new(bytes.clone())).unwrap();
    assert_eq!((h.alignment(), h.data_offset), (256, (bytes.len() as u64).next_multiple_of(256)));
    assert_eq!(h.tensors[2].data_bytes(), None);
    assert_eq!(h.data_end(), h.data_offset + 64);

    // No tensors: no padding, nothing after the header.
    let bytes = Builder::new().str("general.architecture", "llama").bytes();
    let h = parse(Cursor::new(bytes.clone())).unwrap();
    assert_eq!((h.data_offset, h.data_end()), (bytes.len() as u64, bytes.len() as u64));
}

/// The block table agrees with ggml's own (`ggml_blck_size`, `ggml_type_size`) for every type it has.
#[test]
#[allow(clippy::unnecessary_cast)] // ggml_type is u32 here, i32 where C enums are signed
fn ggml_type_sizes_match_ggml() {
    for t in 0..llama_cpp_sys_2::GGML_TYPE_COUNT {
        // SAFETY: both read ggml's static type table at an index below GGML_TYPE_COUNT.
        let (block, size) = unsafe { (llama_cpp_sys_2::ggml_blck_size(t), llama_cpp_sys_2::ggml_type_size(t)) };
        let ggml = (block > 0).then_some((block as u64, size as u64));
        assert_eq!(ggml_type_block(t as u32), ggml, "ggml type {t}");
    }
}

#[test]
fn reads_version_1_and_mla_and_per_layer_kv_heads() {
    let b = Builder::v1()
        .str("general.architecture", "deepseek2")
        .u32("deepseek2.block_count", 4)
        .u32("deepseek2.attention.head_count", 16)
        .u32("deepseek2.attention.kv_lora_rank", 512)
        .u32("deepseek2.rope.dimension_count", 64);
    let e = entry_from_header(&parse(Cursor::new(b.bytes())).unwrap(), Path::new("x.gguf"), 10).unwrap();
    assert!(e.mla);
    assert_eq!((e.n_kv_heads, e.head_dim), (1, 576));
    assert_eq!(e.kv_bytes_per_token(), 4 * 576 * 2);

    // Per-layer KV heads with zeros: those layers are recurrent (no KV cache).
    let b = Builder::new()
        .str("general.architecture", "jamba")
        .u32("jamba.block_count", 4)
        .u32("jamba.attention.head_count", 8)
        .i32s("jamba.attention.head_count_kv", &[0, 0, 0, 4])
        .u32("jamba.attention.key_length", 128);
    let e = entry_from_header(&parse(Cursor::new(b.bytes())).unwrap(), Path::new("x.gguf"), 10).unwrap();
    assert_eq!((e.n_kv_layers, e.n_kv_heads, e.head_dim), (1, 4, 128));
}

#[test]
fn refuses_what_is_not_gguf_without_panicking() {
    assert!(parse(Cursor::new(b"GGML....".to_vec())).unwrap_err().contains("not a GGUF"));
    assert!(parse(Cursor::new(b"GG".to_vec())).is_err());
    let mut v = b"GGUF".to_vec();
    v.extend(7u32.to_le_bytes());
    assert!(parse(Cursor::new(v)).unwrap_err().contains("version 7"));
    // Truncated anywhere: an error, never a panic.
    let full = moe_model().bytes();
    for cut in [8, 20, 30, 100, 1000, full.len() - 3] {
        assert!(parse(Cursor::new(full[..cut].to_vec())).is_err(), "cut at {cut}");
    }
    // An absurd string length is refused before allocating.
    let mut v = b"GGUF".to_vec();
    v.extend(3u32.to_le_bytes());
    v.extend(0u64.to_le_bytes());
    v.extend(1u64.to_le_bytes());
    v.extend(u64::MAX.to_le_bytes());
    assert!(parse(Cursor::new(v)).unwrap_err().contains("string of"));
    assert!(read_header(Path::new("/nonexistent/model.gguf")).is_err());
}

#[test]
fn reads_the_embedded_default_model() {
    let p = crate::config::default_model_dir().join(crate::config::DEFAULT_MODEL_FILE);
    if !p.exists() {
        eprintln!("SKIPPED catalog::gguf_meta real-file test: no model at {}", p.display());
        return;
    }
    let t = std::time::Instant::now();
    let e = entry_from_gguf(&p).unwrap();
    let took = t.elapsed();
    eprintln!("{}: {e:?} (header read in {took:?})", p.display());
    assert_eq!(e.family, "gemma3");
    assert_eq!((e.n_layers, e.n_kv_layers, e.n_kv_heads, e.head_dim, e.mla), (18, 18, 1, 256, false));
    assert_eq!(e.quant, "Q4_K_M");
    assert_eq!(e.n_vocab, 262144);
    assert_eq!(e.context, 32768);
    assert_eq!(e.n_embd, 640);
    assert!((260_000_000..280_000_000).contains(&e.params), "{}", e.params);
    assert_eq!(e.active_params, None);
    assert!(!e.fim, "Gemma 3 270M has no FIM tokens");
    assert_eq!(e.file_bytes, std::fs::metadata(&p).unwrap().len());
    // The tensor data ends where the file does, but for the last tensor's padding.
    let h = read_header(&p).unwrap();
    assert!(h.tensors.iter().all(|t| t.data_bytes().is_some()), "a tensor type missing from the table");
    assert!(
        h.data_end() <= e.file_bytes && e.file_bytes - h.data_end() < h.alignment(),
        "data ends at {} of {}",
        h.data_end(),
        e.file_bytes
    );
    // The curated entry agrees with the file.
    let c = super::super::entries::curated()
        .into_iter()
        .find(|c| c.file_name.as_deref() == Some(crate::config::DEFAULT_MODEL_FILE))
        .unwrap();
    assert_eq!(
        (c.n_layers, c.n_kv_heads, c.head_dim, c.n_vocab, c.file_bytes),
        (e.n_layers, e.n_kv_heads, e.head_dim, e.n_vocab, e.file_bytes)
    );
}
