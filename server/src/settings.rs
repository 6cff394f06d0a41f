//! The protocol side of the client's settings: every settings object (initializationOptions, pushed or
//! pulled configuration) goes through `lokal_engine::settings::parse`; what it could not use reaches the
//! user once per change (`window/showMessage`) and stays in `lokal/status`, which also says where the
//! engine and its model come from.
use crate::lsp::Backend;
use crate::tiers::TierSettings;
use lokal_engine::settings::{ModelSource, Problem, Settings};
use lokal_engine::EngineConfig;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use tower_lsp_server::ls_types::MessageType;

/// Which engine serves a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineKind {
    /// `lokal` runs its own engine.
    InProcess,
    /// The daemon's shared engine.
    Daemon,
    /// Inside the daemon, but an engine of this session's own: its `modelPath` names another model.
    DaemonOwn,
}

impl EngineKind {
    pub fn name(self) -> &'static str {
        match self {
            EngineKind::InProcess => "in-process",
            EngineKind::Daemon => "daemon",
            EngineKind::DaemonOwn => "daemon-own",
        }
    }
}

/// What `lokal/status` reports about the settings.
#[derive(Debug, Default)]
pub struct SettingsState {
    pub given: bool,
    pub problems: Vec<Problem>,
}

/// Same file, as far as the file system can tell (a relative path, a symlink); a hard link under another
/// name counts as another model, as a copy would.
pub fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}

/// The model a daemon session would get from the shared engine, when the session's own `modelPath` names
/// another one: that session needs an engine of its own.
pub fn needs_own_engine(session: &EngineConfig) -> Option<PathBuf> {
    let (daemon_model, _) = crate::daemon::model()?;
    let wanted = session.model_path.as_ref()?;
    (!same_file(wanted, &daemon_model)).then_some(daemon_model)
}

impl Backend {
    /// Store what a settings object decided about tiers and report its problems; the engine part is the
    /// caller's (it differs between `initialize` and a change).
    pub(crate) async fn take_settings(&self, s: &Settings) -> bool {
        let ts = TierSettings { user: s.tiers.clone(), remote: s.remote.clone() };
        let tiers_changed = ts != *self.tier_settings.read().unwrap();
        *self.tier_settings.write().unwrap() = ts;
        let fresh: Vec<Problem> = {
            let mut st = self.settings_state.lock().unwrap();
            st.given |= s.given;
            let fresh = s.problems.iter().filter(|p| !st.problems.contains(p)).cloned().collect();
            st.problems = s.problems.clone();
            fresh
        };
        for p in fresh {
            tracing::warn!("{p}");
            self.client.show_message(MessageType::WARNING, format!("lokal: {p}")).await;
        }
        tiers_changed
    }

    /// A settings object after `initialize` (pushed or pulled): tiers, engine budgets or a reload.
    pub(crate) async fn settings_changed(&self, v: &Value) {
        // No settings at all (a client without a "lokal" section answers null) is not "every setting
        // removed": a floor from initializationOptions must not vanish with it.
        if v.is_null() || v.as_object().is_some_and(|o| o.is_empty()) {
            return;
        }
        let cur = self.config.lock().unwrap().clone();
        let s = lokal_engine::settings::parse(v, &cur);
        if self.take_settings(&s).await {
            self.refresh_policy(false).await;
        }
        if s.engine != cur {
            self.apply_settings(s.engine).await;
        }
    }

    pub(crate) fn engine_kind(&self) -> EngineKind {
        *self.engine_kind.get().unwrap_or(&EngineKind::InProcess)
    }

    /// `settings`, `problems` and `engine` of `lokal/status`, and where the model comes from.
    pub(crate) fn settings_status(&self, model: &mut Value) -> Value {
        let st = self.settings_state.lock().unwrap();
        let kind = self.engine_kind();
        let (path, source, why) = match (kind, crate::daemon::model()) {
            (EngineKind::Daemon, Some((path, why))) => (path, "daemon".to_string(), format!("the daemon's model ({why}); this window's modelPath is not set or names the same file")),
            _ => {
                let cfg = self.config.lock().unwrap();
                let src = ModelSource::of(&cfg);
                let name = serde_json::to_value(src).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
                let mut why = src.describe().to_string();
                if kind == EngineKind::DaemonOwn {
                    why.push_str("; the daemon's model is another file, so this window has an engine of its own in the daemon");
                }
                (cfg.resolved_model_path(), name, why)
            }
        };
        if model.get("path").is_none_or(Value::is_null) {
            model["path"] = json!(path);
        }
        model["source"] = json!(source);
        model["why"] = json!(why);
        json!({
            "settings": {"source": if st.given { "settings" } else { "default" }},
            "problems": st.problems.iter().map(|p| json!({"key": p.key, "value": p.value, "message": p.message})).collect::<Vec<_>>(),
            "engine": kind.name(),
        })
    }
}
