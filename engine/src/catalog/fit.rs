//! How a model fits a machine: memory needed, where its layers run, tokens/s, and a class.
//!
//! **Memory needed** = weights (the file) + KV cache + recurrent state + working buffers:
//! * KV cache: `n_kv_layers × (2 × n_kv_heads × head_dim, or the MLA latent) × 2 bytes (f16) × ctx_per_sequence
//!   × sequences`: lokal's context holds every sequence's cells (`kv_unified`), and sliding-window models
//!   keep full-length caches (`swa_full`).
//! * Recurrent state (hybrid models): `state_bytes_per_seq × sequences`.
//! * Working buffers: llama.cpp reserves its compute buffer for the worst case of one `n_ubatch` (512)
//!   chunk: the logits (`n_vocab × 512 × 4` bytes) plus activations (about `8 × n_embd × 512 × 4`). A GPU
//!   backend commits all of it, plus its runtime (CUDA context, cuBLAS workspace: ~450 MB a device); on the
//!   CPU only the pages actually touched count (generation asks for one row of logits), plus ~100 MB for
//!   the process. Calibration: the embedded 270M model at 8 × 2048 cells on the CPU is estimated at 0.67 GB;
//!   measured peak RSS 0.64 GB (docs/performance.md); its compute buffer as llama.cpp reserves it: ~0.55 GB.
//!
//! **Where it runs**: without a GPU, in system RAM. With a discrete GPU, as many whole layers as fit in 95%
//! of its free memory after the working buffers (each layer takes its share of the weights and of the KV
//! cache), never more than the model has; the rest runs on the CPU ("+ slow"). Apple Silicon and other
//! unified-memory machines run every layer on the GPU out of system memory.
//!
//! **Class**: great fit when the memory needed is at most 70% of the memory it runs in, tight fit up to
//! 95%, else won't fit. A split model is scored on both parts (the CPU part against system RAM).
//!
//! **Tokens/s**: generation reads the active weights once per token (plus one sequence's KV cache), so
//! `time per token = bytes on the GPU / GPU bandwidth + bytes on the CPU / RAM bandwidth`, with the bytes
//! split in proportion to the layers on each, plus a fixed ~30 µs per GPU layer (kernel launches and
//! synchronisation, which dominate for small models on big GPUs). Effective bandwidth: 75% of the table's
//! figure on the CPU, 55% on a GPU. Calibration: the embedded model on this project's 2-core CI box is
//! estimated at 62 tokens/s, measured 73 (docs/performance.md; the estimate reads a full 2048-cell sequence
//! of KV per token where the benchmark's prompts held about 800 cells, so it errs low); for GPUs the
//! constants reproduce the order of llama.cpp's published llama-7B Q4_0 generation rates (RTX 4090 ~130-160
//! tokens/s, M2 Ultra ~90) but not measured here: on datacenter GPUs (H100/H200) batch-1 decode in llama.cpp
//! reaches a smaller share of peak bandwidth, so read those figures as upper bounds.
use super::entries::Entry;
use super::hardware::Hardware;
use super::measured::Measured;
use serde::{Deserialize, Serialize};

/// The context lokal would create: the settings `ctxPerSequence` and `sequences`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FitConfig {
    pub ctx_per_sequence: u32,
    pub sequences: u32,
}

impl Default for FitConfig {
    fn default() -> Self {
        let c = crate::config::EngineConfig::default();
        FitConfig { ctx_per_sequence: c.ctx_per_sequence, sequences: c.sequences }
    }
}

impl From<&crate::config::EngineConfig> for FitConfig {
    fn from(c: &crate::config::EngineConfig) -> Self {
        FitConfig { ctx_per_sequence: c.ctx_per_sequence, sequences: c.sequences }
    }
}

impl FitConfig {
    pub fn cells(&self) -> u64 {
        self.ctx_per_sequence as u64 * self.sequences as u64
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Class {
    Great,
    Tight,
    WontFit,
}

impl Class {
    pub fn label(&self) -> &'static str {
        match self {
            Class::Great => "great fit",
            Class::Tight => "tight fit",
            Class::WontFit => "won't fit",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunsOn {
    Cpu,
    Gpu,
    /// Some layers on the GPU, the rest on the CPU.
    Split,
    /// Apple Silicon (or another unified-memory GPU): all layers on the GPU, out of system memory.
    Unified,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Fit {
    pub entry: Entry,
    pub weights_bytes: u64,
    pub kv_bytes: u64,
    pub state_bytes: u64,
    pub working_bytes: u64,
    pub needed_bytes: u64,
    /// The memory it runs in (GPU free memory, system RAM, or both for a split).
    pub budget_bytes: u64,
    pub runs_on: RunsOn,
    /// Layers on the GPU: never more than `entry.n_layers`.
    pub gpu_layers: u32,
    pub class: Class,
    /// Some layers run on the CPU although a GPU is there.
    pub slow: bool,
    /// Estimated generation speed; `None` when it won't fit.
    pub tokens_per_s: Option<f64>,
    pub recommended: bool,
    /// The latest `lokal eval` of this model's file, where there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measured: Option<Measured>,
}

pub const N_UBATCH: u64 = 512;
pub const GREAT: f64 = 0.70;
pub const TIGHT: f64 = 0.95;
/// Share of the peak bandwidth that decode reaches on the CPU / on a GPU.
pub const CPU_EFFICIENCY: f64 = 0.75;
pub const GPU_EFFICIENCY: f64 = 0.55;
/// Fixed time per layer per token on a GPU (kernel launches, synchronisation), seconds.
pub const GPU_LAYER_OVERHEAD_S: f64 = 30e-6;
/// CUDA context and cuBLAS workspace, per device.
pub const GPU_RUNTIME_BYTES: u64 = 450_000_000;
/// The process and llama.cpp's host-side buffers.
pub const HOST_OVERHEAD_BYTES: u64 = 100_000_000;
/// Below this a model is too slow for ghost text, however well it fits.
pub const MIN_TOKENS_PER_S: f64 = 15.0;

fn class_of(need: u64, have: u64) -> Class {
    let (need, have) = (need as f64, have as f64);
    if have > 0.0 && need <= GREAT * have {
        Class::Great
    } else if have > 0.0 && need <= TIGHT * have {
        Class::Tight
    } else {
        Class::WontFit
    }
}

fn activations(e: &Entry) -> u64 {
    4 * N_UBATCH * 8 * e.n_embd.max(1024) as u64
}

/// Compute buffer a GPU backend commits (worst-case logits + activations), without its runtime.
pub fn gpu_compute_bytes(e: &Entry) -> u64 {
    let vocab = if e.n_vocab > 0 { e.n_vocab as u64 } else { 150_000 };
    4 * N_UBATCH * vocab + activations(e)
}

/// Working memory on the CPU: touched activations and the process.
pub fn cpu_working_bytes(e: &Entry) -> u64 {
    activations(e) + HOST_OVERHEAD_BYTES
}

pub fn kv_bytes(e: &Entry, cfg: &FitConfig) -> u64 {
    e.kv_bytes_per_token().saturating_mul(cfg.cells())
}

/// Bytes read per generated token: the active weights and one sequence's KV cache.
pub fn bytes_per_token(e: &Entry, cfg: &FitConfig) -> f64 {
    e.weight_bytes_per_token() + e.kv_bytes_per_token() as f64 * cfg.ctx_per_sequence as f64
}

pub fn fit(e: &Entry, hw: &Hardware, cfg: &FitConfig) -> Fit {
    let weights = e.file_bytes;
    let kv = kv_bytes(e, cfg);
    let state = e.state_bytes_per_seq.saturating_mul(cfg.sequences as u64);
    let bpt = bytes_per_token(e, cfg).max(1.0);
    let n = e.n_layers.max(1);
    let base = Fit {
        entry: e.clone(),
        weights_bytes: weights,
        kv_bytes: kv,
        state_bytes: state,
        working_bytes: 0,
        needed_bytes: 0,
        budget_bytes: 0,
        runs_on: RunsOn::Cpu,
        gpu_layers: 0,
        class: Class::WontFit,
        slow: false,
        tokens_per_s: None,
        recommended: false,
        measured: None,
    };
    let speed = |class: Class, t: f64| (class != Class::WontFit).then_some(1.0 / t);
    let cpu_bw = hw.ram_bandwidth_gbs.max(1.0) * 1e9 * CPU_EFFICIENCY;
    let gpu_bw = hw.gpu_bandwidth_gbs().max(1.0) * 1e9 * GPU_EFFICIENCY;
    let gpu_time = |layers: u32| bpt * layers as f64 / n as f64 / gpu_bw + layers as f64 * GPU_LAYER_OVERHEAD_S;

    if hw.unified && hw.has_gpu() {
        let working = gpu_compute_bytes(e) + HOST_OVERHEAD_BYTES;
        let needed = weights + kv + state + working;
        let class = class_of(needed, hw.ram_bytes);
        return Fit {
            working_bytes: working,
            needed_bytes: needed,
            budget_bytes: hw.ram_bytes,
            runs_on: RunsOn::Unified,
            gpu_layers: if class == Class::WontFit { 0 } else { n },
            class,
            tokens_per_s: speed(class, gpu_time(n)),
            ..base
        };
    }
    if !hw.has_gpu() {
        let working = cpu_working_bytes(e);
        let needed = weights + kv + state + working;
        let class = class_of(needed, hw.ram_bytes);
        return Fit {
            working_bytes: working,
            needed_bytes: needed,
            budget_bytes: hw.ram_bytes,
            class,
            tokens_per_s: speed(class, bpt / cpu_bw),
            ..base
        };
    }

    // Discrete GPU(s): whole layers, each with its share of weights, KV and state.
    let gpu_free = hw.gpu_free_bytes();
    let gpu_working = gpu_compute_bytes(e) + GPU_RUNTIME_BYTES * hw.gpus.len() as u64;
    let per_layer = ((weights + kv + state) as f64 / n as f64).max(1.0);
    let room = (gpu_free as f64 * TIGHT - gpu_working as f64).max(0.0);
    let layers = ((room / per_layer).floor() as u64).min(n as u64) as u32;
    if layers == n {
        let needed = weights + kv + state + gpu_working;
        let class = class_of(needed, gpu_free);
        return Fit {
            working_bytes: gpu_working,
            needed_bytes: needed,
            budget_bytes: gpu_free,
            runs_on: RunsOn::Gpu,
            gpu_layers: n,
            class,
            tokens_per_s: speed(class, gpu_time(n)),
            ..base
        };
    }
    let on_cpu = (n - layers) as f64 * per_layer;
    let cpu_working = cpu_working_bytes(e);
    let cpu_part = on_cpu as u64 + cpu_working;
    let (runs_on, working, budget) = if layers == 0 {
        (RunsOn::Cpu, cpu_working, hw.ram_bytes)
    } else {
        (RunsOn::Split, gpu_working + cpu_working, hw.ram_bytes + gpu_free)
    };
    let needed = weights + kv + state + working;
    let class = class_of(needed, budget).max(class_of(cpu_part, hw.ram_bytes));
    let t = gpu_time(layers) + bpt * (n - layers) as f64 / n as f64 / cpu_bw;
    Fit {
        working_bytes: working,
        needed_bytes: needed,
        budget_bytes: budget,
        runs_on,
        gpu_layers: layers,
        class,
        slow: true,
        tokens_per_s: speed(class, t),
        ..base
    }
}

/// The models that may be recommended, the catalog's preferred first: great fits that run entirely where
/// they are fast and generate at least [`MIN_TOKENS_PER_S`]; code models first (inline completion wants
/// FIM-trained code models), then the highest [`Entry::quality`].
pub fn ranked(fits: &[Fit]) -> Vec<usize> {
    let mut v: Vec<usize> = (0..fits.len())
        .filter(|&i| {
            let f = &fits[i];
            f.class == Class::Great && !f.slow && f.tokens_per_s.unwrap_or(0.0) >= MIN_TOKENS_PER_S
        })
        .collect();
    let key = |f: &Fit| (f.entry.is_code(), f.entry.quality());
    // Among equals the later entry first (what `max_by` picked before measurements existed).
    v.sort_by(|&a, &b| {
        let (ka, kb) = (key(&fits[a]), key(&fits[b]));
        kb.0.cmp(&ka.0).then(kb.1.total_cmp(&ka.1)).then(b.cmp(&a))
    });
    v
}

/// Mark the recommendation and return its index: the first of [`ranked`], unless measurements say otherwise. Measurements reorder
/// only the models that have them: when the catalog's pick was measured, the best measured model that
/// may be recommended takes its place ([`Measured::score`]; equal scores keep the catalog's order). A
/// model nobody measured keeps its rank, so measuring a small model alone never displaces a larger one.
pub fn recommend(fits: &mut [Fit]) -> Option<usize> {
    for f in fits.iter_mut() {
        f.recommended = false;
    }
    let ranked = ranked(fits);
    let first = *ranked.first()?;
    let best = match fits[first].measured {
        None => first,
        Some(_) => {
            let score = |i: usize| fits[i].measured.as_ref().map(Measured::score);
            let mut best = first;
            for &i in &ranked {
                if let (Some(s), Some(b)) = (score(i), score(best)) {
                    if s.0 > b.0 || (s.0 == b.0 && s.1 > b.1) {
                        best = i;
                    }
                }
            }
            best
        }
    };
    fits[best].recommended = true;
    Some(best)
}

#[cfg(test)]
mod tests {
    use super::super::entries::curated;
    use super::*;

    const CFG: FitConfig = FitConfig { ctx_per_sequence: 2048, sequences: 8 };

    fn cpu_box() -> Hardware {
        Hardware::cpu_only(8, 24.0, 80.0)
    }
    fn h100() -> Hardware {
        Hardware::cpu_only(16, 128.0, 200.0).with_gpu("NVIDIA H100 80GB HBM3", 80.0)
    }
    fn mac_studio() -> Hardware {
        Hardware::apple("Apple M3 Ultra", 512.0)
    }
    fn all(hw: &Hardware) -> Vec<Fit> {
        let mut v: Vec<Fit> = curated().iter().map(|e| fit(e, hw, &CFG)).collect();
        recommend(&mut v);
        v
    }
    fn find<'a>(v: &'a [Fit], id: &str) -> &'a Fit {
        v.iter().find(|f| f.entry.id == id).unwrap_or_else(|| panic!("no {id}"))
    }

    #[test]
    fn a_24_gb_cpu_box() {
        let v = all(&cpu_box());
        assert_eq!(find(&v, "gemma-3-270m-q4_k_m").class, Class::Great);
        assert_eq!(find(&v, "qwen2.5-coder-7b-q4_k_m").class, Class::Great);
        assert_ne!(find(&v, "qwen2.5-coder-32b-q4_k_m").class, Class::Great);
        for f in v.iter().filter(|f| f.entry.role == super::super::entries::Role::Frontier) {
            assert_eq!(f.class, Class::WontFit, "{}", f.entry.id);
            assert_eq!(f.tokens_per_s, None);
        }
        assert!(v.iter().all(|f| f.gpu_layers == 0 && f.runs_on == RunsOn::Cpu && !f.slow));
        // The embedded model's KV cache: 18 layers x 1 head x 256 x 2 x 2 bytes x 16384 cells = 302 MB.
        assert_eq!(find(&v, "gemma-3-270m-q4_k_m").kv_bytes, 301_989_888);
        let rec: Vec<&Fit> = v.iter().filter(|f| f.recommended).collect();
        assert_eq!(rec.len(), 1);
        assert!(
            rec[0].class == Class::Great && rec[0].entry.is_code() && rec[0].tokens_per_s.unwrap() >= MIN_TOKENS_PER_S,
            "{:?}",
            rec[0].entry.id
        );
    }

    #[test]
    fn an_80_gb_h100() {
        let v = all(&h100());
        let q32 = find(&v, "qwen2.5-coder-32b-q4_k_m");
        assert_eq!((q32.runs_on, q32.gpu_layers, q32.slow, q32.class), (RunsOn::Gpu, 64, false, Class::Great));
        let big = find(&v, "qwen3.5-397b-a17b-q4_k_m");
        assert!(big.gpu_layers < big.entry.n_layers && big.slow, "{big:?}");
        assert_eq!(big.class, Class::WontFit);
        assert_eq!(find(&v, "qwen3.5-397b-a17b-fp8").class, Class::WontFit);
        // The recommendation is a code model fully on the GPU.
        let rec = v.iter().find(|f| f.recommended).unwrap();
        assert!(rec.entry.is_code() && rec.runs_on == RunsOn::Gpu, "{}", rec.entry.id);
    }

    #[test]
    fn a_512_gb_mac_studio_takes_frontier_4_bit() {
        let v = all(&mac_studio());
        for id in ["qwen3.5-397b-a17b-q4_k_m", "minimax-m2.5-q4_k_m"] {
            let f = find(&v, id);
            assert_eq!((f.class, f.runs_on, f.gpu_layers), (Class::Great, RunsOn::Unified, f.entry.n_layers), "{id}");
        }
        assert_eq!(find(&v, "glm-5-q4_k_m").class, Class::Tight);
        assert_eq!(find(&v, "kimi-k2.5-fp8").class, Class::WontFit);
        assert_eq!(find(&v, "glm-5-fp8").class, Class::WontFit);
    }

    #[test]
    fn never_more_gpu_layers_than_the_model_has() {
        let machines = [
            cpu_box(),
            h100(),
            mac_studio(),
            Hardware::cpu_only(8, 32.0, 80.0).with_gpu("NVIDIA GeForce RTX 4090", 24.0),
            Hardware::cpu_only(8, 16.0, 60.0).with_gpu("NVIDIA GeForce RTX 4060", 8.0),
            Hardware::cpu_only(128, 2000.0, 200.0).with_gpu("NVIDIA H200", 141.0).with_gpu("NVIDIA H200", 141.0),
            Hardware::cpu_only(2, 4.0, 20.0).with_gpu("NVIDIA T4", 0.3),
        ];
        for hw in &machines {
            for cfg in [
                CFG,
                FitConfig { ctx_per_sequence: 32768, sequences: 1 },
                FitConfig { ctx_per_sequence: 1, sequences: 1 },
            ] {
                for e in curated() {
                    let f = fit(&e, hw, &cfg);
                    assert!(
                        f.gpu_layers <= e.n_layers,
                        "{} on {}: {}/{}",
                        e.id,
                        hw.describe(),
                        f.gpu_layers,
                        e.n_layers
                    );
                    assert_eq!(f.slow, hw.has_gpu() && !hw.unified && f.gpu_layers < e.n_layers);
                    if !hw.has_gpu() {
                        assert_eq!(f.gpu_layers, 0);
                    }
                    assert_eq!(f.tokens_per_s.is_none(), f.class == Class::WontFit);
                }
            }
        }
    }

    #[test]
    fn a_small_gpu_splits_and_says_slow() {
        // 7B Q4 (~6 GB at 8 x 2048 cells) on an 8 GB card: every layer fits; at 32 sequences it does not.
        let hw = Hardware::cpu_only(8, 64.0, 80.0).with_gpu("NVIDIA GeForce RTX 4060", 8.0);
        let e = curated().into_iter().find(|e| e.id == "qwen2.5-coder-7b-q4_k_m").unwrap();
        let all_in = fit(&e, &hw, &CFG);
        assert_eq!((all_in.runs_on, all_in.gpu_layers, all_in.slow), (RunsOn::Gpu, 28, false));
        let split = fit(&e, &hw, &FitConfig { ctx_per_sequence: 2048, sequences: 32 });
        assert_eq!(split.runs_on, RunsOn::Split);
        assert!(split.slow && split.gpu_layers > 0 && split.gpu_layers < 28, "{split:?}");
        assert!(split.tokens_per_s.unwrap() < all_in.tokens_per_s.unwrap());
        assert_ne!(split.class, Class::WontFit);
    }

    #[test]
    fn more_context_needs_more_memory() {
        let e = curated().into_iter().find(|e| e.id == "qwen2.5-coder-14b-q4_k_m").unwrap();
        let hw = cpu_box();
        let a = fit(&e, &hw, &CFG);
        let b = fit(&e, &hw, &FitConfig { ctx_per_sequence: 8192, sequences: 8 });
        assert_eq!(b.kv_bytes, 4 * a.kv_bytes);
        assert!(b.class >= a.class);
    }

    #[test]
    fn no_recommendation_when_nothing_is_fast_enough() {
        let hw = Hardware::cpu_only(1, 2.0, 2.0);
        let v = all(&hw);
        assert!(v.iter().all(|f| !f.recommended));
    }

    fn measured(exact: usize, cases: usize, similarity: f64) -> Measured {
        let score = |exact| super::super::measured::ClassScore {
            class: "identifier".into(),
            cases,
            exact,
            similarity,
            ttft_p50_ms: 20.0,
            latency_p50_ms: 40.0,
        };
        Measured {
            model_file: "m.gguf".into(),
            model_bytes: 1,
            model_mtime: 0,
            repo: "/src/app".into(),
            date: "2026-11-30".into(),
            seed: 1,
            with_context: vec![score(exact)],
            without_context: vec![score(0)],
        }
    }

    fn recommended_with(hw: &Hardware, results: &[(&str, Measured)]) -> String {
        let mut v: Vec<Fit> = curated().iter().map(|e| fit(e, hw, &CFG)).collect();
        for (id, m) in results {
            find(&v, id);
            v.iter_mut().find(|f| f.entry.id == *id).unwrap().measured = Some(m.clone());
        }
        let i = recommend(&mut v).expect("a recommendation");
        assert_eq!(v.iter().filter(|f| f.recommended).count(), 1);
        v[i].entry.id.clone()
    }

    #[test]
    fn measurements_reorder_only_the_measured_models_that_may_be_recommended() {
        let hw = cpu_box();
        let plain = recommended_with(&hw, &[]);
        let v = all(&hw);
        let ranked: Vec<String> = ranked(&v).into_iter().map(|i| v[i].entry.id.clone()).collect();
        assert_eq!(ranked[0], plain);
        let (second, third) = (ranked[1].as_str(), ranked[2].as_str());
        let too_big = v.iter().find(|f| f.class != Class::Great).unwrap().entry.id.clone();

        // A model nobody measured keeps its rank: a good result of a lesser model does not displace it.
        assert_eq!(recommended_with(&hw, &[(second, measured(9, 10, 0.9))]), plain);
        // The catalog's pick measured worse than another model that fits: the better measured one.
        assert_eq!(recommended_with(&hw, &[(&plain, measured(2, 10, 0.5)), (third, measured(6, 10, 0.7))]), third);
        // Shares, not counts: 3 of 4 beats 5 of 10.
        assert_eq!(recommended_with(&hw, &[(&plain, measured(5, 10, 0.9)), (second, measured(3, 4, 0.6))]), second);
        // Measured better but cannot be recommended here (it does not fit with room to spare).
        assert_eq!(recommended_with(&hw, &[(&plain, measured(1, 10, 0.2)), (&too_big, measured(10, 10, 1.0))]), plain);
        // Equal exact shares: similarity decides; equal scores keep the catalog's order.
        assert_eq!(recommended_with(&hw, &[(&plain, measured(4, 10, 0.6)), (second, measured(4, 10, 0.8))]), second);
        assert_eq!(recommended_with(&hw, &[(&plain, measured(4, 10, 0.6)), (second, measured(4, 10, 0.6))]), plain);
    }
}
