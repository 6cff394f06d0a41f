//! The `lokal` language server: a thin LSP layer over `lokal-engine`, plus the CLI around it.
pub mod actions;
pub mod bench;
pub mod client;
pub mod daemon;
pub mod demo;
pub mod documents;
pub mod frames;
pub mod framing;
pub mod lifecycle;
pub mod lsp;
pub mod peer;
#[cfg(test)]
mod props;
pub mod proxy;
pub mod tiers;
pub mod trace;
pub mod work;

/// Every command the server executes (`workspace/executeCommand`).
pub const COMMANDS: &[&str] = &[
    tiers::CLOUD_DESIGN,
    tiers::PREVIEW_CLOUD,
    actions::IMPLEMENT_FROM_DESIGN_DOC,
    actions::REWRITE,
];
