//! Which client tier a workspace folder is in, from the `.lokal.toml` committed in the client's repository.
//! Fail closed: anything that cannot be determined is Tier 3, and a user setting can only make a folder
//! stricter, because the tag file is the client's contract and a laptop setting must not loosen it.
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub const TAG_FILE: &str = ".lokal.toml";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
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
        Tier::from_number(i64::from(n)).ok_or_else(|| format!("tier must be 1, 2 or 3, not {n}"))
    }
}

impl Tier {
    pub fn from_number(n: i64) -> Option<Tier> {
        match n {
            1 => Some(Tier::Cloud),
            2 => Some(Tier::Hybrid),
            3 => Some(Tier::Local),
            _ => None,
        }
    }

    pub fn number(self) -> u8 {
        self as u8
    }

    pub fn describe(self) -> &'static str {
        match self {
            Tier::Cloud => "Tier 1 (cloud allowed under a DPA)",
            Tier::Hybrid => "Tier 2 (hybrid: only anonymized structure may leave)",
            Tier::Local => "Tier 3 (fully local: nothing leaves this machine)",
        }
    }
}

impl std::fmt::Display for Tier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tier {}", self.number())
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
#[serde(deny_unknown_fields)]
pub struct Endpoint {
    #[serde(default)]
    pub name: Option<String>,
    pub url: String,
}

impl Endpoint {
    /// `host:port`, port made explicit, as [`host_of`] gives it.
    pub fn host(&self) -> Option<String> {
        host_of(&self.url)
    }
}

/// A host the tier file lists as on-premises. `port: None` (an `allowed_hosts` entry without a port) means
/// every port of that host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostPattern {
    pub host: String,
    pub port: Option<u16>,
}

impl HostPattern {
    pub fn matches(&self, host: &str, port: u16) -> bool {
        self.host == host && self.port.is_none_or(|p| p == port)
    }

    /// An `allowed_hosts` entry: `host`, `host:port`, `[v6]:port`, or a whole URL.
    pub fn parse(entry: &str) -> Result<HostPattern, String> {
        let e = entry.trim();
        if e.is_empty() || e.contains('*') {
            return Err(format!("{entry:?} is not a host: wildcards and empty entries are not allowed"));
        }
        if e.contains("://") {
            let (host, port) = url_host_port(e).ok_or_else(|| format!("{entry:?} is not an http(s) URL"))?;
            return Ok(HostPattern { host, port: Some(port) });
        }
        let authority = e.split('/').next().unwrap_or("");
        let explicit_port = match authority.rsplit_once(':') {
            Some((h, p))
                if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) && (!h.contains(':') || h.ends_with(']')) =>
            {
                Some(p.parse::<u16>().map_err(|_| format!("{entry:?}: port out of range"))?)
            }
            _ => None,
        };
        let (host, _) = url_host_port(&format!("http://{authority}"))
            .ok_or_else(|| format!("{entry:?} is not a host name or address"))?;
        Ok(HostPattern { host, port: explicit_port })
    }
}

/// Host (lowercase, IDNA and IP forms normalised the way the HTTP client will see them) and port of an
/// http(s) URL. Parsing with the client's own URL parser means the policy and the connection agree on
/// which host is meant.
pub fn url_host_port(url: &str) -> Option<(String, u16)> {
    let u = reqwest::Url::parse(url.trim()).ok()?;
    if !matches!(u.scheme(), "http" | "https") {
        return None;
    }
    let host = u.host_str()?.to_ascii_lowercase();
    if host.is_empty() {
        return None;
    }
    Some((host, u.port_or_known_default()?))
}

/// `host:port` of a URL (port made explicit), lowercased.
pub fn host_of(url: &str) -> Option<String> {
    url_host_port(url).map(|(h, p)| format!("{h}:{p}"))
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TagFile {
    tier: Option<toml::Spanned<toml::Value>>,
    #[serde(default)]
    endpoints: Vec<toml::Spanned<Endpoint>>,
    #[serde(default)]
    allowed_hosts: Vec<toml::Spanned<String>>,
}

/// A problem with a tag file, for a diagnostic on it. Positions are 0-based; columns count characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TagDiagnostic {
    pub file: PathBuf,
    pub message: String,
    pub line: u32,
    pub column: u32,
    pub end_line: u32,
    pub end_column: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FolderPolicy {
    pub root: PathBuf,
    pub tier: Tier,
    pub source: TierSource,
    /// `[[endpoints]]` of the tag file that parse as http(s) URLs.
    pub endpoints: Vec<Endpoint>,
    /// Every host the tag file lists as on-premises (endpoints and `allowed_hosts`).
    pub local_hosts: Vec<HostPattern>,
    pub diagnostics: Vec<TagDiagnostic>,
}

impl FolderPolicy {
    /// The policy of a path outside every workspace folder: Tier 3, nothing listed.
    pub fn outside(path: &Path) -> FolderPolicy {
        FolderPolicy {
            root: path.to_path_buf(),
            tier: Tier::Local,
            source: TierSource::Default,
            endpoints: vec![],
            local_hosts: vec![],
            diagnostics: vec![],
        }
    }

    pub fn tag_file(&self) -> PathBuf {
        self.root.join(TAG_FILE)
    }

    /// Whether the tag file lists this host and port as on-premises.
    pub fn lists_host(&self, host: &str, port: u16) -> bool {
        self.local_hosts.iter().any(|h| h.matches(host, port))
    }

    /// What set the tier, for messages: the user must know which file or setting to look at.
    pub fn set_by(&self) -> String {
        let file = self.tag_file();
        match self.source {
            TierSource::File => format!("{}", file.display()),
            TierSource::User => format!("your lokal settings (stricter than {})", file.display()),
            TierSource::Default => format!("the default tier (no {} found)", file.display()),
            TierSource::Fallback => format!("{}, which is broken, so lokal fails closed", file.display()),
        }
    }
}

/// User settings: a default for untagged folders, per-folder overrides and a floor for every folder. None of
/// them can loosen a tag file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct UserTierSettings {
    /// Tier of folders without a tag file; Tier 3 when unset or not 1..=3.
    pub default_tier: Option<u8>,
    /// Folder path (or `file://` URI) → tier; applied only where it is stricter.
    pub overrides: BTreeMap<String, u8>,
    /// Every folder is at least this strict.
    pub minimum_tier: Option<u8>,
}

impl UserTierSettings {
    fn override_for(&self, root: &Path) -> Option<Tier> {
        // A value that is not 1..=3 fails closed: someone asked for a stricter folder, and a typo must not
        // leave it at the tag file's looser tier.
        self.overrides
            .iter()
            .filter(|(k, _)| override_path(k).as_deref() == Some(root))
            .map(|(_, &n)| Tier::try_from(n).unwrap_or(Tier::Local))
            .max()
    }
}

/// A key as a folder path. Editors hand out URIs percent-encoded (`my%20client`), and a stricter override
/// that silently failed to match would leave the folder at a looser tier, so URIs are decoded as URIs.
fn override_path(key: &str) -> Option<PathBuf> {
    if key.starts_with("file:") {
        return reqwest::Url::parse(key).ok()?.to_file_path().ok();
    }
    Some(PathBuf::from(key))
}

impl UserTierSettings {
    /// The floor for every folder; a value that is not 1..=3 fails closed to Tier 3.
    fn minimum(&self) -> Option<Tier> {
        self.minimum_tier.map(|n| Tier::try_from(n).unwrap_or(Tier::Local))
    }
}

fn line_col(text: &str, offset: usize) -> (u32, u32) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() as u32;
    let col = before.rsplit('\n').next().map(|l| l.chars().count()).unwrap_or(0) as u32;
    (line, col)
}

fn diagnostic(file: &Path, text: &str, span: Option<std::ops::Range<usize>>, message: String) -> TagDiagnostic {
    let span = span.unwrap_or(0..0);
    let (line, column) = line_col(text, span.start);
    let (end_line, end_column) = line_col(text, span.end.max(span.start));
    TagDiagnostic { file: file.to_path_buf(), message, line, column, end_line, end_column }
}

/// What the tag file says, or why it says nothing usable.
enum Tagged {
    Missing,
    Tier { tier: Tier, endpoints: Vec<Endpoint>, hosts: Vec<HostPattern>, warnings: Vec<TagDiagnostic> },
    Broken(TagDiagnostic),
}

fn read_tag(file: &Path) -> Tagged {
    let text = match std::fs::read_to_string(file) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Tagged::Missing,
        Err(e) => {
            return Tagged::Broken(diagnostic(
                file,
                "",
                None,
                format!("cannot read {TAG_FILE}: {e}; treating this folder as Tier 3"),
            ))
        }
        Ok(t) => t,
    };
    let tag: TagFile = match toml::from_str(&text) {
        Ok(t) => t,
        Err(e) => {
            let msg = format!("{TAG_FILE} does not parse ({}); treating this folder as Tier 3", e.message().trim());
            return Tagged::Broken(diagnostic(file, &text, e.span(), msg));
        }
    };
    let Some(tier_value) = tag.tier else {
        return Tagged::Broken(diagnostic(
            file,
            &text,
            None,
            format!("{TAG_FILE} has no `tier = 1|2|3`; treating this folder as Tier 3"),
        ));
    };
    let span = tier_value.span();
    let tier = match tier_value.into_inner() {
        toml::Value::Integer(n) => Tier::from_number(n).ok_or(format!("tier must be 1, 2 or 3, not {n}")),
        other => Err(format!("tier must be the number 1, 2 or 3, not {other}")),
    };
    let tier = match tier {
        Ok(t) => t,
        Err(m) => {
            return Tagged::Broken(diagnostic(file, &text, Some(span), format!("{m}; treating this folder as Tier 3")))
        }
    };
    // A bad on-premises entry is dropped (stricter), with a diagnostic; the tier itself stands.
    let mut warnings = Vec::new();
    let mut endpoints = Vec::new();
    let mut hosts = Vec::new();
    for e in tag.endpoints {
        let span = e.span();
        let ep = e.into_inner();
        match url_host_port(&ep.url) {
            Some((host, port)) => {
                hosts.push(HostPattern { host, port: Some(port) });
                endpoints.push(ep);
            }
            None => warnings.push(diagnostic(
                file,
                &text,
                Some(span),
                format!("endpoint url {:?} is not an http(s) URL; it is ignored", ep.url),
            )),
        }
    }
    for h in tag.allowed_hosts {
        let span = h.span();
        match HostPattern::parse(h.get_ref()) {
            Ok(p) => hosts.push(p),
            Err(m) => warnings.push(diagnostic(file, &text, Some(span), format!("allowed_hosts: {m}; it is ignored"))),
        }
    }
    warnings.sort_by_key(|d| (d.line, d.column));
    Tagged::Tier { tier, endpoints, hosts, warnings }
}

/// Read a folder's tag file and the user's settings into the folder's policy.
pub fn resolve_folder(root: &Path, user: &UserTierSettings) -> FolderPolicy {
    let file = root.join(TAG_FILE);
    let mut p = FolderPolicy::outside(root);
    match read_tag(&file) {
        Tagged::Missing => {
            p.tier = user.default_tier.and_then(|t| Tier::try_from(t).ok()).unwrap_or(Tier::Local);
            p.source = TierSource::Default;
        }
        Tagged::Broken(d) => {
            p.tier = Tier::Local;
            p.source = TierSource::Fallback;
            p.diagnostics.push(d);
        }
        Tagged::Tier { tier, endpoints, hosts, warnings } => {
            p.tier = tier;
            p.source = TierSource::File;
            p.endpoints = endpoints;
            p.local_hosts = hosts;
            p.diagnostics = warnings;
        }
    }
    let floor = [user.override_for(root), user.minimum()].into_iter().flatten().max();
    if let Some(t) = floor {
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

    /// The innermost folder containing `path` (longest root, compared by path components); `None` outside
    /// every folder, which callers treat as Tier 3.
    pub fn folder_for(&self, path: &Path) -> Option<&FolderPolicy> {
        self.folders.iter().filter(|f| path.starts_with(&f.root)).max_by_key(|f| f.root.components().count())
    }

    /// Like [`Self::folder_for`], with Tier 3 and nothing listed for paths outside every folder.
    pub fn policy_for(&self, path: &Path) -> FolderPolicy {
        self.folder_for(path).cloned().unwrap_or_else(|| FolderPolicy::outside(path))
    }

    pub fn tier_for(&self, path: &Path) -> Tier {
        self.folder_for(path).map(|f| f.tier).unwrap_or(Tier::Local)
    }
}

#[cfg(test)]
#[path = "tier_props.rs"]
mod props;

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

    fn user_default(n: u8) -> UserTierSettings {
        UserTierSettings { default_tier: Some(n), ..Default::default() }
    }

    #[test]
    fn tag_file_sets_the_tier_and_endpoints() {
        let d = folder("file", Some("tier = 2\n[[endpoints]]\nname = \"gpu\"\nurl = \"http://10.1.2.3:8080\"\n"));
        let p = resolve_folder(&d, &UserTierSettings::default());
        assert_eq!((p.tier, p.source), (Tier::Hybrid, TierSource::File));
        assert_eq!(p.endpoints[0].host().as_deref(), Some("10.1.2.3:8080"));
        assert!(p.lists_host("10.1.2.3", 8080) && !p.lists_host("10.1.2.3", 8081));
        assert!(p.diagnostics.is_empty());
    }

    #[test]
    fn allowed_hosts_with_and_without_ports() {
        let d = folder("hosts", Some("tier = 3\nallowed_hosts = [\"llm.internal:8080\", \"GPU-Box\", \"[::1]:9000\", \"https://vllm.corp/v1\"]\n"));
        let p = resolve_folder(&d, &UserTierSettings::default());
        assert_eq!((p.tier, p.source), (Tier::Local, TierSource::File), "{:?}", p.diagnostics);
        assert!(p.lists_host("llm.internal", 8080) && !p.lists_host("llm.internal", 80));
        assert!(p.lists_host("gpu-box", 1234), "no port: every port of that host");
        assert!(p.lists_host("[::1]", 9000));
        assert!(p.lists_host("vllm.corp", 443));
        assert!(p.diagnostics.is_empty());
    }

    #[test]
    fn bad_on_prem_entries_are_dropped_with_a_diagnostic_but_the_tier_stands() {
        let d = folder(
            "badhosts",
            Some("tier = 1\nallowed_hosts = [\"*\", \"ok.internal\"]\n[[endpoints]]\nurl = \"ftp://x\"\n"),
        );
        let p = resolve_folder(&d, &UserTierSettings::default());
        assert_eq!((p.tier, p.source), (Tier::Cloud, TierSource::File));
        assert_eq!(p.diagnostics.len(), 2, "{:?}", p.diagnostics);
        assert_eq!(p.local_hosts, vec![HostPattern { host: "ok.internal".into(), port: None }]);
        assert!(p.endpoints.is_empty());
        assert_eq!(
            p.diagnostics.iter().map(|d| d.line).collect::<Vec<_>>(),
            vec![1, 2],
            "in file order: {:?}",
            p.diagnostics
        );
    }

    #[test]
    fn missing_tag_uses_the_user_default_which_defaults_to_tier_3() {
        let d = folder("missing", None);
        let p = resolve_folder(&d, &UserTierSettings::default());
        assert_eq!((p.tier, p.source), (Tier::Local, TierSource::Default));
        let p = resolve_folder(&d, &user_default(1));
        assert_eq!((p.tier, p.source), (Tier::Cloud, TierSource::Default));
        assert_eq!(resolve_folder(&d, &user_default(9)).tier, Tier::Local, "an invalid default fails closed");
    }

    #[test]
    fn broken_or_out_of_range_tags_fail_closed_with_a_diagnostic() {
        for (name, text, line, column) in [
            ("broken", "tier = = 1\n", 0, 7),
            ("range", "# client X: tier 1 once\ntier = 7\n", 1, 7),
            ("negative", "tier = -1\n", 0, 7),
            ("string", "tier = \"2\"\n", 0, 7),
            ("float", "tier = 2.0\n", 0, 7),
            ("notier", "endpoints = []\n", 0, 0),
            ("unknown", "tier = 1\ncloud = true\n", 1, 0),
            ("empty", "", 0, 0),
        ] {
            let d = folder(name, Some(text));
            let p = resolve_folder(&d, &user_default(1));
            assert_eq!((p.tier, p.source), (Tier::Local, TierSource::Fallback), "{name}");
            assert_eq!(p.diagnostics.len(), 1, "{name}");
            let g = &p.diagnostics[0];
            assert_eq!((g.line, g.column), (line, column), "{name}: {g:?}");
            assert!(g.message.contains("Tier 3"), "{name}: {g:?}");
            assert!(g.end_line > g.line || g.end_column >= g.column, "{name}: {g:?}");
        }
    }

    #[test]
    fn unreadable_tag_fails_closed() {
        let d = folder("unreadable", None);
        std::fs::create_dir_all(d.join(TAG_FILE)).unwrap(); // a directory cannot be read as a file
        let p = resolve_folder(&d, &user_default(1));
        assert_eq!((p.tier, p.source), (Tier::Local, TierSource::Fallback));
        assert!(p.diagnostics[0].message.contains("cannot read"), "{:?}", p.diagnostics);
    }

    #[test]
    fn user_overrides_only_make_stricter() {
        let d = folder("override", Some("tier = 1\n"));
        let key = d.to_string_lossy().to_string();
        let stricter = UserTierSettings { overrides: [(format!("{key}/"), 3)].into(), ..Default::default() };
        let p = resolve_folder(&d, &stricter);
        assert_eq!((p.tier, p.source), (Tier::Local, TierSource::User));
        assert!(p.set_by().contains("settings"));
        let uri = UserTierSettings { overrides: [(format!("file://{key}"), 2)].into(), ..Default::default() };
        assert_eq!(resolve_folder(&d, &uri).tier, Tier::Hybrid);

        // An editor's URI for a folder with a space is percent-encoded; it must still match.
        let spaced = folder("my client", Some("tier = 1\n"));
        let encoded = format!("file://{}", spaced.to_string_lossy().replace(' ', "%20"));
        let by_uri = UserTierSettings { overrides: [(encoded, 3)].into(), ..Default::default() };
        assert_eq!(resolve_folder(&spaced, &by_uri).tier, Tier::Local);

        let d2 = folder("looser", Some("tier = 3\n"));
        let looser = UserTierSettings {
            overrides: [(d2.to_string_lossy().to_string(), 1)].into(),
            minimum_tier: Some(1),
            ..Default::default()
        };
        let p = resolve_folder(&d2, &looser);
        assert_eq!((p.tier, p.source), (Tier::Local, TierSource::File));

        let floor = UserTierSettings { minimum_tier: Some(2), ..Default::default() };
        assert_eq!(resolve_folder(&d, &floor).tier, Tier::Hybrid);
        let untagged = folder("floor-default", None);
        let p = resolve_folder(
            &untagged,
            &UserTierSettings { default_tier: Some(1), minimum_tier: Some(2), ..Default::default() },
        );
        assert_eq!((p.tier, p.source), (Tier::Hybrid, TierSource::User));

        // Values outside 1..=3 in the stricter-making settings fail closed instead of being ignored.
        let t1 = folder("bad-floor", Some("tier = 1\n"));
        for bad in [0u8, 4, 255] {
            let p = resolve_folder(&t1, &UserTierSettings { minimum_tier: Some(bad), ..Default::default() });
            assert_eq!((p.tier, p.source), (Tier::Local, TierSource::User), "minimumTier {bad}");
            let o =
                UserTierSettings { overrides: [(t1.to_string_lossy().to_string(), bad)].into(), ..Default::default() };
            assert_eq!(resolve_folder(&t1, &o).tier, Tier::Local, "override {bad}");
        }
    }

    #[test]
    fn multi_root_lookup_takes_the_innermost_folder() {
        let a = folder("mr-a", Some("tier = 1\n"));
        let inner = a.join("clients").join("bank");
        std::fs::create_dir_all(&inner).unwrap();
        std::fs::write(inner.join(TAG_FILE), "tier = 3\n").unwrap();
        let b = folder("mr-b", Some("tier = 2\n"));
        let w = WorkspacePolicy::resolve(&[a.clone(), inner.clone(), b.clone()], &UserTierSettings::default());
        assert_eq!(w.tier_for(&a.join("src/x.rs")), Tier::Cloud);
        assert_eq!(w.tier_for(&inner.join("schema.sql")), Tier::Local);
        assert_eq!(w.folder_for(&inner.join("schema.sql")).unwrap().root, inner);
        assert_eq!(w.tier_for(&b.join("y.py")), Tier::Hybrid);
        assert_eq!(w.tier_for(Path::new("/elsewhere/z.rs")), Tier::Local);
        // A sibling whose name merely starts with the root's name is outside it.
        let sibling = PathBuf::from(format!("{}-other/z.rs", a.display()));
        assert!(w.folder_for(&sibling).is_none());
        let outside = w.policy_for(&sibling);
        assert_eq!(outside.tier, Tier::Local);
        assert!(outside.local_hosts.is_empty());
    }

    #[test]
    fn resolution_serializes_with_lowercase_sources() {
        let d = folder("serde", Some("tier = 2\nallowed_hosts = [\"llm.internal:8080\"]\n"));
        let v = serde_json::to_value(resolve_folder(&d, &UserTierSettings::default())).unwrap();
        assert_eq!(v["tier"], 2);
        assert_eq!(v["source"], "file");
        assert_eq!(v["local_hosts"][0]["port"], 8080);
        let broken = folder("serde-broken", Some("tier = x"));
        let v = serde_json::to_value(resolve_folder(&broken, &UserTierSettings::default())).unwrap();
        assert_eq!((v["tier"].as_u64(), v["source"].as_str()), (Some(3), Some("fallback")));
        let s: UserTierSettings =
            serde_json::from_value(serde_json::json!({"defaultTier": 2, "minimumTier": 2})).unwrap();
        assert_eq!((s.default_tier, s.minimum_tier), (Some(2), Some(2)));
    }

    #[test]
    fn hosts_are_normalised() {
        assert_eq!(host_of("https://API.example.com/v1").as_deref(), Some("api.example.com:443"));
        assert_eq!(host_of("http://127.0.0.1:9000").as_deref(), Some("127.0.0.1:9000"));
        assert_eq!(host_of("http://2130706433/").as_deref(), Some("127.0.0.1:80"), "the client's parser decides");
        assert_eq!(host_of("http://user:pw@h.example:81/x").as_deref(), Some("h.example:81"));
        assert_eq!(host_of("not a url"), None);
        assert_eq!(host_of("file:///etc/passwd"), None);
    }
}
