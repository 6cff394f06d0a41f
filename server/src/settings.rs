//! Settings the server reads for itself, kept apart from the handlers that use them so the session state
//! (backend.rs) and the handlers (lsp.rs, tiers.rs, configure.rs) all depend on this, not on each other.
//! Every settings object is read once, by `lokal_engine::settings::parse`, key by key.
use lokal_engine::policy::tier::UserTierSettings;
use lokal_engine::remote::RemoteConfig;
use lokal_engine::settings::Problem;
use lokal_engine::EngineConfig;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Tier-related settings, read from the same settings object as the engine's.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TierSettings {
    pub user: UserTierSettings,
    /// An on-premises engine (llama-server, vLLM, EXO) to serve completions instead of the local model.
    pub remote: Option<RemoteConfig>,
    /// `cloudConfirm`: `Some(false)` lets Tier-1 cloud requests go without asking; Tier 2 always asks.
    pub cloud_confirm: Option<bool>,
}

impl TierSettings {
    pub fn from_settings(v: &Value) -> Self {
        // lokal_engine::settings fails closed on tier values it cannot read (`"minimumTier": "3"` makes
        // every folder Tier 3, and says so).
        let s = lokal_engine::settings::parse(v, &EngineConfig::default());
        TierSettings { user: s.tiers, remote: s.remote, cloud_confirm: s.cloud_confirm }
    }
}

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
    pub actions: lokal_engine::actions::ActionSettings,
}

/// The shared engine's model and why it is that one, for sessions that compare their `modelPath` with it
/// and for `lokal/status`. Set once by `lokal daemon`; one daemon per process.
static DAEMON_MODEL: OnceLock<(PathBuf, String)> = OnceLock::new();

pub fn set_daemon_model(path: PathBuf, why: String) {
    let _ = DAEMON_MODEL.set((path, why));
}

/// `Some` inside `lokal daemon`: the shared model's path and what chose it.
pub fn daemon_model() -> Option<(PathBuf, String)> {
    DAEMON_MODEL.get().cloned()
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
    let (daemon_model, _) = daemon_model()?;
    let wanted = session.model_path.as_ref()?;
    (!same_file(wanted, &daemon_model)).then_some(daemon_model)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn settings_that_do_not_parse_fail_closed() {
        let ok = TierSettings::from_settings(&json!({"lokal": {"minimumTier": 2}}));
        assert_eq!(ok.user.minimum_tier, Some(2));
        let bad = TierSettings::from_settings(&json!({"lokal": {"minimumTier": "2", "defaultTier": 1}}));
        assert_eq!((bad.user.minimum_tier, bad.remote), (Some(3), None));
        assert_eq!(
            TierSettings::from_settings(&json!({})).user.minimum_tier,
            None,
            "no settings: no floor, default Tier 3 applies"
        );
    }
}
