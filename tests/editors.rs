//! Editor configurations checked against what each editor documents, and against the server's commands.
use std::path::{Path, PathBuf};

fn editors() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../editors")
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(editors().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// Helix's languages.toml schema (book: "Languages" and "Language server configuration").
const HELIX_SERVER_KEYS: [&str; 6] = ["command", "args", "config", "environment", "timeout", "required-root-patterns"];
const HELIX_FEATURES: [&str; 18] = [
    "format",
    "goto-definition",
    "goto-declaration",
    "goto-type-definition",
    "goto-reference",
    "goto-implementation",
    "signature-help",
    "hover",
    "document-highlight",
    "completion",
    "code-action",
    "workspace-command",
    "document-symbols",
    "workspace-symbols",
    "diagnostics",
    "rename-symbol",
    "inlay-hints",
    "document-colors",
];

#[test]
fn helix_languages_toml_follows_the_schema_and_adds_lokal_everywhere() {
    let v: toml::Value = toml::from_str(&read("helix/languages.toml")).expect("valid TOML");
    let servers = v["language-server"].as_table().expect("[language-server.*] tables");
    let lokal = servers["lokal"].as_table().unwrap();
    for k in lokal.keys() {
        assert!(HELIX_SERVER_KEYS.contains(&k.as_str()), "unknown language-server key {k}");
    }
    assert_eq!(lokal["command"].as_str(), Some("lokal"));
    assert_eq!(lokal["args"].as_array().unwrap()[0].as_str(), Some("--stdio"));
    assert!(lokal["timeout"].as_integer().is_some_and(|t| t > 0));
    let langs = v["language"].as_array().expect("[[language]] entries");
    let names: Vec<&str> = langs.iter().map(|l| l["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["rust", "python", "typescript", "go", "markdown"]);
    for l in langs {
        let list = l["language-servers"].as_array().expect("language-servers list");
        let mut has_lokal = false;
        for s in list {
            match s {
                toml::Value::String(n) => has_lokal |= n == "lokal",
                toml::Value::Table(t) => {
                    for k in t.keys() {
                        assert!(["name", "only-features", "except-features"].contains(&k.as_str()), "unknown key {k}");
                    }
                    has_lokal |= t["name"].as_str() == Some("lokal");
                    for f in t.get("only-features").and_then(|f| f.as_array()).into_iter().flatten() {
                        assert!(HELIX_FEATURES.contains(&f.as_str().unwrap()), "unknown feature {f}");
                    }
                }
                other => panic!("a language server is a name or a table, not {other}"),
            }
        }
        assert!(has_lokal, "{} lacks lokal", l["name"]);
        assert!(list.len() >= 2, "{} keeps its own server", l["name"]);
    }
}

#[test]
fn zed_extension_manifest_and_settings() {
    let m: toml::Value = toml::from_str(&read("zed/extension.toml")).unwrap();
    for k in ["id", "name", "version", "schema_version", "authors", "description"] {
        assert!(m.get(k).is_some(), "extension.toml lacks {k}");
    }
    assert_eq!(m["schema_version"].as_integer(), Some(1));
    let langs = m["language_servers"]["lokal"]["languages"].as_array().unwrap();
    assert!(langs.iter().any(|l| l.as_str() == Some("Rust")));
    let s: serde_json::Value = serde_json::from_str(&read("zed/settings.json")).unwrap();
    assert!(s["languages"]["Rust"]["language_servers"].as_array().unwrap().iter().any(|x| x == "lokal"));
    assert!(s["lsp"]["lokal"]["initialization_options"].is_object());
}

#[test]
fn vscode_extension_exposes_the_servers_commands() {
    let p: serde_json::Value = serde_json::from_str(&read("vscode/package.json")).unwrap();
    let cmds: Vec<&str> =
        p["contributes"]["commands"].as_array().unwrap().iter().map(|c| c["command"].as_str().unwrap()).collect();
    for c in lokal_server::COMMANDS {
        assert!(cmds.contains(c), "package.json lacks {c}");
    }
    let settings = p["contributes"]["configuration"]["properties"].as_object().unwrap();
    for k in ["lokal.path", "lokal.modelPath", "lokal.maxTokens"] {
        assert!(settings.contains_key(k), "package.json lacks setting {k}");
    }
    // Packaged as one esbuild bundle: the .vsix carries it, the manifest files and nothing else.
    assert_eq!(p["main"].as_str(), Some("./dist/extension.js"));
    assert!(p["scripts"]["vscode:prepublish"].as_str().unwrap().contains("bundle"));
    let ignore = read("vscode/.vscodeignore");
    assert!(ignore.lines().any(|l| l == "**") && ignore.lines().any(|l| l == "!dist/extension.js"), "{ignore}");
    assert!(
        read("vscode/LICENSE").contains("Apache License")
            && read("vscode/CHANGELOG.md").contains("Pull the Recommended Model")
    );
    assert!(cmds.contains(&"lokal.pullRecommendedModel"));
}
