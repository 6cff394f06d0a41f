//! Loading and inspecting a model: the llama.cpp backend, the GGUF checks (the header is read once, with
//! [`crate::catalog::gguf_meta`]), the GPU layers to offload, and what the vocabulary says about the
//! prompt format (FIM tokens, the family's end-of-fill tokens).
use crate::api::EngineEvent;
use crate::catalog::gguf_meta::{self, GgufHeader};
use crate::config::EngineConfig;
use crate::fim::{self, PromptFormat};
use crate::model_info::{FimTokens, ModelInfo, SpecialToken, Token};
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::token::LlamaToken;
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

pub(crate) fn backend() -> Result<&'static LlamaBackend, String> {
    static BACKEND: OnceLock<Result<LlamaBackend, String>> = OnceLock::new();
    BACKEND
        .get_or_init(|| {
            // llama.cpp logs go to tracing (stderr or a file), never stdout, which is the LSP channel.
            llama_cpp_2::send_logs_to_tracing(llama_cpp_2::LogOptions::default());
            LlamaBackend::init().map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// Whether this build of llama.cpp can offload layers to a GPU (CUDA, Metal, Vulkan).
pub fn gpu_offload_supported() -> bool {
    // Asked at run time, not from our cargo features: with the `dynamic-link` build the GPU backend comes
    // from the llama.cpp libraries found at run time.
    backend().map(|b| b.supports_gpu_offload()).unwrap_or(false)
}

/// Layers to offload: what the settings ask, never more than exist, none without a GPU backend.
/// llama.cpp counts the output layer as one more offloadable layer. A model whose header does not say how
/// many layers it has stays on the CPU rather than guessing.
fn gpu_layers(requested: Option<u32>, n_layer: Option<u32>) -> u32 {
    if !gpu_offload_supported() {
        return 0;
    }
    let max_layers = n_layer.map(|n| n + 1).unwrap_or(0);
    requested.unwrap_or(max_layers).min(max_layers)
}

fn header_layers(h: &GgufHeader) -> Option<u32> {
    h.arch_u64("block_count").and_then(|n| u32::try_from(n).ok())
}

/// A loaded model and the layers it was given on the GPU.
pub(crate) struct Loaded {
    pub model: LlamaModel,
    pub gpu_layers: u32,
}

pub(crate) fn load(cfg: &EngineConfig, events: &Arc<dyn Fn(EngineEvent) + Send + Sync>) -> Result<Loaded, String> {
    cfg.validate()?;
    let path = cfg.resolved_model_path();
    events(EngineEvent::Loading { path: path.display().to_string() });
    let header = check_gguf(&path)?;
    let backend = backend()?;
    let layers = gpu_layers(cfg.gpu_layers, header_layers(&header));
    let ev = events.clone();
    let params = LlamaModelParams::default().with_n_gpu_layers(layers).with_progress_callback(move |p| {
        ev(EngineEvent::Progress(p));
        true
    });
    let started = Instant::now();
    let model = LlamaModel::load_from_file(backend, &path, &params)
        .map_err(|e| format!("llama.cpp could not load {}: {e}", path.display()))?;
    tracing::info!(path = %path.display(), ms = started.elapsed().as_millis() as u64, gpu_layers = layers, "model loaded");
    Ok(Loaded { model, gpu_layers: layers })
}

/// Fail early with a readable message instead of letting llama.cpp print to stderr and return null. The file
/// is opened once; its header also gives the layer count.
fn check_gguf(path: &Path) -> Result<GgufHeader, String> {
    let f = std::fs::File::open(path).map_err(|e| {
        format!(
            "model file {}: {e}. Fetch the default model with scripts/fetch-model.sh or set lokal.modelPath",
            path.display()
        )
    })?;
    let len = f.metadata().map(|m| m.len()).map_err(|e| format!("model file {}: {e}", path.display()))?;
    let h = gguf_meta::parse(std::io::BufReader::with_capacity(1 << 16, f)).map_err(|e| {
        if e.starts_with("not a GGUF file") {
            format!("model file {} is {e}", path.display())
        } else {
            format!("model file {} is a corrupt or truncated GGUF file ({e})", path.display())
        }
    })?;
    // ggml reads up to the data section; a file that ends before it is cut inside its header.
    if len < h.data_offset {
        return Err(format!(
            "model file {} is a corrupt or truncated GGUF file ({len} bytes, its data section starts at {})",
            path.display(),
            h.data_offset
        ));
    }
    // ggml reads only the header; a file cut inside its tensor data (an interrupted download) passes that,
    // and llama.cpp's loader then fails with no message we can show.
    if len < h.data_end() {
        return Err(format!(
            "model file is truncated: {len} bytes, expected at least {} ({}; download it again)",
            h.data_end(),
            path.display()
        ));
    }
    Ok(h)
}

/// Read a GGUF's metadata and vocabulary (no weights) and report what the engine would make of it: the
/// model catalog and the template tests use this.
pub fn inspect(path: &Path) -> Result<(ModelInfo, PromptFormat), String> {
    let header = check_gguf(path)?;
    let backend = backend()?;
    let params = LlamaModelParams::default().with_vocab_only(true);
    let model = LlamaModel::load_from_file(backend, path, &params)
        .map_err(|e| format!("llama.cpp could not read {}: {e}", path.display()))?;
    let cfg = EngineConfig { model_path: Some(path.to_path_buf()), ..Default::default() };
    let info = model_info(&model, &cfg, gpu_layers(cfg.gpu_layers, header_layers(&header)));
    let format = prompt_format(&model, &info);
    Ok((info, format))
}

/// The ids of the vocabulary's tokens whose text is one of `texts`, in one pass over the vocabulary.
fn tokens_by_text(model: &LlamaModel, texts: &[&'static str]) -> HashMap<&'static str, Token> {
    let v = model.vocab();
    let mut found = HashMap::new();
    for t in v.tokens() {
        let Some(text) = v.text(t) else { continue };
        let Ok(text) = text.to_str() else { continue };
        if let Some(&known) = texts.iter().find(|k| **k == text) {
            found.entry(known).or_insert(t.0);
        }
    }
    found
}

/// The template for the model's family, with the family's end-of-fill tokens that its vocabulary has.
pub(crate) fn prompt_format(model: &LlamaModel, info: &ModelInfo) -> PromptFormat {
    let format = PromptFormat::detect(info);
    let Some(family) = format.family() else { return format };
    let found = tokens_by_text(model, family.stop_texts());
    format.with_family_stops(|text| found.get(text).copied())
}

fn special(model: &LlamaModel, t: LlamaToken) -> Option<SpecialToken> {
    if t.0 < 0 {
        return None;
    }
    let text = String::from_utf8_lossy(&model.vocab().token_to_piece(t, true, None)).into_owned();
    Some(SpecialToken { id: t.0, text })
}

/// The FIM tokens llama.cpp reports (from id keys, or found by texts it knows), else a known family's set
/// found by text (Codestral's `[PREFIX]`/`[SUFFIX]`/`[MIDDLE]` are not in llama.cpp's list).
fn fim_tokens(model: &LlamaModel) -> FimTokens {
    let v = model.vocab();
    let mut fim = FimTokens {
        pre: special(model, v.fim_pre()),
        suf: special(model, v.fim_suf()),
        mid: special(model, v.fim_mid()),
        pad: special(model, v.fim_pad()),
        rep: special(model, v.fim_rep()),
        sep: special(model, v.fim_sep()),
    };
    if !fim.is_complete() {
        let texts: Vec<&'static str> = fim::FIM_TOKEN_TEXTS.iter().flatten().copied().collect();
        let found = tokens_by_text(model, &texts);
        fim::fill_fim_by_text(&mut fim, |text| found.get(text).copied());
    }
    fim
}

pub(crate) fn model_info(model: &LlamaModel, cfg: &EngineConfig, gpu_layers: u32) -> ModelInfo {
    let v = model.vocab();
    let arch = model.meta_val_str("general.architecture").unwrap_or_default();
    ModelInfo {
        path: cfg.resolved_model_path().display().to_string(),
        name: model.meta_val_str("general.name").ok(),
        sliding_window: model
            .meta_val_str(&format!("{arch}.attention.sliding_window"))
            .ok()
            .and_then(|s| s.parse().ok()),
        architecture: arch,
        n_layer: model.n_layer(),
        n_ctx_train: model.n_ctx_train(),
        n_params: model.n_params(),
        size_bytes: model.size(),
        n_vocab: model.n_vocab(),
        bos: (v.bos().0 >= 0).then_some(v.bos().0),
        add_bos: v.should_add_bos(),
        fim: fim_tokens(model),
        chat_template: model.chat_template(None).ok().and_then(|t| t.to_string().ok()),
        gpu_layers,
    }
}
