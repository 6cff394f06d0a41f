//! The server half of code actions whose edits are checked (`lokal_engine::actions`): it hands the engine
//! the document and the stub's offsets, relays each candidate's step as `$/progress`, and turns the result
//! into a replacement or an error that carries the action's report.
use crate::backend::Backend;
use crate::conv::{from_proto, invalid_params, request_failed};
use lokal_engine::actions::{implement_stub, ActionError, ActionReport, StubJob};
use lokal_engine::syntax::Lang;
use lokal_engine::verify::{Toolbox, Verifier};
use lokal_engine::{CancelOnDrop, CancelToken, Engine, GenerateRequest};
use std::ops::Range;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use tower_lsp_server::jsonrpc::{Error, Result};
use tower_lsp_server::ls_types::{MessageType, Uri};

/// One per process: its baseline cache and the shared cargo target directory serve every session.
pub(crate) fn verifier() -> Arc<Verifier> {
    static V: OnceLock<Arc<Verifier>> = OnceLock::new();
    V.get_or_init(|| Arc::new(Verifier::new(Toolbox::from_env(), Verifier::default_state_dir()))).clone()
}

/// The folder a file is checked in, and its path there: the tier folder holding it, else the workspace
/// root holding it, else its own directory.
pub(crate) fn workspace_of(b: &Backend, uri: &Uri) -> Result<(PathBuf, PathBuf)> {
    let path = from_proto::path(uri).ok_or_else(|| invalid_params("the document is not a file on disk"))?;
    let root = b
        .folder_of(uri)
        .map(|f| f.root)
        .filter(|r| path.starts_with(r))
        .or_else(|| {
            b.roots.read().unwrap().iter().filter(|r| path.starts_with(r)).max_by_key(|r| r.as_os_str().len()).cloned()
        })
        .or_else(|| path.parent().map(|p| p.to_path_buf()))
        .unwrap_or_default();
    let rel = path.strip_prefix(&root).map(|p| p.to_path_buf()).unwrap_or_else(|_| path.clone());
    Ok((root, rel))
}

/// The report as JSON, for the resolved action's data or the error's.
pub(crate) fn report_value(r: &ActionReport) -> serde_json::Value {
    serde_json::to_value(r).unwrap_or_default()
}

/// One candidate from the model for an action's pipeline. It runs on a token of its own, cancelled when
/// this future is dropped: the pipeline drops it when the time budget runs out, and the model thread must
/// stop then, not finish the candidate while the next one waits behind it.
pub(crate) async fn candidate(
    engine: Engine,
    req: GenerateRequest,
    parent: CancelToken,
) -> std::result::Result<String, String> {
    let own = CancelToken::new();
    let _stop = CancelOnDrop(own.clone());
    tokio::select! {
        r = engine.generate(req, own.clone()) => r.map(|g| g.text).map_err(|e| e.to_string()),
        _ = parent.cancelled() => Err("cancelled".to_string()),
    }
}

/// "Implement" on a stub: best-of-N candidates, each checked by the language's own tools; the replacement
/// for `replace` and the report, or an error saying which check refused what.
pub(crate) async fn implement(
    b: &Backend,
    uri: &Uri,
    text: &str,
    lang: Lang,
    replace: Range<usize>,
    item_start: usize,
    cancel: &CancelToken,
) -> Result<(Range<usize>, String, ActionReport)> {
    b.own_rights_needed("\"Implement\" (checked candidates)")?;
    let (workspace, path) = workspace_of(b, uri)?;
    let job = StubJob { workspace, path, text: text.to_string(), lang, replace, item_start, key: b.key(uri) };
    let settings = b.settings_state.lock().unwrap().actions.clone();
    let engine = b.engine()?.clone();
    let work = b
        .work
        .begin(&b.client, "lokal: implementing (checked candidates)", None, b.can_create_progress(), cancel.clone())
        .await;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let run = implement_stub(
        verifier(),
        &job,
        &settings,
        cancel,
        |req| candidate(engine.clone(), req, cancel.clone()),
        move |m| {
            let _ = tx.send(m);
        },
    );
    let steps = (settings.candidates * 3).max(1);
    let drain = async {
        let mut n = 0;
        while let Some(m) = rx.recv().await {
            n += 1;
            work.report((n * 100 / steps).min(99) as u32, m).await;
        }
    };
    let (r, ()) = tokio::join!(run, drain);
    match r {
        Ok(done) => {
            work.finish(done.report.summary.clone()).await;
            Ok((done.range, done.new_text, done.report))
        }
        Err(ActionError::Cancelled) => {
            work.finish("cancelled").await;
            Err(Error::request_cancelled())
        }
        Err(ActionError::Failed(m)) => {
            work.finish("failed").await;
            Err(request_failed(m))
        }
        Err(ActionError::Refused { message, report }) => {
            work.finish("nothing passed").await;
            b.client.show_message(MessageType::WARNING, message.clone()).await;
            let mut e = request_failed(message);
            e.data = Some(report_value(&report));
            Err(e)
        }
    }
}
