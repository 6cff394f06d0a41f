//! Long-running work started by a command (implement from a design doc, a cloud draft, a rewrite):
//! `$/progress` with a cancel button, cancellation from either `window/workDoneProgress/cancel` or
//! `$/cancelRequest`, and the edits it produces as versioned `WorkspaceEdit`s the editor applies.
use dashmap::DashMap;
use lokal_engine::CancelToken;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tower_lsp_server::ls_types::*;
use tower_lsp_server::{Bounded, Cancellable, Client, OngoingProgress};

/// Progress tokens of running work, so a cancel from the progress UI reaches the work.
#[derive(Default, Clone)]
pub struct WorkRegistry {
    running: Arc<DashMap<String, CancelToken>>,
    next: Arc<AtomicU64>,
}

fn key(t: &ProgressToken) -> String {
    match t {
        NumberOrString::Number(n) => n.to_string(),
        NumberOrString::String(s) => s.clone(),
    }
}

pub struct Work {
    pub cancel: CancelToken,
    progress: Option<OngoingProgress<Bounded, Cancellable>>,
    registry: WorkRegistry,
    token: ProgressToken,
}

impl WorkRegistry {
    /// Start reporting progress: on the client's token when the request carried one, else on a token we
    /// create (if the client supports server-initiated progress).
    pub async fn begin(
        &self,
        client: &Client,
        title: &str,
        client_token: Option<ProgressToken>,
        can_create: bool,
        cancel: CancelToken,
    ) -> Work {
        let token = match client_token {
            Some(t) => Some(t),
            None if can_create => {
                let t = NumberOrString::String(format!("lokal/work/{}", self.next.fetch_add(1, Ordering::Relaxed)));
                client.create_work_done_progress(t.clone()).await.ok().map(|_| t)
            }
            None => None,
        };
        let (progress, token) = match token {
            Some(t) => {
                let p = client.progress(t.clone(), title).with_percentage(0).with_cancel_button().begin().await;
                (Some(p), t)
            }
            None => (None, NumberOrString::String(String::new())),
        };
        self.running.insert(key(&token), cancel.clone());
        Work { cancel, progress, registry: self.clone(), token }
    }

    /// `window/workDoneProgress/cancel`.
    pub fn cancel(&self, token: &ProgressToken) {
        if let Some(c) = self.running.get(&key(token)) {
            c.cancel();
        }
    }
}

impl Work {
    pub async fn report(&self, pct: u32, message: impl Into<String>) {
        if let Some(p) = &self.progress {
            p.report_with_message(message, pct.min(100), None).await;
        }
    }

    pub async fn finish(mut self, message: impl Into<String>) {
        if let Some(p) = self.progress.take() {
            p.finish_with_message(message).await;
        }
    }
}

impl Drop for Work {
    fn drop(&mut self) {
        self.registry.running.remove(&key(&self.token));
    }
}

/// An edit of an open document, valid only against the version the work started from: if the user typed
/// meanwhile, the editor refuses it instead of applying it over newer text.
pub fn versioned_edit(uri: Uri, version: i32, edits: Vec<TextEdit>) -> DocumentChangeOperation {
    DocumentChangeOperation::Edit(TextDocumentEdit {
        text_document: OptionalVersionedTextDocumentIdentifier { uri, version: Some(version) },
        edits: edits.into_iter().map(OneOf::Left).collect(),
    })
}

/// A new file with its content (creation fails rather than overwrite an existing one).
pub fn create_file(uri: Uri, content: String) -> Vec<DocumentChangeOperation> {
    vec![
        DocumentChangeOperation::Op(ResourceOp::Create(CreateFile {
            uri: uri.clone(),
            options: Some(CreateFileOptions { overwrite: Some(false), ignore_if_exists: Some(false) }),
            annotation_id: None,
        })),
        DocumentChangeOperation::Edit(TextDocumentEdit {
            text_document: OptionalVersionedTextDocumentIdentifier { uri, version: None },
            edits: vec![OneOf::Left(TextEdit { range: Range::default(), new_text: content })],
        }),
    ]
}

pub fn workspace_edit(ops: Vec<DocumentChangeOperation>) -> WorkspaceEdit {
    WorkspaceEdit { changes: None, document_changes: Some(DocumentChanges::Operations(ops)), change_annotations: None }
}
