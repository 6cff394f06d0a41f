//! Tools that drive the real `lokal` binary over LSP: a small client, edit-trace replay, `lokal bench`
//! (with a llama-server peer), `lokal demo`, and the support the end-to-end tests share.
pub mod bench;
pub mod cases;
pub mod client;
pub mod complete;
pub mod demo;
pub mod eval;
pub mod peer;
pub mod sched_bench;
pub mod testing;
pub mod trace;
