//! One session's state: its documents and syntax trees, the engine it completes with, what the client can
//! do, the workspace's tiers and the work in flight. The protocol handlers (lsp.rs, actions.rs, tiers.rs)
//! all work on this.
use crate::conv::{doc_key, invalid_params};
use crate::documents::{Document, Encoding};
use crate::settings::{EngineKind, SettingsState, TierSettings};
use crate::work::WorkRegistry;
use dashmap::DashMap;
use lokal_engine::policy::tier::WorkspacePolicy;
use lokal_engine::{Engine, EngineConfig, EngineEvent};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use tokio::sync::mpsc;
use tower_lsp_server::jsonrpc::Result;
use tower_lsp_server::ls_types::{ClientCapabilities, PositionEncodingKind, Uri};
use tower_lsp_server::Client;

/// What the client said it can do in `initialize`, read once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientCaps {
    pub encoding: Encoding,
    /// Server-initiated `$/progress` (`window/workDoneProgress/create`).
    pub progress: bool,
    /// Dynamic registration of `workspace/didChangeWatchedFiles`.
    pub watch: bool,
    /// `window/showMessageRequest` with action items: the only way to ask before a cloud request leaves.
    pub ask: bool,
    /// `window/showDocument`, for the payload preview.
    pub show_document: bool,
    /// Change annotations in workspace edits: a plan's edits can ask for confirmation (a preview).
    pub annotations: bool,
}

impl Default for ClientCaps {
    /// What the protocol assumes of a client that says nothing.
    fn default() -> Self {
        ClientCaps {
            encoding: Encoding::Utf16,
            progress: false,
            watch: false,
            ask: false,
            show_document: false,
            annotations: false,
        }
    }
}

impl ClientCaps {
    pub fn from_proto(c: &ClientCapabilities) -> Self {
        let utf8 = c
            .general
            .as_ref()
            .and_then(|g| g.position_encodings.as_ref())
            .is_some_and(|v| v.contains(&PositionEncodingKind::UTF8));
        let progress = c.window.as_ref().and_then(|w| w.work_done_progress).unwrap_or(false);
        let watch = c
            .workspace
            .as_ref()
            .and_then(|w| w.did_change_watched_files.as_ref())
            .and_then(|d| d.dynamic_registration)
            .unwrap_or(false);
        let window = c.window.as_ref();
        let ask = window.and_then(|w| w.show_message.as_ref()).and_then(|m| m.message_action_item.as_ref()).is_some();
        let show_document = window.and_then(|w| w.show_document.as_ref()).is_some_and(|d| d.support);
        let annotations = c
            .workspace
            .as_ref()
            .and_then(|w| w.workspace_edit.as_ref())
            .is_some_and(|e| e.change_annotation_support.is_some());
        ClientCaps {
            encoding: if utf8 { Encoding::Utf8 } else { Encoding::Utf16 },
            progress,
            watch,
            ask,
            show_document,
            annotations,
        }
    }
}

pub struct Backend {
    pub(crate) client: Client,
    pub(crate) engine: Arc<OnceLock<Engine>>,
    /// The daemon's engine when this session is one of many; `None` runs an engine of our own.
    pub(crate) shared: Option<Engine>,
    /// Prefix of this session's cache keys: sessions sharing a daemon never see each other's documents.
    pub(crate) session: String,
    /// The Unix user this session serves, on a team daemon (`lokal daemon --group`); named in audit records.
    pub(crate) user: Option<String>,
    /// A team daemon's session of a user other than the daemon's own: nothing is read from disk or run on
    /// that user's behalf, since it would happen with the daemon's rights, not the user's.
    pub(crate) foreign: bool,
    pub(crate) docs: Arc<DashMap<Uri, Document>>,
    pub(crate) caps: OnceLock<ClientCaps>,
    pub(crate) config: Mutex<EngineConfig>,
    pub(crate) events: Mutex<Option<mpsc::UnboundedReceiver<EngineEvent>>>,
    pub(crate) roots: RwLock<Vec<PathBuf>>,
    /// Shared with the remote engine's per-request gate, which reads the live policy.
    pub(crate) policy: Arc<RwLock<WorkspacePolicy>>,
    pub(crate) tier_settings: RwLock<TierSettings>,
    pub(crate) work: WorkRegistry,
    /// tree-sitter trees of open documents in languages with a grammar, kept in step with every change.
    pub(crate) trees: DashMap<Uri, Mutex<lokal_engine::syntax::SyntaxTree>>,
    pub(crate) settings_state: Mutex<SettingsState>,
    /// Set in `initialize`: whose engine serves this session.
    pub(crate) engine_kind: Arc<OnceLock<EngineKind>>,
    /// The workspace as context for completions.
    pub(crate) context: crate::context_hooks::SessionContext,
    /// Per document, the suggestion a prefetch assumes will be accepted: where it goes and what is still to
    /// come of it. A change that is not (a beginning of) that insertion drops the prefetch.
    pub(crate) accepts: DashMap<Uri, PendingAccept>,
}

#[derive(Debug, Clone)]
pub(crate) struct PendingAccept {
    /// UTF-8 byte offset in the document where the rest of the suggestion would be inserted.
    pub at: usize,
    pub rest: String,
}

/// What outlives a session's service: enough to free its documents when the connection ends.
#[derive(Clone)]
pub struct SessionHandle {
    engine: Arc<OnceLock<Engine>>,
    docs: Arc<DashMap<Uri, Document>>,
    session: String,
    kind: Arc<OnceLock<EngineKind>>,
}

impl SessionHandle {
    pub fn open_documents(&self) -> usize {
        self.docs.len()
    }

    /// The client went away (with or without `shutdown`): free its sequences and snapshots.
    pub fn close_all(&self) {
        if let Some(e) = self.engine.get() {
            for d in self.docs.iter() {
                e.close(&doc_key(&self.session, d.key()));
            }
            // A daemon session's own engine (another modelPath) holds a model nobody else uses.
            if self.kind.get() == Some(&EngineKind::DaemonOwn) {
                e.shutdown();
            }
        }
        self.docs.clear();
    }
}

impl Backend {
    /// A session's state and the handle that frees it; with `shared`, one of the daemon's sessions.
    pub fn new(
        client: Client,
        shared: Option<Engine>,
        session: String,
        user: Option<String>,
        foreign: bool,
    ) -> (Backend, SessionHandle) {
        let engine: Arc<OnceLock<Engine>> = Arc::new(OnceLock::new());
        let docs: Arc<DashMap<Uri, Document>> = Arc::new(DashMap::new());
        let kind: Arc<OnceLock<EngineKind>> = Arc::new(OnceLock::new());
        let handle =
            SessionHandle { engine: engine.clone(), docs: docs.clone(), session: session.clone(), kind: kind.clone() };
        let b = Backend {
            client,
            engine,
            shared,
            session,
            user,
            foreign,
            docs,
            caps: OnceLock::new(),
            config: Mutex::new(EngineConfig::default()),
            events: Mutex::new(None),
            roots: RwLock::new(Vec::new()),
            policy: Arc::new(RwLock::new(WorkspacePolicy::default())),
            tier_settings: RwLock::new(TierSettings::default()),
            work: WorkRegistry::default(),
            trees: DashMap::new(),
            settings_state: Default::default(),
            engine_kind: kind,
            context: Default::default(),
            accepts: DashMap::new(),
        };
        (b, handle)
    }

    /// The client's capabilities; the protocol's defaults before `initialize`.
    pub(crate) fn caps(&self) -> ClientCaps {
        self.caps.get().copied().unwrap_or_default()
    }

    pub(crate) fn enc(&self) -> Encoding {
        self.caps().encoding
    }

    /// Parse the edits didChange only recorded, before anything reads `uri`'s tree. Locks in didChange's
    /// order (document, then tree), so the two never wait on each other crosswise.
    pub(crate) fn refresh_tree(&self, uri: &Uri) {
        if let (Some(doc), Some(tree)) = (self.docs.get(uri), self.trees.get(uri)) {
            doc.fresh_tree(&mut tree.lock().unwrap());
        }
    }

    pub(crate) fn can_create_progress(&self) -> bool {
        self.caps().progress
    }

    pub(crate) fn engine(&self) -> Result<&Engine> {
        self.engine.get().ok_or_else(|| invalid_params("server not initialized"))
    }

    /// Refuses, for another user's session on a team daemon, work that reads files or runs build tools.
    pub(crate) fn own_rights_needed(&self, what: &str) -> Result<()> {
        if !self.foreign {
            return Ok(());
        }
        Err(crate::conv::request_failed(format!(
            "lokal: {what} reads your files and runs your build tools, and the team daemon would do that with \
             its own rights, not yours; start lokal with LOKAL_NO_DAEMON=1 for it"
        )))
    }

    /// The egress audit log, naming this session's user on a team daemon.
    pub(crate) fn audit_log(&self) -> lokal_engine::policy::audit::AuditLog {
        lokal_engine::policy::audit::AuditLog::default_location().with_user(self.user.clone())
    }

    /// This session's engine key for a document.
    pub(crate) fn key(&self, uri: &Uri) -> String {
        doc_key(&self.session, uri)
    }
}
