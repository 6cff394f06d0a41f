//! The model every session uses unless told otherwise (`lokal models use`), and the one rule that picks
//! the model file.
//!
//! `config.toml` in lokal's config directory ([`super::registry::config_dir`]) holds `model = "/path"`;
//! other keys in the file are kept when it is rewritten. The model file is, first match wins:
//!
//! 1. the session's `modelPath` setting (or a command's `--model`): the most specific choice;
//! 2. `LOKAL_MODEL`;
//! 3. `model` in `config.toml` (`lokal models use`);
//! 4. the embedded default in the model directory.
//!
//! `modelPath` stays ahead of `LOKAL_MODEL` as it always was: the tests and scripts export `LOKAL_MODEL`
//! for the whole run and still give single sessions another file through `modelPath`.
use super::doctor::{Finding, Status};
use super::fit::FitConfig;
use super::hardware::Hardware;
use std::path::{Path, PathBuf};

pub const CONFIG_FILE: &str = "config.toml";

/// Where the model comes from (for `lokal doctor` and status lines).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelSource {
    Setting,
    Env,
    Config,
    Embedded,
}

/// The resolution order above, on plain values.
pub fn pick(
    setting: Option<&Path>,
    env: Option<&Path>,
    config: Option<&Path>,
    embedded: &Path,
) -> (PathBuf, ModelSource) {
    let nonempty = |p: Option<&Path>| p.filter(|p| !p.as_os_str().is_empty()).map(Path::to_path_buf);
    if let Some(p) = nonempty(setting) {
        return (p, ModelSource::Setting);
    }
    if let Some(p) = nonempty(env) {
        return (p, ModelSource::Env);
    }
    if let Some(p) = nonempty(config) {
        return (p, ModelSource::Config);
    }
    (embedded.to_path_buf(), ModelSource::Embedded)
}

/// [`pick`] with this process's environment and config file.
pub fn resolve(setting: Option<&Path>) -> (PathBuf, ModelSource) {
    let env = std::env::var_os("LOKAL_MODEL").map(PathBuf::from);
    let chosen = Choice::default_location().model().ok().flatten();
    let embedded = crate::config::default_model_dir().join(crate::config::DEFAULT_MODEL_FILE);
    pick(setting, env.as_deref(), chosen.as_deref(), &embedded)
}

/// `config.toml` in a config directory.
#[derive(Debug, Clone)]
pub struct Choice {
    pub dir: PathBuf,
}

impl Choice {
    pub fn default_location() -> Choice {
        Choice { dir: super::registry::config_dir() }
    }
    pub fn file(&self) -> PathBuf {
        self.dir.join(CONFIG_FILE)
    }

    fn table(&self) -> Result<toml::Table, String> {
        let p = self.file();
        match std::fs::read_to_string(&p) {
            Ok(s) => s.parse::<toml::Table>().map_err(|e| format!("{}: {e}", p.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(toml::Table::new()),
            Err(e) => Err(format!("{}: {e}", p.display())),
        }
    }

    /// The chosen model, if any. A file that does not parse is an error, not "no choice": the caller logs it.
    pub fn model(&self) -> Result<Option<PathBuf>, String> {
        let t = self.table()?;
        match t.get("model") {
            None => Ok(None),
            Some(toml::Value::String(s)) if !s.is_empty() => Ok(Some(PathBuf::from(s))),
            Some(v) => Err(format!("{}: `model` must be a file path, got {v}", self.file().display())),
        }
    }

    /// Make `model` the default (an absolute path), keeping the file's other keys.
    pub fn set_model(&self, model: &Path) -> Result<(), String> {
        let mut t = self.table()?;
        t.insert("model".into(), toml::Value::String(model.to_string_lossy().into_owned()));
        std::fs::create_dir_all(&self.dir).map_err(|e| format!("{}: {e}", self.dir.display()))?;
        let text = toml::to_string_pretty(&t).map_err(|e| e.to_string())?;
        // Write then rename: a session starting meanwhile reads the old file or the new one, never half.
        let tmp = self.dir.join(format!(".{CONFIG_FILE}.{}.tmp", std::process::id()));
        std::fs::write(&tmp, format!("# lokal's defaults; `model` is set by `lokal models use`. LOKAL_MODEL and the modelPath setting win over it.\n{text}"))
            .map_err(|e| format!("{}: {e}", tmp.display()))?;
        std::fs::rename(&tmp, self.file()).map_err(|e| format!("{}: {e}", self.file().display()))
    }
}

/// `lokal models use ID|PATH`: a catalog id or name found on disk, or a GGUF file; returns the path written.
pub fn use_model(what: &str, registry: &super::Registry, choice: &Choice) -> Result<PathBuf, String> {
    let as_path = Path::new(what);
    let path = if as_path.is_file() {
        super::gguf_meta::entry_from_gguf(as_path)?;
        as_path.canonicalize().map_err(|e| format!("{what}: {e}"))?
    } else if let Some(e) = registry.resolve(what) {
        e.path.expect("resolve returns entries on disk")
    } else if super::hub::source(&what.to_lowercase()).is_some() {
        return Err(format!("{what} is not downloaded yet: run `lokal models pull {what}` first"));
    } else {
        return Err(format!("{what}: no such file, and no model by that id or name on disk (see `lokal models`)"));
    };
    choice.set_model(&path)?;
    Ok(path)
}

/// `lokal doctor`'s model hint: a warning while the demo model is in use, naming the model to pull for
/// this machine; `None` for any other model.
pub fn doctor_hint(model: &Path, hw: &Hardware, cfg: &FitConfig) -> Option<Finding> {
    let demo = model.file_name().is_some_and(|f| f.eq_ignore_ascii_case(crate::config::DEFAULT_MODEL_FILE));
    if !demo {
        return None;
    }
    let report = super::models_report_for(hw, cfg, super::curated());
    let detail = "the embedded demo model (Gemma 3 270M, a base model without FIM) is in use: fine to try lokal, weak for daily completions".to_string();
    let fix = match report.recommended {
        Some(id) => {
            let name = super::curated().into_iter().find(|e| e.id == id).map(|e| format!("{} {}", e.name, e.quant)).unwrap_or_else(|| id.clone());
            match super::hub::source(&id) {
                Some(s) if s.pinned() => format!("for this machine lokal recommends {name}: `lokal models pull {id}` then `lokal models use {id}`"),
                Some(_) => format!("for this machine lokal recommends {name}: `lokal models pull {id} --sha256 HEX` (no checksum is pinned for it) then `lokal models use {id}`"),
                None => format!("for this machine lokal recommends {name}; the catalog has no download for it: get a GGUF and `lokal models use FILE`"),
            }
        }
        None => "no catalog model fits this machine with room to spare (`lokal models` shows why); keep the demo model or use an on-premises engine (`remote`)".to_string(),
    };
    Some(Finding { check: "model choice".into(), status: Status::Warn, detail, fix: Some(fix) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("lokal-choice-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn resolution_order() {
        let (s, e, c, d) = (Path::new("/s.gguf"), Path::new("/e.gguf"), Path::new("/c.gguf"), Path::new("/d.gguf"));
        assert_eq!(pick(Some(s), Some(e), Some(c), d), (s.into(), ModelSource::Setting));
        assert_eq!(pick(None, Some(e), Some(c), d), (e.into(), ModelSource::Env));
        assert_eq!(pick(None, None, Some(c), d), (c.into(), ModelSource::Config));
        assert_eq!(pick(None, None, None, d), (d.into(), ModelSource::Embedded));
        assert_eq!(
            pick(Some(Path::new("")), Some(Path::new("")), Some(c), d).1,
            ModelSource::Config,
            "empty values count as unset"
        );
    }

    #[test]
    fn config_file_keeps_other_keys_and_refuses_garbage() {
        let dir = tmp("cfg");
        let c = Choice { dir: dir.join("lokal") };
        assert_eq!(c.model(), Ok(None));
        std::fs::create_dir_all(&c.dir).unwrap();
        std::fs::write(c.file(), "other = 3\n").unwrap();
        c.set_model(Path::new("/models/x.gguf")).unwrap();
        assert_eq!(c.model(), Ok(Some(PathBuf::from("/models/x.gguf"))));
        let t: toml::Table = std::fs::read_to_string(c.file()).unwrap().parse().unwrap();
        assert_eq!(t["other"].as_integer(), Some(3));
        std::fs::write(c.file(), "model = 3\n").unwrap();
        assert!(c.model().unwrap_err().contains("file path"));
        std::fs::write(c.file(), "model = [\n").unwrap();
        assert!(c.model().is_err());
        assert!(c.set_model(Path::new("/y.gguf")).is_err(), "a broken file is the user's: not overwritten");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn doctor_names_the_model_to_pull() {
        let cfg = FitConfig::default();
        let demo = Path::new("/cache/lokal/models/gemma-3-270m-q4_k_m.gguf");
        let f = doctor_hint(demo, &Hardware::cpu_only(8, 24.0, 80.0), &cfg).expect("the demo model gets a hint");
        assert_eq!(f.status, Status::Warn);
        let fix = f.fix.unwrap();
        let id = fix.split("`lokal models pull ").nth(1).and_then(|r| r.split('`').next()).expect(&fix).to_string();
        let rec = super::super::models_report_for(&Hardware::cpu_only(8, 24.0, 80.0), &cfg, super::super::curated())
            .recommended
            .unwrap();
        assert_eq!(id, rec, "the catalog's recommendation");
        assert!(super::super::hub::source(&id).unwrap().pinned(), "and one that pulls without --sha256");
        assert!(fix.contains(&format!("`lokal models use {id}`")));
        assert!(doctor_hint(
            Path::new("/m/Qwen2.5-Coder-7B-Instruct-Q4_K_M.gguf"),
            &Hardware::cpu_only(8, 24.0, 80.0),
            &cfg
        )
        .is_none());
        let tiny = doctor_hint(demo, &Hardware::cpu_only(1, 2.0, 2.0), &cfg).unwrap();
        assert!(tiny.fix.unwrap().contains("no catalog model fits"));
    }

    use super::super::registry::tests::tiny_gguf;

    #[test]
    fn use_writes_the_choice_that_sessions_then_load() {
        let dir = tmp("use");
        let models = dir.join("models");
        std::fs::create_dir_all(&models).unwrap();
        let reg = super::super::Registry::at(dir.join("config"), &models);
        let choice = Choice { dir: dir.join("config") };
        let e = use_model("qwen2.5-coder-1.5b-q4_k_m", &reg, &choice).unwrap_err();
        assert!(e.contains("`lokal models pull qwen2.5-coder-1.5b-q4_k_m`"), "{e}");
        assert_eq!(choice.model(), Ok(None), "nothing written on failure");

        // A pulled catalog model, by id: found under the hub's file name.
        let pulled = models.join("Qwen2.5-Coder-1.5B-Instruct-Q4_K_M.gguf");
        tiny_gguf(&pulled, "Tiny");
        assert_eq!(use_model("qwen2.5-coder-1.5b-q4_k_m", &reg, &choice).unwrap(), pulled);
        assert_eq!(choice.model(), Ok(Some(pulled.clone())));
        let embedded = models.join(crate::config::DEFAULT_MODEL_FILE);
        let chosen = choice.model().unwrap();
        assert_eq!(
            pick(None, None, chosen.as_deref(), &embedded),
            (pulled.clone(), ModelSource::Config),
            "the choice beats the embedded default"
        );
        assert_eq!(
            pick(None, Some(Path::new("/e.gguf")), chosen.as_deref(), &embedded).1,
            ModelSource::Env,
            "LOKAL_MODEL beats the choice"
        );
        assert_eq!(
            pick(Some(Path::new("/s.gguf")), Some(Path::new("/e.gguf")), chosen.as_deref(), &embedded).1,
            ModelSource::Setting
        );

        // A file of one's own, by path; then things that are not models.
        let own = dir.join("own.gguf");
        tiny_gguf(&own, "Tiny");
        assert_eq!(use_model(own.to_str().unwrap(), &reg, &choice).unwrap(), own.canonicalize().unwrap());
        assert_eq!(choice.model(), Ok(Some(own.canonicalize().unwrap())));
        std::fs::write(dir.join("not.gguf"), b"hello").unwrap();
        assert!(use_model(dir.join("not.gguf").to_str().unwrap(), &reg, &choice).unwrap_err().contains("not a GGUF"));
        assert!(use_model("no-such-model", &reg, &choice).unwrap_err().contains("no such file"));
        assert_eq!(choice.model(), Ok(Some(own.canonicalize().unwrap())), "failures leave the choice alone");
        let _ = std::fs::remove_dir_all(dir);
    }
}
