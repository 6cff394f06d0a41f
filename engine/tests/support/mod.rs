//! Test support: tiny GGUF models written by the tests themselves (no real model can be downloaded where
//! the tests run). `gguf` writes the file format, `model` the architectures and vocabularies, `families`
//! the code-model families.
#![allow(dead_code)]

pub mod engine;
pub mod families;
pub mod gguf;
pub mod model;
