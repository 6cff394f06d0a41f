//! Conversions between the protocol and what the server and engine work with, in one place (as
//! rust-analyzer's `from_proto`/`to_proto`): URIs and paths, document keys, ranges and byte offsets, errors.
use crate::documents::{Document, Encoding};
use lokal_engine::EngineError;
use std::ops::Range as Bytes;
use std::path::{Path, PathBuf};
use tower_lsp_server::jsonrpc::{Error, ErrorCode};
use tower_lsp_server::ls_types::{Range, Uri};

/// Protocol to server.
pub mod from_proto {
    use super::*;

    pub fn path(uri: &Uri) -> Option<PathBuf> {
        uri.to_file_path().map(|p| p.into_owned())
    }

    /// Byte offsets of a range in the document, start before end whichever way the client sent them.
    pub fn byte_range(doc: &Document, r: Range, enc: Encoding) -> Result<Bytes<usize>, Error> {
        let s = doc.char_at(r.start, enc).map_err(|e| invalid_params(e.0))?;
        let e = doc.char_at(r.end, enc).map_err(|e| invalid_params(e.0))?;
        Ok(doc.rope.char_to_byte(s.min(e))..doc.rope.char_to_byte(s.max(e)))
    }
}

/// Server to protocol.
pub mod to_proto {
    use super::*;

    pub fn uri(p: &Path) -> Option<Uri> {
        Uri::from_file_path(p)
    }

    /// A byte range of the document as a protocol range; offsets past the end are clamped to it.
    pub fn range(doc: &Document, r: Bytes<usize>, enc: Encoding) -> Range {
        let c = |x: usize| doc.rope.byte_to_char(x.min(doc.rope.len_bytes()));
        Range::new(doc.position_of(c(r.start), enc), doc.position_of(c(r.end), enc))
    }

    /// Length of `word` in the client's position units.
    pub fn units(word: &str, enc: Encoding) -> u32 {
        match enc {
            Encoding::Utf8 => word.len() as u32,
            Encoding::Utf16 => word.encode_utf16().count() as u32,
        }
    }

    /// The error a request answers with when the engine could not carry it out.
    pub fn engine_error(e: EngineError) -> Error {
        match e {
            // A superseded request reaches us as Cancelled too: the editor asked again, and that answer counts.
            EngineError::Cancelled => Error::request_cancelled(),
            other => request_failed(format!("lokal: {other}")),
        }
    }
}

/// The engine's key for a session's document: sessions sharing a daemon never see each other's documents,
/// caches or remote engines.
pub fn doc_key(session: &str, uri: &Uri) -> String {
    format!("{session}{}", uri.as_str())
}

pub fn request_failed(msg: impl Into<String>) -> Error {
    // -32803 is LSP's RequestFailed: the request was valid but could not be carried out.
    Error { code: ErrorCode::ServerError(-32803), message: msg.into().into(), data: None }
}

pub fn invalid_params(msg: impl Into<String>) -> Error {
    Error { code: ErrorCode::InvalidParams, message: msg.into().into(), data: None }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower_lsp_server::ls_types::Position;

    #[test]
    fn ranges_round_trip_through_bytes_in_both_encodings() {
        // "é" is 2 bytes, 1 UTF-16 unit; "𝄞" is 4 bytes, 2 UTF-16 units.
        let doc = Document::new("aé𝄞b\nxyz\n", 1, "rust".into());
        let r16 = Range::new(Position::new(0, 2), Position::new(1, 1));
        let bytes = from_proto::byte_range(&doc, r16, Encoding::Utf16).unwrap();
        assert_eq!(bytes, 3..10);
        assert_eq!(to_proto::range(&doc, bytes.clone(), Encoding::Utf16), r16);
        assert_eq!(to_proto::range(&doc, bytes, Encoding::Utf8), Range::new(Position::new(0, 3), Position::new(1, 1)));
        // A reversed range means the same bytes; a position past the end is the client's error.
        let reversed = Range::new(r16.end, r16.start);
        assert_eq!(from_proto::byte_range(&doc, reversed, Encoding::Utf16).unwrap(), 3..10);
        let e = from_proto::byte_range(&doc, Range::new(Position::new(7, 0), Position::new(7, 0)), Encoding::Utf16)
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidParams);
        assert_eq!(to_proto::units("é𝄞", Encoding::Utf16), 3);
        assert_eq!(to_proto::units("é𝄞", Encoding::Utf8), 6);
    }

    #[test]
    fn a_cancelled_engine_request_is_a_cancelled_request_and_other_failures_say_why() {
        assert_eq!(to_proto::engine_error(EngineError::Cancelled).code, ErrorCode::RequestCancelled);
        let e = to_proto::engine_error(EngineError::Llama("no KV slot".into()));
        assert_eq!(e.code, ErrorCode::ServerError(-32803));
        assert!(e.message.contains("no KV slot"), "{}", e.message);
    }

    #[test]
    fn document_keys_carry_the_session() {
        let u: Uri = "file:///w/a.rs".parse().unwrap();
        assert_eq!(doc_key("s1:", &u), "s1:file:///w/a.rs");
        assert_ne!(doc_key("s1:", &u), doc_key("s2:", &u));
    }
}
