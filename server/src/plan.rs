//! The server half of `lokal.implementFromDesignDoc` and `lokal.previewPlan` (the pipeline is
//! `lokal_engine::actions::implement_plan`): it hands the engine the document, the workspace and the
//! editor's unsaved texts, relays each step as `$/progress`, and turns a plan that passed into ONE
//! `WorkspaceEdit` (new files and versioned edits, marked for confirmation where the client can show a
//! preview), or applies nothing and says per file why.
use crate::backend::Backend;
use crate::conv::{from_proto, invalid_params, request_failed, to_proto};
use crate::documents::Document;
use crate::ext::{DesignDocArgs, DesignDocResult, PlanPreview, IMPLEMENT_FROM_DESIGN_DOC};
use crate::verified::{candidate, verifier, workspace_of};
use lokal_engine::actions::{
    implement_plan, PlanError, PlanJob, PlanOutcome, PlanRun, PlannedFile, PLAN_CONTEXT_TOKENS,
};
use lokal_engine::CancelToken;
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use tower_lsp_server::jsonrpc::{Error, Result};
use tower_lsp_server::ls_types::*;

/// The annotation every change of a plan carries: VS Code shows its refactor preview for it.
const ANNOTATION: &str = "lokal.designPlan";

/// `apply`: false for `lokal.previewPlan`, which returns the diff and the verdict instead.
pub async fn run(
    b: &Backend,
    arg: Value,
    token: Option<ProgressToken>,
    cancel: CancelToken,
    apply: bool,
) -> Result<Option<Value>> {
    let DesignDocArgs { uri, section } =
        serde_json::from_value(arg).map_err(|e| invalid_params(format!("{IMPLEMENT_FROM_DESIGN_DOC}: {e}")))?;
    let doc = match b.docs.get(&uri) {
        Some(d) => d.text(),
        None => from_proto::path(&uri)
            .and_then(|p| std::fs::read_to_string(p).ok())
            .ok_or_else(|| invalid_params(format!("cannot read {}", uri.as_str())))?,
    };
    let (workspace, _) = workspace_of(b, &uri)?;
    // The editor's texts of files in this workspace, and the versions an edit of them must match.
    let mut open = HashMap::new();
    let mut versions: HashMap<PathBuf, i32> = HashMap::new();
    for d in b.docs.iter() {
        let Some(rel) = from_proto::path(d.key()).and_then(|p| p.strip_prefix(&workspace).ok().map(Path::to_path_buf))
        else {
            continue;
        };
        open.insert(rel.clone(), d.text());
        versions.insert(rel, d.version);
    }
    let job = PlanJob {
        workspace: workspace.clone(),
        doc,
        section,
        open,
        key: b.key(&uri),
        context_tokens: PLAN_CONTEXT_TOKENS,
    };
    let settings = b.settings_state.lock().unwrap().actions.clone();
    let engine = b.engine()?.clone();
    let title = if apply { "lokal: implementing the design document" } else { "lokal: previewing the design document" };
    let work = b.work.begin(&b.client, title, token, b.can_create_progress(), cancel.clone()).await;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let pipeline = implement_plan(
        verifier(),
        &job,
        &settings,
        &cancel,
        |req| candidate(engine.clone(), req, cancel.clone()),
        move |m| {
            let _ = tx.send(m);
        },
    );
    let steps = (settings.candidates * 4).max(1);
    let drain = async {
        let mut n = 0;
        while let Some(m) = rx.recv().await {
            n += 1;
            work.report((n * 100 / steps).min(99) as u32, m).await;
        }
    };
    let (r, ()) = tokio::join!(pipeline, drain);
    let run = match r {
        Ok(run) => run,
        Err(PlanError::Cancelled) => {
            // A cancelled run applies nothing, not even the files already generated.
            work.finish("cancelled; nothing applied").await;
            return Err(Error::request_cancelled());
        }
        Err(PlanError::Invalid(m)) | Err(PlanError::Failed(m)) => {
            work.finish("failed").await;
            return Err(request_failed(format!("lokal: {m}")));
        }
    };
    if cancel.is_cancelled() {
        work.finish("cancelled; nothing applied").await;
        return Err(Error::request_cancelled());
    }
    if !apply {
        work.finish(run.report.summary.clone()).await;
        return json(&preview(run));
    }
    let files = match &run.outcome {
        PlanOutcome::Passed(files) => files.clone(),
        PlanOutcome::Refused(message) => {
            work.finish("nothing passed; nothing applied").await;
            b.client.show_message(MessageType::WARNING, message.clone()).await;
            return json(&result(&run, false, Some(message.clone())));
        }
    };
    // The user may have typed while the model worked: then the plan was checked against older text.
    for f in files.iter().filter(|f| !f.create) {
        let now = b
            .docs
            .iter()
            .find(|d| from_proto::path(d.key()).is_some_and(|p| p == workspace.join(&f.path)))
            .map(|d| d.version);
        if now != versions.get(&f.path).copied() {
            work.finish("a file changed meanwhile; nothing applied").await;
            let m = format!(
                "lokal: nothing applied: {} changed while the plan was checked; run it again",
                f.path.display()
            );
            b.client.show_message(MessageType::WARNING, m.clone()).await;
            return json(&result(&run, false, Some(m)));
        }
    }
    let edit = plan_edit(&workspace, &files, &versions, b.enc(), b.caps().annotations, &run.report.summary)?;
    work.report(100, "applying").await;
    let applied = match b.client.apply_edit(edit).await {
        Ok(r) if r.applied => Ok(()),
        Ok(r) => Err(format!("the editor did not apply the edit: {}", r.failure_reason.unwrap_or_default())),
        Err(e) => Err(format!("workspace/applyEdit failed: {e}")),
    };
    match applied {
        Ok(()) => {
            work.finish(format!("done: {}", run.report.summary)).await;
            json(&result(&run, true, None))
        }
        Err(m) => {
            work.finish("failed").await;
            Err(request_failed(format!("lokal: {m}")))
        }
    }
}

fn json<T: serde::Serialize>(v: &T) -> Result<Option<Value>> {
    serde_json::to_value(v).map(Some).map_err(|e| request_failed(e.to_string()))
}

fn result(run: &PlanRun, applied: bool, message: Option<String>) -> DesignDocResult {
    DesignDocResult {
        targets: run.targets.clone(),
        applied,
        message,
        files: run.report.files.clone(),
        report: run.report.clone(),
    }
}

fn preview(run: PlanRun) -> PlanPreview {
    let (passed, message) = match &run.outcome {
        PlanOutcome::Passed(_) => (true, None),
        PlanOutcome::Refused(m) => (false, Some(m.clone())),
    };
    PlanPreview {
        targets: run.targets,
        passed,
        message,
        diff: run.diff,
        files: run.report.files.clone(),
        report: run.report,
    }
}

/// The plan as one edit: a created file with its content, or an insertion in an existing one (pinned to
/// the version the plan was checked against when the editor has it open).
pub(crate) fn plan_edit(
    workspace: &Path,
    files: &[PlannedFile],
    versions: &HashMap<PathBuf, i32>,
    enc: crate::documents::Encoding,
    annotate: bool,
    summary: &str,
) -> Result<WorkspaceEdit> {
    let id = annotate.then(|| ANNOTATION.to_string());
    let text_edit = |range: Range, new_text: String| match &id {
        Some(id) => {
            OneOf::Right(AnnotatedTextEdit { text_edit: TextEdit { range, new_text }, annotation_id: id.clone() })
        }
        None => OneOf::Left(TextEdit { range, new_text }),
    };
    let mut ops = Vec::new();
    for f in files {
        let uri = Uri::from_file_path(workspace.join(&f.path))
            .ok_or_else(|| invalid_params(format!("bad target path {}", f.path.display())))?;
        if f.create {
            ops.push(DocumentChangeOperation::Op(ResourceOp::Create(CreateFile {
                uri: uri.clone(),
                options: Some(CreateFileOptions { overwrite: Some(false), ignore_if_exists: Some(false) }),
                annotation_id: id.clone(),
            })));
            ops.push(DocumentChangeOperation::Edit(TextDocumentEdit {
                text_document: OptionalVersionedTextDocumentIdentifier { uri, version: None },
                edits: vec![text_edit(Range::default(), f.text.clone())],
            }));
        } else {
            let (bytes, insert) = f.edit();
            let range = to_proto::range(&Document::new(&f.before, 0, String::new()), bytes, enc);
            ops.push(DocumentChangeOperation::Edit(TextDocumentEdit {
                text_document: OptionalVersionedTextDocumentIdentifier { uri, version: versions.get(&f.path).copied() },
                edits: vec![text_edit(range, insert.to_string())],
            }));
        }
    }
    let annotations = id.map(|id| {
        HashMap::from([(
            id,
            ChangeAnnotation {
                label: "lokal: implement the design document".into(),
                needs_confirmation: Some(true),
                description: Some(summary.to_string()),
            },
        )])
    });
    Ok(WorkspaceEdit {
        changes: None,
        document_changes: Some(DocumentChanges::Operations(ops)),
        change_annotations: annotations,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::documents::Encoding;
    use serde_json::json;

    fn files() -> Vec<PlannedFile> {
        let before = "mod a;\nfn x() {} // é".to_string();
        vec![
            PlannedFile {
                path: "src/initials.rs".into(),
                create: true,
                before: String::new(),
                at: 0,
                insert: "pub fn i() {}\n".into(),
                text: "pub fn i() {}\n".into(),
            },
            PlannedFile {
                path: "src/lib.rs".into(),
                create: false,
                at: before.len(),
                insert: "\n\npub mod initials;\n".into(),
                text: format!("{before}\n\npub mod initials;\n"),
                before,
            },
        ]
    }

    #[test]
    fn a_plan_is_one_edit_creating_new_files_and_pinning_open_ones_with_annotations_when_the_client_has_them() {
        let versions = HashMap::from([(PathBuf::from("src/lib.rs"), 4)]);
        let e = plan_edit(Path::new("/w"), &files(), &versions, Encoding::Utf16, true, "1 plan tried").unwrap();
        let v = serde_json::to_value(&e).unwrap();
        let ops = v["documentChanges"].as_array().unwrap();
        assert_eq!(ops.len(), 3, "{v}");
        assert_eq!(ops[0]["kind"], "create");
        assert_eq!(ops[0]["uri"], "file:///w/src/initials.rs");
        assert_eq!(ops[0]["options"], json!({"overwrite": false, "ignoreIfExists": false}));
        assert_eq!(ops[0]["annotationId"], ANNOTATION);
        assert_eq!(ops[1]["edits"][0]["newText"], "pub fn i() {}\n");
        assert_eq!(ops[1]["edits"][0]["annotationId"], ANNOTATION);
        assert_eq!(ops[2]["textDocument"], json!({"uri": "file:///w/src/lib.rs", "version": 4}));
        // The end of `fn x() {} // é` in UTF-16 units.
        let end = json!({"line": 1, "character": 14});
        assert_eq!(ops[2]["edits"][0]["range"], json!({"start": end, "end": end}));
        assert_eq!(ops[2]["edits"][0]["annotationId"], ANNOTATION);
        let a = &v["changeAnnotations"][ANNOTATION];
        assert_eq!((a["needsConfirmation"].as_bool(), a["description"].as_str()), (Some(true), Some("1 plan tried")));

        // Without the capability: plain edits, a file not open in the editor unversioned, UTF-8 columns.
        let e = plan_edit(Path::new("/w"), &files(), &HashMap::new(), Encoding::Utf8, false, "").unwrap();
        let v = serde_json::to_value(&e).unwrap();
        assert!(!v.to_string().contains("annotationId") && v.get("changeAnnotations").is_none(), "{v}");
        assert_eq!(v["documentChanges"][2]["textDocument"]["version"], Value::Null);
        assert_eq!(v["documentChanges"][2]["edits"][0]["range"]["start"]["character"], 15);
    }
}
