//! The client's settings applied to a session: every settings object (initializationOptions, pushed or
//! pulled configuration) goes through `lokal_engine::settings::parse`; what it could not use reaches the
//! user once per change (`window/showMessage`) and stays in `lokal/status`, which also says where the
//! engine and its model come from.
use crate::backend::Backend;
use crate::ext::{ModelReport, ModelStatus, SettingProblem, SettingsOrigin};
use crate::settings::{daemon_model, EngineKind, TierSettings};
use lokal_engine::settings::{ModelSource, Problem, Settings};
use serde_json::Value;
use tower_lsp_server::ls_types::MessageType;

impl Backend {
    /// Store what a settings object decided about tiers and report its new problems; the engine part is
    /// the caller's (it differs between `initialize` and a change). True when the tier settings changed.
    pub(crate) async fn take_settings(&self, s: &Settings) -> bool {
        let ts = TierSettings { user: s.tiers.clone(), remote: s.remote.clone(), cloud_confirm: s.cloud_confirm };
        let tiers_changed = ts != *self.tier_settings.read().unwrap();
        *self.tier_settings.write().unwrap() = ts;
        let fresh: Vec<Problem> = {
            let mut st = self.settings_state.lock().unwrap();
            st.given |= s.given;
            st.actions = s.actions.clone();
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

    /// The model part of `lokal/status`: its state, and which file and why.
    pub(crate) fn model_report(&self, status: ModelStatus) -> ModelReport {
        let kind = self.engine_kind();
        let (path, source, why) = match (kind, daemon_model()) {
            (EngineKind::Daemon, Some((path, why))) => (
                path,
                "daemon".to_string(),
                format!("the daemon's model ({why}); this window's modelPath is not set or names the same file"),
            ),
            _ => {
                let cfg = self.config.lock().unwrap();
                let src = ModelSource::of(&cfg);
                let name =
                    serde_json::to_value(src).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
                let mut why = src.describe().to_string();
                if kind == EngineKind::DaemonOwn {
                    why.push_str(
                        "; the daemon's model is another file, so this window has an engine of its own in the daemon",
                    );
                }
                (cfg.resolved_model_path(), name, why)
            }
        };
        // A ready model names its own file; before that, the file it is loading (or failed to load).
        let path = (!matches!(status, ModelStatus::Ready { .. })).then(|| path.display().to_string());
        ModelReport { status, path, source, why }
    }

    /// `settings` and `problems` of `lokal/status`.
    pub(crate) fn settings_report(&self) -> (SettingsOrigin, Vec<SettingProblem>) {
        let st = self.settings_state.lock().unwrap();
        let origin = SettingsOrigin { source: if st.given { "settings" } else { "default" } };
        let problems = st
            .problems
            .iter()
            .map(|p| SettingProblem { key: p.key.clone(), value: p.value.clone(), message: p.message.clone() })
            .collect();
        (origin, problems)
    }
}
