//! The one choke point for outbound connections. Nothing in lokal opens a socket to another host except
//! through a [`Permit`], a permit is only issued after the workspace's tier and allowlist agree, and the
//! only HTTP client that exists here is built inside a permit's send, so holding a permit is the only way
//! to reach the network.
//!
//! Why the rules are shaped this way:
//! * Hosts the tier file lists as on-premises count as local in every tier: the client named them. That
//!   includes loopback: `allowed_hosts = ["127.0.0.1:8080"]` is how a Tier-2 or Tier-3 repository allows a
//!   llama-server on this machine.
//! * Loopback that the tier file does not list counts as local only in Tier 1. In Tiers 2 and 3 it is
//!   treated like any other unlisted host: a loopback port may be an SSH tunnel or a proxy (LiteLLM and
//!   the like) to another machine, and a user setting must not be able to send a Tier-3 client's code
//!   there. A destination declared as a cloud model's endpoint is never local on loopback.
//! * Everything else is cloud: Tier 1 allows it, Tier 2 only for a payload marked anonymized, Tier 3 never.
//! * The client follows no redirects and uses no proxy: either would connect to a host nobody checked.
use super::audit::{self, AuditLog, AuditRecord, AuditWriter};
use super::tier::{FolderPolicy, Tier};
use crate::cancel::CancelToken;
use serde::Serialize;
use serde_json::Value;
use std::net::IpAddr;
use std::time::Duration;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Between two reads of an answer; a cloud model may think for a while before its first token.
const READ_TIMEOUT: Duration = Duration::from_secs(180);
/// How much of an error answer goes into a message.
const ERROR_BODY_CHARS: usize = 300;

/// How far a permitted connection goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Reach {
    /// This machine.
    Loopback,
    /// A host the workspace's tier file lists as on-premises.
    OnPrem,
    /// Anything else.
    Cloud,
}

/// Where a request would go, parsed once with the HTTP client's own URL parser so the policy decides about
/// exactly the host the client will connect to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    url: reqwest::Url,
    host: String,
    port: u16,
    loopback: bool,
    declared_cloud: bool,
}

impl Destination {
    /// A destination whose loopback addresses count as local (a model engine on this machine).
    pub fn parse(url: &str) -> Result<Destination, EgressDenied> {
        let u = reqwest::Url::parse(url.trim()).map_err(|_| EgressDenied::not_a_url(url))?;
        if !matches!(u.scheme(), "http" | "https") || u.cannot_be_a_base() {
            return Err(EgressDenied::not_a_url(url));
        }
        let host =
            u.host_str().filter(|h| !h.is_empty()).ok_or_else(|| EgressDenied::not_a_url(url))?.to_ascii_lowercase();
        let port = u.port_or_known_default().ok_or_else(|| EgressDenied::not_a_url(url))?;
        let loopback = is_loopback(&host);
        Ok(Destination { url: u, host, port, loopback, declared_cloud: false })
    }

    /// A cloud model's endpoint: even on a loopback address it is cloud, unless the tier file lists it.
    pub fn cloud(url: &str) -> Result<Destination, EgressDenied> {
        Ok(Destination { declared_cloud: true, ..Destination::parse(url)? })
    }

    pub fn url(&self) -> &str {
        self.url.as_str()
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn host_port(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    pub fn is_https(&self) -> bool {
        self.url.scheme() == "https"
    }
}

/// Loopback by address, or the name `localhost`, which resolvers answer without asking anyone.
fn is_loopback(host: &str) -> bool {
    if host == "localhost" {
        return true;
    }
    match host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>() {
        Ok(IpAddr::V4(a)) => a.is_loopback(),
        Ok(IpAddr::V6(a)) => a.is_loopback() || a.to_ipv4_mapped().is_some_and(|m| m.is_loopback()),
        Err(_) => false,
    }
}

/// Why a connection was refused; the message names the tier and what set it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct EgressDenied {
    /// The tier that refused; `None` when the destination itself is unusable.
    pub tier: Option<Tier>,
    pub destination: String,
    pub message: String,
}

impl EgressDenied {
    fn not_a_url(url: &str) -> Self {
        let shown: String = url.chars().take(200).collect();
        EgressDenied {
            tier: None,
            destination: shown.clone(),
            message: format!("lokal: {shown:?} is not an http(s) URL lokal will connect to"),
        }
    }
}

/// Leave to make one request, to one destination, for one action of one workspace. Not `Clone`: one permit,
/// one request, one audit record. Only [`check`] and [`Egress::check`] make one.
#[derive(Debug)]
pub struct Permit {
    dest: Destination,
    tier: Tier,
    workspace: String,
    action: String,
    anonymized: bool,
    /// The anonymizer's per-detector counts, for the audit record.
    counts: std::collections::BTreeMap<String, usize>,
    reach: Reach,
    audit: AuditLog,
}

/// The workspace a folder stands for in messages and records.
fn workspace_name(folder: Option<&FolderPolicy>) -> String {
    folder.map(|f| f.root.display().to_string()).unwrap_or_else(|| "(outside every workspace folder)".into())
}

/// The decision, without side effects.
fn decide(
    folder: Option<&FolderPolicy>,
    dest: &Destination,
    action: &str,
    anonymized: bool,
) -> Result<Reach, EgressDenied> {
    let tier = folder.map(|f| f.tier).unwrap_or(Tier::Local);
    if folder.is_some_and(|f| f.lists_host(&dest.host, dest.port)) {
        return Ok(Reach::OnPrem);
    }
    if dest.loopback && !dest.declared_cloud && tier == Tier::Cloud {
        return Ok(Reach::Loopback);
    }
    let workspace = workspace_name(folder);
    let set_by = folder.map(|f| f.set_by()).unwrap_or_else(|| "no workspace folder contains it".into());
    let deny = |message: String| EgressDenied { tier: Some(tier), destination: dest.host_port(), message };
    match tier {
        Tier::Local => {
            return Err(deny(format!(
                "lokal: {workspace} is {} (set by {set_by}); {action} would connect to {}, which is not an on-premises host listed in its {}{}",
                tier.describe(),
                dest.host_port(),
                super::tier::TAG_FILE,
                if dest.loopback { " (a loopback port may be a tunnel or proxy to another machine, so it must be listed too)" } else { "" }
            )))
        }
        Tier::Hybrid if !anonymized => {
            return Err(deny(format!(
                "lokal: {workspace} is {} (set by {set_by}); only the anonymized schema payload may go to {}, and the {action} payload is not anonymized",
                tier.describe(),
                dest.host_port()
            )))
        }
        Tier::Hybrid | Tier::Cloud => {}
    }
    // A cloud request carries an API key and client data: never in clear over a network.
    if !dest.is_https() && !dest.loopback {
        return Err(deny(format!(
            "lokal: {} is not listed as on-premises in {}, so it counts as cloud and must be reached over https, not {}",
            dest.host_port(),
            folder.map(|f| f.tag_file().display().to_string()).unwrap_or_else(|| super::tier::TAG_FILE.to_string()),
            dest.url.scheme()
        )));
    }
    Ok(Reach::Cloud)
}

fn issue(
    folder: Option<&FolderPolicy>,
    dest: &Destination,
    action: &str,
    anonymized: bool,
    reach: Reach,
    audit: AuditLog,
) -> Permit {
    Permit {
        dest: dest.clone(),
        tier: folder.map(|f| f.tier).unwrap_or(Tier::Local),
        workspace: workspace_name(folder),
        action: action.to_string(),
        anonymized,
        counts: Default::default(),
        reach,
        audit,
    }
}

/// Decide before any socket is opened, for a destination given as a URL (loopback counts as local).
/// `anonymized`: the payload is the Tier-2 anonymizer's output and nothing else. Refusals are not logged
/// here (use [`Egress::check`] for that); a permit from here records its use in the default audit log.
pub fn check(folder: Option<&FolderPolicy>, url: &str, action: &str, anonymized: bool) -> Result<Permit, EgressDenied> {
    let dest = Destination::parse(url)?;
    let reach = decide(folder, &dest, action, anonymized)?;
    Ok(issue(folder, &dest, action, anonymized, reach, AuditLog::default_location()))
}

/// The choke point with its audit log.
#[derive(Debug, Clone)]
pub struct Egress {
    audit: AuditLog,
}

impl Egress {
    pub fn new(audit: AuditLog) -> Self {
        Egress { audit }
    }

    /// With the audit log at its default location (`$LOKAL_AUDIT_LOG`, else the XDG data directory).
    pub fn from_env() -> Self {
        Egress::new(AuditLog::default_location())
    }

    pub fn audit(&self) -> &AuditLog {
        &self.audit
    }

    /// Decide before any socket is opened. A refusal in Tier 1 or 2 is logged as `denied`; a Tier-3
    /// workspace's log stays empty, because there nothing is ever meant to leave.
    pub fn check(
        &self,
        folder: Option<&FolderPolicy>,
        dest: &Destination,
        action: &str,
        anonymized: bool,
    ) -> Result<Permit, EgressDenied> {
        match decide(folder, dest, action, anonymized) {
            Ok(reach) => Ok(issue(folder, dest, action, anonymized, reach, self.audit.clone())),
            Err(denied) => {
                if denied.tier.is_some_and(|t| t != Tier::Local) {
                    let rec = AuditRecord {
                        time: audit::now_rfc3339(),
                        workspace: workspace_name(folder),
                        tier: denied.tier.map(Tier::number).unwrap_or(3),
                        action: action.to_string(),
                        host: dest.host_port(),
                        bytes: 0,
                        sha256: String::new(),
                        anonymized,
                        counts: Default::default(),
                        outcome: audit::outcome_denied(&denied.message),
                        user: None,
                    };
                    if let Err(e) = self.audit.append(&rec) {
                        tracing::error!("audit log {}: {e}", self.audit.path().display());
                    }
                }
                Err(denied)
            }
        }
    }
}

/// Why a permitted request did not succeed. No retries and no other destination: the caller reports it.
#[derive(Debug, thiserror::Error)]
pub enum EgressError {
    #[error(transparent)]
    Denied(#[from] EgressDenied),
    #[error("lokal: the audit log {path} cannot be written ({message}); nothing was sent")]
    Audit { path: String, message: String },
    #[error("lokal: {host}: {message}")]
    Connection { host: String, message: String },
    #[error("lokal: {host} answered {status}: {body}")]
    Status { host: String, status: u16, body: String },
    #[error("lokal: {host}: {message}")]
    Answer { host: String, message: String },
    #[error("lokal: cancelled")]
    Cancelled,
}

/// The one audit record of a permit's use. Written on completion, or on drop if the request's future was
/// dropped first (an LSP cancel drops handlers), so a use is never left unrecorded.
struct PendingRecord {
    /// `None` for a loopback request: it does not leave this machine, so there is nothing to record.
    writer: Option<AuditWriter>,
    rec: AuditRecord,
    written: bool,
}

impl PendingRecord {
    fn finish(&mut self, outcome: String) {
        self.rec.outcome = outcome;
        if let Some(w) = &mut self.writer {
            if let Err(e) = w.write(&self.rec) {
                tracing::error!("audit log {}: {e}", w.path().display());
            }
        }
        self.written = true;
    }
}

impl Drop for PendingRecord {
    fn drop(&mut self) {
        if !self.written {
            self.finish(audit::outcome_error("abandoned before it finished"));
        }
    }
}

fn error_text(e: &reqwest::Error) -> String {
    // reqwest's own message is generic; its source chain says what actually went wrong.
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}

impl Permit {
    pub fn url(&self) -> &str {
        self.dest.url()
    }
    pub fn host(&self) -> String {
        self.dest.host_port()
    }
    pub fn tier(&self) -> Tier {
        self.tier
    }
    pub fn workspace(&self) -> &str {
        &self.workspace
    }
    pub fn action(&self) -> &str {
        &self.action
    }
    pub fn anonymized(&self) -> bool {
        self.anonymized
    }

    /// Record what the anonymizer replaced (counts per detector) with this request's audit record.
    pub fn with_counts(mut self, counts: std::collections::BTreeMap<String, usize>) -> Self {
        self.counts = counts;
        self
    }

    /// Record the request as made for `user` (a daemon session's Unix user).
    pub fn audited_as(mut self, user: Option<&str>) -> Self {
        self.audit = self.audit.with_user(user.map(str::to_string));
        self
    }

    pub fn reach(&self) -> Reach {
        self.reach
    }
    /// Whether the destination counts as local (loopback or a listed on-premises host).
    pub fn is_local(&self) -> bool {
        self.reach != Reach::Cloud
    }

    fn client(&self) -> Result<reqwest::Client, String> {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .connect_timeout(CONNECT_TIMEOUT)
            .read_timeout(READ_TIMEOUT)
            .build()
            .map_err(|e| error_text(&e))
    }

    /// Open the audit log first: a request that could not be recorded is not made. Requests that leave this
    /// machine (cloud, and listed on-premises hosts) are recorded; loopback requests (a local engine serving
    /// completions, one per keystroke) are not, since nothing leaves the machine.
    fn begin(&self, bytes: &[u8]) -> Result<PendingRecord, EgressError> {
        let writer = if self.reach == Reach::Loopback {
            None
        } else {
            Some(self.audit.open().map_err(|e| EgressError::Audit {
                path: self.audit.path().display().to_string(),
                message: e.to_string(),
            })?)
        };
        let rec = AuditRecord {
            time: audit::now_rfc3339(),
            workspace: self.workspace.clone(),
            tier: self.tier.number(),
            action: self.action.clone(),
            host: self.dest.host_port(),
            bytes: bytes.len(),
            sha256: audit::sha256_hex(bytes),
            anonymized: self.anonymized,
            counts: self.counts.clone(),
            outcome: String::new(),
            user: None,
        };
        Ok(PendingRecord { writer, rec, written: false })
    }

    /// Send the request and check the status; the response is ready for its body.
    async fn send(
        &self,
        headers: &[(&str, String)],
        bytes: Vec<u8>,
        cancel: &CancelToken,
    ) -> Result<reqwest::Response, EgressError> {
        let host = self.dest.host_port();
        if cancel.is_cancelled() {
            return Err(EgressError::Cancelled);
        }
        let http = self.client().map_err(|message| EgressError::Connection { host: host.clone(), message })?;
        // Nothing to send is a GET (an engine's `/props`), anything else a JSON POST.
        let mut rq = if bytes.is_empty() {
            http.get(self.dest.url.clone())
        } else {
            http.post(self.dest.url.clone()).header("content-type", "application/json").body(bytes)
        };
        for (k, v) in headers {
            rq = rq.header(*k, v);
        }
        let resp = tokio::select! {
            r = rq.send() => r.map_err(|e| EgressError::Connection { host: host.clone(), message: error_text(&e) })?,
            _ = cancel.cancelled() => return Err(EgressError::Cancelled),
        };
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let body = tokio::select! {
            t = resp.text() => t.unwrap_or_default(),
            _ = cancel.cancelled() => return Err(EgressError::Cancelled),
        };
        let body = if status.is_redirection() {
            "redirects are not followed".to_string()
        } else {
            body.chars().take(ERROR_BODY_CHARS).collect()
        };
        Err(EgressError::Status { host, status: status.as_u16(), body })
    }

    /// POST a JSON body and return the JSON answer. Writes exactly one audit record, whatever the outcome;
    /// cancelling drops the connection.
    pub async fn post_json(
        self,
        headers: &[(&str, String)],
        body: &Value,
        cancel: &CancelToken,
    ) -> Result<Value, EgressError> {
        let bytes =
            serde_json::to_vec(body).map_err(|e| EgressError::Answer { host: self.host(), message: e.to_string() })?;
        self.exchange(headers, bytes, cancel).await
    }

    /// GET a JSON answer (an engine's properties). One audit record, of zero bytes sent.
    pub async fn get_json(self, headers: &[(&str, String)], cancel: &CancelToken) -> Result<Value, EgressError> {
        self.exchange(headers, Vec::new(), cancel).await
    }

    async fn exchange(
        self,
        headers: &[(&str, String)],
        bytes: Vec<u8>,
        cancel: &CancelToken,
    ) -> Result<Value, EgressError> {
        let mut record = self.begin(&bytes)?;
        let host = self.host();
        let result = async {
            let resp = self.send(headers, bytes, cancel).await?;
            let text = tokio::select! {
                t = resp.text() => t.map_err(|e| EgressError::Connection { host: host.clone(), message: error_text(&e) })?,
                _ = cancel.cancelled() => return Err(EgressError::Cancelled),
            };
            serde_json::from_str::<Value>(&text).map_err(|e| EgressError::Answer { host: host.clone(), message: format!("the answer is not JSON: {e}") })
        }
        .await;
        record.finish(match &result {
            Ok(_) => audit::outcome_ok(),
            Err(e) => audit::outcome_error(&e.to_string()),
        });
        result
    }

    /// POST a JSON body and hand the answer to `on_chunk` piece by piece as it arrives (server-sent events,
    /// for instance). The cancel flag is checked between chunks; `on_chunk` may stop the stream with an
    /// error. Writes exactly one audit record.
    pub async fn post_json_streaming(
        self,
        headers: &[(&str, String)],
        body: &Value,
        cancel: &CancelToken,
        mut on_chunk: impl FnMut(&[u8]) -> Result<(), String>,
    ) -> Result<(), EgressError> {
        use futures_util::StreamExt;
        let bytes =
            serde_json::to_vec(body).map_err(|e| EgressError::Answer { host: self.host(), message: e.to_string() })?;
        let mut record = self.begin(&bytes)?;
        let host = self.host();
        let result = async {
            let resp = self.send(headers, bytes, cancel).await?;
            let mut stream = resp.bytes_stream();
            loop {
                if cancel.is_cancelled() {
                    return Err(EgressError::Cancelled);
                }
                let next = tokio::select! {
                    n = stream.next() => n,
                    _ = cancel.cancelled() => return Err(EgressError::Cancelled),
                };
                match next {
                    None => return Ok(()),
                    Some(Err(e)) => {
                        return Err(EgressError::Connection { host: host.clone(), message: error_text(&e) })
                    }
                    Some(Ok(chunk)) => {
                        on_chunk(&chunk).map_err(|message| EgressError::Answer { host: host.clone(), message })?
                    }
                }
            }
        }
        .await;
        record.finish(match &result {
            Ok(()) => audit::outcome_ok(),
            Err(e) => audit::outcome_error(&e.to_string()),
        });
        result
    }
}

#[cfg(test)]
#[path = "egress_tests.rs"]
mod tests;
