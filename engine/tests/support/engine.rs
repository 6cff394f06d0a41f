//! Engines on the tiny test models: one CPU thread, no GPU, small windows; tests change what they measure.
use lokal_engine::model_info::ModelInfo;
use lokal_engine::{Engine, EngineConfig};
use std::path::Path;
use std::time::Duration;

/// The settings every engine test on a tiny model starts from.
pub fn tiny(path: &Path) -> EngineConfig {
    EngineConfig {
        model_path: Some(path.to_path_buf()),
        sequences: 1,
        ctx_per_sequence: 256,
        prefix_tokens: 128,
        suffix_tokens: 64,
        threads: Some(1),
        gpu_layers: Some(0),
        ..Default::default()
    }
}

/// Start an engine and wait for its model (at most 2 minutes: a hang fails the test); a model that does not
/// load gives its error, the engine shut down.
pub fn start(cfg: EngineConfig) -> Result<(Engine, Box<ModelInfo>), String> {
    let engine = Engine::start(cfg, |_| {});
    let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
    match rt
        .block_on(async { tokio::time::timeout(Duration::from_secs(120), engine.wait_ready()).await })
        .expect("model load hangs")
    {
        Ok(info) => Ok((engine, info)),
        Err(e) => {
            engine.shutdown();
            Err(e.to_string())
        }
    }
}
