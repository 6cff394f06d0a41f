//! Code actions and commands that run the local model on a selection or a design document.
use crate::lsp::{invalid_params, Backend};
use lokal_engine::CancelToken;
use serde_json::Value;
use tower_lsp_server::jsonrpc::Result;
use tower_lsp_server::ls_types::*;

pub const IMPLEMENT_FROM_DESIGN_DOC: &str = "lokal.implementFromDesignDoc";
pub const REWRITE: &str = "lokal.rewrite";

pub fn list(_b: &Backend, _uri: &Uri, _range: Range, _ctx: &CodeActionContext) -> Vec<CodeActionOrCommand> {
    Vec::new()
}

pub async fn resolve(_b: &Backend, action: CodeAction, _cancel: CancelToken) -> Result<CodeAction> {
    Ok(action)
}

pub async fn execute(_b: &Backend, command: &str, _arg: Value, _token: Option<ProgressToken>, _cancel: CancelToken) -> Result<Option<Value>> {
    Err(invalid_params(format!("unknown command {command}")))
}
