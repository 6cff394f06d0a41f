//! Code actions and commands that run the local model: implement a stub, document an item, fix a
//! diagnostic, write tests, rewrite a selection, implement a design document. Listing reads only the
//! syntax tree (no model work); the model runs in `codeAction/resolve` or in the command. Every result is a
//! versioned `WorkspaceEdit`, and generated code that does not parse is cut back or refused, never
//! inserted broken. Design documents go through `crate::plan` (all or nothing).
use crate::backend::Backend;
use crate::conv::{from_proto, invalid_params, request_failed, to_proto};
use crate::ext::{
    ActionData, ActionTask, DesignDocArgs, RewriteArgs, DEFAULT_REWRITE, IMPLEMENT_FROM_DESIGN_DOC, PREVIEW_PLAN,
    REWRITE,
};
use crate::verified;
use crate::work::{create_file, versioned_edit, workspace_edit};
use lokal_engine::syntax::{
    design_doc, longest_parsing_prefix, longest_prefix_where, no_new_errors, Lang, SyntaxTree, TestPlace,
};
use lokal_engine::{CancelToken, CompletionRequest, GenerateRequest, Priority};
use serde_json::{json, Value};
use std::ops::Range as Bytes;
use tower_lsp_server::jsonrpc::{Error, ErrorCode, Result};
use tower_lsp_server::ls_types::*;

/// A snapshot of an open document for one action.
struct Snap {
    text: String,
    version: i32,
    lang: Option<Lang>,
    language_id: String,
}

fn snap(b: &Backend, uri: &Uri) -> Result<Snap> {
    let d = b.docs.get(uri).ok_or_else(|| invalid_params(format!("document not open: {}", uri.as_str())))?;
    Ok(Snap {
        text: d.text(),
        version: d.version,
        lang: Lang::from_id_or_path(&d.language_id, uri.as_str()),
        language_id: d.language_id.clone(),
    })
}

fn byte_range(b: &Backend, uri: &Uri, r: Range) -> Result<Bytes<usize>> {
    let d = b.docs.get(uri).ok_or_else(|| invalid_params("document not open"))?;
    from_proto::byte_range(&d, r, b.enc())
}

fn lsp_range(b: &Backend, uri: &Uri, r: Bytes<usize>) -> Result<Range> {
    let d = b.docs.get(uri).ok_or_else(|| invalid_params("document not open"))?;
    Ok(to_proto::range(&d, r, b.enc()))
}

fn action(title: String, kind: CodeActionKind, data: &ActionData) -> CodeActionOrCommand {
    CodeActionOrCommand::CodeAction(CodeAction {
        title,
        kind: Some(kind),
        data: serde_json::to_value(data).ok(),
        ..Default::default()
    })
}

pub fn list(b: &Backend, uri: &Uri, range: Range, ctx: &CodeActionContext) -> Vec<CodeActionOrCommand> {
    let Ok(s) = snap(b, uri) else { return vec![] };
    let mut out = Vec::new();
    if s.language_id == "markdown" && design_doc::plan(&s.text, None).is_ok() {
        for (title, kind, command) in [
            ("lokal: implement this design document", "source.lokal.implementDesign", IMPLEMENT_FROM_DESIGN_DOC),
            ("lokal: preview this design document's plan (diff, checked)", "source.lokal.previewPlan", PREVIEW_PLAN),
        ] {
            out.push(CodeActionOrCommand::CodeAction(CodeAction {
                title: title.into(),
                kind: Some(CodeActionKind::new(kind)),
                command: Some(Command {
                    title: title.into(),
                    command: command.into(),
                    arguments: serde_json::to_value(DesignDocArgs { uri: uri.clone(), section: None })
                        .ok()
                        .map(|a| vec![a]),
                }),
                ..Default::default()
            }));
        }
    }
    let Ok(sel) = byte_range(b, uri, range) else { return out };
    let data = |task: ActionTask| ActionData { uri: uri.clone(), version: s.version, task };
    b.refresh_tree(uri);
    if let Some(t) = b.trees.get(uri) {
        let t = t.lock().unwrap();
        for stub in t.stubs(&s.text) {
            if stub.item.range.start <= sel.end && sel.start <= stub.item.range.end {
                out.push(action(
                    format!("lokal: implement `{}`", stub.item.name),
                    CodeActionKind::REFACTOR_REWRITE,
                    &data(ActionTask::Implement {
                        start: stub.replace.start,
                        end: stub.replace.end,
                        item: stub.item.range.start,
                    }),
                ));
            }
        }
        if let Some(item) = t.enclosing_item(&s.text, sel.clone()) {
            if !item.documented {
                out.push(action(
                    format!("lokal: add a doc comment to `{}`", item.name),
                    CodeActionKind::REFACTOR,
                    &data(ActionTask::Doc { start: item.range.start, end: item.range.end }),
                ));
            }
            if item.kind == lokal_engine::syntax::ItemKind::Function {
                out.push(action(
                    format!("lokal: write tests for `{}`", item.name),
                    CodeActionKind::REFACTOR,
                    &data(ActionTask::Tests { start: item.range.start, end: item.range.end }),
                ));
            }
        }
    }
    for d in &ctx.diagnostics {
        let title =
            format!("lokal: fix `{}`", d.message.lines().next().unwrap_or("").chars().take(60).collect::<String>());
        out.push(action(
            title,
            CodeActionKind::QUICKFIX,
            &data(ActionTask::Fix { message: d.message.clone(), range: d.range }),
        ));
    }
    if !sel.is_empty() {
        out.push(action(
            "lokal: rewrite the selection".into(),
            CodeActionKind::REFACTOR_REWRITE,
            &data(ActionTask::Rewrite { start: sel.start, end: sel.end, instruction: DEFAULT_REWRITE.into() }),
        ));
    }
    out
}

/// The model's answer as code: the fenced block if it wrote one, else the text.
fn code_of(answer: &str) -> String {
    let a = answer.trim_start_matches('\n');
    a.split("```").next().unwrap_or(a).trim_end().to_string()
}

async fn instruct(
    b: &Backend,
    key: &str,
    lang: Option<Lang>,
    task: &str,
    max_tokens: usize,
    priority: Priority,
    cancel: &CancelToken,
) -> Result<String> {
    let fence = lang.map(Lang::fence).unwrap_or("");
    let req = GenerateRequest {
        key: format!("{key}#action"),
        system: Some("You are an expert programmer. Answer with code only, in one fenced code block.".into()),
        user: task.to_string(),
        answer_prefix: format!("```{fence}\n"),
        max_tokens,
        stop: vec!["```".into()],
        temperature: 0.0,
        seed: 0,
        priority,
    };
    let g = b.engine()?.generate(req, cancel.clone()).await.map_err(to_proto::engine_error)?;
    Ok(code_of(&g.text))
}

/// Replace `range` of `text` with `code`, cut back to what parses; an error when nothing does.
pub(crate) fn checked_splice(lang: Option<Lang>, text: &str, range: Bytes<usize>, code: &str) -> Result<String> {
    let splice = |c: &str| format!("{}{}{}", &text[..range.start], c, &text[range.end..]);
    let Some(lang) = lang else { return Ok(code.to_string()) };
    let ok = |c: &str| no_new_errors(lang, text, &splice(c));
    if ok(code) {
        return Ok(code.to_string());
    }
    // Keep the trailing newline of what parses: inserted lines must stay lines.
    longest_prefix_where(code, ok)
        .map(|c| if code.ends_with('\n') && !c.ends_with('\n') { c + "\n" } else { c })
        .ok_or_else(|| {
            request_failed(
                "lokal: the generated code does not parse; nothing was inserted (try again, or a larger model)",
            )
        })
}

pub async fn resolve(b: &Backend, mut action: CodeAction, cancel: CancelToken) -> Result<CodeAction> {
    let data = action.data.clone().ok_or_else(|| invalid_params("code action without data"))?;
    let ActionData { uri, version, task } =
        serde_json::from_value(data).map_err(|e| invalid_params(format!("code action data: {e}")))?;
    let s = snap(b, &uri)?;
    let stale = || Error {
        code: ErrorCode::ContentModified,
        message: "lokal: the document changed since this action was offered; ask again".into(),
        data: None,
    };
    if s.version != version {
        return Err(stale());
    }
    // Offsets come back from the client: slice only where they are inside the text and on a character.
    let at = |k: &str, v: usize| {
        Some(v).filter(|&v| s.text.is_char_boundary(v)).ok_or_else(|| invalid_params(format!("bad {k}")))
    };
    // Session-prefixed like completions: the shared engine picks this session's remote engine (and policy
    // gate) and cache by it.
    let key = &b.key(&uri);
    let tree = s.lang.map(|l| SyntaxTree::new(l, &s.text));
    let context = tree.as_ref().map(|t| t.context(&s.text, None)).unwrap_or_default();
    let fence = s.lang.map(Lang::fence).unwrap_or("");
    let mut report = None;
    let (range, new_text, extra): (Bytes<usize>, String, Vec<DocumentChangeOperation>) = match task {
        ActionTask::Implement { start, end, item } => {
            let lang = s.lang.ok_or_else(|| invalid_params("no grammar for this language"))?;
            let (start, end, item) = (at("start", start)?, at("end", end)?, at("item", item)?);
            let (range, new_text, r) = verified::implement(b, &uri, &s.text, lang, start..end, item, &cancel).await?;
            report = Some(r);
            (range, new_text, vec![])
        }
        ActionTask::Doc { start, .. } => {
            let start = at("start", start)?;
            let line_start = s.text[..start].rfind('\n').map(|i| i + 1).unwrap_or(0);
            let indent: String = s.text[line_start..].chars().take_while(|c| c.is_whitespace() && *c != '\n').collect();
            let marker = match s.lang {
                Some(Lang::Rust) => "///",
                Some(Lang::Python) => "#",
                _ => "//",
            };
            let req = CompletionRequest {
                doc: key.to_string(),
                before: format!("{}{indent}{marker} ", &s.text[..line_start]),
                first_line: 0,
                after: s.text[line_start..].to_string(),
                max_tokens: Some(48),
                max_lines: Some(3),
                context: None,
            };
            let c = b.engine()?.complete(req, cancel.clone()).await.map_err(to_proto::engine_error)?;
            let raw = c.text.unwrap_or_default();
            // The first line continues the marker; later lines count only while they stay comments.
            let mut lines = vec![format!("{indent}{marker} {}", raw.lines().next().unwrap_or("").trim())];
            lines.extend(
                raw.lines()
                    .skip(1)
                    .take_while(|l| l.trim_start().starts_with(marker))
                    .map(|l| format!("{indent}{}", l.trim_start())),
            );
            if lines[0].trim() == marker {
                return Err(request_failed("lokal: the model suggested no documentation"));
            }
            let code = lines.join("\n") + "\n";
            (line_start..line_start, checked_splice(s.lang, &s.text, line_start..line_start, &code)?, vec![])
        }
        task @ (ActionTask::Fix { .. } | ActionTask::Rewrite { .. }) => {
            let (range, task) = match task {
                ActionTask::Fix { message, range } => {
                    let diag = byte_range(b, &uri, range)?;
                    let item = tree
                        .as_ref()
                        .and_then(|t| t.enclosing_item(&s.text, diag.clone()))
                        .map(|i| i.range)
                        .unwrap_or(diag);
                    (item.clone(), format!("Fix this error: {message}\n\nCode:\n```{fence}\n{}\n```\nContext:\n{context}\nAnswer with the corrected code.", &s.text[item]))
                }
                ActionTask::Rewrite { start, end, instruction } => {
                    let r = at("start", start)?..at("end", end)?;
                    (r.clone(), format!("{instruction}\n\nCode:\n```{fence}\n{}\n```\nContext:\n{context}\nAnswer with the rewritten code.", &s.text[r]))
                }
                _ => unreachable!("matched above"),
            };
            let code = instruct(b, key, s.lang, &task, 320, Priority::Action, &cancel).await?;
            (range.clone(), checked_splice(s.lang, &s.text, range, &code)?, vec![])
        }
        ActionTask::Tests { start, end } => {
            let item = at("start", start)?..at("end", end)?;
            let rel = from_proto::path(&uri).map(|p| p.display().to_string()).unwrap_or_default();
            let place = tree
                .as_ref()
                .map(|t| t.test_place(&s.text, &rel))
                .unwrap_or(TestPlace::SameFile { at: s.text.len(), wrap_in_module: false });
            let task = format!("Write unit tests for this function, in the usual style of the language.\n```{fence}\n{}\n```\nContext:\n{context}", &s.text[item]);
            let code = instruct(b, key, s.lang, &task, 320, Priority::Action, &cancel).await?;
            match place {
                TestPlace::SameFile { at, wrap_in_module } => {
                    let code = if wrap_in_module {
                        format!(
                            "\n#[cfg(test)]\nmod tests {{\n    use super::*;\n\n{}\n}}\n",
                            indent_all(&code, "    ")
                        )
                    } else {
                        format!("\n{}\n", indent_all(&code, "    "))
                    };
                    (at..at, checked_splice(s.lang, &s.text, at..at, &code)?, vec![])
                }
                TestPlace::File { relative } => {
                    let path =
                        from_proto::path(&uri).and_then(|p| p.parent().map(|d| d.to_path_buf())).unwrap_or_default();
                    // `relative` is relative to the file's own directory for the languages that keep tests beside it.
                    let name = relative.rsplit('/').next().unwrap_or(&relative).to_string();
                    let target =
                        if relative.starts_with("tests/") { path.join("tests").join(&name) } else { path.join(&name) };
                    let code =
                        s.lang.and_then(|l| longest_parsing_prefix(l, &code, |c| c.to_string())).ok_or_else(|| {
                            request_failed("lokal: the generated tests do not parse; nothing was created")
                        })?;
                    let turi = Uri::from_file_path(&target).ok_or_else(|| invalid_params("bad test path"))?;
                    let ops = if target.exists() {
                        let len = std::fs::read_to_string(&target).map(|t| t.lines().count()).unwrap_or(0) as u32;
                        vec![DocumentChangeOperation::Edit(TextDocumentEdit {
                            text_document: OptionalVersionedTextDocumentIdentifier { uri: turi, version: None },
                            edits: vec![OneOf::Left(TextEdit {
                                range: Range::new(Position::new(len, 0), Position::new(len, 0)),
                                new_text: format!("\n{code}\n"),
                            })],
                        })]
                    } else {
                        create_file(turi, format!("{code}\n"))
                    };
                    (0..0, String::new(), ops)
                }
            }
        }
    };
    if cancel.is_cancelled() {
        return Err(Error::request_cancelled());
    }
    // The user may have typed while the model worked: then this edit would land on newer text.
    if snap(b, &uri)?.version != version {
        return Err(stale());
    }
    let mut ops = Vec::new();
    if !(range.is_empty() && new_text.is_empty()) {
        ops.push(versioned_edit(uri.clone(), version, vec![TextEdit { range: lsp_range(b, &uri, range)?, new_text }]));
    }
    ops.extend(extra);
    action.edit = Some(workspace_edit(ops));
    if let (Some(r), Some(Value::Object(d))) = (report, action.data.as_mut()) {
        d.insert("report".into(), verified::report_value(&r));
    }
    Ok(action)
}

fn indent_all(code: &str, pad: &str) -> String {
    code.lines().map(|l| if l.is_empty() { String::new() } else { format!("{pad}{l}") }).collect::<Vec<_>>().join("\n")
}

pub async fn execute(
    b: &Backend,
    command: &str,
    arg: Value,
    token: Option<ProgressToken>,
    cancel: CancelToken,
) -> Result<Option<Value>> {
    match command {
        REWRITE => {
            let RewriteArgs { uri, range, instruction } =
                serde_json::from_value(arg).map_err(|e| invalid_params(format!("{REWRITE}: {e}")))?;
            if instruction.trim().is_empty() {
                return Err(invalid_params(format!("{REWRITE} needs an instruction")));
            }
            let s = snap(b, &uri)?;
            let r = byte_range(b, &uri, range)?;
            let data = ActionData {
                uri,
                version: s.version,
                task: ActionTask::Rewrite { start: r.start, end: r.end, instruction },
            };
            let data = serde_json::to_value(data).map_err(|e| request_failed(e.to_string()))?;
            let a = resolve(b, CodeAction { title: "rewrite".into(), data: Some(data), ..Default::default() }, cancel)
                .await?;
            apply(b, a.edit.unwrap_or_default()).await
        }
        IMPLEMENT_FROM_DESIGN_DOC => crate::plan::run(b, arg, token, cancel, true).await,
        PREVIEW_PLAN => crate::plan::run(b, arg, token, cancel, false).await,
        other => Err(invalid_params(format!("unknown command {other}"))),
    }
}

async fn apply(b: &Backend, edit: WorkspaceEdit) -> Result<Option<Value>> {
    match b.client.apply_edit(edit).await {
        Ok(r) if r.applied => Ok(Some(json!({"applied": true}))),
        Ok(r) => {
            Err(request_failed(format!("the editor did not apply the edit: {}", r.failure_reason.unwrap_or_default())))
        }
        Err(e) => Err(request_failed(format!("workspace/applyEdit failed: {e}"))),
    }
}
