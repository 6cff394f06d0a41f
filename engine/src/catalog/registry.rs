//! Models the user added (bring your own GGUF), kept in `models.toml` under lokal's config directory:
//! `$LOKAL_CONFIG_DIR`, else `$XDG_CONFIG_HOME/lokal`, else `~/.config/lokal`.
//!
//! ```toml
//! [[model]]
//! path = "/models/my-coder-q5_k_m.gguf"
//! name = "My Coder"          # as read from the file when it was added
//! catalog = "qwen2.5-coder-7b-q4_k_m"   # set when the file is a catalog model
//! ```
//!
//! [`Registry::list`] gives the curated catalog plus every registered file that still exists: a catalog
//! model found on disk (registered, or under the model directory by its usual file name) gets its `path`;
//! a registered file whose catalog entry is gone, or that never was one, is listed from its own metadata
//! (`source: file`), so a model that leaves the catalog stays selectable while its file is on disk.
//! Registered files that disappeared are left out of the list (and kept in the file, in case a disk comes back).
//!
//! Every function takes the directory, so tests use their own temporary directories without touching the
//! process environment.
use super::entries::{curated, Entry};
use super::gguf_meta::entry_from_gguf;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub const FILE_NAME: &str = "models.toml";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Registered {
    pub path: PathBuf,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catalog: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct RegistryFile {
    #[serde(default)]
    model: Vec<Registered>,
}

/// lokal's config directory: `$LOKAL_CONFIG_DIR`, else `$XDG_CONFIG_HOME/lokal`, else `~/.config/lokal`.
pub fn config_dir() -> PathBuf {
    let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    var("LOKAL_CONFIG_DIR")
        .or_else(|| var("XDG_CONFIG_HOME").map(|d| d.join("lokal")))
        .or_else(|| var("HOME").map(|h| h.join(".config").join("lokal")))
        .unwrap_or_else(|| PathBuf::from(".lokal"))
}

#[derive(Debug, Clone)]
pub struct Registry {
    /// The config directory holding `models.toml`.
    pub dir: PathBuf,
    /// Where catalog models are looked for by file name (lokal's model cache).
    pub model_dir: PathBuf,
}

impl Registry {
    /// The user's registry: [`config_dir`] and lokal's model cache directory.
    pub fn default_location() -> Registry {
        Registry { dir: config_dir(), model_dir: crate::config::default_model_dir() }
    }
    pub fn at(dir: impl Into<PathBuf>, model_dir: impl Into<PathBuf>) -> Registry {
        Registry { dir: dir.into(), model_dir: model_dir.into() }
    }
    pub fn file(&self) -> PathBuf {
        self.dir.join(FILE_NAME)
    }

    /// The registered files. A file that cannot be parsed is an error (it is the user's; we do not
    /// overwrite it silently).
    pub fn registered(&self) -> Result<Vec<Registered>, String> {
        let p = self.file();
        match std::fs::read_to_string(&p) {
            Ok(s) => toml::from_str::<RegistryFile>(&s).map(|f| f.model).map_err(|e| format!("{}: {e}", p.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(vec![]),
            Err(e) => Err(format!("{}: {e}", p.display())),
        }
    }

    /// Read the file's metadata and register it. Adding the same file again updates its record.
    pub fn add(&self, model: &Path) -> Result<Entry, String> {
        let model = model.canonicalize().map_err(|e| format!("{}: {e}", model.display()))?;
        let mut entry = entry_from_gguf(&model)?;
        let catalog = catalog_match(&model, &curated());
        let mut list = self.registered()?;
        list.retain(|r| r.path != model);
        list.push(Registered {
            path: model.clone(),
            name: Some(entry.name.clone()),
            catalog: catalog.as_ref().map(|c| c.id.clone()),
        });
        std::fs::create_dir_all(&self.dir).map_err(|e| format!("{}: {e}", self.dir.display()))?;
        let text = toml::to_string_pretty(&RegistryFile { model: list }).map_err(|e| e.to_string())?;
        // Write then rename, so a crash never leaves half a registry.
        let tmp = self.dir.join(format!(".{FILE_NAME}.{}.tmp", std::process::id()));
        std::fs::write(&tmp, format!("# Models added with `lokal models --add` (bring your own GGUF).\n{text}"))
            .map_err(|e| format!("{}: {e}", tmp.display()))?;
        std::fs::rename(&tmp, self.file()).map_err(|e| format!("{}: {e}", self.file().display()))?;
        if let Some(c) = catalog {
            entry.note = Some(format!("catalog model {}", c.id));
        }
        Ok(entry)
    }

    /// Remove a file from the registry (not from disk). Returns whether it was there.
    pub fn remove(&self, model: &Path) -> Result<bool, String> {
        let mut list = self.registered()?;
        let before = list.len();
        let canon = model.canonicalize().unwrap_or_else(|_| model.to_path_buf());
        list.retain(|r| r.path != canon && r.path != model);
        if list.len() == before {
            return Ok(false);
        }
        let text = toml::to_string_pretty(&RegistryFile { model: list }).map_err(|e| e.to_string())?;
        std::fs::write(self.file(), text).map_err(|e| format!("{}: {e}", self.file().display()))?;
        Ok(true)
    }

    /// The curated catalog and the user's files (see the module docs). A registry that cannot be read
    /// lists the catalog alone.
    pub fn list(&self) -> Vec<Entry> {
        self.list_with(curated())
    }

    /// [`Registry::list`] against a given catalog (tests pass a catalog that lost an entry).
    pub fn list_with(&self, mut catalog: Vec<Entry>) -> Vec<Entry> {
        // Catalog models already in the model cache, by their usual file names.
        for e in catalog.iter_mut() {
            if let Some(f) = &e.file_name {
                if let Some(p) = find_file(&self.model_dir, f) {
                    e.path = Some(p);
                }
            }
        }
        let mut extra = Vec::new();
        for r in self.registered().unwrap_or_default() {
            if !r.path.is_file() {
                continue;
            }
            let in_catalog = r.catalog.as_ref().and_then(|id| catalog.iter_mut().find(|e| &e.id == id));
            match in_catalog {
                Some(e) => e.path = Some(r.path.clone()),
                None => {
                    if extra.iter().any(|x: &Entry| x.path.as_ref() == Some(&r.path)) {
                        continue;
                    }
                    match entry_from_gguf(&r.path) {
                        Ok(mut e) => {
                            if let Some(id) = &r.catalog {
                                e.note = Some(format!("no longer in the catalog (was {id})"));
                            }
                            extra.push(e);
                        }
                        Err(err) => tracing::warn!("registered model {}: {err}", r.path.display()),
                    }
                }
            }
        }
        catalog.extend(extra);
        catalog
    }

    /// An entry that can be loaded now, by id, name or path: the first on disk. For the server's model
    /// selection.
    pub fn resolve(&self, what: &str) -> Option<Entry> {
        let w = what.to_lowercase();
        self.list().into_iter().filter(|e| e.path.is_some()).find(|e| {
            e.id.to_lowercase() == w
                || e.name.to_lowercase() == w
                || e.path.as_ref().is_some_and(|p| p.to_string_lossy() == what)
        })
    }
}

/// A catalog entry whose usual file name this file has (case-insensitive).
fn catalog_match(path: &Path, catalog: &[Entry]) -> Option<Entry> {
    let name = path.file_name()?.to_string_lossy().to_lowercase();
    catalog.iter().find(|e| e.file_name.as_deref().is_some_and(|f| f.eq_ignore_ascii_case(&name))).cloned()
}

fn find_file(dir: &Path, name: &str) -> Option<PathBuf> {
    let exact = dir.join(name);
    if exact.is_file() {
        return Some(exact);
    }
    std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|d| d.path())
        .find(|p| p.is_file() && p.file_name().is_some_and(|f| f.to_string_lossy().eq_ignore_ascii_case(name)))
}

#[cfg(test)]
pub(super) mod tests {
    use super::super::entries::Source;
    use super::super::gguf_meta::tests::Builder;
    use super::*;

    fn tmp(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "lokal-catalog-{tag}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    /// A small valid GGUF header (the catalog's tests need a real file to list, add or use).
    pub(in crate::catalog) fn tiny_gguf(path: &Path, name: &str) {
        let b = Builder::new()
            .str("general.architecture", "llama")
            .str("general.name", name)
            .u32("general.file_type", 7)
            .u32("llama.block_count", 4)
            .u32("llama.embedding_length", 64)
            .u32("llama.attention.head_count", 4)
            .u32("llama.attention.head_count_kv", 2)
            .u32("llama.context_length", 4096)
            .tensor("token_embd.weight", &[64, 100], 8);
        std::fs::write(path, b.bytes()).unwrap();
    }

    #[test]
    fn add_list_and_leave_the_catalog() {
        let dir = tmp("reg");
        let models = dir.join("models");
        std::fs::create_dir_all(&models).unwrap();
        let reg = Registry::at(dir.join("config"), &models);
        assert_eq!(reg.list().len(), curated().len(), "empty registry: the catalog");

        // Bring your own.
        let own = dir.join("my-model.gguf");
        tiny_gguf(&own, "My Model");
        let e = reg.add(&own).unwrap();
        assert_eq!((e.source, e.n_layers, e.quant.as_str()), (Source::File, 4, "Q8_0"));
        reg.add(&own).unwrap();
        assert_eq!(reg.registered().unwrap().len(), 1, "added once");
        let l = reg.list();
        assert_eq!(l.len(), curated().len() + 1);
        assert!(l
            .iter()
            .any(|e| e.name == "My Model" && e.path.as_deref() == Some(own.canonicalize().unwrap().as_path())));

        // A catalog model's file, registered: the catalog row gets the path.
        let cat = models.join("qwen2.5-coder-7b-instruct-q4_k_m.gguf");
        tiny_gguf(&cat, "Qwen2.5 Coder 7B Instruct");
        let e = reg.add(&cat).unwrap();
        assert!(e.note.as_deref().unwrap().contains("qwen2.5-coder-7b-q4_k_m"));
        let l = reg.list();
        assert_eq!(l.len(), curated().len() + 1, "not listed twice");
        assert_eq!(
            l.iter().find(|e| e.id == "qwen2.5-coder-7b-q4_k_m").unwrap().path.as_deref(),
            Some(cat.canonicalize().unwrap().as_path())
        );

        // The model leaves the catalog: still listed, from its file, while the file exists.
        let smaller: Vec<Entry> = curated().into_iter().filter(|e| e.id != "qwen2.5-coder-7b-q4_k_m").collect();
        let l = reg.list_with(smaller.clone());
        let kept = l.iter().find(|e| e.name == "Qwen2.5 Coder 7B Instruct").expect("still selectable");
        assert_eq!(kept.source, Source::File);
        assert!(kept.note.as_deref().unwrap().contains("no longer in the catalog"));
        let by_path = cat.canonicalize().unwrap().display().to_string();
        assert_eq!(
            reg.resolve(&by_path).unwrap().id,
            "qwen2.5-coder-7b-q4_k_m",
            "selectable by path while in the catalog"
        );
        // … and gone once the file is.
        std::fs::remove_file(&cat).unwrap();
        assert!(!reg.list_with(smaller).iter().any(|e| e.name == "Qwen2.5 Coder 7B Instruct"));

        assert!(reg.remove(&own).unwrap());
        assert!(!reg.list().iter().any(|e| e.name == "My Model"));
        assert!(reg.add(&dir.join("missing.gguf")).is_err());
        std::fs::write(dir.join("not.gguf"), b"hello").unwrap();
        assert!(reg.add(&dir.join("not.gguf")).unwrap_err().contains("not a GGUF"));
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn catalog_models_in_the_model_dir_are_found_by_name() {
        let dir = tmp("scan");
        let reg = Registry::at(dir.join("config"), &dir);
        std::fs::write(dir.join("Qwen2.5-Coder-1.5B-Instruct-Q4_K_M.gguf"), b"GGUF").unwrap();
        let l = reg.list();
        assert!(l.iter().find(|e| e.id == "qwen2.5-coder-1.5b-q4_k_m").unwrap().path.is_some());
        assert!(reg.resolve("qwen2.5-coder-1.5b-q4_k_m").is_some());
        assert!(reg.resolve("qwen2.5-coder-7b-q4_k_m").is_none(), "not on disk");
        // A broken registry file: the catalog is still listed, and adding refuses to overwrite it.
        std::fs::create_dir_all(&reg.dir).unwrap();
        std::fs::write(reg.file(), "[[model]\n").unwrap();
        assert_eq!(reg.list().len(), curated().len());
        assert!(reg.registered().is_err());
        let _ = std::fs::remove_dir_all(dir);
    }
}
