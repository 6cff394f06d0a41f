//! lokal's analysis core: everything that is not the LSP protocol. See ARCHITECTURE.md.
mod abort;
pub mod actions;
mod api;
pub mod cancel;
pub mod catalog;
pub mod config;
pub mod context;
pub mod engine;
pub mod error;
pub mod fim;
mod gen;
mod llama_kv;
mod loader;
pub mod model_info;
pub mod names;
pub mod policy;
pub mod postprocess;
pub mod prefix_cache;
pub mod remote;
pub mod remote_llama;
pub mod retok;
pub mod rng;
mod sampling;
pub mod sched;
pub mod settings;
pub mod speculate;
pub mod stats;
pub mod syntax;
pub mod verify;
pub mod window;
mod worker;

pub use api::{
    Completion, CompletionRequest, ContextBlock, EngineEvent, EngineState, GenerateRequest, Generation, Timings,
};
pub use cancel::{CancelOnDrop, CancelToken};
pub use config::EngineConfig;
pub use engine::{stop_all, Engine};
pub use error::EngineError;
pub use loader::{gpu_offload_supported, inspect};
pub use sched::Priority;
