//! The `lokal` language server: a thin LSP layer over `lokal-engine`, plus the CLI around it.
pub mod bench;
pub mod client;
pub mod daemon;
pub mod demo;
pub mod documents;
pub mod framing;
pub mod lsp;
pub mod proxy;
pub mod trace;
pub mod work;
