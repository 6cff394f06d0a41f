//! The model catalog and how each model fits this machine: `lokal models`, `lokal doctor`.
//!
//! Memory needed = weights + KV cache (at the configured context and sequences) + working buffers; the
//! layers that fit in GPU memory run there, never more than the model has; tokens/s is estimated from
//! memory bandwidth (each generated token reads the active weights once).
pub mod doctor;
pub mod hardware;

use hardware::Hardware;
use serde::Serialize;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Code,
    Instruct,
    Frontier,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    pub name: String,
    pub role: Role,
    /// Billions of parameters; `active_b` for mixture-of-experts models.
    pub params_b: f64,
    pub active_b: Option<f64>,
    pub n_layer: u32,
    pub n_kv_heads: u32,
    pub head_dim: u32,
    pub quant: String,
    pub file_gb: f64,
    pub fim: bool,
    /// Architecture figures we could not verify (newest releases): shown with "~".
    pub approx: bool,
    /// A file on disk (bring your own, or a catalog model the user has).
    pub path: Option<PathBuf>,
}

#[allow(clippy::too_many_arguments)]
fn e(name: &str, role: Role, params_b: f64, active_b: Option<f64>, n_layer: u32, n_kv_heads: u32, head_dim: u32, quant: &str, file_gb: f64, fim: bool, approx: bool) -> Entry {
    Entry { name: name.into(), role, params_b, active_b, n_layer, n_kv_heads, head_dim, quant: quant.into(), file_gb, fim, approx, path: None }
}

/// The curated catalog: the quantizations people run, not every one that exists.
pub fn curated() -> Vec<Entry> {
    use Role::*;
    vec![
        e("Gemma 3 270M (embedded default)", Instruct, 0.27, None, 18, 1, 256, "Q4_K_M", 0.24, false, false),
        e("Qwen2.5-Coder 1.5B", Code, 1.5, None, 28, 2, 128, "Q4_K_M", 1.0, true, false),
        e("Qwen2.5-Coder 7B", Code, 7.6, None, 28, 4, 128, "Q4_K_M", 4.7, true, false),
        e("Qwen2.5-Coder 7B", Code, 7.6, None, 28, 4, 128, "Q8_0", 8.1, true, false),
        e("Qwen2.5-Coder 14B", Code, 14.7, None, 48, 8, 128, "Q4_K_M", 9.0, true, false),
        e("Qwen2.5-Coder 32B", Code, 32.8, None, 64, 8, 128, "Q4_K_M", 19.9, true, false),
        e("Qwen3.5 9B", Instruct, 9.0, None, 36, 4, 128, "Q4_K_M", 5.7, true, true),
        e("Qwen3.5 27B", Instruct, 27.0, None, 64, 4, 256, "Q4_K_M", 16.5, true, true),
        e("Qwen3.6 35B-A3B", Code, 35.0, Some(3.0), 40, 2, 256, "Q4_K_M", 21.0, true, true),
        e("Gemma 4 12B", Instruct, 12.0, None, 48, 8, 256, "Q4_K_M", 7.5, true, true),
        e("Gemma 4 27B", Instruct, 27.0, None, 62, 16, 128, "Q4_K_M", 16.5, true, true),
        e("Qwen3.5-397B-A17B", Frontier, 397.0, Some(17.0), 60, 2, 256, "Q4_K_M", 240.0, true, true),
        e("Qwen3.5-397B-A17B", Frontier, 397.0, Some(17.0), 60, 2, 256, "FP8", 400.0, true, true),
        e("MiniMax M2.5", Frontier, 230.0, Some(10.0), 62, 8, 128, "Q4_K_M", 138.0, false, true),
        e("MiniMax M2.5", Frontier, 230.0, Some(10.0), 62, 8, 128, "FP8", 230.0, false, true),
        e("GLM-5", Frontier, 745.0, Some(40.0), 78, 8, 128, "Q4_K_M", 440.0, false, true),
        e("GLM-5", Frontier, 745.0, Some(40.0), 78, 8, 128, "FP8", 750.0, false, true),
        e("Kimi K2.5", Frontier, 1040.0, Some(32.0), 61, 64, 192, "Q4_K_M", 600.0, false, true),
        e("Kimi K2.5", Frontier, 1040.0, Some(32.0), 61, 64, 192, "FP8", 1030.0, false, true),
    ]
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FitConfig {
    pub ctx_per_sequence: u32,
    pub sequences: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Class {
    Great,
    Tight,
    WontFit,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Fit {
    pub entry: Entry,
    pub needed_gb: f64,
    pub kv_gb: f64,
    pub gpu_layers: u32,
    pub class: Class,
    /// Some layers run on the CPU although a GPU is there.
    pub slow: bool,
    pub tokens_per_s: f64,
    pub recommended: bool,
}

const GB: f64 = 1e9;

pub fn kv_gb(e: &Entry, cfg: &FitConfig) -> f64 {
    // K and V, f16, for every layer and every cell of every sequence.
    2.0 * e.n_layer as f64 * e.n_kv_heads as f64 * e.head_dim as f64 * 2.0 * cfg.ctx_per_sequence as f64 * cfg.sequences as f64 / GB
}

/// Compute buffers and runtime overhead: a fixed part plus a share of the weights (measured on the embedded
/// model at 16k cells: ~0.55 GB of compute buffer).
fn working_gb(e: &Entry) -> f64 {
    0.6 + 0.03 * e.file_gb
}

pub fn fit(e: &Entry, hw: &Hardware, cfg: &FitConfig) -> Fit {
    let kv = kv_gb(e, cfg);
    let needed = e.file_gb + kv + working_gb(e);
    let active_gb = e.active_b.map(|a| e.file_gb * a / e.params_b).unwrap_or(e.file_gb);
    let class_of = |need: f64, have: f64| -> Class {
        if need <= 0.7 * have {
            Class::Great
        } else if need <= 0.95 * have {
            Class::Tight
        } else {
            Class::WontFit
        }
    };
    match (&hw.gpu, hw.unified) {
        (Some(g), false) => {
            // Layers share the GPU with the KV cache and buffers; the rest stays in system RAM.
            let per_layer = e.file_gb / e.n_layer as f64;
            let room = (g.memory_gb - kv - working_gb(e)).max(0.0);
            let layers = ((room / per_layer).floor() as u32).min(e.n_layer);
            let on_gpu = per_layer * layers as f64;
            let on_cpu = e.file_gb - on_gpu;
            let class = if layers == e.n_layer { class_of(needed, g.memory_gb) } else { at_best_tight(class_of(on_cpu, hw.ram_gb)) };
            let frac_gpu = layers as f64 / e.n_layer as f64;
            let t = active_gb * frac_gpu / g.bandwidth_gbs + active_gb * (1.0 - frac_gpu) / hw.ram_bandwidth_gbs;
            Fit { entry: e.clone(), needed_gb: needed, kv_gb: kv, gpu_layers: layers, class, slow: layers < e.n_layer, tokens_per_s: 1.0 / t, recommended: false }
        }
        _ => {
            // CPU only, or Apple unified memory (all layers "on GPU" when it fits).
            let class = class_of(needed, hw.ram_gb);
            let bw = hw.gpu.as_ref().map(|g| g.bandwidth_gbs).unwrap_or(hw.ram_bandwidth_gbs);
            let layers = if hw.unified && class != Class::WontFit { e.n_layer } else { 0 };
            Fit { entry: e.clone(), needed_gb: needed, kv_gb: kv, gpu_layers: layers, class, slow: false, tokens_per_s: bw / active_gb, recommended: false }
        }
    }
}

/// A model split across GPU and CPU is at best a tight fit.
fn at_best_tight(c: Class) -> Class {
    match c {
        Class::Great => Class::Tight,
        other => other,
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelsReport {
    pub hardware: Hardware,
    pub config: FitConfig,
    pub models: Vec<Fit>,
}

/// Score every model (catalog and user-added) against the hardware, and mark the recommendation: the
/// largest great fit, code models first, that runs entirely where it is fast and generates at least
/// 15 tokens/s.
pub fn models_report(hw: &Hardware, cfg: &FitConfig, extra: Vec<Entry>) -> ModelsReport {
    let mut models: Vec<Fit> = curated().iter().chain(extra.iter()).map(|e| fit(e, hw, cfg)).collect();
    let best = models
        .iter()
        .enumerate()
        // Ghost text needs speed: a great fit that generates fewer than 15 tokens/s is no recommendation.
        .filter(|(_, f)| f.class == Class::Great && !f.slow && f.tokens_per_s >= 15.0)
        .max_by(|(_, a), (_, b)| {
            let key = |f: &Fit| (f.entry.role == Role::Code || f.entry.role == Role::Frontier, (f.entry.params_b * 10.0) as i64);
            key(a).cmp(&key(b))
        })
        .map(|(i, _)| i);
    if let Some(i) = best {
        models[i].recommended = true;
    }
    ModelsReport { hardware: hw.clone(), config: *cfg, models }
}

impl ModelsReport {
    pub fn render_text(&self) -> String {
        let h = &self.hardware;
        let mut out = format!(
            "hardware: {} cores, {:.0} GB RAM ({:.0} GB/s){}\ncontext: {} cells x {} sequences\n\n",
            h.cores,
            h.ram_gb,
            h.ram_bandwidth_gbs,
            match &h.gpu {
                Some(g) => format!(", GPU {} {:.0} GB ({:.0} GB/s){}", g.name, g.memory_gb, g.bandwidth_gbs, if h.unified { " unified" } else { "" }),
                None => ", no GPU".into(),
            },
            self.config.ctx_per_sequence,
            self.config.sequences
        );
        out.push_str(&format!("{:<34} {:>9} {:>7} {:>8} {:>9} {:<14} {:>8}  {}\n", "model", "params", "quant", "file", "needs", "runs on", "tok/s", "fit"));
        for f in &self.models {
            let e = &f.entry;
            let p = match e.active_b {
                Some(a) => format!("{}{:.0}B/{:.0}B", if e.approx { "~" } else { "" }, e.params_b, a),
                None => format!("{}{:.1}B", if e.approx { "~" } else { "" }, e.params_b),
            };
            let runs = if h.gpu.is_some() { format!("GPU {}/{} layers", f.gpu_layers, e.n_layer) } else { "CPU".into() };
            let class = match f.class {
                Class::Great => "great fit",
                Class::Tight => "tight fit",
                Class::WontFit => "won't fit",
            };
            out.push_str(&format!(
                "{:<34} {:>9} {:>7} {:>6.1}GB {:>7.1}GB {:<14} {:>8.0}  {}{}{}\n",
                e.name.chars().take(34).collect::<String>(),
                p,
                e.quant,
                e.file_gb,
                f.needed_gb,
                runs,
                if f.class == Class::WontFit { 0.0 } else { f.tokens_per_s },
                class,
                if f.slow { " + slow" } else { "" },
                if f.recommended { "  ← recommended" } else { "" }
            ));
        }
        out.push_str("\n~ marks figures of the newest models that we have not verified against their files.\n");
        out
    }
}

/// Read a GGUF's metadata (bring your own model) into a catalog entry, scored like the others.
pub fn entry_from_gguf(path: &Path) -> Result<Entry, String> {
    let g = llama_cpp_2::gguf::GgufContext::from_file(path).ok_or_else(|| format!("{} is not a readable GGUF file", path.display()))?;
    let s = |k: &str| {
        let i = g.find_key(k);
        (i >= 0).then(|| g.val_str(i).map(str::to_string)).flatten()
    };
    let u = |k: &str| {
        let i = g.find_key(k);
        (i >= 0).then(|| g.val_u32(i))
    };
    let arch = s("general.architecture").ok_or("no general.architecture in the file")?;
    let n_layer = u(&format!("{arch}.block_count")).ok_or("no block_count in the file")?;
    let heads = u(&format!("{arch}.attention.head_count")).unwrap_or(1).max(1);
    let kv_heads = u(&format!("{arch}.attention.head_count_kv")).unwrap_or(heads);
    let embd = u(&format!("{arch}.embedding_length")).unwrap_or(0);
    let head_dim = u(&format!("{arch}.attention.key_length")).unwrap_or(embd / heads);
    let size = std::fs::metadata(path).map(|m| m.len() as f64).unwrap_or(0.0);
    let name = s("general.name").unwrap_or_else(|| path.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_default());
    let experts = u(&format!("{arch}.expert_count"));
    let used = u(&format!("{arch}.expert_used_count"));
    // Parameter count from the file size at ~4.5 bits a weight when the file does not say.
    let params_b = size * 8.0 / 4.5 / GB;
    let active_b = match (experts, used) {
        (Some(e), Some(u)) if e > 0 => Some(params_b * u as f64 / e as f64),
        _ => None,
    };
    Ok(Entry {
        name,
        role: Role::Code,
        params_b,
        active_b,
        n_layer,
        n_kv_heads: kv_heads,
        head_dim,
        quant: format!("file type {}", u("general.file_type").map(|t| t.to_string()).unwrap_or_else(|| "?".into())),
        file_gb: size / GB,
        fim: s("tokenizer.ggml.fim_pre_token_id").is_some() || u("tokenizer.ggml.fim_pre_token_id").is_some(),
        approx: true,
        path: Some(path.to_path_buf()),
    })
}

/// `$LOKAL_CONFIG_DIR/models.txt` or `~/.config/lokal/models.txt`: paths of models the user added, one a line.
pub fn registry_path() -> PathBuf {
    std::env::var_os("LOKAL_CONFIG_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::config::xdg_dir("XDG_CONFIG_HOME", ".config").join("lokal"))
        .join("models.txt")
}

pub fn add_model(registry: &Path, model: &Path) -> Result<Entry, String> {
    let model = model.canonicalize().map_err(|e| format!("{}: {e}", model.display()))?;
    let entry = entry_from_gguf(&model)?;
    let mut lines: Vec<String> = std::fs::read_to_string(registry).unwrap_or_default().lines().map(str::to_string).collect();
    let p = model.display().to_string();
    if !lines.contains(&p) {
        lines.push(p);
    }
    if let Some(d) = registry.parent() {
        std::fs::create_dir_all(d).map_err(|e| e.to_string())?;
    }
    std::fs::write(registry, lines.join("\n") + "\n").map_err(|e| e.to_string())?;
    Ok(entry)
}

/// User-added models whose files are still on disk (whatever the catalog says now).
pub fn user_models(registry: &Path) -> Vec<Entry> {
    std::fs::read_to_string(registry)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter_map(|l| entry_from_gguf(Path::new(l.trim())).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::hardware::{Gpu, Hardware};
    use super::*;

    fn cpu_box() -> Hardware {
        Hardware { cores: 2, ram_gb: 24.0, ram_available_gb: 22.0, ram_bandwidth_gbs: 40.0, gpu: None, unified: false }
    }
    fn h100() -> Hardware {
        Hardware { gpu: Some(Gpu { name: "NVIDIA H100".into(), memory_gb: 80.0, bandwidth_gbs: 3350.0 }), ram_gb: 128.0, cores: 16, ..cpu_box() }
    }
    fn mac_studio() -> Hardware {
        Hardware { gpu: Some(Gpu { name: "Apple M3 Ultra".into(), memory_gb: 512.0, bandwidth_gbs: 800.0 }), ram_gb: 512.0, unified: true, ..cpu_box() }
    }
    const CFG: FitConfig = FitConfig { ctx_per_sequence: 2048, sequences: 8 };

    fn find<'a>(r: &'a ModelsReport, name: &str, quant: &str) -> &'a Fit {
        r.models.iter().find(|f| f.entry.name.starts_with(name) && f.entry.quant == quant).unwrap()
    }

    #[test]
    fn fits_on_a_24_gb_cpu_box() {
        let r = models_report(&cpu_box(), &CFG, vec![]);
        assert_eq!(find(&r, "Gemma 3 270M", "Q4_K_M").class, Class::Great);
        assert_eq!(find(&r, "Qwen2.5-Coder 7B", "Q4_K_M").class, Class::Great);
        assert_ne!(find(&r, "Qwen2.5-Coder 32B", "Q4_K_M").class, Class::Great);
        assert_eq!(find(&r, "Kimi K2.5", "Q4_K_M").class, Class::WontFit);
        assert!(r.models.iter().all(|f| f.gpu_layers == 0));
        let rec: Vec<&Fit> = r.models.iter().filter(|f| f.recommended).collect();
        assert_eq!(rec.len(), 1);
        assert_eq!(rec[0].class, Class::Great);
    }

    #[test]
    fn gpu_layers_are_honest() {
        let r = models_report(&h100(), &CFG, vec![]);
        let q32 = find(&r, "Qwen2.5-Coder 32B", "Q4_K_M");
        assert_eq!((q32.gpu_layers, q32.slow), (64, false));
        let big = find(&r, "Qwen3.5-397B-A17B", "FP8");
        assert!(big.gpu_layers < big.entry.n_layer && big.slow, "{big:?}");
        assert_eq!(big.class, Class::WontFit);
        assert!(r.models.iter().all(|f| f.gpu_layers <= f.entry.n_layer));
    }

    #[test]
    fn frontier_4bit_fits_a_512_gb_mac_studio() {
        let r = models_report(&mac_studio(), &CFG, vec![]);
        assert_eq!(find(&r, "Qwen3.5-397B-A17B", "Q4_K_M").class, Class::Great);
        assert_eq!(find(&r, "Kimi K2.5", "FP8").class, Class::WontFit);
        assert!(r.render_text().contains("← recommended"));
    }

    #[test]
    fn bring_your_own_gguf() {
        let p = crate::config::EngineConfig::default().resolved_model_path();
        if !p.exists() {
            eprintln!("SKIPPED: no model at {}", p.display());
            return;
        }
        let e = entry_from_gguf(&p).unwrap();
        assert_eq!((e.n_layer, e.n_kv_heads, e.head_dim), (18, 1, 256));
        let dir = std::env::temp_dir().join(format!("lokal-reg-{}", std::process::id()));
        let reg = dir.join("models.txt");
        add_model(&reg, &p).unwrap();
        add_model(&reg, &p).unwrap();
        assert_eq!(user_models(&reg).len(), 1, "added once, listed while the file exists");
        assert!(entry_from_gguf(Path::new("/nonexistent.gguf")).is_err());
        let _ = std::fs::remove_dir_all(dir);
    }
}
