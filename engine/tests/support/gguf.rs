//! A minimal GGUF v3 writer, enough to produce tiny but complete llama.cpp models: metadata of the scalar
//! and array types models use, and F32 tensors laid out the way `gguf_init_from_file` insists on (each
//! tensor's offset is the padded end of the one before, the data section starts 32-byte aligned).
//!
//! Reference: ggml/src/gguf.cpp and docs/gguf.md of llama.cpp.
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The alignment of the data section and of every tensor in it (`general.alignment`'s default).
pub const ALIGNMENT: usize = 32;

/// GGUF value type ids (`enum gguf_type`).
mod ty {
    pub const U8: u32 = 0;
    pub const U32: u32 = 4;
    pub const I32: u32 = 5;
    pub const F32: u32 = 6;
    pub const BOOL: u32 = 7;
    pub const STRING: u32 = 8;
    pub const ARRAY: u32 = 9;
}

/// `GGML_TYPE_F32`.
const GGML_TYPE_F32: u32 = 0;

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    U8(u8),
    U32(u32),
    I32(i32),
    F32(f32),
    Bool(bool),
    Str(String),
    Strs(Vec<String>),
    I32s(Vec<i32>),
    F32s(Vec<f32>),
}

impl From<u32> for Value {
    fn from(v: u32) -> Self {
        Value::U32(v)
    }
}
impl From<f32> for Value {
    fn from(v: f32) -> Self {
        Value::F32(v)
    }
}
impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Bool(v)
    }
}
impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Str(v.to_string())
    }
}
impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Str(v)
    }
}

#[derive(Debug, Clone)]
pub struct Tensor {
    pub name: String,
    /// ggml order: `dims[0]` is the row length (a `{n_embd, n_vocab}` matrix holds n_vocab rows).
    pub dims: Vec<u64>,
    pub data: Vec<f32>,
}

#[derive(Debug, Clone, Default)]
pub struct Gguf {
    kvs: Vec<(String, Value)>,
    tensors: Vec<Tensor>,
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend((s.len() as u64).to_le_bytes());
    out.extend(s.as_bytes());
}

fn pad_to(out: &mut Vec<u8>, align: usize) {
    while !out.len().is_multiple_of(align) {
        out.push(0);
    }
}

impl Gguf {
    pub fn new() -> Self {
        Self::default()
    }

    /// Set a key (replacing an earlier value: llama.cpp rejects files with duplicate keys).
    pub fn set(&mut self, key: &str, v: impl Into<Value>) -> &mut Self {
        let v = v.into();
        match self.kvs.iter_mut().find(|(k, _)| k == key) {
            Some(kv) => kv.1 = v,
            None => self.kvs.push((key.to_string(), v)),
        }
        self
    }

    pub fn remove(&mut self, key: &str) -> &mut Self {
        self.kvs.retain(|(k, _)| k != key);
        self
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.kvs.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    pub fn tensor(&mut self, name: &str, dims: &[u64], data: Vec<f32>) -> &mut Self {
        let n: u64 = dims.iter().product();
        assert_eq!(n as usize, data.len(), "tensor {name}: {dims:?} needs {n} values");
        assert!(self.tensors.iter().all(|t| t.name != name), "duplicate tensor {name}");
        self.tensors.push(Tensor { name: name.to_string(), dims: dims.to_vec(), data });
        self
    }

    pub fn tensors(&self) -> &[Tensor] {
        &self.tensors
    }

    /// The byte offset where the data section starts in `to_bytes()`.
    pub fn data_offset(&self) -> usize {
        let mut out = Vec::new();
        self.write_head(&mut out);
        out.len()
    }

    fn write_value(out: &mut Vec<u8>, v: &Value) {
        match v {
            Value::U8(x) => out.push(*x),
            Value::U32(x) => out.extend(x.to_le_bytes()),
            Value::I32(x) => out.extend(x.to_le_bytes()),
            Value::F32(x) => out.extend(x.to_le_bytes()),
            Value::Bool(x) => out.push(*x as u8),
            Value::Str(s) => put_str(out, s),
            Value::Strs(a) => {
                out.extend(ty::STRING.to_le_bytes());
                out.extend((a.len() as u64).to_le_bytes());
                a.iter().for_each(|s| put_str(out, s));
            }
            Value::I32s(a) => {
                out.extend(ty::I32.to_le_bytes());
                out.extend((a.len() as u64).to_le_bytes());
                a.iter().for_each(|x| out.extend(x.to_le_bytes()));
            }
            Value::F32s(a) => {
                out.extend(ty::F32.to_le_bytes());
                out.extend((a.len() as u64).to_le_bytes());
                a.iter().for_each(|x| out.extend(x.to_le_bytes()));
            }
        }
    }

    fn type_id(v: &Value) -> u32 {
        match v {
            Value::U8(_) => ty::U8,
            Value::U32(_) => ty::U32,
            Value::I32(_) => ty::I32,
            Value::F32(_) => ty::F32,
            Value::Bool(_) => ty::BOOL,
            Value::Str(_) => ty::STRING,
            Value::Strs(_) | Value::I32s(_) | Value::F32s(_) => ty::ARRAY,
        }
    }

    /// Header, metadata and tensor infos, padded to the start of the data section.
    fn write_head(&self, out: &mut Vec<u8>) {
        out.extend(b"GGUF");
        out.extend(3u32.to_le_bytes());
        out.extend((self.tensors.len() as u64).to_le_bytes());
        out.extend((self.kvs.len() as u64).to_le_bytes());
        for (k, v) in &self.kvs {
            put_str(out, k);
            out.extend(Self::type_id(v).to_le_bytes());
            Self::write_value(out, v);
        }
        let mut offset = 0usize;
        for t in &self.tensors {
            put_str(out, &t.name);
            out.extend((t.dims.len() as u32).to_le_bytes());
            t.dims.iter().for_each(|d| out.extend(d.to_le_bytes()));
            out.extend(GGML_TYPE_F32.to_le_bytes());
            out.extend((offset as u64).to_le_bytes());
            offset += (t.data.len() * 4).next_multiple_of(ALIGNMENT);
        }
        if !self.tensors.is_empty() {
            pad_to(out, ALIGNMENT);
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write_head(&mut out);
        for t in &self.tensors {
            t.data.iter().for_each(|x| out.extend(x.to_le_bytes()));
            pad_to(&mut out, ALIGNMENT);
        }
        out
    }

    /// Write to a fresh file in the temp dir, removed when the returned guard drops.
    pub fn write_temp(&self, name: &str) -> TempFile {
        TempFile::with_bytes(name, &self.to_bytes())
    }
}

/// A file under the temp dir with a name unique to this process and call; removed on drop.
pub struct TempFile(PathBuf);

impl TempFile {
    pub fn new(name: &str) -> TempFile {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        TempFile(std::env::temp_dir().join(format!("lokal-test-{}-{n}-{name}", std::process::id())))
    }

    pub fn with_bytes(name: &str, bytes: &[u8]) -> TempFile {
        let f = TempFile::new(name);
        std::fs::write(&f.0, bytes).unwrap_or_else(|e| panic!("write {}: {e}", f.0.display()));
        f
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// xorshift64*: deterministic "random" weights without a dependency.
pub struct XorShift(u64);

impl XorShift {
    pub fn new(seed: u64) -> Self {
        XorShift(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in [-scale, scale).
    pub fn uniform(&mut self, scale: f32) -> f32 {
        let unit = (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32;
        (unit * 2.0 - 1.0) * scale
    }

    pub fn fill(&mut self, n: usize, scale: f32) -> Vec<f32> {
        (0..n).map(|_| self.uniform(scale)).collect()
    }
}
