//! The one choke point for outbound connections. Nothing in lokal opens a socket to another host except
//! through a [`Permit`], and a permit is only issued after the workspace's tier and allowlist agree.
use super::audit::{AuditLog, AuditRecord};
use super::tier::{host_of, FolderPolicy, Tier};
use crate::cancel::CancelToken;
use serde_json::Value;
use sha2::{Digest, Sha256};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct EgressDenied(pub String);

/// Leave to connect to one URL for one action of one workspace.
#[derive(Debug, Clone)]
pub struct Permit {
    pub url: String,
    pub host: String,
    pub tier: Tier,
    pub workspace: String,
    pub action: String,
    pub anonymized: bool,
    /// The host is an on-premises endpoint the tier file lists: it counts as local.
    pub local: bool,
}

/// Decide before any socket is opened. `anonymized`: the payload is the Tier-2 anonymizer's output and
/// nothing else.
pub fn check(folder: Option<&FolderPolicy>, url: &str, action: &str, anonymized: bool) -> Result<Permit, EgressDenied> {
    let host = host_of(url).ok_or_else(|| EgressDenied(format!("lokal: {url:?} is not a URL lokal will connect to")))?;
    let (tier, workspace, listed) = match folder {
        Some(f) => (f.tier, f.root.display().to_string(), f.endpoints.iter().any(|e| e.host().as_deref() == Some(host.as_str()))),
        None => (Tier::Local, "(outside every workspace folder)".to_string(), false),
    };
    let permit = Permit { url: url.to_string(), host: host.clone(), tier, workspace: workspace.clone(), action: action.to_string(), anonymized, local: listed };
    if listed {
        return Ok(permit);
    }
    match tier {
        Tier::Cloud => Ok(permit),
        Tier::Hybrid if anonymized => Ok(permit),
        Tier::Hybrid => Err(EgressDenied(format!(
            "lokal: {workspace} is {}: only the anonymized schema may go to {host}, not source text",
            tier.describe()
        ))),
        Tier::Local => Err(EgressDenied(format!(
            "lokal: {workspace} is {}, set by its .lokal.toml or by default; {action} would connect to {host}, which the tier file does not list as on-premises",
            tier.describe()
        ))),
    }
}

impl Permit {
    /// POST a JSON body and return the JSON answer. Each call that leaves the client's network is audited
    /// exactly once, whatever its outcome; cancelling drops the connection.
    pub async fn post_json(&self, http: &reqwest::Client, headers: &[(&str, String)], body: &Value, cancel: &CancelToken, audit: &AuditLog) -> Result<Value, String> {
        let bytes = serde_json::to_vec(body).map_err(|e| e.to_string())?;
        let mut rq = http.post(&self.url).header("content-type", "application/json").body(bytes.clone());
        for (k, v) in headers {
            rq = rq.header(*k, v);
        }
        let send = async {
            let resp = rq.send().await.map_err(|e| format!("{}: {e}", self.host))?;
            let status = resp.status();
            let text = resp.text().await.map_err(|e| format!("{}: {e}", self.host))?;
            if !status.is_success() {
                return Err(format!("{} answered {status}: {}", self.host, text.chars().take(300).collect::<String>()));
            }
            serde_json::from_str::<Value>(&text).map_err(|e| format!("{}: answer is not JSON: {e}", self.host))
        };
        let result = tokio::select! {
            r = send => r,
            _ = cancel.cancelled() => Err("cancelled".to_string()),
        };
        if !self.local {
            let outcome = match &result {
                Ok(_) => "ok".to_string(),
                Err(e) => format!("error: {e}"),
            };
            let rec = AuditRecord {
                time: super::audit::now_rfc3339(),
                workspace: self.workspace.clone(),
                tier: self.tier as u8,
                action: self.action.clone(),
                host: self.host.clone(),
                bytes: bytes.len(),
                sha256: hex(&Sha256::digest(&bytes)),
                anonymized: self.anonymized,
                outcome,
            };
            if let Err(e) = audit.append(&rec) {
                tracing::error!("audit log {}: {e}", audit.path().display());
            }
        }
        result
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::super::tier::{Endpoint, TierSource};
    use super::*;
    use std::path::PathBuf;
    use std::time::Duration;

    fn folder(tier: Tier, endpoints: &[&str]) -> FolderPolicy {
        FolderPolicy {
            root: PathBuf::from("/work/client"),
            tier,
            source: TierSource::File,
            endpoints: endpoints.iter().map(|u| Endpoint { name: None, url: u.to_string() }).collect(),
            diagnostics: vec![],
        }
    }

    #[test]
    fn decisions_per_tier() {
        let cloud = "https://api.example.com/v1/messages";
        assert!(check(Some(&folder(Tier::Cloud, &[])), cloud, "design", false).is_ok());
        assert!(check(Some(&folder(Tier::Hybrid, &[])), cloud, "design", false).is_err());
        assert!(check(Some(&folder(Tier::Hybrid, &[])), cloud, "design", true).is_ok());
        let e = check(Some(&folder(Tier::Local, &[])), cloud, "design", true).unwrap_err();
        assert!(e.0.contains("Tier 3"), "{e}");
        assert!(check(None, cloud, "design", true).is_err(), "no folder: Tier 3");
    }

    #[test]
    fn listed_on_prem_endpoints_count_as_local_in_every_tier() {
        let f = folder(Tier::Local, &["http://gpu.internal:8080"]);
        let p = check(Some(&f), "http://GPU.internal:8080/infill", "completion", false).unwrap();
        assert!(p.local);
        assert!(check(Some(&f), "http://gpu.internal:9090/infill", "completion", false).is_err(), "another port is another host");
    }

    #[test]
    fn a_refused_connection_opens_no_socket() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.set_nonblocking(true).unwrap();
        let url = format!("http://{}/v1/messages", l.local_addr().unwrap());
        assert!(check(Some(&folder(Tier::Local, &[])), &url, "design", true).is_err());
        std::thread::sleep(Duration::from_millis(50));
        assert!(l.accept().is_err(), "nothing connected");
    }
}
