//! lokal's extensions to LSP, typed (as rust-analyzer's `lsp/ext.rs`): custom requests, command names and
//! arguments, and the data a code action carries from listing to resolve. The JSON these produce is what
//! editors (editors/) and tests (tests/) read: a field renamed here must be renamed there.
use lokal_engine::policy::tier::{Endpoint, TierSource};
use serde::{Deserialize, Serialize};
use tower_lsp_server::ls_types::{Range, Uri};

/// `lokal/stats`: engine state, model metadata and per-document cache figures (`lokal_engine::stats::EngineStats`).
pub const STATS: &str = "lokal/stats";
/// `lokal/status`: each folder's tier and where it came from, the model's state, the remote engine.
pub const STATUS: &str = "lokal/status";

pub const CLOUD_DESIGN: &str = "lokal.cloudDesign";
pub const PREVIEW_CLOUD: &str = "lokal.previewCloudPayload";
pub const IMPLEMENT_WITH_CLOUD: &str = "lokal.implementWithCloud";
pub const IMPLEMENT_FROM_DESIGN_DOC: &str = "lokal.implementFromDesignDoc";
/// Generates and verifies a design document's plan like `IMPLEMENT_FROM_DESIGN_DOC`, but returns its diff
/// and verdict instead of applying it.
pub const PREVIEW_PLAN: &str = "lokal.previewPlan";
pub const REWRITE: &str = "lokal.rewrite";

/// Every command the server executes (`workspace/executeCommand`).
pub const COMMANDS: &[&str] =
    &[CLOUD_DESIGN, PREVIEW_CLOUD, IMPLEMENT_WITH_CLOUD, IMPLEMENT_FROM_DESIGN_DOC, PREVIEW_PLAN, REWRITE];

/// Any params: these requests take none, and clients send `{}`, `null` or nothing.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct NoParams {}

#[derive(Debug, Serialize)]
pub struct StatusResult {
    pub folders: Vec<FolderStatus>,
    pub model: ModelReport,
    /// URL of the on-premises engine serving this session's completions, if one does.
    pub remote: Option<String>,
    /// Whether the client gave settings at all.
    pub settings: SettingsOrigin,
    /// Settings that were not applied as given, each with what is used instead.
    pub problems: Vec<SettingProblem>,
    /// Whose engine serves this session: `in-process`, `daemon` or `daemon-own`.
    pub engine: &'static str,
}

#[derive(Debug, Serialize)]
pub struct SettingsOrigin {
    /// `settings` when the client sent any, `default` otherwise.
    pub source: &'static str,
}

#[derive(Debug, Serialize)]
pub struct SettingProblem {
    pub key: String,
    /// The value as the client sent it (compact JSON).
    pub value: String,
    pub message: String,
}

/// The model's state, and which file and why (`source`: `modelPath`, `LOKAL_MODEL`, `default`, `daemon`).
#[derive(Debug, Serialize)]
pub struct ModelReport {
    #[serde(flatten)]
    pub status: ModelStatus,
    /// The file being loaded or that failed; a ready model names its own (`status.path`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    pub source: String,
    pub why: String,
}

#[derive(Debug, Serialize)]
pub struct FolderStatus {
    pub uri: Option<String>,
    pub tier: u8,
    pub source: TierSource,
    pub endpoints: Vec<Endpoint>,
    pub problems: Vec<String>,
}

#[derive(Debug, Serialize, PartialEq)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum ModelStatus {
    Ready { name: Option<String>, path: String, architecture: String },
    Loading,
    Failed { error: String },
}

/// `lokal.cloudDesign` and `lokal.previewCloudPayload`.
#[derive(Debug, Serialize, Deserialize)]
pub struct CloudArgs {
    pub uri: Uri,
    #[serde(default)]
    pub range: Option<Range>,
}

/// `lokal.previewCloudPayload`: exactly what would be sent.
#[derive(Debug, Serialize)]
pub struct CloudPreview {
    pub anonymized: bool,
    pub system: String,
    pub user: String,
    /// What the anonymizer replaced, per detector (Tier 2; empty in Tier 1).
    pub counts: std::collections::BTreeMap<String, usize>,
}

/// `lokal.rewrite`.
#[derive(Debug, Serialize, Deserialize)]
pub struct RewriteArgs {
    pub uri: Uri,
    pub range: Range,
    /// Required; a missing one is refused with the same message as an empty one.
    #[serde(default)]
    pub instruction: String,
}

/// `lokal.implementFromDesignDoc` and `lokal.previewPlan`.
#[derive(Debug, Serialize, Deserialize)]
pub struct DesignDocArgs {
    pub uri: Uri,
    /// Only the files of this section of the document.
    #[serde(default)]
    pub section: Option<String>,
}

/// `lokal.implementFromDesignDoc`: the whole plan was applied as one edit, or nothing was and `message`
/// and `files` say why (per file: the check that ran and its first errors).
#[derive(Debug, Serialize)]
pub struct DesignDocResult {
    pub targets: Vec<String>,
    pub applied: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    pub files: Vec<lokal_engine::actions::FileReport>,
    /// Candidates tried, how many passed, time to the first that did, which checks ran.
    pub report: lokal_engine::actions::PlanReport,
}

/// `lokal.previewPlan`: the last plan tried as a unified diff, and whether it passed.
#[derive(Debug, Serialize)]
pub struct PlanPreview {
    pub targets: Vec<String>,
    pub passed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    pub diff: String,
    pub files: Vec<lokal_engine::actions::FileReport>,
    pub report: lokal_engine::actions::PlanReport,
}

/// What a listed code action carries to `codeAction/resolve`: the document version it was computed for,
/// and the task. Offsets are bytes into that version's text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionData {
    pub uri: Uri,
    pub version: i32,
    #[serde(flatten)]
    pub task: ActionTask,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ActionTask {
    /// Fill the stub body `start..end` of the item starting at `item`.
    Implement { start: usize, end: usize, item: usize },
    /// A doc comment above the item `start..end`.
    Doc { start: usize, end: usize },
    /// Unit tests for the function `start..end`.
    Tests { start: usize, end: usize },
    /// Fix the diagnostic `message` at `range`.
    Fix {
        #[serde(default)]
        message: String,
        range: Range,
    },
    /// Rewrite `start..end` as `instruction` asks.
    Rewrite {
        start: usize,
        end: usize,
        #[serde(default = "default_rewrite")]
        instruction: String,
    },
}

pub const DEFAULT_REWRITE: &str = "Simplify this code and make it clearer, keeping its behaviour.";

fn default_rewrite() -> String {
    DEFAULT_REWRITE.into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use tower_lsp_server::ls_types::Position;

    fn uri() -> Uri {
        "file:///w/src/lib.rs".parse().unwrap()
    }

    #[test]
    fn action_data_is_flat_json_with_a_kind_on_the_wire() {
        let d = ActionData { uri: uri(), version: 7, task: ActionTask::Implement { start: 10, end: 20, item: 3 } };
        let v = serde_json::to_value(&d).unwrap();
        assert_eq!(
            v,
            json!({"uri": "file:///w/src/lib.rs", "version": 7, "kind": "implement", "start": 10, "end": 20, "item": 3})
        );
        assert_eq!(serde_json::from_value::<ActionData>(v).unwrap(), d);
        let r = Range::new(Position::new(1, 2), Position::new(1, 5));
        let fix = ActionData { uri: uri(), version: 1, task: ActionTask::Fix { message: "E0308".into(), range: r } };
        let v = serde_json::to_value(&fix).unwrap();
        assert_eq!(v["kind"], "fix");
        assert_eq!(v["range"]["end"]["character"], 5);
        assert_eq!(serde_json::from_value::<ActionData>(v).unwrap(), fix);
    }

    #[test]
    fn action_data_from_older_clients_gets_defaults_and_unknown_kinds_are_refused() {
        let d: ActionData = serde_json::from_value(
            json!({"uri": "file:///w/src/lib.rs", "version": 2, "kind": "rewrite", "start": 0, "end": 4}),
        )
        .unwrap();
        assert_eq!(d.task, ActionTask::Rewrite { start: 0, end: 4, instruction: DEFAULT_REWRITE.into() });
        assert!(serde_json::from_value::<ActionData>(
            json!({"uri": "file:///w/a.rs", "version": 2, "kind": "explode", "start": 0})
        )
        .is_err());
        assert!(
            serde_json::from_value::<ActionData>(json!({"uri": "file:///w/a.rs", "kind": "doc", "start": 0, "end": 1}))
                .is_err(),
            "a version is required"
        );
    }

    #[test]
    fn model_status_keeps_its_state_field() {
        assert_eq!(serde_json::to_value(ModelStatus::Loading).unwrap(), json!({"state": "loading"}));
        assert_eq!(
            serde_json::to_value(ModelStatus::Failed { error: "no file".into() }).unwrap(),
            json!({"state": "failed", "error": "no file"})
        );
        let ready = ModelStatus::Ready { name: None, path: "/m.gguf".into(), architecture: "gemma3".into() };
        assert_eq!(
            serde_json::to_value(ready).unwrap(),
            json!({"state": "ready", "name": null, "path": "/m.gguf", "architecture": "gemma3"})
        );
    }
}
