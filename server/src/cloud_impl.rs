//! "Implement with the cloud model": Tier 1 only, where the client allows code to leave. The cloud's code
//! goes through the local actions' splice check and the compiler verifier before the user sees an edit, and
//! the edit is versioned against the document the request was built from.
use crate::backend::Backend;
use crate::consent::Consent;
use crate::conv::{from_proto, invalid_params, request_failed};
use crate::ext::{CloudArgs, IMPLEMENT_WITH_CLOUD};
use crate::work::{versioned_edit, workspace_edit};
use lokal_engine::policy::cloud::{self, CloudConfig, CloudRequest};
use lokal_engine::policy::tier::Tier;
use lokal_engine::syntax::Lang;
use lokal_engine::verify::{Change, Toolbox, Verifier};
use lokal_engine::CancelToken;
use serde_json::{json, Value};
use std::time::Duration;
use tower_lsp_server::jsonrpc::{Error, ErrorCode, Result};
use tower_lsp_server::ls_types::*;

const SYSTEM: &str = "You are an expert programmer. You get a file and a part of it to implement. Answer with \
the replacement for that part only, complete and compiling, in one fenced code block, and nothing else.";

/// Compilers on a cold workspace take a while; past this the edit is refused rather than applied unchecked.
const VERIFY_BUDGET: Duration = Duration::from_secs(180);

/// The code in the answer: the first fenced block's content, or the whole answer when it has none.
fn fenced(answer: &str) -> String {
    let Some(open) = answer.find("```") else { return answer.trim_matches('\n').to_string() };
    let after = &answer[open + 3..];
    let body = after.split_once('\n').map(|(_, b)| b).unwrap_or("");
    let code = body.split("```").next().unwrap_or(body);
    code.to_string()
}

impl Backend {
    /// Offered on a selection in Tier-1 folders only; the handler checks the tier again.
    pub(crate) fn cloud_impl_actions(&self, uri: &Uri, range: Range, language: &str) -> Vec<CodeActionOrCommand> {
        if self.tier_of(uri) != Tier::Cloud || range.start == range.end || language == "markdown" {
            return vec![];
        }
        let title = "lokal: implement with cloud model";
        let args = serde_json::to_value(CloudArgs { uri: uri.clone(), range: Some(range) }).unwrap_or_default();
        vec![CodeActionOrCommand::CodeAction(CodeAction {
            title: title.into(),
            kind: Some(CodeActionKind::new("refactor.rewrite.lokal.cloudImplement")),
            command: Some(Command {
                title: title.into(),
                command: IMPLEMENT_WITH_CLOUD.into(),
                arguments: Some(vec![args]),
            }),
            ..Default::default()
        })]
    }

    pub(crate) async fn implement_with_cloud(
        &self,
        args: CloudArgs,
        token: Option<ProgressToken>,
        cancel: CancelToken,
    ) -> Result<Option<Value>> {
        let folder = self.folder_of(&args.uri);
        let tier = folder.as_ref().map(|f| f.tier).unwrap_or(Tier::Local);
        let Some(folder) = folder.filter(|_| tier == Tier::Cloud) else {
            return Err(request_failed(format!(
                "lokal: implementing with the cloud model is for Tier 1 folders only; this file is {}",
                tier.describe()
            )));
        };
        let range =
            args.range.filter(|r| r.start != r.end).ok_or_else(|| invalid_params("select what to implement"))?;
        let (text, version, language, bytes) = {
            let doc = self
                .docs
                .get(&args.uri)
                .ok_or_else(|| invalid_params(format!("document not open: {}", args.uri.as_str())))?;
            (doc.text(), doc.version, doc.language_id.clone(), from_proto::byte_range(&doc, range, self.enc())?)
        };
        let file = from_proto::path(&args.uri).ok_or_else(|| invalid_params("not a file"))?;
        let rel = file.strip_prefix(&folder.root).map_err(|_| invalid_params("outside the folder"))?.to_path_buf();
        let lang = Lang::from_id_or_path(&language, args.uri.as_str());
        let fence = lang.map(Lang::fence).unwrap_or("");
        let user = format!(
            "File `{}`:\n```{fence}\n{text}\n```\n\nImplement this part of it; your code replaces exactly this text:\n```{fence}\n{}\n```\n",
            rel.display(),
            &text[bytes.clone()]
        );
        let rq = CloudRequest { system: Some(SYSTEM.into()), user, max_tokens: 4096, counts: Default::default() };
        let cfg = CloudConfig::from_env();
        let body = serde_json::to_vec(&cloud::request_body(cfg.provider, &cfg.model, &rq, false)).unwrap_or_default();
        if self.consent(tier, "cloud implementation", &cfg.endpoint(), &body).await.map_err(request_failed)?
            == Consent::Declined
        {
            return Ok(Some(json!({"sent": false})));
        }
        let title = "lokal: implementing with the cloud model";
        let work = self.work.begin(&self.client, title, token, self.can_create_progress(), cancel.clone()).await;
        let audit = self.audit_log();
        let answer = cloud::ask(Some(&folder), &cfg, "cloud implementation", false, &rq, &cancel, &audit).await;
        let outcome = self.check_cloud_code(&folder.root, &rel, lang, &text, bytes, answer, &cancel).await;
        let (code, checks) = match outcome {
            Ok(v) => v,
            Err(e) => {
                work.finish("not applied").await;
                return Err(e);
            }
        };
        if self.docs.get(&args.uri).map(|d| d.version) != Some(version) {
            work.finish("document changed").await;
            return Err(Error {
                code: ErrorCode::ContentModified,
                message: "lokal: the document changed while the cloud model worked; nothing was applied".into(),
                data: None,
            });
        }
        let edit =
            workspace_edit(vec![versioned_edit(args.uri.clone(), version, vec![TextEdit { range, new_text: code }])]);
        let applied = self.client.apply_edit(edit).await;
        work.finish("done").await;
        match applied {
            Ok(r) if r.applied => Ok(Some(json!({"sent": true, "applied": true, "checks": checks}))),
            Ok(r) => Err(request_failed(format!(
                "the editor did not apply the edit: {}",
                r.failure_reason.unwrap_or_default()
            ))),
            Err(e) => Err(request_failed(format!("workspace/applyEdit failed: {e}"))),
        }
    }

    /// The cloud's code, if it parses in place whole and the workspace's checks add no error with it.
    #[allow(clippy::too_many_arguments)]
    async fn check_cloud_code(
        &self,
        root: &std::path::Path,
        rel: &std::path::Path,
        lang: Option<Lang>,
        text: &str,
        bytes: std::ops::Range<usize>,
        answer: std::result::Result<String, String>,
        cancel: &CancelToken,
    ) -> Result<(String, String)> {
        let answer = answer.map_err(request_failed)?;
        let code = fenced(&answer);
        if code.trim().is_empty() {
            return Err(request_failed("lokal: the cloud model answered without code; nothing was applied"));
        }
        let spliced = crate::actions::checked_splice(lang, text, bytes.clone(), &code)?;
        // The local path keeps what parses of a small model's output; the cloud's answer is all or nothing.
        if spliced != code {
            return Err(request_failed("lokal: the cloud model's code does not parse in place; nothing was applied"));
        }
        let whole = format!("{}{}{}", &text[..bytes.start], code, &text[bytes.end..]);
        let (root, change, c) = (root.to_path_buf(), Change::new(rel, whole), cancel.clone());
        let verdict = tokio::task::spawn_blocking(move || {
            Verifier::new(Toolbox::from_env(), Verifier::default_state_dir()).verify(
                &root,
                &[change],
                &c,
                VERIFY_BUDGET,
            )
        })
        .await
        .map_err(|e| request_failed(format!("lokal: verification stopped: {e}")))?
        .map_err(|e| request_failed(format!("lokal: nothing was applied: {e}")))?;
        if !verdict.passed() {
            let files: Vec<String> = verdict.by_file().keys().map(|p| p.display().to_string()).collect();
            return Err(request_failed(format!(
                "lokal: the cloud model's code was not applied: {} report new errors in {}:\n{}",
                verdict.checks_label(),
                files.join(", "),
                verdict.errors_text(8)
            )));
        }
        Ok((code, verdict.checks_label()))
    }
}

#[cfg(test)]
mod tests {
    use super::fenced;

    #[test]
    fn the_code_is_the_first_fenced_block() {
        assert_eq!(fenced("Here:\n```rust\nfn a() {}\n```\nmore\n```x```"), "fn a() {}\n");
        assert_eq!(fenced("fn a() {}\n"), "fn a() {}");
        assert_eq!(fenced("```\nfn a() {}"), "fn a() {}");
    }
}
