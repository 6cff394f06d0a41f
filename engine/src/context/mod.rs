//! Context from the rest of the workspace for completions: a symbol index of the workspace
//! ([`index`], [`tags`]), recently edited ranges and a ring of visited chunks ([`ring`]), and the
//! assembly of the snippets that fit a token budget into one block before the file's prefix
//! ([`assemble`], [`render`]).
pub mod index;
pub mod tags;

pub use index::{IndexLimits, Origin, ScanReport, Skip, SymbolIndex, Watched};
pub use tags::{Import, Tag, TagKind};
