//! The curated catalog: the models people run for code completion and chat on their own hardware, each in
//! the quantizations worth running (curated, not a knob), with the architecture figures that decide memory
//! (layers, KV heads, head size) and speed (active parameters).
//!
//! Sources: the models' published configurations, llama.cpp's architecture tables (layer counts per model
//! size), and the published GGUF / FP8 files' sizes (rounded to 10 MB for files under 100 GB, to 1 GB above).
//! Entries marked `approx` hold figures we could not check against the files themselves (releases of 2026;
//! per-layer attention shapes simplified to one uniform shape that holds at least as much KV cache), and
//! render with "~".
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Trained for code, with fill-in-the-middle: what inline completion wants.
    Code,
    /// General instruct / chat models.
    Instruct,
    /// Frontier open models: a Mac Studio or a GPU server, usually as an on-premises engine.
    Frontier,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// From the curated table.
    Catalog,
    /// Read from a GGUF file on disk (bring your own, or a model that has left the catalog).
    File,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    /// Stable id: `qwen2.5-coder-7b-q4_k_m`; `file:/path` for files read from disk.
    pub id: String,
    pub name: String,
    pub family: String,
    pub role: Role,
    /// Parameters, all of them (every expert of a mixture-of-experts model).
    pub params: u64,
    /// Parameters used per token, where that is fewer (MoE; Gemma's per-layer-embedding "E" models).
    pub active_params: Option<u64>,
    /// Transformer blocks: what llama.cpp offloads layer by layer (its output layer is not counted).
    pub n_layers: u32,
    /// Blocks that hold a KV cache: fewer than `n_layers` for hybrid linear-attention models (Qwen3.5's
    /// Gated DeltaNet layers keep a fixed-size state instead) and models that share KV between layers.
    pub n_kv_layers: u32,
    pub n_kv_heads: u32,
    pub head_dim: u32,
    /// Multi-head latent attention (DeepSeek-style): one latent of `head_dim` values per token and layer
    /// (kv_lora_rank + rope dims) instead of K and V per head.
    pub mla: bool,
    /// Fixed recurrent state per sequence (f32), for hybrid models.
    pub state_bytes_per_seq: u64,
    pub n_embd: u32,
    pub n_vocab: u32,
    /// Trained context length.
    pub context: u32,
    pub quant: String,
    /// Average over the whole file (embeddings and norms included).
    pub bits_per_weight: f64,
    /// Size of the weights file(s).
    pub file_bytes: u64,
    /// Fill-in-the-middle tokens (PSM/SPM prompts).
    pub fim: bool,
    /// The quantization to pick for this model when in doubt.
    pub default_quant: bool,
    /// Figures not verified against the files: rendered with "~".
    pub approx: bool,
    pub source: Source,
    /// The usual GGUF file name (lower case), to find a catalog model already on disk.
    pub file_name: Option<String>,
    /// Where the file is, when it is on disk.
    pub path: Option<PathBuf>,
    pub note: Option<String>,
}

impl Entry {
    /// K and V (or the MLA latent), f16, for one token over all KV layers.
    pub fn kv_bytes_per_token(&self) -> u64 {
        let per_layer = if self.mla { self.head_dim as u64 } else { 2 * self.n_kv_heads as u64 * self.head_dim as u64 };
        self.n_kv_layers as u64 * per_layer * 2
    }
    pub fn active(&self) -> u64 {
        self.active_params.unwrap_or(self.params).min(self.params.max(1))
    }
    /// Weight bytes read to generate one token: the active share of the file.
    pub fn weight_bytes_per_token(&self) -> f64 {
        if self.params == 0 {
            return self.file_bytes as f64;
        }
        self.file_bytes as f64 * self.active() as f64 / self.params as f64
    }
    /// A size-for-quality yardstick: parameters for dense models, the geometric mean of total and active for
    /// MoE (the usual rule of thumb), times a small bonus for 8-bit over 4-bit.
    pub fn quality(&self) -> f64 {
        let p = match self.active_params {
            Some(a) => ((self.params as f64) * (a as f64)).sqrt(),
            None => self.params as f64,
        };
        p * if self.bits_per_weight >= 7.5 { 1.05 } else { 1.0 }
    }
    pub fn is_code(&self) -> bool {
        self.role == Role::Code
    }
}

/// Architecture of one model; each curated quantization adds its file.
struct Arch {
    id: &'static str,
    name: &'static str,
    family: &'static str,
    role: Role,
    /// Billions.
    params_b: f64,
    active_b: Option<f64>,
    n_layers: u32,
    n_kv_layers: u32,
    n_kv_heads: u32,
    head_dim: u32,
    mla: bool,
    /// Recurrent state per sequence, MB.
    state_mb: f64,
    n_embd: u32,
    n_vocab: u32,
    context: u32,
    fim: bool,
    approx: bool,
}

/// (quant, file GB, usual file name, note)
type Quant = (&'static str, f64, Option<&'static str>, Option<&'static str>);

fn model(a: Arch, quants: &[Quant], out: &mut Vec<Entry>) {
    for (i, (quant, gb, file, note)) in quants.iter().enumerate() {
        let params = (a.params_b * 1e9) as u64;
        let file_bytes = (gb * 1e9) as u64;
        out.push(Entry {
            id: format!("{}-{}", a.id, quant.to_lowercase()),
            name: a.name.into(),
            family: a.family.into(),
            role: a.role,
            params,
            active_params: a.active_b.map(|x| (x * 1e9) as u64),
            n_layers: a.n_layers,
            n_kv_layers: a.n_kv_layers,
            n_kv_heads: a.n_kv_heads,
            head_dim: a.head_dim,
            mla: a.mla,
            state_bytes_per_seq: (a.state_mb * 1e6) as u64,
            n_embd: a.n_embd,
            n_vocab: a.n_vocab,
            context: a.context,
            quant: quant.to_string(),
            bits_per_weight: file_bytes as f64 * 8.0 / params as f64,
            file_bytes,
            fim: a.fim,
            default_quant: i == 0,
            approx: a.approx,
            source: Source::Catalog,
            file_name: file.map(str::to_string),
            path: None,
            note: note.map(str::to_string),
        });
    }
}

/// Size of the embedded default model's file, exactly (checked by a test against the file when present).
pub const EMBEDDED_DEFAULT_BYTES: u64 = 253_113_024;

/// The curated table. Order: small to large within each family; families from local code models to frontier.
pub fn curated() -> Vec<Entry> {
    use Role::*;
    let mut v = Vec::new();
    let o = &mut v;
    const QV: u32 = 151_936; // Qwen2.5 embedding rows (small models)
    const QV7: u32 = 152_064;
    const Q35V: u32 = 248_320;
    const GV: u32 = 262_144;

    // The embedded default: a 270M base model, continuation without FIM. Exact figures from its file.
    let mut g = Vec::new();
    model(
        Arch {
            id: "gemma-3-270m",
            name: "Gemma 3 270M (embedded default)",
            family: "Gemma 3",
            role: Instruct,
            params_b: 0.268098,
            active_b: None,
            n_layers: 18,
            n_kv_layers: 18,
            n_kv_heads: 1,
            head_dim: 256,
            mla: false,
            state_mb: 0.0,
            n_embd: 640,
            n_vocab: GV,
            context: 32_768,
            fim: false,
            approx: false,
        },
        &[("Q4_K_M", 0.0, Some(crate::config::DEFAULT_MODEL_FILE), Some("base model: plain continuation, no FIM"))],
        &mut g,
    );
    g[0].file_bytes = EMBEDDED_DEFAULT_BYTES;
    g[0].bits_per_weight = EMBEDDED_DEFAULT_BYTES as f64 * 8.0 / g[0].params as f64;
    o.extend(g);

    // Qwen2.5-Coder: the local FIM workhorse (PSM). Figures from the published configs and GGUF files.
    let qc = |id, name, p, l, kv, hd, e, voc| Arch {
        id,
        name,
        family: "Qwen2.5-Coder",
        role: Code,
        params_b: p,
        active_b: None,
        n_layers: l,
        n_kv_layers: l,
        n_kv_heads: kv,
        head_dim: hd,
        mla: false,
        state_mb: 0.0,
        n_embd: e,
        n_vocab: voc,
        context: 32_768,
        fim: true,
        approx: false,
    };
    model(
        qc("qwen2.5-coder-0.5b", "Qwen2.5-Coder 0.5B", 0.494, 24, 2, 64, 896, QV),
        &[("Q8_0", 0.53, Some("qwen2.5-coder-0.5b-instruct-q8_0.gguf"), None)],
        o,
    );
    model(
        qc("qwen2.5-coder-1.5b", "Qwen2.5-Coder 1.5B", 1.54, 28, 2, 128, 1536, QV),
        &[
            ("Q4_K_M", 0.99, Some("qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"), None),
            ("Q8_0", 1.65, Some("qwen2.5-coder-1.5b-instruct-q8_0.gguf"), None),
        ],
        o,
    );
    model(
        qc("qwen2.5-coder-3b", "Qwen2.5-Coder 3B", 3.09, 36, 2, 128, 2048, QV),
        &[("Q4_K_M", 1.93, Some("qwen2.5-coder-3b-instruct-q4_k_m.gguf"), None)],
        o,
    );
    model(
        qc("qwen2.5-coder-7b", "Qwen2.5-Coder 7B", 7.62, 28, 4, 128, 3584, QV7),
        &[
            ("Q4_K_M", 4.68, Some("qwen2.5-coder-7b-instruct-q4_k_m.gguf"), None),
            ("Q8_0", 8.10, Some("qwen2.5-coder-7b-instruct-q8_0.gguf"), None),
        ],
        o,
    );
    model(
        qc("qwen2.5-coder-14b", "Qwen2.5-Coder 14B", 14.7, 48, 8, 128, 5120, QV7),
        &[
            ("Q4_K_M", 8.99, Some("qwen2.5-coder-14b-instruct-q4_k_m.gguf"), None),
            ("Q8_0", 15.7, Some("qwen2.5-coder-14b-instruct-q8_0.gguf"), None),
        ],
        o,
    );
    model(
        qc("qwen2.5-coder-32b", "Qwen2.5-Coder 32B", 32.8, 64, 8, 128, 5120, QV7),
        &[
            ("Q4_K_M", 19.85, Some("qwen2.5-coder-32b-instruct-q4_k_m.gguf"), None),
            ("Q8_0", 34.8, Some("qwen2.5-coder-32b-instruct-q8_0.gguf"), None),
        ],
        o,
    );
    // Qwen3-Coder 30B-A3B: the MoE FIM coder (not in the list; the obvious local code model of 2025).
    model(
        Arch {
            id: "qwen3-coder-30b-a3b",
            name: "Qwen3-Coder 30B-A3B",
            family: "Qwen3-Coder",
            role: Code,
            params_b: 30.5,
            active_b: Some(3.3),
            n_layers: 48,
            n_kv_layers: 48,
            n_kv_heads: 4,
            head_dim: 128,
            mla: false,
            state_mb: 0.0,
            n_embd: 2048,
            n_vocab: QV,
            context: 262_144,
            fim: true,
            approx: false,
        },
        &[
            ("Q4_K_M", 18.6, Some("qwen3-coder-30b-a3b-instruct-q4_k_m.gguf"), None),
            ("Q8_0", 32.5, Some("qwen3-coder-30b-a3b-instruct-q8_0.gguf"), None),
        ],
        o,
    );

    // Qwen3.5 / 3.6: hybrid, 3 Gated DeltaNet layers to 1 gated-attention layer (only those hold KV; the
    // others keep a fixed f32 state per sequence). Layer counts as in llama.cpp's qwen35/qwen35moe tables.
    let q35 = |id, name, family, role, p, a, l, kv, e, state_mb| Arch {
        id,
        name,
        family,
        role,
        params_b: p,
        active_b: a,
        n_layers: l,
        n_kv_layers: l / 4,
        n_kv_heads: kv,
        head_dim: 256,
        mla: false,
        state_mb,
        n_embd: e,
        n_vocab: Q35V,
        context: 262_144,
        fim: true,
        approx: true,
    };
    model(
        q35("qwen3.5-4b", "Qwen3.5 4B", "Qwen3.5", Instruct, 4.5, None, 32, 4, 2560, 53.0),
        &[("Q4_K_M", 2.74, Some("qwen3.5-4b-q4_k_m.gguf"), None)],
        o,
    );
    model(
        q35("qwen3.5-9b", "Qwen3.5 9B", "Qwen3.5", Instruct, 9.0, None, 32, 4, 4096, 53.0),
        &[("Q4_K_M", 5.68, Some("qwen3.5-9b-q4_k_m.gguf"), None), ("Q8_0", 9.53, Some("qwen3.5-9b-q8_0.gguf"), None)],
        o,
    );
    model(
        q35("qwen3.5-27b", "Qwen3.5 27B", "Qwen3.5", Instruct, 27.0, None, 64, 4, 5120, 158.0),
        &[("Q4_K_M", 16.5, Some("qwen3.5-27b-q4_k_m.gguf"), None), ("Q8_0", 28.7, Some("qwen3.5-27b-q8_0.gguf"), None)],
        o,
    );
    model(
        q35("qwen3.5-35b-a3b", "Qwen3.5 35B-A3B", "Qwen3.5", Instruct, 35.0, Some(3.0), 40, 2, 2048, 66.0),
        &[
            ("Q4_K_M", 21.2, Some("qwen3.5-35b-a3b-q4_k_m.gguf"), None),
            ("Q8_0", 36.9, Some("qwen3.5-35b-a3b-q8_0.gguf"), None),
        ],
        o,
    );
    model(
        q35("qwen3.6-35b-a3b", "Qwen3.6 35B-A3B", "Qwen3.6", Instruct, 35.0, Some(3.0), 40, 2, 2048, 66.0),
        &[
            ("Q4_K_M", 21.2, Some("qwen3.6-35b-a3b-q4_k_m.gguf"), Some("same architecture as Qwen3.5 35B-A3B")),
            ("Q8_0", 36.9, Some("qwen3.6-35b-a3b-q8_0.gguf"), None),
        ],
        o,
    );
    model(
        q35("qwen3.5-122b-a10b", "Qwen3.5 122B-A10B", "Qwen3.5", Instruct, 122.0, Some(10.0), 48, 2, 3072, 155.0),
        &[("Q4_K_M", 74.0, None, None)],
        o,
    );

    // Gemma 4: 5:1 sliding-window to global layers. lokal runs sliding-window models with swa_full, so every
    // layer holds a full-length cache; global layers' wider heads are folded into one uniform shape.
    // "E" models: per-layer embeddings are looked up, not read per token: active = effective parameters.
    let g4 = |id, name, p, a, l, kvl, kv, e, ctx| Arch {
        id,
        name,
        family: "Gemma 4",
        role: Instruct,
        params_b: p,
        active_b: a,
        n_layers: l,
        n_kv_layers: kvl,
        n_kv_heads: kv,
        head_dim: 256,
        mla: false,
        state_mb: 0.0,
        n_embd: e,
        n_vocab: GV,
        context: ctx,
        fim: false,
        approx: true,
    };
    model(
        g4("gemma-4-e2b", "Gemma 4 E2B", 5.1, Some(2.3), 35, 15, 1, 1536, 131_072),
        &[("Q4_K_M", 3.1, Some("gemma-4-e2b-it-q4_k_m.gguf"), Some("E: effective parameters per token"))],
        o,
    );
    model(
        g4("gemma-4-e4b", "Gemma 4 E4B", 8.0, Some(4.5), 42, 24, 2, 2560, 131_072),
        &[("Q4_K_M", 5.0, Some("gemma-4-e4b-it-q4_k_m.gguf"), Some("E: effective parameters per token"))],
        o,
    );
    model(
        g4("gemma-4-26b-a4b", "Gemma 4 26B-A4B", 25.2, Some(3.8), 30, 30, 8, 2816, 262_144),
        &[
            ("Q4_K_M", 16.0, Some("gemma-4-26b-a4b-it-q4_k_m.gguf"), None),
            ("Q8_0", 26.9, Some("gemma-4-26b-a4b-it-q8_0.gguf"), None),
        ],
        o,
    );
    model(
        g4("gemma-4-31b", "Gemma 4 31B", 30.7, None, 60, 60, 16, 5376, 262_144),
        &[
            ("Q4_K_M", 18.7, Some("gemma-4-31b-it-q4_k_m.gguf"), None),
            ("Q8_0", 32.6, Some("gemma-4-31b-it-q8_0.gguf"), None),
        ],
        o,
    );

    // Frontier open models: 4-bit GGUF (llama.cpp, Mac Studio) and FP8 (vLLM / SGLang on a GPU server).
    model(
        Arch {
            id: "qwen3.5-397b-a17b",
            name: "Qwen3.5-397B-A17B",
            family: "Qwen3.5",
            role: Frontier,
            params_b: 397.0,
            active_b: Some(17.0),
            n_layers: 60,
            n_kv_layers: 15,
            n_kv_heads: 2,
            head_dim: 256,
            mla: false,
            state_mb: 194.0,
            n_embd: 4096,
            n_vocab: Q35V,
            context: 262_144,
            fim: true,
            approx: true,
        },
        &[("Q4_K_M", 241.0, None, None), ("FP8", 403.0, None, Some("FP8: the official FP8 release, for vLLM/SGLang"))],
        o,
    );
    model(
        Arch {
            id: "minimax-m2.5",
            name: "MiniMax M2.5",
            family: "MiniMax M2",
            role: Frontier,
            params_b: 229.0,
            active_b: Some(10.0),
            n_layers: 62,
            n_kv_layers: 62,
            n_kv_heads: 8,
            head_dim: 128,
            mla: false,
            state_mb: 0.0,
            n_embd: 3072,
            n_vocab: 200_064,
            context: 196_608,
            fim: false,
            approx: true,
        },
        &[("Q4_K_M", 138.0, None, None), ("FP8", 230.0, None, Some("FP8: the native release"))],
        o,
    );
    model(
        Arch {
            id: "glm-5",
            name: "GLM-5",
            family: "GLM-5",
            role: Frontier,
            params_b: 744.0,
            active_b: Some(40.0),
            n_layers: 78,
            n_kv_layers: 78,
            n_kv_heads: 1,
            head_dim: 576,
            mla: true,
            state_mb: 0.0,
            n_embd: 6144,
            n_vocab: 154_880,
            context: 202_752,
            fim: false,
            approx: true,
        },
        &[("Q4_K_M", 451.0, None, None), ("FP8", 756.0, None, Some("FP8: the official FP8 release"))],
        o,
    );
    model(
        Arch {
            id: "kimi-k2.5",
            name: "Kimi K2.5",
            family: "Kimi K2",
            role: Frontier,
            params_b: 1040.0,
            active_b: Some(32.0),
            n_layers: 61,
            n_kv_layers: 61,
            n_kv_heads: 1,
            head_dim: 576,
            mla: true,
            state_mb: 0.0,
            n_embd: 7168,
            n_vocab: 163_840,
            context: 262_144,
            fim: false,
            approx: true,
        },
        &[
            ("Q4_K_M", 621.0, None, Some("released as native INT4 (~595 GB); Q4_K_M GGUF for llama.cpp")),
            ("FP8", 1030.0, None, Some("FP8: the Kimi K2 layout; K2.5 itself ships INT4")),
        ],
        o,
    );
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_consistent() {
        let c = curated();
        let mut ids: Vec<&str> = c.iter().map(|e| e.id.as_str()).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), c.len(), "ids are unique");
        for e in &c {
            assert!(e.n_kv_layers <= e.n_layers && e.n_layers > 0, "{}", e.id);
            assert!(e.active() <= e.params, "{}", e.id);
            assert!((1.5..17.0).contains(&e.bits_per_weight), "{} {}", e.id, e.bits_per_weight);
            assert!(e.kv_bytes_per_token() > 0, "{}", e.id);
        }
        // One default quantization per model.
        for name in c.iter().map(|e| &e.name) {
            assert_eq!(c.iter().filter(|e| &e.name == name && e.default_quant).count(), 1, "{name}");
        }
        // The families the issue names, with FP8 and 4-bit for each frontier model.
        for f in ["Qwen2.5-Coder", "Qwen3.5", "Qwen3.6", "Gemma 4"] {
            assert!(c.iter().any(|e| e.family == f), "{f}");
        }
        for m in ["Qwen3.5-397B-A17B", "MiniMax M2.5", "GLM-5", "Kimi K2.5"] {
            assert!(
                c.iter().any(|e| e.name == m && e.quant == "FP8")
                    && c.iter().any(|e| e.name == m && e.quant.starts_with("Q4")),
                "{m}"
            );
        }
        // KV of Qwen2.5-Coder 7B: 28 layers x 4 heads x 128 x (K+V) x f16 = 57,344 bytes a token.
        assert_eq!(c.iter().find(|e| e.id == "qwen2.5-coder-7b-q4_k_m").unwrap().kv_bytes_per_token(), 57_344);
        // MLA: 61 layers x 576 x f16.
        assert_eq!(c.iter().find(|e| e.id == "kimi-k2.5-q4_k_m").unwrap().kv_bytes_per_token(), 61 * 576 * 2);
    }
}
