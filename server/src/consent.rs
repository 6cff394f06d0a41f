//! The user's consent before a cloud request leaves: the exact request body is what the user may look at
//! and what is sent, byte for byte. Declining, dismissing, or an editor that cannot ask all send nothing,
//! and since no egress permit is asked for, nothing is audited either.
use crate::backend::Backend;
use lokal_engine::policy::tier::Tier;
use std::sync::atomic::{AtomicU64, Ordering};
use tower_lsp_server::ls_types::*;

pub(crate) const SEND: &str = "Send";
pub(crate) const SHOW: &str = "Show payload";
pub(crate) const CANCEL: &str = "Cancel";

/// A client that answers "Show" forever is not a user deciding; after this many rounds it counts as a no.
const MAX_ROUNDS: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Consent {
    Send,
    Declined,
}

impl Backend {
    /// Ask before `body` goes to `endpoint`. Tier 2 always asks; Tier 1 asks unless `cloudConfirm` is false.
    /// `Err` is a refusal to send (the editor cannot ask, or the question failed), never a silent send.
    pub(crate) async fn consent(
        &self,
        tier: Tier,
        action: &str,
        endpoint: &str,
        body: &[u8],
    ) -> std::result::Result<Consent, String> {
        let confirm = self.tier_settings.read().unwrap().cloud_confirm;
        if tier == Tier::Cloud && confirm == Some(false) {
            return Ok(Consent::Send);
        }
        let caps = self.caps();
        if !caps.ask {
            return Err(format!(
                "lokal: {action} was not sent: this editor cannot ask for approval (window/showMessageRequest \
                 with actions), and lokal never sends to the cloud unasked"
            ));
        }
        let what = match tier {
            Tier::Cloud => "the requirement and its code",
            _ => "the anonymized requirement and schema",
        };
        let mut preview: Option<String> = None;
        for _ in 0..MAX_ROUNDS {
            let seen = match &preview {
                Some(p) => format!(" The payload is in {p}."),
                None => format!(" \"{SHOW}\" opens exactly what would be sent."),
            };
            let message = format!("lokal: send {what} ({} bytes) to {endpoint} for {action}?{seen}", body.len());
            let items = [SEND, SHOW, CANCEL]
                .iter()
                .map(|t| MessageActionItem { title: t.to_string(), properties: Default::default() })
                .collect();
            let answer = self.client.show_message_request(MessageType::WARNING, message, Some(items)).await;
            match answer {
                Ok(Some(a)) if a.title == SEND => return Ok(Consent::Send),
                Ok(Some(a)) if a.title == SHOW => preview = Some(self.show_payload(body, caps.show_document).await?),
                Ok(_) => return Ok(Consent::Declined),
                Err(e) => return Err(format!("lokal: {action} was not sent: asking for approval failed: {e}")),
            }
        }
        Ok(Consent::Declined)
    }

    /// Write the payload to a read-only file outside every workspace folder (so no file watcher, index or
    /// commit picks it up) and open it in the editor. Returns the file's path, for the next question.
    async fn show_payload(&self, body: &[u8], can_show: bool) -> std::result::Result<String, String> {
        static N: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!("lokal-payload-{}", std::process::id()));
        let path = dir.join(format!("cloud-request-{}.json", N.fetch_add(1, Ordering::Relaxed)));
        let write = || -> std::io::Result<()> {
            std::fs::create_dir_all(&dir)?;
            std::fs::write(&path, body)?;
            let mut perm = std::fs::metadata(&path)?.permissions();
            perm.set_readonly(true);
            std::fs::set_permissions(&path, perm)
        };
        write().map_err(|e| format!("lokal: nothing was sent: the payload preview could not be written: {e}"))?;
        let shown = path.display().to_string();
        if can_show {
            if let Some(uri) = crate::conv::to_proto::uri(&path) {
                let params = ShowDocumentParams { uri, external: Some(false), take_focus: Some(true), selection: None };
                if let Err(e) = self.client.show_document(params).await {
                    tracing::warn!("lokal: window/showDocument failed for the payload preview: {e}");
                }
            }
        }
        Ok(shown)
    }
}
