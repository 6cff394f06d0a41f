//! lokal's analysis core: everything that is not the LSP protocol. See ARCHITECTURE.md.
pub mod cancel;
pub mod catalog;
pub mod config;
pub mod engine;
pub mod error;
pub mod fim;
pub mod model_info;
pub mod policy;
pub mod postprocess;
pub mod prefix_cache;
pub mod remote;
pub mod stats;
pub mod syntax;
pub mod verify;
pub mod window;
mod worker;

pub use cancel::{CancelOnDrop, CancelToken};
pub use config::EngineConfig;
pub use engine::Engine;
pub use error::EngineError;
pub use worker::{gpu_offload_supported, inspect, Completion, CompletionRequest, EngineEvent, EngineState, GenerateRequest, Generation, Timings};
