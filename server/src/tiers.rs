//! The workspace's client tiers in the protocol: folders and their `.lokal.toml`, `lokal/status`,
//! diagnostics on broken tag files, the cloud-assisted design command, and the on-premises engine setting.
use crate::backend::Backend;
use crate::consent::Consent;
use crate::conv::{from_proto, invalid_params, request_failed, to_proto};
use crate::ext::{CloudArgs, CloudPreview, FolderStatus, ModelStatus, NoParams, StatusResult, CLOUD_DESIGN};
use crate::work::{create_file, workspace_edit};
use lokal_engine::policy::anonymize;
use lokal_engine::policy::cloud::{self, CloudConfig};
use lokal_engine::policy::egress;
use lokal_engine::policy::tier::{FolderPolicy, Tier, WorkspacePolicy, TAG_FILE};
use lokal_engine::remote::RemoteGate;
use lokal_engine::CancelToken;
use serde_json::{json, Value};
use tower_lsp_server::jsonrpc::Result;
use tower_lsp_server::ls_types::*;

/// The design answer's token budget; part of the approved body.
const DESIGN_TOKENS: u32 = 4096;

impl Backend {
    pub(crate) fn policy(&self) -> WorkspacePolicy {
        self.policy.read().unwrap().clone()
    }

    pub(crate) fn folder_of(&self, uri: &Uri) -> Option<FolderPolicy> {
        let p = from_proto::path(uri)?;
        self.policy.read().unwrap().folder_for(&p).cloned()
    }

    pub(crate) fn tier_of(&self, uri: &Uri) -> Tier {
        self.folder_of(uri).map(|f| f.tier).unwrap_or(Tier::Local)
    }

    /// Read every folder's tag file again; announce changes and refresh diagnostics on tag files.
    pub(crate) async fn refresh_policy(&self, announce_all: bool) {
        let roots = self.roots.read().unwrap().clone();
        let settings = self.tier_settings.read().unwrap().clone();
        let new = WorkspacePolicy::resolve(&roots, &settings.user);
        let old = std::mem::replace(&mut *self.policy.write().unwrap(), new.clone());
        for f in &new.folders {
            let before = old.folders.iter().find(|o| o.root == f.root);
            if announce_all || before.map(|b| (b.tier, b.source)) != Some((f.tier, f.source)) {
                let how = match f.source {
                    lokal_engine::policy::tier::TierSource::File => format!("from {TAG_FILE}"),
                    lokal_engine::policy::tier::TierSource::User => "made stricter by your settings".into(),
                    lokal_engine::policy::tier::TierSource::Default => format!("no {TAG_FILE}: your default"),
                    lokal_engine::policy::tier::TierSource::Fallback => format!("{TAG_FILE} is broken: failing closed"),
                };
                let typ = if f.source == lokal_engine::policy::tier::TierSource::Fallback {
                    MessageType::WARNING
                } else {
                    MessageType::INFO
                };
                self.client
                    .show_message(typ, format!("lokal: {} is {} ({how})", f.root.display(), f.tier.describe()))
                    .await;
            }
            if let Some(uri) = to_proto::uri(&f.root.join(TAG_FILE)) {
                let diags = f
                    .diagnostics
                    .iter()
                    .map(|d| Diagnostic {
                        range: Range::new(Position::new(d.line, d.column), Position::new(d.line, d.column + 1)),
                        severity: Some(DiagnosticSeverity::ERROR),
                        source: Some("lokal".into()),
                        message: d.message.clone(),
                        ..Default::default()
                    })
                    .collect();
                self.client.publish_diagnostics(uri, diags, None).await;
            }
        }
        self.apply_remote().await;
    }

    /// Switch completions to the configured on-premises engine, if the tier policy allows that host for the
    /// workspace; otherwise say why and keep the local model.
    pub(crate) async fn apply_remote(&self) {
        let Ok(engine) = self.engine() else { return };
        let remote = self.tier_settings.read().unwrap().remote.clone();
        let Some(r) = remote else {
            engine.set_remote(&self.session, None);
            return;
        };
        // One engine serves the whole session, so every folder must allow the host. The same check runs
        // again for every request (the gate reads the live policy), so this is only the early answer.
        let (live, user) = (self.policy.clone(), self.user.clone());
        let gate: RemoteGate = std::sync::Arc::new(move |url: &str| {
            remote_permit(&live.read().unwrap(), url).map(|p| p.audited_as(user.as_deref()))
        });
        let denied = gate(&r.url).err();
        match denied {
            None => {
                engine.set_remote(&self.session, Some((r.clone(), gate)));
                self.client.log_message(MessageType::INFO, format!("lokal: completions served by {}", r.url)).await;
            }
            Some(e) => {
                engine.set_remote(&self.session, None);
                self.client
                    .show_message(
                        MessageType::ERROR,
                        format!("{e}; the remote engine is off and the local model serves"),
                    )
                    .await;
            }
        }
    }

    pub(crate) async fn status(&self, _params: NoParams) -> Result<StatusResult> {
        let folders = self
            .policy()
            .folders
            .iter()
            .map(|f| FolderStatus {
                uri: to_proto::uri(&f.root).map(|u| u.as_str().to_string()),
                tier: f.tier as u8,
                source: f.source,
                endpoints: f.endpoints.clone(),
                problems: f.diagnostics.iter().map(|d| d.message.clone()).collect(),
            })
            .collect();
        let engine = self.engine()?;
        let model = match engine.state() {
            lokal_engine::EngineState::Ready(i) => {
                ModelStatus::Ready { name: i.name, path: i.path, architecture: i.architecture }
            }
            lokal_engine::EngineState::Loading => ModelStatus::Loading,
            lokal_engine::EngineState::Failed(error) => ModelStatus::Failed { error },
        };
        let (settings, problems) = self.settings_report();
        Ok(StatusResult {
            folders,
            model: self.model_report(model),
            remote: engine.remote(&self.session).map(|r| r.url),
            settings,
            problems,
            engine: self.engine_kind().name(),
        })
    }

    /// The cloud-design code action, where the tier allows cloud help at all. In Tier 3 it is not offered.
    pub(crate) fn cloud_actions(&self, uri: &Uri, range: Range, language: &str) -> Vec<CodeActionOrCommand> {
        if self.tier_of(uri) == Tier::Local {
            return vec![];
        }
        if range.start == range.end && language != "markdown" {
            return vec![];
        }
        let title = match self.tier_of(uri) {
            Tier::Cloud => "lokal: draft design with cloud model",
            _ => "lokal: draft design with cloud model (anonymized schema only)",
        };
        let args = serde_json::to_value(CloudArgs { uri: uri.clone(), range: Some(range) }).unwrap_or_default();
        vec![CodeActionOrCommand::CodeAction(CodeAction {
            title: title.into(),
            kind: Some(CodeActionKind::new("refactor.lokal.cloudDesign")),
            command: Some(Command { title: title.into(), command: CLOUD_DESIGN.into(), arguments: Some(vec![args]) }),
            ..Default::default()
        })]
    }

    /// What the cloud would receive for this requirement, or why nothing may go.
    fn cloud_payload(
        &self,
        args: &CloudArgs,
    ) -> std::result::Result<(Option<FolderPolicy>, bool, cloud::CloudRequest), String> {
        let folder = self.folder_of(&args.uri);
        let tier = folder.as_ref().map(|f| f.tier).unwrap_or(Tier::Local);
        if tier == Tier::Local {
            return Err(format!(
                "lokal: cloud-assisted actions are off here: {} is {}",
                folder
                    .as_ref()
                    .map(|f| f.root.display().to_string())
                    .unwrap_or_else(|| "this file is outside the workspace and".into()),
                Tier::Local.describe()
            ));
        }
        let doc = self.docs.get(&args.uri).ok_or_else(|| format!("document not open: {}", args.uri.as_str()))?;
        let text = doc.text();
        let language = doc.language_id.clone();
        let selected = match args.range {
            Some(r) if r.start != r.end => {
                let enc = self.enc();
                let a = doc.char_at(r.start, enc).map_err(|e| e.0)?;
                let b = doc.char_at(r.end, enc).map_err(|e| e.0)?;
                Some(doc.rope.slice(a.min(b)..a.max(b)).to_string())
            }
            _ => None,
        };
        drop(doc);
        let root = folder.as_ref().map(|f| f.root.clone()).unwrap_or_default();
        let file = from_proto::path(&args.uri).unwrap_or_default();
        let rel = file.strip_prefix(&root).unwrap_or(&file).display().to_string();
        // Prose (a markdown requirement) is the requirement; in code, the selection is, with its file around it.
        let prose = anonymize::pass::TextKind::of(&language, &rel) == anonymize::pass::TextKind::Prose;
        use lokal_engine::policy::payload::{self, PayloadInput, Snippet};
        let whole = Snippet { path: &rel, language: &language, text: &text };
        let input = match (&selected, prose) {
            (Some(sel), true) => {
                PayloadInput { tier, root: &root, requirement: sel, selection: None, open_files: vec![] }
            }
            (None, true) => PayloadInput { tier, root: &root, requirement: &text, selection: None, open_files: vec![] },
            (Some(sel), false) => PayloadInput {
                tier,
                root: &root,
                requirement: "",
                selection: Some(Snippet { text: sel, ..whole }),
                open_files: vec![whole],
            },
            (None, false) => {
                PayloadInput { tier, root: &root, requirement: "", selection: None, open_files: vec![whole] }
            }
        };
        let p = payload::build(&input)?;
        if p.anonymized {
            tracing::info!("lokal: Tier-2 payload anonymized: {}", payload::describe_counts(&p.counts));
        }
        let rq =
            cloud::CloudRequest { system: Some(p.system), user: p.user, max_tokens: DESIGN_TOKENS, counts: p.counts };
        Ok((folder, p.anonymized, rq))
    }

    pub(crate) async fn preview_cloud(&self, args: CloudArgs) -> Result<Option<Value>> {
        match self.cloud_payload(&args) {
            Ok((_, anonymized, rq)) => serde_json::to_value(CloudPreview {
                anonymized,
                system: rq.system.unwrap_or_default(),
                user: rq.user,
                counts: rq.counts,
            })
            .map(Some)
            .map_err(|e| request_failed(e.to_string())),
            Err(e) => Err(request_failed(e)),
        }
    }

    pub(crate) async fn cloud_design(
        &self,
        args: CloudArgs,
        token: Option<ProgressToken>,
        cancel: CancelToken,
    ) -> Result<Option<Value>> {
        let (folder, anonymized, rq) = self.cloud_payload(&args).map_err(request_failed)?;
        let cfg = CloudConfig::from_env();
        let tier = folder.as_ref().map(|f| f.tier).unwrap_or(Tier::Local);
        // The same body `cloud::ask` sends, so what the user approves is byte for byte what leaves.
        let body = serde_json::to_vec(&cloud::request_body(cfg.provider, &cfg.model, &rq, false)).unwrap_or_default();
        match self.consent(tier, "cloud design", &cfg.endpoint(), &body).await.map_err(request_failed)? {
            Consent::Send => {}
            Consent::Declined => return Ok(Some(json!({"sent": false}))),
        }
        let work = self
            .work
            .begin(
                &self.client,
                "lokal: drafting design with the cloud model",
                token,
                self.can_create_progress(),
                cancel.clone(),
            )
            .await;
        let audit = self.audit_log();
        let answer = cloud::ask(folder.as_ref(), &cfg, "cloud design", anonymized, &rq, &cancel, &audit).await;
        let text = match answer {
            Ok(t) => t,
            Err(e) => {
                work.finish("failed").await;
                // No fallback: the user sees the cloud's failure, and nothing else is asked.
                return Err(request_failed(e));
            }
        };
        if cancel.is_cancelled() {
            work.finish("cancelled").await;
            return Err(tower_lsp_server::jsonrpc::Error::request_cancelled());
        }
        // Phase 2 (`lokal.implementFromDesignDoc`) needs `File:` targets; a design without them is still the
        // user's (they approved the request), so it is written, and they hear what it lacks.
        let targets: Vec<String> = match lokal_engine::syntax::design_doc::plan(&text, None) {
            Ok(p) => p.targets.into_iter().map(|t| t.path).collect(),
            Err(e) => {
                self.client
                    .show_message(
                        MessageType::WARNING,
                        format!("lokal: the cloud's design cannot be implemented as it is: {e}"),
                    )
                    .await;
                vec![]
            }
        };
        let root = folder.map(|f| f.root).unwrap_or_default();
        let dir = root.join("docs").join("design");
        let stem = from_proto::path(&args.uri)
            .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().to_string()))
            .unwrap_or_else(|| "design".into());
        let mut path = dir.join(format!("{stem}-design.md"));
        let mut n = 2;
        while path.exists() {
            path = dir.join(format!("{stem}-design-{n}.md"));
            n += 1;
        }
        let uri = to_proto::uri(&path).ok_or_else(|| invalid_params("bad design path"))?;
        let edit = workspace_edit(create_file(uri.clone(), text));
        let applied = self.client.apply_edit(edit).await;
        work.finish("done").await;
        match applied {
            Ok(r) if r.applied => Ok(Some(json!({"uri": uri, "sent": true, "targets": targets}))),
            Ok(r) => Err(request_failed(format!(
                "the editor did not apply the design: {}",
                r.failure_reason.unwrap_or_default()
            ))),
            Err(e) => Err(request_failed(format!("workspace/applyEdit failed: {e}"))),
        }
    }
}

/// A permit for one request to the remote engine: every workspace folder must allow the host (one engine
/// serves the session), and with no folder at all the request counts as outside every workspace (Tier 3).
fn remote_permit(policy: &WorkspacePolicy, url: &str) -> std::result::Result<egress::Permit, egress::EgressDenied> {
    if let Some(denied) = policy.folders.iter().find_map(|f| egress::check(Some(f), url, "remote engine", false).err())
    {
        return Err(denied);
    }
    egress::check(policy.folders.first(), url, "remote engine", false)
}
