//! Zed extension: starts the `lokal` binary found on PATH and passes the user's initialization options
//! (`lsp.lokal.initialization_options` in settings.json) through.
use zed_extension_api::{self as zed, settings::LspSettings, LanguageServerId, Result};

struct Lokal;

impl zed::Extension for Lokal {
    fn new() -> Self {
        Lokal
    }

    fn language_server_command(&mut self, _id: &LanguageServerId, worktree: &zed::Worktree) -> Result<zed::Command> {
        let command = worktree
            .which("lokal")
            .ok_or_else(|| "lokal is not on PATH: build it (cargo build --release) and add target/release to PATH".to_string())?;
        Ok(zed::Command { command, args: vec!["--stdio".into()], env: worktree.shell_env() })
    }

    fn language_server_initialization_options(&mut self, id: &LanguageServerId, worktree: &zed::Worktree) -> Result<Option<zed::serde_json::Value>> {
        Ok(LspSettings::for_worktree(id.as_ref(), worktree).ok().and_then(|s| s.initialization_options))
    }
}

zed::register_extension!(Lokal);
