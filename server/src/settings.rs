//! Settings the server reads for itself (the engine's are `lokal_engine::EngineConfig`), kept apart from the
//! handlers that use them so the session state (backend.rs) and the tier handlers (tiers.rs) both depend on
//! this, not on each other.
use lokal_engine::policy::tier::UserTierSettings;
use lokal_engine::remote::RemoteConfig;
use serde::Deserialize;
use serde_json::Value;

/// Tier-related settings, read from the same settings object as the engine's.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TierSettings {
    #[serde(flatten)]
    pub user: UserTierSettings,
    /// An on-premises engine (llama-server, vLLM, EXO) to serve completions instead of the local model.
    pub remote: Option<RemoteConfig>,
}

impl TierSettings {
    pub fn from_settings(v: &Value) -> Self {
        let v = v.get("lokal").unwrap_or(v);
        // Settings that do not parse (`"minimumTier": "3"`) must not drop a floor the user set: fail closed,
        // every folder Tier 3 and no remote engine, until they are fixed.
        serde_json::from_value(v.clone()).unwrap_or_else(|e| {
            tracing::error!("lokal settings do not parse ({e}); every folder is Tier 3 until they are fixed");
            TierSettings { user: UserTierSettings { minimum_tier: Some(3), ..Default::default() }, remote: None }
        })
    }
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
        assert_eq!(TierSettings::from_settings(&json!({})).user.minimum_tier, None, "no settings: no floor, default Tier 3 applies");
    }
}
