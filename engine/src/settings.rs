//! The client's settings (`initializationOptions`, top level or under "lokal", and `workspace/configuration`
//! section "lokal"), checked one key at a time. A bad value must not take the others down with it: it keeps
//! that setting's current value and becomes a [`Problem`] the user is shown, naming the key, the value and
//! what was expected. Tier settings fail closed: a floor or default that cannot be read is Tier 3.
use crate::actions::ActionSettings;
use crate::config::EngineConfig;
use crate::policy::tier::UserTierSettings;
use crate::remote::RemoteConfig;
use serde::Serialize;
use serde_json::{Map, Value};
use std::path::PathBuf;

/// Keys of the editor extensions' own settings, which arrive in the same "lokal" section but are not ours
/// (VS Code's `lokal.path` to the binary, `lokal.trace.server`).
const CLIENT_KEYS: &[&str] = &["path", "trace"];
const TIER_KEYS: &[&str] = &["defaultTier", "minimumTier", "overrides", "remote", "cloudConfirm"];
const ACTION_KEYS: &[&str] = &["actionCandidates", "actionTemperature", "actionBudgetSeconds", "actionMaxTokens"];

/// One setting that was not applied as given, for `window/showMessage` and `lokal/status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub key: String,
    /// The value as the client sent it (compact JSON).
    pub value: String,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// Everything the settings object decides, and what in it was not usable.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub engine: EngineConfig,
    pub tiers: UserTierSettings,
    pub remote: Option<RemoteConfig>,
    /// `cloudConfirm`: whether Tier-1 cloud requests ask first (unset: they do). Tier 2 asks regardless.
    pub cloud_confirm: Option<bool>,
    /// Best-of-N for code actions; read afresh like the tier settings.
    pub actions: ActionSettings,
    pub problems: Vec<Problem>,
    /// The client sent a settings object (`lokal/status` says `settings` rather than `default`).
    pub given: bool,
}

/// Where the model file comes from, in the order [`EngineConfig::resolved_model_path`] looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ModelSource {
    #[serde(rename = "modelPath")]
    Setting,
    #[serde(rename = "LOKAL_MODEL")]
    Env,
    #[serde(rename = "default")]
    Default,
}

impl ModelSource {
    pub fn of(cfg: &EngineConfig) -> ModelSource {
        if cfg.model_path.is_some() {
            ModelSource::Setting
        } else if std::env::var_os("LOKAL_MODEL").is_some() {
            ModelSource::Env
        } else {
            ModelSource::Default
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            ModelSource::Setting => "the modelPath setting",
            ModelSource::Env => "the LOKAL_MODEL environment variable",
            ModelSource::Default => "the default model (no modelPath setting, no LOKAL_MODEL)",
        }
    }
}

fn shown(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() <= 80 {
        return s;
    }
    format!("{}…", s.chars().take(80).collect::<String>())
}

/// A whole number in `min..=max`. JSON has one number type, so `8.0` is eight; `"8"` is text, not a number.
fn whole(v: &Value, min: u64, max: u64) -> Option<u64> {
    let n = v
        .as_u64()
        .or_else(|| v.as_f64().filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f <= u64::MAX as f64).map(|f| f as u64))?;
    (min..=max).contains(&n).then_some(n)
}

fn range_text(min: u64, max: u64) -> String {
    if max == u64::MAX || max == u32::MAX as u64 || max == usize::MAX as u64 {
        format!("a whole number ≥ {min}")
    } else {
        format!("a whole number from {min} to {max}")
    }
}

/// The known setting nearest to an unknown key, if one is near enough to be what was meant.
fn nearest(key: &str, known: &[String]) -> Option<String> {
    let k = key.to_ascii_lowercase();
    known
        .iter()
        .map(|c| (strsim::damerau_levenshtein(&k, &c.to_ascii_lowercase()), c))
        .filter(|(d, c)| *d <= (c.len() / 3).max(2))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c.clone())
}

struct Checker {
    problems: Vec<Problem>,
}

impl Checker {
    fn bad(&mut self, key: &str, v: &Value, expected: &str, consequence: String) {
        self.problems.push(Problem {
            key: key.to_string(),
            value: shown(v),
            message: format!("setting {key}: {} is not {expected}; {consequence}", shown(v)),
        });
    }

    /// A count setting: applied when in range, else the kept value stands and the user hears why.
    fn count<T: Copy + std::fmt::Display + TryFrom<u64>>(
        &mut self,
        key: &str,
        v: &Value,
        slot: &mut T,
        min: u64,
        max: u64,
    ) {
        match whole(v, min, max).and_then(|n| T::try_from(n).ok()) {
            Some(n) => *slot = n,
            None => self.bad(key, v, &range_text(min, max), format!("using {}", slot)),
        }
    }

    fn flag(&mut self, key: &str, v: &Value, slot: &mut bool) {
        match v.as_bool() {
            Some(b) => *slot = b,
            None => self.bad(key, v, "true or false", format!("using {slot}")),
        }
    }

    /// A tier number. Text that looks like one (`"2"`) is refused like the tag file's `tier = "2"`: a tier
    /// is a number, and a value that is not plainly one fails closed.
    fn tier(&mut self, key: &str, v: &Value, consequence: &str) -> Option<u8> {
        let t = whole(v, 1, 3).map(|n| n as u8);
        if t.is_none() {
            let hint = if v.as_str().is_some_and(|s| matches!(s.trim(), "1" | "2" | "3")) {
                " (a number, not text)"
            } else {
                ""
            };
            self.bad(key, v, &format!("the number 1, 2 or 3{hint}"), consequence.to_string());
        }
        t
    }
}

/// Read the settings object over `base` (the engine settings in force: keys the client does not send keep
/// their value). Tier settings are read afresh each time: what is absent is unset.
pub fn parse(value: &Value, base: &EngineConfig) -> Settings {
    let mut out = Settings {
        engine: base.clone(),
        tiers: UserTierSettings::default(),
        remote: None,
        cloud_confirm: None,
        actions: ActionSettings::default(),
        problems: vec![],
        given: false,
    };
    let mut c = Checker { problems: vec![] };
    let v = value.get("lokal").unwrap_or(value);
    let obj: &Map<String, Value> = match v {
        Value::Null => return out,
        Value::Object(o) => o,
        other => {
            out.given = true;
            c.bad(
                "lokal",
                other,
                "an object of settings",
                "every setting keeps its default and every folder is Tier 3".into(),
            );
            out.tiers.minimum_tier = Some(3);
            out.problems = c.problems;
            return out;
        }
    };
    out.given = !obj.is_empty();
    let engine_keys: Vec<String> = match serde_json::to_value(EngineConfig::default()) {
        Ok(Value::Object(m)) => m.keys().cloned().collect(),
        _ => vec![],
    };
    let e = &mut out.engine;
    for (key, val) in obj {
        // null means "not set": the kept value stands (editors send null for cleared settings).
        if val.is_null() {
            continue;
        }
        match key.as_str() {
            "modelPath" => match val.as_str() {
                // VS Code's default for a string setting is "", which means the embedded default here.
                Some(s) if s.trim().is_empty() => e.model_path = None,
                Some(s) => e.model_path = Some(PathBuf::from(s)),
                None => {
                    let keep = e
                        .model_path
                        .as_ref()
                        .map(|p| p.display().to_string())
                        .unwrap_or_else(|| "the default model".into());
                    c.bad(key, val, "a path to a GGUF file", format!("using {keep}"))
                }
            },
            "sequences" => c.count(key, val, &mut e.sequences, 1, 64),
            "ctxPerSequence" => c.count(key, val, &mut e.ctx_per_sequence, 64, u32::MAX as u64),
            "prefixTokens" => c.count(key, val, &mut e.prefix_tokens, 1, usize::MAX as u64),
            "suffixTokens" => c.count(key, val, &mut e.suffix_tokens, 0, usize::MAX as u64),
            "maxTokens" => c.count(key, val, &mut e.max_tokens, 1, usize::MAX as u64),
            "maxLines" => c.count(key, val, &mut e.max_lines, 1, usize::MAX as u64),
            "hostCacheMb" => c.count(key, val, &mut e.host_cache_mb, 0, usize::MAX as u64),
            "reuseMinChunk" => c.count(key, val, &mut e.reuse_min_chunk, 0, usize::MAX as u64),
            "contextHoldMs" => c.count(key, val, &mut e.context_hold_ms, 0, 60_000),
            "threads" => {
                let mut n = e.threads.unwrap_or(0);
                let before = c.problems.len();
                c.count(key, val, &mut n, 1, 1024);
                if c.problems.len() == before {
                    e.threads = Some(n);
                } else if e.threads.is_none() {
                    c.problems.last_mut().unwrap().message =
                        format!("setting threads: {} is not {}; using every core", shown(val), range_text(1, 1024));
                }
            }
            "gpuLayers" => {
                let mut n = e.gpu_layers.unwrap_or(0);
                let before = c.problems.len();
                c.count(key, val, &mut n, 0, u32::MAX as u64);
                if c.problems.len() == before {
                    e.gpu_layers = Some(n);
                } else if e.gpu_layers.is_none() {
                    c.problems.last_mut().unwrap().message = format!(
                        "setting gpuLayers: {} is not {}; offloading every layer the backend can",
                        shown(val),
                        range_text(0, u32::MAX as u64)
                    );
                }
            }
            "cacheEnabled" => c.flag(key, val, &mut e.cache_enabled),
            "profileSync" => c.flag(key, val, &mut e.profile_sync),
            "fimLayout" => match serde_json::from_value(val.clone()) {
                Ok(l) => e.fim_layout = l,
                Err(_) => {
                    let keep = serde_json::to_string(&e.fim_layout).unwrap_or_default();
                    c.bad(key, val, "\"native\" or \"infill\"", format!("using {keep}"))
                }
            },
            "contextEnabled" => c.flag(key, val, &mut e.context_enabled),
            "batching" => c.flag(key, val, &mut e.batching),
            "longJobsYield" => c.flag(key, val, &mut e.long_jobs_yield),
            "prefetch" => c.flag(key, val, &mut e.prefetch),
            "longJobsPerSession" => c.count(key, val, &mut e.long_jobs_per_session, 1, 64),
            "speculative" => match serde_json::from_value(val.clone()) {
                Ok(m) => e.speculative = m,
                Err(_) => {
                    let keep = serde_json::to_string(&e.speculative).unwrap_or_default();
                    c.bad(key, val, "\"off\", \"auto\" or \"lookup\"", format!("using {keep}"))
                }
            },
            "draftMax" => c.count(key, val, &mut e.draft_max, 1, 64),
            "contextTokens" => c.count(key, val, &mut e.context_tokens, 0, usize::MAX as u64),
            "defaultTier" => out.tiers.default_tier = c.tier(key, val, "folders without a .lokal.toml are Tier 3"),
            "minimumTier" => {
                // A floor the user asked for must not vanish with a typo: every folder Tier 3 until it is fixed.
                out.tiers.minimum_tier =
                    Some(c.tier(key, val, "every folder is Tier 3 until it is fixed").unwrap_or(3));
            }
            "overrides" => match val.as_object() {
                Some(m) => {
                    for (folder, t) in m {
                        let what = format!("overrides[{folder:?}]");
                        // Someone asked for a stricter folder: a value that cannot be read makes it Tier 3.
                        let n = c.tier(&what, t, &format!("{folder} is Tier 3 until it is fixed")).unwrap_or(3);
                        out.tiers.overrides.insert(folder.clone(), n);
                    }
                }
                None => {
                    c.bad(key, val, "an object of folder → tier", "every folder is Tier 3 until it is fixed".into());
                    out.tiers.minimum_tier = Some(3);
                }
            },
            "cloudConfirm" => match val.as_bool() {
                Some(b) => out.cloud_confirm = Some(b),
                // Unreadable consent settings fail closed: the user is asked.
                None => c.bad(key, val, "true or false", "lokal asks before every cloud request".into()),
            },
            "remote" => match serde_json::from_value::<RemoteConfig>(val.clone()) {
                Ok(r) => out.remote = Some(r),
                Err(err) => c.bad(
                    key,
                    val,
                    &format!("an engine {{url, kind: \"llama-server\" | \"openai\", model}} ({err})"),
                    "the local model serves".into(),
                ),
            },
            "actionCandidates" => c.count(key, val, &mut out.actions.candidates, 1, 16),
            "actionTemperature" => match val.as_f64().filter(|t| (0.0..=2.0).contains(t)) {
                Some(t) => out.actions.temperature = t as f32,
                None => c.bad(key, val, "a number from 0 to 2", format!("using {}", out.actions.temperature)),
            },
            "actionMaxTokens" => c.count(key, val, &mut out.actions.max_tokens, 16, 4096),
            "actionBudgetSeconds" => {
                let mut secs = out.actions.budget.as_secs();
                c.count(key, val, &mut secs, 1, 600);
                out.actions.budget = std::time::Duration::from_secs(secs);
            }
            k if CLIENT_KEYS.contains(&k) => {}
            k if engine_keys.iter().any(|n| n == k) => {
                // An engine setting without a rule above: serde's own type check, still one key at a time.
                let mut merged = serde_json::to_value(&*e).unwrap_or(Value::Null);
                merged[k] = val.clone();
                match serde_json::from_value::<EngineConfig>(merged) {
                    Ok(n) => *e = n,
                    Err(err) => c.bad(key, val, &format!("valid ({err})"), "the setting keeps its value".into()),
                }
            }
            k => {
                let known: Vec<String> = engine_keys
                    .iter()
                    .cloned()
                    .chain(TIER_KEYS.iter().chain(ACTION_KEYS).map(|s| s.to_string()))
                    .collect();
                let message = match nearest(k, &known) {
                    Some(n) => format!("unknown setting {k:?} (did you mean {n:?}?); it is ignored"),
                    None => format!("unknown setting {k:?}; it is ignored (known: {})", known.join(", ")),
                };
                c.problems.push(Problem { key: k.to_string(), value: shown(val), message });
            }
        }
    }
    // The window sizes must fit the context together; which one is wrong is the user's call, so the four
    // keep their values from before and the message names them all.
    if let Err(why) = out.engine.validate() {
        let keys = ["ctxPerSequence", "prefixTokens", "suffixTokens", "maxTokens", "sequences"];
        let given: Vec<&str> = keys.iter().copied().filter(|k| obj.contains_key(*k)).collect();
        out.engine.ctx_per_sequence = base.ctx_per_sequence;
        out.engine.prefix_tokens = base.prefix_tokens;
        out.engine.suffix_tokens = base.suffix_tokens;
        out.engine.max_tokens = base.max_tokens;
        out.engine.sequences = base.sequences;
        if out.engine.validate().is_err() {
            let d = EngineConfig::default();
            (
                out.engine.ctx_per_sequence,
                out.engine.prefix_tokens,
                out.engine.suffix_tokens,
                out.engine.max_tokens,
                out.engine.sequences,
            ) = (d.ctx_per_sequence, d.prefix_tokens, d.suffix_tokens, d.max_tokens, d.sequences);
        }
        let value = Value::Object(given.iter().map(|k| (k.to_string(), obj[*k].clone())).collect());
        let g = &out.engine;
        c.problems.push(Problem {
            key: given.join(", "),
            value: shown(&value),
            message: format!(
                "settings {}: {why}; using ctxPerSequence {}, prefixTokens {}, suffixTokens {}, maxTokens {}, sequences {}",
                given.join(", "),
                g.ctx_per_sequence,
                g.prefix_tokens,
                g.suffix_tokens,
                g.max_tokens,
                g.sequences
            ),
        });
    }
    out.problems = c.problems;
    out
}

#[cfg(test)]
#[path = "settings_tests.rs"]
mod tests;
