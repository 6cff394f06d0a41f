//! The model catalog and how each model fits this machine (`lokal models`), bring-your-own GGUF files,
//! and the set-up checks of `lokal doctor`.
//!
//! Entry points for the server:
//!
//! * [`hardware::detect`]`() -> Hardware`: memory, cores, GPUs and bandwidths of this machine.
//! * [`models_report`]`(&hw, &cfg) -> ModelsReport`: the curated catalog plus the user's registered files,
//!   each scored against `hw` at the context `cfg` (`ctxPerSequence` × `sequences`): memory needed, where
//!   its layers run ("GPU 64/64 layers" / "CPU"), estimated tokens/s, great / tight / won't fit, "+ slow"
//!   when layers run on the CPU beside a GPU, one recommendation. `.render_text()` for the table;
//!   it is `Serialize` for `--json` (also `.to_json()`). [`models_report_for`] scores a given list.
//! * [`add_model`]`(path) -> Result<Entry, String>`: read a GGUF's header and register the file in
//!   `models.toml` under the config directory ([`registry::config_dir`]: `$LOKAL_CONFIG_DIR`, else
//!   `$XDG_CONFIG_HOME/lokal`, else `~/.config/lokal`). [`list`] / [`resolve`] give what can be selected.
//! * [`doctor::run`]`(&DoctorInput) -> Vec<Finding>` and [`doctor::render`]: model file, backend compiled in,
//!   GPU seen, memory headroom, tier files, each with what to fix.
//!
//! * [`measured`]: `lokal eval`'s summaries per model file; `lokal models` shows them and lets them
//!   decide the recommendation between models that both fit ([`fit::recommend`]).
//! * [`pull::pull`]: download a catalog model (pinned in [`hub`]) or an `hf://` file, sha256-checked;
//!   [`choice`]: `lokal models use` (`config.toml`) and the order that picks the model file.
//!
//! Modules: [`entries`] (the curated table), [`hardware`], [`fit`] (the memory/speed model, documented
//! there), [`gguf_meta`] (a GGUF header reader in plain Rust), [`registry`] (user-added files),
//! [`render`], [`doctor`]. Nothing here loads a model or touches llama.cpp.
pub mod choice;
pub mod doctor;
pub mod entries;
pub mod fit;
pub mod gguf_meta;
pub mod hardware;
pub mod hub;
pub mod measured;
pub mod pull;
pub mod registry;
pub mod render;

pub use entries::{curated, Entry, Role, Source};
pub use fit::{Class, Fit, FitConfig, RunsOn};
pub use gguf_meta::entry_from_gguf;
pub use hardware::Hardware;
pub use registry::Registry;

use serde::Serialize;
use std::path::Path;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelsReport {
    pub hardware: Hardware,
    pub config: FitConfig,
    pub models: Vec<Fit>,
    /// Id of the recommended entry.
    pub recommended: Option<String>,
    pub notes: Vec<String>,
}

/// Score the catalog and the user's registered files against `hw` (see the module docs), with the
/// measurements `lokal eval` stored ([`measured::dir`]).
pub fn models_report(hw: &Hardware, cfg: &FitConfig) -> ModelsReport {
    models_report_measured(hw, cfg, Registry::default_location().list(), &measured::load_all(&measured::dir()))
}

/// Score the given entries against `hw`, without measurements.
pub fn models_report_for(hw: &Hardware, cfg: &FitConfig, entries: Vec<Entry>) -> ModelsReport {
    models_report_measured(hw, cfg, entries, &[])
}

/// Score the given entries against `hw`; each entry gets the latest of `results` about its file.
pub fn models_report_measured(
    hw: &Hardware,
    cfg: &FitConfig,
    entries: Vec<Entry>,
    results: &[measured::Measured],
) -> ModelsReport {
    let mut models: Vec<Fit> = entries.iter().map(|e| fit::fit(e, hw, cfg)).collect();
    for f in &mut models {
        f.measured = results.iter().filter(|m| m.is_for(&f.entry)).max_by(|a, b| a.date.cmp(&b.date)).cloned();
    }
    let catalog_pick = fit::ranked(&models).first().copied();
    let rec = fit::recommend(&mut models);
    let recommended = rec.map(|i| models[i].entry.id.clone());
    let mut notes = Vec::new();
    if let Some(m) = rec.and_then(|i| models[i].measured.as_ref()) {
        let mut why = format!("recommended by measurement: {}", m.describe());
        if let Some(c) = catalog_pick.filter(|&c| Some(c) != rec) {
            why.push_str(&format!(" (ahead of {}, which the catalog ranks first", models[c].entry.name));
            match &models[c].measured {
                Some(o) => why.push_str(&format!(": {})", o.describe())),
                None => why.push(')'),
            }
        }
        notes.push(why + ".");
    }
    if models.iter().any(|f| f.entry.approx) {
        notes.push(
            "~ marks figures of 2026 releases not verified against their files (sizes within a few percent).".into(),
        );
    }
    notes.push(format!(
        "needs = weights + KV cache + working buffers; great fit <= {:.0}% of the memory it runs in, tight <= {:.0}%; tok/s from memory bandwidth ({:.0}% of peak on the CPU, {:.0}% on a GPU): an estimate, not a measurement.",
        fit::GREAT * 100.0,
        fit::TIGHT * 100.0,
        fit::CPU_EFFICIENCY * 100.0,
        fit::GPU_EFFICIENCY * 100.0
    ));
    if models.iter().any(|f| f.entry.quant == "FP8") {
        notes.push("FP8 rows are for GPU servers (vLLM / SGLang) used as an on-premises engine (`remote`); llama.cpp runs the GGUF rows.".into());
    }
    if hw.unified && models.iter().any(|f| f.class == fit::Class::Tight) {
        notes.push("macOS lets the GPU wire about 75% of memory by default: tight fits need `sudo sysctl iogpu.wired_limit_mb=<MB>`.".into());
    }
    if recommended.is_none() {
        notes.push(format!(
            "no recommendation: no model fits with room to spare and generates {:.0}+ tokens/s here.",
            fit::MIN_TOKENS_PER_S
        ));
    }
    ModelsReport { hardware: hw.clone(), config: *cfg, models, recommended, notes }
}

/// Register a GGUF file of the user's (see [`registry`]).
pub fn add_model(path: &Path) -> Result<Entry, String> {
    Registry::default_location().add(path)
}

/// The catalog plus the user's files that exist.
pub fn list() -> Vec<Entry> {
    Registry::default_location().list()
}

/// An entry on disk by id, name or path.
pub fn resolve(what: &str) -> Option<Entry> {
    Registry::default_location().resolve(what)
}

/// Where the user registry lives (`models.toml` under [`registry::config_dir`]).
pub fn registry_path() -> std::path::PathBuf {
    Registry::default_location().file()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_for_hand_built_machines() {
        let cfg = FitConfig::default();
        let r = models_report_for(&Hardware::apple("Apple M3 Ultra", 512.0), &cfg, curated());
        let text = r.render_text();
        assert!(text.contains("<- recommended"), "{text}");
        assert!(text.contains("GPU 60/60 (unified)"), "{text}");
        assert!(text.contains("~397B/17B"), "{text}");
        assert_eq!(r.models.iter().filter(|f| f.recommended).count(), 1);
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["models"].as_array().unwrap().len(), curated().len());
        assert!(json["models"][0]["entry"]["nLayers"].is_number());
        assert_eq!(json["recommended"], serde_json::Value::String(r.recommended.clone().unwrap()));
        assert!(json["models"].as_array().unwrap().iter().any(|m| m["class"] == "wont-fit"));

        let r = models_report_for(&Hardware::cpu_only(1, 2.0, 2.0), &cfg, curated());
        assert!(r.recommended.is_none() && r.render_text().contains("no recommendation"));
    }

    #[test]
    fn measured_results_show_on_their_entry_and_explain_the_recommendation() {
        let cfg = FitConfig::default();
        let hw = Hardware::cpu_only(8, 24.0, 80.0);
        let plain = models_report_for(&hw, &cfg, curated());
        let pick = plain.models.iter().find(|f| f.recommended).unwrap().entry.clone();
        let other = fit::ranked(&plain.models).into_iter().map(|i| &plain.models[i].entry).nth(1).unwrap().clone();
        let score = |exact| measured::ClassScore {
            class: "line".into(),
            cases: 10,
            exact,
            similarity: exact as f64 / 10.0,
            ttft_p50_ms: 30.0,
            latency_p50_ms: 60.0,
        };
        let result = |e: &Entry, exact| measured::Measured {
            // Matched by file name whatever its case on disk.
            model_file: e.file_name.clone().unwrap().to_uppercase(),
            model_bytes: e.file_bytes,
            model_mtime: 0,
            repo: "/src/app".into(),
            date: "2026-11-30".into(),
            seed: 7,
            with_context: vec![score(exact)],
            without_context: vec![score(1)],
        };
        let r = models_report_measured(&hw, &cfg, curated(), &[result(&pick, 2), result(&other, 6)]);
        assert_eq!(r.recommended.as_deref(), Some(other.id.as_str()));
        let text = r.render_text();
        assert!(
            text.contains(
                "measured: 6/10 exact with context (1/10 without), similarity 0.60, lokal eval on /src/app 2026-11-30"
            ),
            "{text}"
        );
        assert!(text.contains(&format!("ahead of {}", pick.name)), "{text}");
        assert_eq!(r.models.iter().filter(|f| f.measured.is_some()).count(), 2);
        let json = r.to_json();
        assert_eq!(json["models"].as_array().unwrap().iter().filter(|m| m["measured"].is_object()).count(), 2);
        // Without results the report is what it was.
        assert_eq!(models_report_measured(&hw, &cfg, curated(), &[]).recommended, plain.recommended);
    }

    #[test]
    fn the_h100_device_machine() {
        let r = models_report_for(&hardware::tests::h100_device(), &FitConfig::default(), curated());
        println!("{}", r.render_text());
        let q32 = r.models.iter().find(|f| f.entry.id == "qwen2.5-coder-32b-q4_k_m").unwrap();
        assert_eq!((q32.runs_on, q32.gpu_layers, q32.class), (RunsOn::Gpu, 64, Class::Great));
        let big = r.models.iter().find(|f| f.entry.id == "qwen3.5-397b-a17b-q4_k_m").unwrap();
        assert_eq!(big.class, Class::WontFit);
        assert!(big.gpu_layers < 60);
    }

    /// `cargo test --release -p lokal-engine catalog::tests::this_machine -- --nocapture` prints the table
    /// this machine gets.
    #[test]
    fn this_machine() {
        let hw = hardware::detect();
        let r = models_report(&hw, &FitConfig::default());
        println!("{}", r.render_text());
        assert!(r.models.len() >= curated().len());
        assert!(r.models.iter().all(|f| f.gpu_layers <= f.entry.n_layers));
    }
}
