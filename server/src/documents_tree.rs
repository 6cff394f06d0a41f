//! A document's edits recorded on its tree-sitter tree, kept apart from documents.rs so that the pure text
//! half (ropes, positions, incremental sync) builds without the engine: the fuzz targets include it by path.
use crate::documents::{Document, Encoding};
use lokal_engine::syntax::SyntaxTree;
use tower_lsp_server::ls_types::TextDocumentContentChangeEvent;

impl Document {
    /// Apply a didChange's edits in order and record them on the document's tree. Nothing here grows with
    /// the file's length (rope edits and position lookups are logarithmic), because it runs on every
    /// keystroke before the completion request that follows can be served; the tree is re-parsed only when
    /// read ([`Document::fresh_tree`]).
    pub fn apply_changes(
        &mut self,
        changes: &[TextDocumentContentChangeEvent],
        enc: Encoding,
        mut tree: Option<&mut SyntaxTree>,
    ) {
        // A whole-document replacement leaves nothing of the old tree to reuse: parse it afresh at the end.
        let mut whole = false;
        for ch in changes {
            let span = self.change_span(ch, enc);
            self.apply_change(ch, enc);
            match (tree.as_deref_mut(), span) {
                (Some(t), Some((start, old_end, start_pt, old_end_pt))) if !whole => {
                    let rows = ch.text.matches('\n').count();
                    let last = ch.text.rsplit('\n').next().unwrap_or("").len();
                    let new_end_pt =
                        if rows == 0 { (start_pt.0, start_pt.1 + last) } else { (start_pt.0 + rows, last) };
                    t.edit(start, old_end, start + ch.text.len(), start_pt, old_end_pt, new_end_pt, "");
                }
                (_, None) => whole = true,
                _ => {}
            }
        }
        if let (Some(t), true) = (tree, whole) {
            t.reparse(&self.text());
        }
    }

    /// Bring `tree` up to date with the document, parsing from the rope's chunks (no copy of the text).
    pub fn fresh_tree(&self, tree: &mut SyntaxTree) {
        if !tree.is_stale() {
            return;
        }
        let rope = &self.rope;
        let len = rope.len_bytes();
        tree.reparse_chunks(|at| {
            if at >= len {
                return &[];
            }
            let (chunk, start, _, _) = rope.chunk_at_byte(at);
            &chunk.as_bytes()[at - start..]
        });
    }
}
