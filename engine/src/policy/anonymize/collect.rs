//! Finding a workspace's schema sources: SQL, CSV, JSON, YAML and `.env` files, skipping build output,
//! dependencies, tool configuration, binaries, symlinks (which could lead outside the workspace) and
//! anything past the size caps. The walk is sorted, so the same tree always gives the same payload.
use serde::Serialize;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    Sql,
    Csv,
    Json,
    Yaml,
    Env,
}

impl SourceKind {
    /// The kind of a file by its name; `None` for files that are not schema sources.
    pub fn of(name: &str) -> Option<SourceKind> {
        let lower = name.to_ascii_lowercase();
        if NOT_SAMPLES.contains(&lower.as_str())
            || lower.starts_with("tsconfig")
            || lower.starts_with(".eslintrc")
            || lower.starts_with(".prettierrc")
            || lower.ends_with(".map")
        {
            return None;
        }
        if lower == ".env" || lower.starts_with(".env.") || lower.ends_with(".env") {
            return Some(SourceKind::Env);
        }
        let ext = lower.rsplit_once('.').map(|(_, e)| e)?;
        Some(match ext {
            "sql" | "ddl" | "psql" | "mysql" => SourceKind::Sql,
            "csv" | "tsv" => SourceKind::Csv,
            "json" | "jsonl" | "ndjson" => SourceKind::Json,
            "yaml" | "yml" => SourceKind::Yaml,
            _ => return None,
        })
    }
}

/// Tool and package configuration: JSON and YAML, but not the client's data.
const NOT_SAMPLES: &[&str] = &[
    "package.json",
    "package-lock.json",
    "composer.json",
    "composer.lock",
    "jsconfig.json",
    "pnpm-lock.yaml",
    "yarn.lock",
    "lerna.json",
    "nx.json",
    "turbo.json",
    "angular.json",
    "renovate.json",
    "vercel.json",
    ".pre-commit-config.yaml",
    ".gitlab-ci.yml",
    "mkdocs.yml",
    ".golangci.yml",
    ".golangci.yaml",
    "codecov.yml",
    ".travis.yml",
    "appveyor.yml",
    "pubspec.lock",
    "deno.lock",
    "bun.lock",
];

/// Build output, dependencies and caches. Hidden directories are skipped too.
const SKIP_DIRS: &[&str] = &[
    "target",
    "node_modules",
    "vendor",
    "dist",
    "build",
    "out",
    "venv",
    "__pycache__",
    "coverage",
    "bower_components",
    "Pods",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CollectLimits {
    pub max_file_bytes: u64,
    pub max_total_bytes: u64,
    pub max_files: usize,
    pub max_depth: usize,
}

impl Default for CollectLimits {
    fn default() -> Self {
        CollectLimits { max_file_bytes: 1 << 20, max_total_bytes: 8 << 20, max_files: 300, max_depth: 16 }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SchemaFile {
    /// Relative to the workspace root, `/`-separated.
    pub path: String,
    pub kind: SourceKind,
    pub text: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SchemaSources {
    pub root: PathBuf,
    pub files: Vec<SchemaFile>,
    /// (path, reason) of sources left out: too large, binary, past a limit.
    pub skipped: Vec<(String, String)>,
}

impl SchemaSources {
    /// Sources given directly (tests, a single open file).
    pub fn from_files(files: impl IntoIterator<Item = (String, String)>) -> SchemaSources {
        let files = files.into_iter().filter_map(|(path, text)| {
            let name = path.rsplit('/').next().unwrap_or(&path).to_string();
            Some(SchemaFile { kind: SourceKind::of(&name)?, path, text })
        });
        SchemaSources { root: PathBuf::new(), files: files.collect(), skipped: vec![] }
    }
}

pub fn collect_schema_sources(root: &Path) -> SchemaSources {
    collect_schema_sources_with(root, &CollectLimits::default())
}

pub fn collect_schema_sources_with(root: &Path, limits: &CollectLimits) -> SchemaSources {
    let mut out = SchemaSources { root: root.to_path_buf(), ..Default::default() };
    let mut total = 0u64;
    walk(root, root, 0, limits, &mut total, &mut out);
    out
}

fn rel(root: &Path, p: &Path) -> String {
    p.strip_prefix(root)
        .unwrap_or(p)
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/")
}

fn walk(root: &Path, dir: &Path, depth: usize, limits: &CollectLimits, total: &mut u64, out: &mut SchemaSources) {
    if depth > limits.max_depth {
        return;
    }
    let Ok(rd) = std::fs::read_dir(dir) else { return };
    let mut entries: Vec<(String, PathBuf, std::fs::FileType)> = rd
        .filter_map(|e| e.ok())
        .filter_map(|e| Some((e.file_name().to_string_lossy().into_owned(), e.path(), e.file_type().ok()?)))
        .collect();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, path, ft) in entries {
        if ft.is_symlink() {
            continue;
        }
        if ft.is_dir() {
            if !name.starts_with('.') && !SKIP_DIRS.contains(&name.as_str()) {
                walk(root, &path, depth + 1, limits, total, out);
            }
            continue;
        }
        let Some(kind) = SourceKind::of(&name).filter(|_| ft.is_file()) else { continue };
        let rel = rel(root, &path);
        let skip = |out: &mut SchemaSources, why: &str| out.skipped.push((rel.clone(), why.to_string()));
        if out.files.len() >= limits.max_files {
            skip(out, "past the limit on the number of files");
            continue;
        }
        let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(u64::MAX);
        if len > limits.max_file_bytes {
            skip(out, "too large");
            continue;
        }
        if *total + len > limits.max_total_bytes {
            skip(out, "past the limit on total size");
            continue;
        }
        let Ok(bytes) = std::fs::read(&path) else {
            skip(out, "cannot be read");
            continue;
        };
        if bytes.iter().take(8192).any(|b| *b == 0) {
            skip(out, "binary");
            continue;
        }
        let Ok(text) = String::from_utf8(bytes) else {
            skip(out, "not UTF-8 text");
            continue;
        };
        *total += len;
        out.files.push(SchemaFile { path: rel, kind, text });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_by_name() {
        assert_eq!(SourceKind::of("001_init.sql"), Some(SourceKind::Sql));
        assert_eq!(SourceKind::of("Customers.CSV"), Some(SourceKind::Csv));
        assert_eq!(SourceKind::of(".env"), Some(SourceKind::Env));
        assert_eq!(SourceKind::of(".env.production"), Some(SourceKind::Env));
        assert_eq!(SourceKind::of("staging.env"), Some(SourceKind::Env));
        assert_eq!(SourceKind::of("seed.yml"), Some(SourceKind::Yaml));
        assert_eq!(SourceKind::of("events.jsonl"), Some(SourceKind::Json));
        for not in ["package.json", "tsconfig.base.json", "main.rs", "README", "app.js.map", "pnpm-lock.yaml"] {
            assert_eq!(SourceKind::of(not), None, "{not}");
        }
    }

    #[test]
    fn the_walk_skips_what_it_should() {
        let root = std::env::temp_dir().join(format!("lokal-collect-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        for d in ["db/migrations", "node_modules/x", "target", ".git", "data"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        std::fs::write(root.join("db/migrations/001.sql"), "CREATE TABLE a (id int);").unwrap();
        std::fs::write(root.join("db/migrations/002.sql"), "CREATE TABLE b (id int);").unwrap();
        std::fs::write(root.join("node_modules/x/seed.sql"), "x").unwrap();
        std::fs::write(root.join("target/t.json"), "{}").unwrap();
        std::fs::write(root.join(".git/config.json"), "{}").unwrap();
        std::fs::write(root.join("package.json"), "{}").unwrap();
        std::fs::write(root.join(".env"), "A=1").unwrap();
        std::fs::write(root.join("data/big.csv"), "a\n".repeat(3000)).unwrap();
        std::fs::write(root.join("data/bin.json"), b"{\0}").unwrap();
        std::fs::write(root.join("data/latin1.csv"), b"name\n\xe9\n").unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink("/etc", root.join("data/escape")).unwrap();
        let limits = CollectLimits { max_file_bytes: 4096, ..Default::default() };
        let s = collect_schema_sources_with(&root, &limits);
        let paths: Vec<&str> = s.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, vec![".env", "db/migrations/001.sql", "db/migrations/002.sql"]);
        let skipped: Vec<(&str, &str)> = s.skipped.iter().map(|(p, w)| (p.as_str(), w.as_str())).collect();
        assert_eq!(
            skipped,
            vec![("data/big.csv", "too large"), ("data/bin.json", "binary"), ("data/latin1.csv", "not UTF-8 text")]
        );
        let few = collect_schema_sources_with(&root, &CollectLimits { max_files: 1, ..limits });
        assert_eq!(few.files.len(), 1);
        assert!(few.skipped.iter().any(|(_, w)| w.contains("number of files")));
    }
}
