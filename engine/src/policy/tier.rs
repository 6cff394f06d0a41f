//! Which client tier a workspace folder is in, from the `.lokal.toml` committed in the client's repository.
//! Fail closed: anything that cannot be determined is Tier 3.
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub const TAG_FILE: &str = ".lokal.toml";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(into = "u8", try_from = "u8")]
pub enum Tier {
    /// A cloud model is allowed under a data-processing agreement.
    Cloud = 1,
    /// Only anonymized structure may leave the machine.
    Hybrid = 2,
    /// Nothing leaves the machine.
    Local = 3,
}

impl From<Tier> for u8 {
    fn from(t: Tier) -> u8 {
        t as u8
    }
}

impl TryFrom<u8> for Tier {
    type Error = String;
    fn try_from(n: u8) -> Result<Tier, String> {
        match n {
            1 => Ok(Tier::Cloud),
            2 => Ok(Tier::Hybrid),
            3 => Ok(Tier::Local),
            _ => Err(format!("tier must be 1, 2 or 3, not {n}")),
        }
    }
}

impl Tier {
    pub fn describe(self) -> &'static str {
        match self {
            Tier::Cloud => "Tier 1 (cloud allowed under a DPA)",
            Tier::Hybrid => "Tier 2 (hybrid: only anonymized structure may leave)",
            Tier::Local => "Tier 3 (fully local: nothing leaves this machine)",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TierSource {
    /// The repository's `.lokal.toml`.
    File,
    /// A user setting made it stricter.
    User,
    /// No tag file: the user's default (itself Tier 3 unless configured).
    Default,
    /// The tag file could not be read or parsed.
    Fallback,
}

/// An on-premises engine the client allows for this repository; connections to it count as local.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    #[serde(default)]
    pub name: Option<String>,
    pub url: String,
}

impl Endpoint {
    pub fn host(&self) -> Option<String> {
        host_of(&self.url)
    }
}

/// `host:port` of a URL (port made explicit), lowercased.
pub fn host_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?.rsplit('@').next()?.to_ascii_lowercase();
    if authority.is_empty() {
        return None;
    }
    let has_port = authority.rsplit_once(':').is_some_and(|(_, p)| p.chars().all(|c| c.is_ascii_digit()) && !authority.ends_with(']'));
    Some(if has_port {
        authority
    } else {
        let port = if scheme.eq_ignore_ascii_case("https") { 443 } else { 80 };
        format!("{authority}:{port}")
    })
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TagFile {
    tier: Option<u8>,
    #[serde(default)]
    endpoints: Vec<Endpoint>,
}

/// A problem with a tag file, for a diagnostic on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TagDiagnostic {
    pub file: PathBuf,
    pub message: String,
    /// 0-based line and column of the problem, when the parser knows it.
    pub line: u32,
    pub column: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FolderPolicy {
    pub root: PathBuf,
    pub tier: Tier,
    pub source: TierSource,
    pub endpoints: Vec<Endpoint>,
    pub diagnostics: Vec<TagDiagnostic>,
}

/// User settings: a default for untagged folders and per-folder overrides, which may only make a folder
/// stricter.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct UserTierSettings {
    pub default_tier: Option<u8>,
    /// Folder path → tier.
    pub overrides: std::collections::BTreeMap<String, u8>,
}

fn line_col(text: &str, offset: usize) -> (u32, u32) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() as u32;
    let col = before.rsplit('\n').next().map(|l| l.chars().count()).unwrap_or(0) as u32;
    (line, col)
}

/// Read a folder's tag file and the user's settings into the folder's policy.
pub fn resolve_folder(root: &Path, user: &UserTierSettings) -> FolderPolicy {
    let file = root.join(TAG_FILE);
    let default = user.default_tier.and_then(|t| Tier::try_from(t).ok()).unwrap_or(Tier::Local);
    let mut p = FolderPolicy { root: root.to_path_buf(), tier: default, source: TierSource::Default, endpoints: vec![], diagnostics: vec![] };
    match std::fs::read_to_string(&file) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            p.tier = Tier::Local;
            p.source = TierSource::Fallback;
            p.diagnostics.push(TagDiagnostic { file: file.clone(), message: format!("cannot read {TAG_FILE}: {e}; treating this folder as Tier 3"), line: 0, column: 0 });
        }
        Ok(text) => match toml::from_str::<TagFile>(&text) {
            Ok(TagFile { tier: Some(n), endpoints }) => match Tier::try_from(n) {
                Ok(t) => {
                    p.tier = t;
                    p.source = TierSource::File;
                    p.endpoints = endpoints;
                }
                Err(e) => {
                    let at = text.find("tier").unwrap_or(0);
                    let (line, column) = line_col(&text, at);
                    p.tier = Tier::Local;
                    p.source = TierSource::Fallback;
                    p.diagnostics.push(TagDiagnostic { file: file.clone(), message: format!("{e}; treating this folder as Tier 3"), line, column });
                }
            },
            Ok(TagFile { tier: None, .. }) => {
                p.tier = Tier::Local;
                p.source = TierSource::Fallback;
                p.diagnostics.push(TagDiagnostic { file: file.clone(), message: format!("{TAG_FILE} has no `tier = 1|2|3`; treating this folder as Tier 3"), line: 0, column: 0 });
            }
            Err(e) => {
                let (line, column) = e.span().map(|s| line_col(&text, s.start)).unwrap_or((0, 0));
                p.tier = Tier::Local;
                p.source = TierSource::Fallback;
                p.diagnostics.push(TagDiagnostic {
                    file: file.clone(),
                    message: format!("{TAG_FILE} does not parse ({}); treating this folder as Tier 3", e.message()),
                    line,
                    column,
                });
            }
        },
    }
    // A user override may only make the folder stricter.
    let key = root.to_string_lossy();
    if let Some(t) = user.overrides.get(key.as_ref()).and_then(|&n| Tier::try_from(n).ok()) {
        if t > p.tier {
            p.tier = t;
            p.source = TierSource::User;
        }
    }
    p
}

/// The tiers of every folder of a (multi-root) workspace.
#[derive(Debug, Clone, Default, Serialize)]
pub struct WorkspacePolicy {
    pub folders: Vec<FolderPolicy>,
}

impl WorkspacePolicy {
    pub fn resolve(roots: &[PathBuf], user: &UserTierSettings) -> Self {
        Self { folders: roots.iter().map(|r| resolve_folder(r, user)).collect() }
    }

    /// The innermost folder containing `path`; files outside every folder get no folder (and so Tier 3).
    pub fn folder_for(&self, path: &Path) -> Option<&FolderPolicy> {
        self.folders.iter().filter(|f| path.starts_with(&f.root)).max_by_key(|f| f.root.components().count())
    }

    pub fn tier_for(&self, path: &Path) -> Tier {
        self.folder_for(path).map(|f| f.tier).unwrap_or(Tier::Local)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder(name: &str, tag: Option<&str>) -> PathBuf {
        let d = std::env::temp_dir().join(format!("lokal-tier-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        if let Some(t) = tag {
            std::fs::write(d.join(TAG_FILE), t).unwrap();
        }
        d
    }

    #[test]
    fn tag_file_sets_the_tier_and_endpoints() {
        let d = folder("file", Some("tier = 2\n[[endpoints]]\nname = \"gpu\"\nurl = \"http://10.1.2.3:8080\"\n"));
        let p = resolve_folder(&d, &UserTierSettings::default());
        assert_eq!((p.tier, p.source), (Tier::Hybrid, TierSource::File));
        assert_eq!(p.endpoints[0].host().as_deref(), Some("10.1.2.3:8080"));
    }

    #[test]
    fn missing_tag_uses_the_user_default_which_defaults_to_tier_3() {
        let d = folder("missing", None);
        assert_eq!(resolve_folder(&d, &UserTierSettings::default()).tier, Tier::Local);
        let p = resolve_folder(&d, &UserTierSettings { default_tier: Some(1), ..Default::default() });
        assert_eq!((p.tier, p.source), (Tier::Cloud, TierSource::Default));
    }

    #[test]
    fn broken_or_out_of_range_tags_fail_closed_with_a_diagnostic() {
        for (name, text, line) in [("broken", "tier = = 1\n", 0), ("range", "# client X\ntier = 7\n", 1), ("notier", "endpoints = []\n", 0), ("unknown", "tier = 1\ncloud = true\n", 1)] {
            let d = folder(name, Some(text));
            let p = resolve_folder(&d, &UserTierSettings { default_tier: Some(1), ..Default::default() });
            assert_eq!((p.tier, p.source), (Tier::Local, TierSource::Fallback), "{name}");
            assert_eq!(p.diagnostics.len(), 1, "{name}");
            assert_eq!(p.diagnostics[0].line, line, "{name}: {:?}", p.diagnostics[0]);
        }
    }

    #[test]
    fn user_overrides_only_make_stricter() {
        let d = folder("override", Some("tier = 1\n"));
        let key = d.to_string_lossy().to_string();
        let stricter = UserTierSettings { overrides: [(key.clone(), 3)].into(), ..Default::default() };
        let p = resolve_folder(&d, &stricter);
        assert_eq!((p.tier, p.source), (Tier::Local, TierSource::User));
        let d2 = folder("looser", Some("tier = 3\n"));
        let looser = UserTierSettings { overrides: [(d2.to_string_lossy().to_string(), 1)].into(), ..Default::default() };
        assert_eq!(resolve_folder(&d2, &looser).tier, Tier::Local);
    }

    #[test]
    fn multi_root_folders_keep_their_own_tiers() {
        let a = folder("mr-a", Some("tier = 1\n"));
        let b = folder("mr-b", Some("tier = 3\n"));
        let w = WorkspacePolicy::resolve(&[a.clone(), b.clone()], &UserTierSettings::default());
        assert_eq!(w.tier_for(&a.join("src/x.rs")), Tier::Cloud);
        assert_eq!(w.tier_for(&b.join("y.py")), Tier::Local);
        assert_eq!(w.tier_for(Path::new("/elsewhere/z.rs")), Tier::Local);
    }

    #[test]
    fn hosts_are_normalised() {
        assert_eq!(host_of("https://API.example.com/v1").as_deref(), Some("api.example.com:443"));
        assert_eq!(host_of("http://127.0.0.1:9000").as_deref(), Some("127.0.0.1:9000"));
        assert_eq!(host_of("not a url"), None);
    }
}
