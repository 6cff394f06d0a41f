//! The `lokal` language server: a thin LSP layer over `lokal-engine`; the CLI around it is
//! `main.rs` (benchmarks and the demo live in `lokal-bench`).
pub mod actions;
pub mod backend;
mod cloud_impl;
pub mod configure;
mod consent;
pub mod context_hooks;
pub mod conv;
pub mod daemon;
pub mod documents;
mod documents_tree;
pub mod ext;
pub mod frames;
pub mod framing;
pub mod lifecycle;
pub mod lsp;
mod plan;
#[cfg(test)]
mod props;
pub mod proxy;
pub mod settings;
pub mod team;
pub mod tiers;
mod verified;
pub mod work;

pub use ext::COMMANDS;
