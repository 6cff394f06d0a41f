//! The LSP layer: converts protocol types to engine calls and back. No model logic lives here.
use crate::backend::{Backend, ClientCaps};
use crate::conv::{from_proto, invalid_params, request_failed, to_proto};
use crate::documents::{Document, Encoding};
use crate::ext::{self, CloudArgs, NoParams};
use crate::settings::{needs_own_engine, EngineKind};
use lokal_engine::stats::EngineStats;
use lokal_engine::{CancelOnDrop, CancelToken, CompletionRequest, Engine, EngineConfig, EngineEvent};
use serde_json::Value;
use std::path::PathBuf;
use std::sync::Mutex;
use tokio::sync::mpsc;
use tower_lsp_server::jsonrpc::Result;
use tower_lsp_server::ls_types::*;
use tower_lsp_server::{LanguageServer, LspService};

pub use crate::backend::SessionHandle;

/// Lines of text after the cursor handed to the engine (before it: `lokal_engine::window::first_line`).
const LINES_AFTER: usize = 120;

/// An in-process session with its own engine.
pub fn service() -> (LspService<Backend>, tower_lsp_server::ClientSocket) {
    let (s, c, _) = session(None, String::new(), None, false);
    (s, c)
}

/// A session; with `shared`, one of the daemon's many, on the daemon's engine; with `user`, a team daemon's
/// session of that Unix user.
pub fn session(
    shared: Option<Engine>,
    session: String,
    user: Option<String>,
    foreign: bool,
) -> (LspService<Backend>, tower_lsp_server::ClientSocket, SessionHandle) {
    let mut handle = None;
    let (svc, sock) = LspService::build(|client| {
        let (b, h) = Backend::new(client, shared, session, user, foreign);
        handle = Some(h);
        b
    })
    .custom_method("textDocument/inlineCompletion", Backend::inline_completion)
    .custom_method(ext::STATS, Backend::stats)
    .custom_method(ext::STATUS, Backend::status)
    .custom_method("window/workDoneProgress/cancel", Backend::progress_cancel)
    .finish();
    (svc, sock, handle.expect("LspService::build calls its init at once"))
}

impl Backend {
    async fn progress_cancel(&self, params: WorkDoneProgressCancelParams) {
        self.work.cancel(&params.token);
    }

    /// Build the engine request for a cursor; all reads of the document happen here, before any await.
    fn completion_request(&self, uri: &Uri, pos: Position) -> Result<(CompletionRequest, String)> {
        let doc = self.docs.get(uri).ok_or_else(|| invalid_params(format!("document not open: {}", uri.as_str())))?;
        self.completion_request_in(uri, &doc, pos)
    }

    /// The engine request for a cursor in `doc`: the open document, or one as it would be after an edit.
    fn completion_request_in(&self, uri: &Uri, doc: &Document, pos: Position) -> Result<(CompletionRequest, String)> {
        if let Some(why) = &doc.unusable {
            return Err(request_failed(format!("lokal: cannot complete in {}: {why}", uri.as_str())));
        }
        let cursor = doc.char_at(pos, self.enc()).map_err(|e| invalid_params(e.0))?;
        let rope = &doc.rope;
        let line = pos.line;
        // Rounded so it stays put while the user types; the engine picks its own stable anchor inside it.
        let first_line = lokal_engine::window::first_line(line);
        let (long_start, long_end) = doc.long_line_window(line as usize, cursor);
        let first_line = if long_start.is_some() { line } else { first_line };
        let before =
            rope.slice(long_start.unwrap_or_else(|| rope.line_to_char(first_line as usize))..cursor).to_string();
        let end_line = (line as usize + LINES_AFTER).min(rope.len_lines());
        let end = if end_line >= rope.len_lines() { rope.len_chars() } else { rope.line_to_char(end_line) };
        let end = long_end.unwrap_or(end);
        let after = rope.slice(cursor..end.max(cursor)).to_string();
        // The word being typed, so list-completion clients (Helix) can filter the item against it.
        let word: String = before
            .chars()
            .rev()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        let cfg = self.config.lock().unwrap();
        let req = CompletionRequest {
            doc: self.key(uri),
            before,
            first_line,
            after,
            // Per request, so sessions sharing a daemon keep their own budgets.
            max_tokens: Some(cfg.max_tokens),
            max_lines: Some(cfg.max_lines),
            context: None,
        };
        drop(cfg);
        let req = CompletionRequest { context: self.context_block(uri, &req.before, &req.after, line as usize), ..req };
        Ok((req, word))
    }

    async fn suggest(&self, uri: &Uri, pos: Position) -> Result<Option<(String, String)>> {
        let version = self.docs.get(uri).map(|d| d.version);
        let (req, word) = self.completion_request(uri, pos)?;
        let engine = self.engine()?.clone();
        let cancel = CancelToken::new();
        // The framework drops this future on $/cancelRequest; the guard turns the drop into a stop of the
        // model work.
        let _guard = CancelOnDrop(cancel.clone());
        let c = engine.complete(req, cancel).await.map_err(to_proto::engine_error)?;
        tracing::debug!(?c.timings, "completion");
        if let (Some(t), Some(v)) = (&c.text, version) {
            self.prefetch_accept(uri, pos, v, t, &engine);
        }
        Ok(c.text.map(|t| (t, word)))
    }

    /// The likely next request is the one after the user accepts `text` at `pos`: have the engine compute it
    /// now, while they read the suggestion. Built exactly as that request will be (same windows, same
    /// context block), so the engine can tell it apart from anything else by its text.
    fn prefetch_accept(&self, uri: &Uri, pos: Position, version: i32, text: &str, engine: &Engine) {
        if !self.config.lock().unwrap().prefetch {
            return;
        }
        let Some(doc) = self.docs.get(uri) else { return };
        // Changed while the model worked: the suggestion is already stale, and so would be its sequel.
        if doc.version != version || doc.unusable.is_some() {
            return;
        }
        let Ok(cursor) = doc.char_at(pos, self.enc()) else { return };
        let mut next = Document::new("", version, doc.language_id.clone());
        next.rope = doc.rope.clone();
        let at = doc.rope.char_to_byte(cursor);
        drop(doc);
        next.rope.insert(cursor, text);
        let after = next.position_of(cursor + text.chars().count(), self.enc());
        let Ok((req, _)) = self.completion_request_in(uri, &next, after) else { return };
        self.accepts.insert(uri.clone(), crate::backend::PendingAccept { at, rest: text.to_string() });
        engine.prefetch(req);
    }

    /// A change to `uri` arrived: keep the prefetch only if the change inserts the beginning (or all) of the
    /// suggestion it assumes, at its place. Called before the change is applied.
    fn check_accept(&self, uri: &Uri, doc: &Document, changes: &[TextDocumentContentChangeEvent]) {
        let Some((_, exp)) = self.accepts.remove(uri) else { return };
        let keep = match changes {
            [ch] if !ch.text.is_empty() && exp.rest.starts_with(&ch.text) => {
                doc.change_span(ch, self.enc()).is_some_and(|(s, e, _, _)| s == e && s == exp.at)
            }
            _ => false,
        };
        if keep {
            let rest = exp.rest[changes[0].text.len()..].to_string();
            if !rest.is_empty() {
                let at = exp.at + changes[0].text.len();
                self.accepts.insert(uri.clone(), crate::backend::PendingAccept { at, rest });
            }
        } else if let Some(e) = self.engine.get() {
            e.cancel_prefetch(&self.key(uri));
        }
    }

    async fn inline_completion(&self, params: InlineCompletionParams) -> Result<Option<InlineCompletionResponse>> {
        let tdp = params.text_document_position;
        let Some((text, _)) = self.suggest(&tdp.text_document.uri, tdp.position).await? else {
            return Ok(Some(InlineCompletionResponse::Array(vec![])));
        };
        Ok(Some(InlineCompletionResponse::Array(vec![InlineCompletionItem {
            insert_text: text,
            filter_text: None,
            range: Some(Range::new(tdp.position, tdp.position)),
            command: None,
            insert_text_format: None,
        }])))
    }

    async fn stats(&self, _params: NoParams) -> Result<EngineStats> {
        let mut s = self.engine()?.stats().await;
        // Only this session's documents, under the URIs the client knows.
        s.documents = std::mem::take(&mut s.documents)
            .into_iter()
            .filter_map(|(k, v)| k.strip_prefix(&self.session).map(|u| (u.to_string(), v)))
            .collect();
        Ok(s)
    }

    async fn forward_events(&self) {
        let Some(mut rx) = self.events.lock().unwrap().take() else { return };
        let token = NumberOrString::String("lokal/model-load".into());
        let can_progress =
            self.can_create_progress() && self.client.create_work_done_progress(token.clone()).await.is_ok();
        let mut progress = None;
        let mut last_pct = u32::MAX;
        while let Some(ev) = rx.recv().await {
            match ev {
                EngineEvent::Loading { path } => {
                    if can_progress && progress.is_none() {
                        progress = Some(
                            self.client
                                .progress(token.clone(), "lokal: loading model")
                                .with_message(path)
                                .with_percentage(0)
                                .begin()
                                .await,
                        );
                    }
                }
                EngineEvent::Progress(p) => {
                    let pct = (p * 100.0) as u32;
                    if let Some(pr) = &progress {
                        if pct != last_pct {
                            last_pct = pct;
                            pr.report(pct).await;
                        }
                    }
                }
                EngineEvent::Ready(info) => {
                    if let Some(pr) = progress.take() {
                        pr.finish_with_message(format!("{} ready", info.name.as_deref().unwrap_or(&info.architecture)))
                            .await;
                    }
                    self.client.log_message(MessageType::INFO, format!("lokal: model ready: {}", info.path)).await;
                }
                EngineEvent::Failed(why) => {
                    if let Some(pr) = progress.take() {
                        pr.finish_with_message("failed").await;
                    }
                    self.client
                        .show_message(MessageType::ERROR, format!("lokal: the model could not be loaded: {why}"))
                        .await;
                }
            }
        }
    }

    async fn pull_configuration(&self) {
        let items = vec![ConfigurationItem { scope_uri: None, section: Some("lokal".into()) }];
        let Ok(values) = self.client.configuration(items).await else { return };
        let Some(v) = values.into_iter().next() else { return };
        self.settings_changed(&v).await;
    }

    /// Session-level settings (token and line budgets) apply at once; model-level ones reload our own
    /// engine, but never a daemon's, which other editor windows are using.
    pub(crate) async fn apply_settings(&self, new: EngineConfig) {
        let old = std::mem::replace(&mut *self.config.lock().unwrap(), new.clone());
        let model_level = EngineConfig {
            max_tokens: old.max_tokens,
            max_lines: old.max_lines,
            context_enabled: old.context_enabled,
            context_tokens: old.context_tokens,
            prefetch: old.prefetch,
            ..new.clone()
        } != old;
        if !model_level {
            return;
        }
        match (self.engine_kind(), self.engine()) {
            (EngineKind::Daemon, _) => {
                let msg = match needs_own_engine(&new) {
                    Some(theirs) => format!(
                        "lokal: the daemon serves {}; reopen this window to have its modelPath served by an engine of its own",
                        theirs.display()
                    ),
                    None => "lokal: model settings belong to the shared daemon; restart `lokal daemon` to change them".into(),
                };
                self.client.show_message(MessageType::WARNING, msg).await;
            }
            (_, Ok(e)) => {
                tracing::info!("settings changed; reloading the engine");
                e.reload(new);
            }
            _ => {}
        }
    }
}

impl LanguageServer for Backend {
    async fn initialize(&self, params: InitializeParams) -> Result<InitializeResult> {
        let caps = ClientCaps::from_proto(&params.capabilities);
        let _ = self.caps.set(caps);
        let utf8 = caps.encoding == Encoding::Utf8;
        #[allow(deprecated)]
        let roots: Vec<PathBuf> = match (&params.workspace_folders, &params.root_uri) {
            (Some(fs), _) if !fs.is_empty() => fs.iter().filter_map(|f| from_proto::path(&f.uri)).collect(),
            (_, Some(u)) => from_proto::path(u).into_iter().collect(),
            _ => vec![],
        };
        *self.roots.write().unwrap() = roots;
        // Each setting on its own: a bad one keeps its default and is reported; the others apply.
        let settings = lokal_engine::settings::parse(
            params.initialization_options.as_ref().unwrap_or(&Value::Null),
            &EngineConfig::default(),
        );
        self.take_settings(&settings).await;
        let cfg = settings.engine;
        *self.config.lock().unwrap() = cfg.clone();
        let own = self.shared.is_some().then(|| needs_own_engine(&cfg)).flatten();
        if let Some(theirs) = &own {
            self.client
                .show_message(
                    MessageType::INFO,
                    format!(
                        "lokal: the daemon serves {}; this window's modelPath {} gets an engine of its own in the daemon (its own memory)",
                        theirs.display(),
                        cfg.resolved_model_path().display()
                    ),
                )
                .await;
        }
        match (&self.shared, own) {
            (Some(e), None) => {
                let _ = self.engine_kind.set(EngineKind::Daemon);
                let _ = self.engine.set(e.clone());
            }
            (shared, _) => {
                let _ =
                    self.engine_kind.set(if shared.is_some() { EngineKind::DaemonOwn } else { EngineKind::InProcess });
                let (tx, rx) = mpsc::unbounded_channel();
                *self.events.lock().unwrap() = Some(rx);
                let _ = self.engine.set(Engine::start(cfg, move |ev| {
                    let _ = tx.send(ev);
                }));
            }
        }
        Ok(InitializeResult {
            server_info: Some(ServerInfo { name: "lokal".into(), version: Some(env!("CARGO_PKG_VERSION").into()) }),
            capabilities: ServerCapabilities {
                position_encoding: Some(if utf8 { PositionEncodingKind::UTF8 } else { PositionEncodingKind::UTF16 }),
                text_document_sync: Some(TextDocumentSyncCapability::Options(TextDocumentSyncOptions {
                    open_close: Some(true),
                    change: Some(TextDocumentSyncKind::INCREMENTAL),
                    save: Some(TextDocumentSyncSaveOptions::Supported(true)),
                    ..Default::default()
                })),
                code_action_provider: Some(CodeActionProviderCapability::Options(CodeActionOptions {
                    resolve_provider: Some(true),
                    ..Default::default()
                })),
                execute_command_provider: Some(ExecuteCommandOptions {
                    commands: ext::COMMANDS.iter().map(|c| c.to_string()).collect(),
                    ..Default::default()
                }),
                workspace: Some(WorkspaceServerCapabilities {
                    workspace_folders: Some(WorkspaceFoldersServerCapabilities {
                        supported: Some(true),
                        change_notifications: Some(OneOf::Left(true)),
                    }),
                    file_operations: None,
                }),
                completion_provider: Some(CompletionOptions { resolve_provider: Some(false), ..Default::default() }),
                inline_completion_provider: Some(OneOf::Left(true)),
                ..Default::default()
            },
            offset_encoding: None,
        })
    }

    async fn initialized(&self, _: InitializedParams) {
        self.refresh_policy(true).await;
        if self.caps().watch {
            // Tag files change without a restart: the editor tells us when one does.
            let opts = DidChangeWatchedFilesRegistrationOptions {
                watchers: vec![FileSystemWatcher {
                    glob_pattern: GlobPattern::String(format!("**/{}", lokal_engine::policy::tier::TAG_FILE)),
                    kind: None,
                }],
            };
            let reg = Registration {
                id: "lokal-tag-files".into(),
                method: "workspace/didChangeWatchedFiles".into(),
                register_options: serde_json::to_value(opts).ok(),
            };
            let _ = self.client.register_capability(vec![reg, crate::context_hooks::watchers()]).await;
        }
        if !self.foreign {
            self.context.scan(self.roots.read().unwrap().clone());
        }
        // Runs for the whole session: the framework keeps serving other messages meanwhile.
        self.forward_events().await;
    }

    async fn did_change_watched_files(&self, params: DidChangeWatchedFilesParams) {
        if !self.foreign {
            self.context.watched(&params);
        }
        self.refresh_policy(false).await;
    }

    async fn did_save(&self, params: DidSaveTextDocumentParams) {
        let uri = &params.text_document.uri;
        if let (Some(path), Some(text)) = (from_proto::path(uri), self.docs.get(uri).map(|d| d.text())) {
            self.context.visit(path, text);
        }
        if params.text_document.uri.as_str().ends_with(lokal_engine::policy::tier::TAG_FILE) {
            self.refresh_policy(false).await;
        }
    }

    async fn did_change_workspace_folders(&self, params: DidChangeWorkspaceFoldersParams) {
        {
            let mut roots = self.roots.write().unwrap();
            let removed: Vec<PathBuf> = params.event.removed.iter().filter_map(|f| from_proto::path(&f.uri)).collect();
            roots.retain(|r| !removed.contains(r));
            roots.extend(params.event.added.iter().filter_map(|f| from_proto::path(&f.uri)));
        }
        if !self.foreign {
            self.context.scan(params.event.added.iter().filter_map(|f| from_proto::path(&f.uri)).collect());
        }
        self.refresh_policy(false).await;
    }

    async fn code_action(&self, params: CodeActionParams) -> Result<Option<CodeActionResponse>> {
        // Listing is instant and never touches the model: only resolve (or a command) does model work.
        let uri = params.text_document.uri;
        let language = self
            .docs
            .get(&uri)
            .map(|d| d.language_id.clone())
            .ok_or_else(|| invalid_params(format!("document not open: {}", uri.as_str())))?;
        let mut actions = crate::actions::list(self, &uri, params.range, &params.context);
        actions.extend(self.cloud_actions(&uri, params.range, &language));
        actions.extend(self.cloud_impl_actions(&uri, params.range, &language));
        Ok(Some(actions))
    }

    async fn code_action_resolve(&self, action: CodeAction) -> Result<CodeAction> {
        let cancel = CancelToken::new();
        let _guard = CancelOnDrop(cancel.clone());
        crate::actions::resolve(self, action, cancel).await
    }

    async fn execute_command(&self, params: ExecuteCommandParams) -> Result<Option<Value>> {
        let cancel = CancelToken::new();
        let _guard = CancelOnDrop(cancel.clone());
        let token = params.work_done_progress_params.work_done_token.clone();
        let arg = params.arguments.into_iter().next().unwrap_or(Value::Null);
        let args = || {
            serde_json::from_value::<CloudArgs>(arg.clone())
                .map_err(|e| invalid_params(format!("{}: {e}", params.command)))
        };
        if params.command != ext::REWRITE {
            self.own_rights_needed(&params.command)?;
        }
        match params.command.as_str() {
            ext::CLOUD_DESIGN => self.cloud_design(args()?, token, cancel).await,
            ext::PREVIEW_CLOUD => self.preview_cloud(args()?).await,
            ext::IMPLEMENT_WITH_CLOUD => self.implement_with_cloud(args()?, token, cancel).await,
            other => crate::actions::execute(self, other, arg, token, cancel).await,
        }
    }

    async fn shutdown(&self) -> Result<()> {
        match (self.engine_kind(), self.engine.get()) {
            (EngineKind::Daemon, Some(e)) => {
                for d in self.docs.iter() {
                    e.close(&self.key(d.key()));
                }
            }
            (_, Some(e)) => e.shutdown(),
            _ => {}
        }
        Ok(())
    }

    async fn did_open(&self, params: DidOpenTextDocumentParams) {
        let d = params.text_document;
        let doc = Document::new(&d.text, d.version, d.language_id);
        if let Some(why) = &doc.unusable {
            tracing::warn!(uri = d.uri.as_str(), "{why}");
        } else if let Some(lang) = lokal_engine::syntax::Lang::from_id_or_path(&doc.language_id, d.uri.as_str()) {
            self.trees.insert(d.uri.clone(), Mutex::new(lokal_engine::syntax::SyntaxTree::new(lang, &d.text)));
        }
        if doc.unusable.is_none() {
            if let Some(path) = from_proto::path(&d.uri) {
                self.context.open(path, d.text);
            }
        }
        self.docs.insert(d.uri, doc);
    }

    async fn did_change(&self, params: DidChangeTextDocumentParams) {
        // No await before the edit is applied: handlers run concurrently, and edits must land in order.
        let enc = self.enc();
        let uri = params.text_document.uri;
        let Some(mut doc) = self.docs.get_mut(&uri) else {
            tracing::warn!(uri = uri.as_str(), "change for a document that is not open");
            return;
        };
        let tree = self.trees.get(&uri);
        let mut tree = tree.as_ref().map(|t| t.lock().unwrap());
        // The lines the batch touched, in the new text: the workspace context re-reads them after a pause.
        let mut lines: Option<std::ops::Range<usize>> = None;
        for ch in &params.content_changes {
            let first = ch.range.map_or(0, |r| r.start.line as usize);
            let last = if ch.range.is_none() { usize::MAX } else { first + ch.text.matches('\n').count() + 1 };
            lines = Some(lines.map_or(first..last, |l| l.start.min(first)..l.end.max(last)));
        }
        self.check_accept(&uri, &doc, &params.content_changes);
        doc.apply_changes(&params.content_changes, enc, tree.as_deref_mut());
        doc.version = params.text_document.version;
        drop(tree);
        drop(doc);
        if let Some(l) = lines {
            self.context.changed(&uri, l, &self.docs);
        }
    }

    async fn did_close(&self, params: DidCloseTextDocumentParams) {
        let uri = params.text_document.uri;
        self.docs.remove(&uri);
        self.trees.remove(&uri);
        self.accepts.remove(&uri);
        if let Some(path) = from_proto::path(&uri) {
            self.context.close(&uri, &path);
        }
        if let Some(e) = self.engine.get() {
            e.close(&self.key(&uri));
        }
    }

    async fn did_change_configuration(&self, params: DidChangeConfigurationParams) {
        // Clients either push the settings or just signal a change: take pushed values, else ask.
        if !params.settings.is_null() && params.settings.as_object().is_none_or(|o| !o.is_empty()) {
            self.settings_changed(&params.settings).await;
            return;
        }
        self.pull_configuration().await;
    }

    async fn completion(&self, params: CompletionParams) -> Result<Option<CompletionResponse>> {
        let tdp = params.text_document_position;
        let Some((text, word)) = self.suggest(&tdp.text_document.uri, tdp.position).await? else {
            return Ok(Some(CompletionResponse::Array(vec![])));
        };
        // Replace the word being typed with word + suggestion, so clients that filter by the current word
        // (Helix, Emacs) keep the item.
        let start = Position::new(tdp.position.line, tdp.position.character - to_proto::units(&word, self.enc()));
        let new_text = format!("{word}{text}");
        let label = new_text.lines().next().unwrap_or("").trim().to_string();
        Ok(Some(CompletionResponse::Array(vec![CompletionItem {
            label: if label.is_empty() { new_text.trim().to_string() } else { label },
            kind: Some(CompletionItemKind::TEXT),
            detail: Some("lokal (local model)".into()),
            filter_text: Some(new_text.clone()),
            text_edit: Some(CompletionTextEdit::Edit(TextEdit { range: Range::new(start, tdp.position), new_text })),
            sort_text: Some("0".into()),
            ..Default::default()
        }])))
    }
}
