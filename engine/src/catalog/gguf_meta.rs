//! Bring your own model: read a GGUF file's header (metadata and tensor table, never the weights) in plain
//! Rust, and turn it into a catalog [`Entry`] scored like the curated ones.
//!
//! The format (GGUF v2/v3; v1 is read too): magic `GGUF`, `u32` version, tensor count and key/value count
//! (`u64`; `u32` in v1), the key/value pairs (key string, `u32` value type, value), then one record per
//! tensor (name, `u32` dims, `u64` per dim, `u32` ggml type, `u64` offset). Strings are a length
//! (`u64`; `u32` in v1) and UTF-8 bytes; arrays are an element type, a length and the elements. Long arrays
//! (the vocabulary: 150k-260k strings) are skipped through a buffered reader (long runs with seeks), so
//! reading a header costs milliseconds whatever the size of the model (the embedded model: ~10 ms).
//!
//! After the tensor table the data section starts, padded to `general.alignment` (32 by default); each
//! tensor's offset is relative to it. [`GgufHeader::data_end`] is where the last tensor's data ends: a file
//! shorter than that was cut off (an interrupted download), which llama.cpp only reports as a null model.
//!
//! Everything read from the file is untrusted: lengths and counts are bounded, and a malformed file gives an
//! error naming the offset, never a panic or a huge allocation.
use super::entries::{Entry, Role, Source};
use std::collections::HashMap;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;

const MAGIC: &[u8; 4] = b"GGUF";
/// Bounds on what an honest file holds; beyond them the file is refused as malformed.
const MAX_KV: u64 = 1 << 20;
const MAX_TENSORS: u64 = 1 << 22;
const MAX_STRING: u64 = 64 << 20;
const MAX_DIMS: u32 = 8;
/// Numeric arrays up to this length are kept (per-layer figures); longer ones are skipped.
const KEEP_ARRAY: u64 = 4096;
/// Strings up to this length are kept; longer ones (chat templates) are skipped.
const KEEP_STRING: u64 = 4096;

/// A metadata value. Long strings and long arrays are not kept: only their length.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Uint(u64),
    Int(i64),
    Float(f64),
    Bool(bool),
    Str(String),
    /// A string longer than we keep: its length in bytes.
    LongStr(u64),
    /// A numeric or boolean array short enough to keep.
    Nums(Vec<f64>),
    /// Any other array: its element type and length.
    Array {
        elem_type: u32,
        len: u64,
    },
}

impl Value {
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Value::Uint(v) => Some(v),
            Value::Int(v) if v >= 0 => Some(v as u64),
            Value::Float(v) if v >= 0.0 && v.fract() == 0.0 => Some(v as u64),
            _ => None,
        }
    }
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }
}

/// One tensor's record in the header.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorInfo {
    pub name: String,
    pub dims: Vec<u64>,
    pub ggml_type: u32,
    /// Where the tensor's data starts, relative to the data section.
    pub offset: u64,
}

impl TensorInfo {
    pub fn elements(&self) -> u64 {
        self.dims.iter().fold(1u64, |a, d| a.saturating_mul(*d))
    }
    /// Bytes of the tensor's data (ggml's `ggml_nbytes` for a contiguous tensor), when its type is known.
    pub fn data_bytes(&self) -> Option<u64> {
        let (block, size) = ggml_type_block(self.ggml_type)?;
        let row = *self.dims.first().unwrap_or(&1);
        let rows = self.dims.iter().skip(1).fold(1u64, |a, d| a.saturating_mul(*d));
        (row / block).checked_mul(size)?.checked_mul(rows)
    }
}

/// Elements per block and bytes per block of a ggml tensor type (`ggml_blck_size`, `ggml_type_size`);
/// `None` for ids ggml does not know or no longer supports.
pub fn ggml_type_block(t: u32) -> Option<(u64, u64)> {
    Some(match t {
        0 => (1, 4),      // F32
        1 => (1, 2),      // F16
        2 => (32, 18),    // Q4_0
        3 => (32, 20),    // Q4_1
        6 => (32, 22),    // Q5_0
        7 => (32, 24),    // Q5_1
        8 => (32, 34),    // Q8_0
        9 => (32, 36),    // Q8_1
        10 => (256, 84),  // Q2_K
        11 => (256, 110), // Q3_K
        12 => (256, 144), // Q4_K
        13 => (256, 176), // Q5_K
        14 => (256, 210), // Q6_K
        15 => (256, 292), // Q8_K
        16 => (256, 66),  // IQ2_XXS
        17 => (256, 74),  // IQ2_XS
        18 => (256, 98),  // IQ3_XXS
        19 => (256, 50),  // IQ1_S
        20 => (32, 18),   // IQ4_NL
        21 => (256, 110), // IQ3_S
        22 => (256, 82),  // IQ2_S
        23 => (256, 136), // IQ4_XS
        24 => (1, 1),     // I8
        25 => (1, 2),     // I16
        26 => (1, 4),     // I32
        27 => (1, 8),     // I64
        28 => (1, 8),     // F64
        29 => (256, 56),  // IQ1_M
        30 => (1, 2),     // BF16
        34 => (256, 54),  // TQ1_0
        35 => (256, 66),  // TQ2_0
        39 => (32, 17),   // MXFP4
        40 => (64, 36),   // NVFP4
        41 => (128, 18),  // Q1_0
        42 => (64, 18),   // Q2_0
        _ => return None,
    })
}

/// What the header says.
#[derive(Debug, Clone, Default)]
pub struct GgufHeader {
    pub version: u32,
    pub tensor_count: u64,
    pub kv: HashMap<String, Value>,
    pub tensors: Vec<TensorInfo>,
    /// Length of `tokenizer.ggml.tokens`.
    pub vocab_len: Option<u64>,
    /// The vocabulary has fill-in-the-middle tokens (`<|fim_prefix|>`, `<fim_prefix>`, `[PREFIX]`, …).
    pub vocab_has_fim: bool,
    /// Where the data section starts: the end of the tensor table, padded to the alignment.
    pub data_offset: u64,
}

impl GgufHeader {
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.kv.get(key)
    }
    pub fn u64(&self, key: &str) -> Option<u64> {
        self.kv.get(key).and_then(Value::as_u64)
    }
    pub fn str(&self, key: &str) -> Option<&str> {
        self.kv.get(key).and_then(Value::as_str)
    }
    pub fn architecture(&self) -> Option<&str> {
        self.str("general.architecture")
    }
    /// `{arch}.{suffix}` as a number.
    pub fn arch_u64(&self, suffix: &str) -> Option<u64> {
        self.u64(&format!("{}.{suffix}", self.architecture()?))
    }
    /// `general.alignment`, or ggml's default of 32.
    pub fn alignment(&self) -> u64 {
        self.u64("general.alignment").filter(|a| *a > 0).unwrap_or(32)
    }
    /// The least length of a whole file: the data section's start plus the end of the tensor that ends
    /// last. A tensor of a type we do not know counts up to its start only, so this never overstates.
    pub fn data_end(&self) -> u64 {
        let end = self.tensors.iter().map(|t| t.offset.saturating_add(t.data_bytes().unwrap_or(0))).max();
        self.data_offset.saturating_add(end.unwrap_or(0))
    }
    /// `{arch}.{suffix}` as one value per layer: a scalar repeats, an array is taken as is.
    pub fn arch_per_layer(&self, suffix: &str, n_layers: usize) -> Option<Vec<u64>> {
        match self.kv.get(&format!("{}.{suffix}", self.architecture()?))? {
            Value::Nums(v) => Some(v.iter().map(|x| x.max(0.0) as u64).collect()),
            other => other.as_u64().map(|x| vec![x; n_layers]),
        }
    }
}

/// Vocabulary entries that mark a FIM-trained family (Qwen, StarCoder/DeepSeek, Codestral, CodeLlama, CodeGemma).
const FIM_MARKERS: &[&str] =
    &["<|fim_prefix|>", "<fim_prefix>", "<fim-prefix>", "[PREFIX]", "<PRE>", "<|fim_begin|>", "<｜fim▁begin｜>"];

struct Reader<R> {
    r: R,
    pos: u64,
    wide: bool,
}

impl<R: Read + Seek> Reader<R> {
    fn err(&self, what: &str) -> String {
        format!("malformed GGUF at byte {}: {what}", self.pos)
    }
    fn bytes<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let mut b = [0u8; N];
        self.r.read_exact(&mut b).map_err(|e| format!("GGUF header ends early at byte {}: {e}", self.pos))?;
        self.pos += N as u64;
        Ok(b)
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.bytes::<1>()?[0])
    }
    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.bytes()?))
    }
    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.bytes()?))
    }
    /// A count or length: `u64` from v2 on, `u32` in v1.
    fn len(&mut self) -> Result<u64, String> {
        if self.wide {
            self.u64()
        } else {
            self.u32().map(u64::from)
        }
    }
    fn skip(&mut self, n: u64) -> Result<(), String> {
        if n <= 4096 {
            // Short skips (vocabulary entries) read through the buffer: a seek would discard it.
            let mut b = [0u8; 4096];
            self.r
                .read_exact(&mut b[..n as usize])
                .map_err(|e| format!("GGUF header ends early at byte {}: {e}", self.pos))?;
        } else {
            let n_i = i64::try_from(n).map_err(|_| self.err("length out of range"))?;
            self.r.seek(SeekFrom::Current(n_i)).map_err(|e| self.err(&e.to_string()))?;
        }
        self.pos += n;
        Ok(())
    }
    fn string_len(&mut self) -> Result<u64, String> {
        let n = self.len()?;
        if n > MAX_STRING {
            return Err(self.err(&format!("string of {n} bytes")));
        }
        Ok(n)
    }
    fn string(&mut self) -> Result<String, String> {
        let n = self.string_len()?;
        let mut b = vec![0u8; n as usize];
        self.r.read_exact(&mut b).map_err(|e| format!("GGUF header ends early at byte {}: {e}", self.pos))?;
        self.pos += n;
        Ok(String::from_utf8_lossy(&b).into_owned())
    }
    /// A string kept only if short; else skipped and reported by length.
    fn value_string(&mut self) -> Result<Value, String> {
        let n = self.string_len()?;
        if n > KEEP_STRING {
            self.skip(n)?;
            return Ok(Value::LongStr(n));
        }
        let mut b = vec![0u8; n as usize];
        self.r.read_exact(&mut b).map_err(|e| format!("GGUF header ends early at byte {}: {e}", self.pos))?;
        self.pos += n;
        Ok(Value::Str(String::from_utf8_lossy(&b).into_owned()))
    }
    fn scalar(&mut self, t: u32) -> Result<Value, String> {
        Ok(match t {
            0 => Value::Uint(self.u8()? as u64),
            1 => Value::Int(self.u8()? as i8 as i64),
            2 => Value::Uint(u16::from_le_bytes(self.bytes()?) as u64),
            3 => Value::Int(i16::from_le_bytes(self.bytes()?) as i64),
            4 => Value::Uint(self.u32()? as u64),
            5 => Value::Int(i32::from_le_bytes(self.bytes()?) as i64),
            6 => Value::Float(f32::from_le_bytes(self.bytes()?) as f64),
            7 => Value::Bool(self.u8()? != 0),
            8 => self.value_string()?,
            10 => Value::Uint(self.u64()?),
            11 => Value::Int(i64::from_le_bytes(self.bytes()?)),
            12 => Value::Float(f64::from_le_bytes(self.bytes()?)),
            other => return Err(self.err(&format!("unknown value type {other}"))),
        })
    }
    fn array(&mut self, key: &str, h: &mut GgufHeader) -> Result<Value, String> {
        let elem_type = self.u32()?;
        let len = self.len()?;
        let fixed = match elem_type {
            0 | 1 | 7 => Some(1u64),
            2 | 3 => Some(2),
            4..=6 => Some(4),
            10..=12 => Some(8),
            _ => None,
        };
        match (elem_type, fixed) {
            (_, Some(_)) if len <= KEEP_ARRAY => {
                let mut v = Vec::with_capacity(len as usize);
                for _ in 0..len {
                    v.push(match self.scalar(elem_type)? {
                        Value::Uint(x) => x as f64,
                        Value::Int(x) => x as f64,
                        Value::Float(x) => x,
                        Value::Bool(b) => f64::from(u8::from(b)),
                        _ => unreachable!("fixed-size types are numeric"),
                    });
                }
                Ok(Value::Nums(v))
            }
            (_, Some(size)) => {
                let bytes = len.checked_mul(size).ok_or_else(|| self.err("array too long"))?;
                self.skip(bytes)?;
                Ok(Value::Array { elem_type, len })
            }
            (8, None) => {
                let tokens = key == "tokenizer.ggml.tokens";
                if tokens {
                    h.vocab_len = Some(len);
                }
                for _ in 0..len {
                    let n = self.string_len()?;
                    // Only short entries can be FIM markers; read those, skip the rest.
                    if tokens && (4..=24).contains(&n) && !h.vocab_has_fim {
                        let mut b = vec![0u8; n as usize];
                        self.r
                            .read_exact(&mut b)
                            .map_err(|e| format!("GGUF header ends early at byte {}: {e}", self.pos))?;
                        self.pos += n;
                        if let Ok(s) = std::str::from_utf8(&b) {
                            h.vocab_has_fim |= FIM_MARKERS.contains(&s);
                        }
                    } else {
                        self.skip(n)?;
                    }
                }
                Ok(Value::Array { elem_type, len })
            }
            (9, None) => {
                // Arrays of arrays: allowed by the format, used by no model we know; skip them element by element.
                for _ in 0..len {
                    self.array("", h)?;
                }
                Ok(Value::Array { elem_type, len })
            }
            _ => Err(self.err(&format!("unknown array element type {elem_type}"))),
        }
    }
}

/// Parse a GGUF header from any seekable reader (a file, or bytes in a test).
pub fn parse<R: Read + Seek>(r: R) -> Result<GgufHeader, String> {
    let mut rd = Reader { r, pos: 0, wide: true };
    let magic: [u8; 4] = rd.bytes().map_err(|_| "not a GGUF file (shorter than its magic)".to_string())?;
    if &magic != MAGIC {
        return Err(format!("not a GGUF file (starts with {:02x?}, not \"GGUF\")", magic));
    }
    let version = rd.u32()?;
    match version {
        1 => rd.wide = false,
        2 | 3 => {}
        v if v.swap_bytes() <= 3 => return Err("big-endian GGUF files are not supported".into()),
        v => return Err(format!("unsupported GGUF version {v}")),
    }
    let tensor_count = rd.len()?;
    let kv_count = rd.len()?;
    if kv_count > MAX_KV || tensor_count > MAX_TENSORS {
        return Err(rd.err(&format!("{kv_count} keys / {tensor_count} tensors")));
    }
    let mut h = GgufHeader { version, tensor_count, ..Default::default() };
    for _ in 0..kv_count {
        let key = rd.string()?;
        let t = rd.u32()?;
        let v = if t == 9 { rd.array(&key, &mut h)? } else { rd.scalar(t)? };
        h.kv.insert(key, v);
    }
    for _ in 0..tensor_count {
        let name = rd.string()?;
        let n_dims = rd.u32()?;
        if n_dims > MAX_DIMS {
            return Err(rd.err(&format!("tensor {name} has {n_dims} dimensions")));
        }
        let mut dims = Vec::with_capacity(n_dims as usize);
        for _ in 0..n_dims {
            dims.push(rd.u64()?);
        }
        let ggml_type = rd.u32()?;
        let offset = rd.u64()?;
        h.tensors.push(TensorInfo { name, dims, ggml_type, offset });
    }
    // As ggml does (gguf.cpp): the data section starts at the next multiple of the alignment, if any tensors.
    h.data_offset = if tensor_count > 0 { rd.pos.next_multiple_of(h.alignment()) } else { rd.pos };
    Ok(h)
}

/// Parse a GGUF file's header.
pub fn read_header(path: &Path) -> Result<GgufHeader, String> {
    let f = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    parse(BufReader::with_capacity(1 << 16, f)).map_err(|e| format!("{}: {e}", path.display()))
}

/// llama.cpp's `llama_ftype` (general.file_type) by number.
pub fn file_type_name(t: u64) -> Option<&'static str> {
    Some(match t {
        0 => "F32",
        1 => "F16",
        2 => "Q4_0",
        3 => "Q4_1",
        7 => "Q8_0",
        8 => "Q5_0",
        9 => "Q5_1",
        10 => "Q2_K",
        11 => "Q3_K_S",
        12 => "Q3_K_M",
        13 => "Q3_K_L",
        14 => "Q4_K_S",
        15 => "Q4_K_M",
        16 => "Q5_K_S",
        17 => "Q5_K_M",
        18 => "Q6_K",
        19 => "IQ2_XXS",
        20 => "IQ2_XS",
        21 => "Q2_K_S",
        22 => "IQ3_XS",
        23 => "IQ3_XXS",
        24 => "IQ1_S",
        25 => "IQ4_NL",
        26 => "IQ3_S",
        27 => "IQ3_M",
        28 => "IQ2_S",
        29 => "IQ2_M",
        30 => "IQ4_XS",
        31 => "IQ1_M",
        32 => "BF16",
        36 => "TQ1_0",
        37 => "TQ2_0",
        38 => "MXFP4_MOE",
        39 => "NVFP4",
        _ => return None,
    })
}

/// Bytes on disk of the whole model: the file, or all parts of a split model (`name-00001-of-00004.gguf`).
fn model_bytes(path: &Path, h: &GgufHeader) -> u64 {
    let own = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let parts = h.u64("split.count").unwrap_or(1);
    if parts <= 1 {
        return own;
    }
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tail = format!("-of-{parts:05}.gguf");
    let Some(stem) = name.strip_suffix(&tail).and_then(|s| s.get(..s.len().saturating_sub(6))) else {
        return own;
    };
    (1..=parts)
        .map(|i| std::fs::metadata(path.with_file_name(format!("{stem}-{i:05}{tail}"))).map(|m| m.len()).unwrap_or(0))
        .sum::<u64>()
        .max(own)
}

/// A catalog entry for a GGUF file, from its header: architecture and sizes as the file states them,
/// parameters counted from the tensor table (expert tensors scaled by experts used / experts, for the active
/// count), file size from disk. Marked `source: file`.
pub fn entry_from_gguf(path: &Path) -> Result<Entry, String> {
    let h = read_header(path)?;
    entry_from_header(&h, path, model_bytes(path, &h))
}

pub fn entry_from_header(h: &GgufHeader, path: &Path, file_bytes: u64) -> Result<Entry, String> {
    let arch = h.architecture().ok_or("no general.architecture in the file")?.to_string();
    let block_count = h.arch_u64("block_count").ok_or_else(|| format!("no {arch}.block_count in the file"))?;
    if block_count == 0 || block_count > 4096 {
        return Err(format!("{arch}.block_count = {block_count}"));
    }
    // Multi-token-prediction blocks ship in the file but are not run for plain generation.
    let n_layers = block_count.saturating_sub(h.arch_u64("nextn_predict_layers").unwrap_or(0)).max(1) as u32;
    let nl = n_layers as usize;
    let n_embd = h.arch_u64("embedding_length").unwrap_or(0) as u32;
    let heads = h.arch_per_layer("attention.head_count", nl).unwrap_or_default();
    let n_head = heads.iter().copied().max().unwrap_or(1).max(1) as u32;
    let mut kv_heads = h.arch_per_layer("attention.head_count_kv", nl).unwrap_or_else(|| heads.clone());
    kv_heads.resize(nl, *kv_heads.last().unwrap_or(&(n_head as u64)));
    let key_len =
        h.arch_u64("attention.key_length").unwrap_or(if n_head > 0 { n_embd as u64 / n_head as u64 } else { 0 });
    let val_len = h.arch_u64("attention.value_length").unwrap_or(key_len);

    // Which layers hold a KV cache: not the recurrent ones of hybrid models, not those that reuse another
    // layer's cache. Sliding-window layers do hold a full one: lokal runs with swa_full.
    let mut has_kv = vec![true; nl];
    if let Some(Value::Nums(rec)) = h.get(&format!("{arch}.attention.recurrent_layers")) {
        for (i, r) in rec.iter().enumerate().take(nl) {
            has_kv[i] = *r == 0.0;
        }
    } else if let Some(iv) = h.arch_u64("full_attention_interval").filter(|v| *v > 0) {
        for (i, k) in has_kv.iter_mut().enumerate() {
            *k = (i as u64 + 1).is_multiple_of(iv);
        }
    } else if h.arch_u64("ssm.state_size").is_some() && arch.contains("mamba") {
        has_kv.iter_mut().for_each(|k| *k = false);
    }
    // Layers whose head_count_kv is 0 are recurrent too (jamba, granite-hybrid, nemotron-h, …).
    for (i, k) in has_kv.iter_mut().enumerate() {
        if kv_heads[i] == 0 {
            *k = false;
        }
    }
    if let Some(shared) = h.arch_u64("attention.shared_kv_layers") {
        let from = nl.saturating_sub(shared as usize);
        has_kv.iter_mut().skip(from).for_each(|k| *k = false);
    }
    let n_kv_layers = has_kv.iter().filter(|k| **k).count() as u32;

    // KV elements per token per layer: MLA models cache one latent (kv_lora_rank + rope dims), others K and V.
    let kv_lora = h.arch_u64("attention.kv_lora_rank");
    let (mla, n_kv_heads, head_dim) = match kv_lora {
        Some(rank) if rank > 0 => (true, 1, (rank + h.arch_u64("rope.dimension_count").unwrap_or(64)) as u32),
        _ => {
            let swa_k = h.arch_u64("attention.key_length_swa").unwrap_or(key_len);
            let swa_v = h.arch_u64("attention.value_length_swa").unwrap_or(val_len);
            let pattern = match h.get(&format!("{arch}.attention.sliding_window_pattern")) {
                Some(Value::Nums(p)) => p.clone(),
                _ => vec![],
            };
            // Total K+V elements over the KV layers, then expressed as an equivalent uniform shape.
            let mut elems = 0u64;
            for i in (0..nl).filter(|i| has_kv[*i]) {
                let swa = pattern.get(i).is_some_and(|p| *p != 0.0);
                let (k, v) = if swa { (swa_k, swa_v) } else { (key_len, val_len) };
                elems += kv_heads[i] * (k + v);
            }
            let max_kv = kv_heads.iter().copied().max().unwrap_or(1).max(1);
            let per_layer = if n_kv_layers > 0 { elems / n_kv_layers as u64 } else { 0 };
            (false, max_kv as u32, (per_layer / (2 * max_kv)).max(1) as u32)
        }
    };

    // Recurrent state per sequence (f32) for hybrid / state-space layers.
    let recurrent_layers =
        (nl as u64).saturating_sub(n_kv_layers as u64 + h.arch_u64("attention.shared_kv_layers").unwrap_or(0));
    let state_bytes_per_seq = match (h.arch_u64("ssm.inner_size"), h.arch_u64("ssm.state_size")) {
        (Some(inner), Some(state)) if recurrent_layers > 0 => {
            let groups = h.arch_u64("ssm.group_count").unwrap_or(1);
            let conv = h.arch_u64("ssm.conv_kernel").unwrap_or(4).saturating_sub(1);
            let per_layer = inner * state * 4 + conv * (inner + 2 * groups * state) * 4;
            recurrent_layers * per_layer
        }
        _ => 0,
    };

    // Parameters from the tensor table; experts count fully in the total, by used/total in the active figure.
    let expert_count = h.arch_u64("expert_count").unwrap_or(0);
    let expert_used = h.arch_u64("expert_used_count").unwrap_or(0);
    let (mut total, mut expert) = (0u64, 0u64);
    for t in &h.tensors {
        let n = t.elements();
        total = total.saturating_add(n);
        if t.name.contains("_exps") {
            expert = expert.saturating_add(n);
        }
    }
    let active = if expert_count > 0 && expert_used > 0 && expert > 0 {
        Some(total - expert + expert * expert_used / expert_count)
    } else {
        None
    };
    let params = if total > 0 { total } else { file_bytes * 2 }; // no tensor table: assume ~4 bits a weight
    let n_vocab = h.vocab_len.or_else(|| h.arch_u64("vocab_size")).unwrap_or(0) as u32;
    let fim = h.vocab_has_fim
        || h.get("tokenizer.ggml.fim_pre_token_id").is_some()
        || h.get("tokenizer.ggml.prefix_token_id").is_some();
    let quant = h.u64("general.file_type").and_then(file_type_name).map(str::to_string).unwrap_or_else(|| "?".into());
    let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned());
    let name = h
        .str("general.name")
        .map(str::to_string)
        .or_else(|| path.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "unnamed GGUF".into());
    let lname = format!("{name} {}", file_name.clone().unwrap_or_default()).to_lowercase();
    let role = if lname.contains("code") || lname.contains("coder") || fim { Role::Code } else { Role::Instruct };
    Ok(Entry {
        id: format!("file:{}", path.display()),
        name,
        family: arch.clone(),
        role,
        params,
        active_params: active,
        n_layers,
        n_kv_layers,
        n_kv_heads,
        head_dim,
        mla,
        state_bytes_per_seq,
        n_embd,
        n_vocab,
        context: h.arch_u64("context_length").unwrap_or(0) as u32,
        quant,
        bits_per_weight: if params > 0 { file_bytes as f64 * 8.0 / params as f64 } else { 0.0 },
        file_bytes,
        fim,
        default_quant: true,
        approx: false,
        source: Source::File,
        file_name,
        path: Some(path.to_path_buf()),
        note: None,
    })
}

#[cfg(test)]
#[path = "gguf_meta_tests.rs"]
pub(crate) mod tests;
