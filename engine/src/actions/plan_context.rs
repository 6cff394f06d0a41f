//! What phase 2 of a design document sees, as a developer would before writing the code: the files the
//! document names as they are now, the signatures of the workspace's modules the new code must fit, and
//! the folder's schema and data-structure files (SQL, migrations, `schema.*`, protobuf, JSON schema).
//! All of it stays on this machine: it goes into the local model's prompt only. A token budget bounds
//! it, because prompt processing is the cost on small machines.
use crate::syntax::design_doc::DesignPlan;
use crate::syntax::{Lang, SyntaxTree};
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

/// Files larger than this are not read for context (generated code, dumps).
const MAX_FILE_BYTES: u64 = 256 * 1024;
/// Files walked for signatures or schema at most: a huge tree must not stall the action.
const MAX_WALKED: usize = 4000;

/// Rough tokens of `s`: code runs about four bytes a token on the tokenizers in use.
pub fn approx_tokens(s: &str) -> usize {
    s.len().div_ceil(4)
}

/// The rendered sections, each already cut to its share of the budget.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlanContext {
    /// Current content of the files the document names (targets that exist, and other paths it mentions),
    /// by workspace-relative path.
    pub files: Vec<(String, String)>,
    /// Signatures of the workspace's other source files.
    pub signatures: String,
    /// Schema and data-structure files.
    pub schema: String,
}

impl PlanContext {
    pub fn tokens(&self) -> usize {
        self.files.iter().map(|(p, t)| approx_tokens(p) + approx_tokens(t)).sum::<usize>()
            + approx_tokens(&self.signatures)
            + approx_tokens(&self.schema)
    }

    /// The context as prompt text, with the file `except` left out of the named files (its prompt shows
    /// it in full elsewhere).
    pub fn render(&self, except: &str) -> String {
        let mut out = String::new();
        let files: String =
            self.files.iter().filter(|(p, _)| p != except).map(|(p, t)| format!("--- {p}\n{t}\n")).collect();
        if !files.is_empty() {
            out.push_str(&format!("Current content of the files the design names:\n{files}\n"));
        }
        if !self.signatures.is_empty() {
            out.push_str(&format!("Signatures in the workspace the new code must fit:\n{}\n", self.signatures));
        }
        if !self.schema.is_empty() {
            out.push_str(&format!("Schema and data structures of this folder:\n{}\n", self.schema));
        }
        out
    }
}

/// Reads what a developer would look at for `plan` in `workspace`, within about `budget` tokens: the
/// named files first (up to half), then schema files (up to a quarter), then signatures with what is
/// left. `open` holds the editor's unsaved texts by workspace-relative path; they win over the disk.
pub fn gather(
    workspace: &Path,
    plan: &DesignPlan,
    doc: &str,
    open: &HashMap<PathBuf, String>,
    budget: usize,
) -> PlanContext {
    let read = |rel: &Path| -> Option<String> {
        if let Some(t) = open.get(rel) {
            return Some(t.clone());
        }
        let p = workspace.join(rel);
        (p.metadata().ok()?.len() <= MAX_FILE_BYTES).then(|| std::fs::read_to_string(&p).ok()).flatten()
    };
    // The targets, then every other path the document mentions that exists.
    let mut named: Vec<PathBuf> = plan.targets.iter().map(|t| PathBuf::from(&t.path)).collect();
    for word in doc.split(|c: char| c.is_whitespace() || "`*()[]<>\"',;".contains(c)) {
        let w = word.trim_start_matches("./").trim_end_matches([':', '.']);
        if w.contains('/') && w.contains('.') && !w.starts_with('/') && !w.split('/').any(|c| c == "..") {
            let p = PathBuf::from(w);
            if !named.contains(&p) && read(&p).is_some() {
                named.push(p);
            }
        }
    }
    let mut out = PlanContext::default();
    let mut left = budget / 2;
    for rel in &named {
        let Some(text) = read(rel) else { continue };
        let (path, text) = (rel.display().to_string(), text.trim_end().to_string());
        let cost = approx_tokens(&path) + approx_tokens(&text);
        if cost > left {
            continue;
        }
        left -= cost;
        out.files.push((path, text));
    }
    let seen: BTreeSet<PathBuf> = named.iter().cloned().collect();
    let (schemas, sources) = walk(workspace);

    let mut left = budget / 4 + left;
    for rel in schemas.iter().filter(|p| !seen.contains(*p)) {
        let Some(text) = read(rel) else { continue };
        let block = format!("--- {}\n{}\n", rel.display(), text.trim_end());
        if approx_tokens(&block) > left {
            continue;
        }
        left -= approx_tokens(&block);
        out.schema.push_str(&block);
    }

    let mut left = budget.saturating_sub(out.tokens());
    // Files beside the targets first: the modules the new code sits with.
    let dirs: BTreeSet<PathBuf> =
        plan.targets.iter().filter_map(|t| Path::new(&t.path).parent().map(Path::to_path_buf)).collect();
    let mut sources: Vec<PathBuf> = sources.into_iter().filter(|p| !seen.contains(p)).collect();
    sources.sort_by_key(|p| (!p.parent().is_some_and(|d| dirs.contains(d)), p.clone()));
    for rel in sources {
        let Some(lang) = Lang::from_id_or_path("", &rel.to_string_lossy()) else { continue };
        let Some(text) = read(&rel) else { continue };
        let sigs = SyntaxTree::new(lang, &text).context(&text, None);
        if sigs.trim().is_empty() {
            continue;
        }
        let block = format!("--- {}\n{}\n", rel.display(), sigs.trim_end());
        if approx_tokens(&block) > left {
            continue;
        }
        left -= approx_tokens(&block);
        out.signatures.push_str(&block);
    }
    out
}

/// Whether a workspace-relative path is a schema or data-structure file.
pub fn is_schema(rel: &Path) -> bool {
    let name = rel.file_name().map(|n| n.to_string_lossy().to_lowercase()).unwrap_or_default();
    let ext = rel.extension().map(|e| e.to_string_lossy().to_lowercase()).unwrap_or_default();
    let in_migrations = rel.components().any(|c| c.as_os_str().to_string_lossy().to_lowercase().contains("migration"));
    matches!(ext.as_str(), "sql" | "proto" | "graphql" | "gql" | "prisma" | "avsc" | "xsd")
        || name.starts_with("schema.")
        || name.ends_with(".schema.json")
        || (in_migrations && !ext.is_empty())
}

/// Schema files and source files under `workspace` (relative, sorted), ignore rules applied.
fn walk(workspace: &Path) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let (mut schemas, mut sources) = (Vec::new(), Vec::new());
    for e in crate::context::index::files_under(workspace).take(MAX_WALKED) {
        let Ok(rel) = e.path().strip_prefix(workspace) else { continue };
        let rel = rel.to_path_buf();
        if is_schema(&rel) || is_json_schema(e.path()) {
            schemas.push(rel);
        } else if Lang::from_id_or_path("", &rel.to_string_lossy()).is_some() {
            sources.push(rel);
        }
    }
    (schemas, sources)
}

/// A `.json` file that declares itself a JSON schema.
fn is_json_schema(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "json")
        && path.metadata().is_ok_and(|m| m.len() <= MAX_FILE_BYTES)
        && std::fs::read_to_string(path).is_ok_and(|t| t.get(..512).unwrap_or(&t).contains("\"$schema\""))
}
