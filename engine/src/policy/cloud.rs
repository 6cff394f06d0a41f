//! Cloud models for design help (Tier 1, and Tier 2 with anonymized structure only): the Anthropic
//! Messages API, or an OpenAI-compatible chat endpoint. Every call goes through an egress [`Permit`]; a
//! failure is reported, never retried elsewhere or answered by another model.
use super::audit::AuditLog;
use super::egress::{self, EgressDenied, Permit};
use super::tier::FolderPolicy;
use crate::cancel::CancelToken;
use serde_json::json;

pub const ANTHROPIC_DEFAULT_BASE: &str = "https://api.anthropic.com";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloudProvider {
    Anthropic,
    OpenAiCompatible,
}

#[derive(Debug, Clone)]
pub struct CloudConfig {
    pub provider: CloudProvider,
    pub base_url: String,
    pub model: String,
    pub api_key: Option<String>,
}

impl CloudConfig {
    /// `LOKAL_CLOUD_PROVIDER` (anthropic | openai), `LOKAL_CLOUD_BASE_URL`, `LOKAL_CLOUD_MODEL`, and the key
    /// from `ANTHROPIC_API_KEY` or `OPENAI_API_KEY`.
    pub fn from_env() -> Self {
        let openai = std::env::var("LOKAL_CLOUD_PROVIDER").is_ok_and(|p| p.eq_ignore_ascii_case("openai"));
        let base = std::env::var("LOKAL_CLOUD_BASE_URL").ok();
        if openai {
            CloudConfig {
                provider: CloudProvider::OpenAiCompatible,
                base_url: base.unwrap_or_default(),
                model: std::env::var("LOKAL_CLOUD_MODEL").unwrap_or_else(|_| "gpt-4o".into()),
                api_key: std::env::var("OPENAI_API_KEY").ok(),
            }
        } else {
            CloudConfig {
                provider: CloudProvider::Anthropic,
                base_url: base.unwrap_or_else(|| ANTHROPIC_DEFAULT_BASE.into()),
                model: std::env::var("LOKAL_CLOUD_MODEL").unwrap_or_else(|_| "claude-sonnet-4-5".into()),
                api_key: std::env::var("ANTHROPIC_API_KEY").ok(),
            }
        }
    }

    pub fn endpoint(&self) -> String {
        let base = self.base_url.trim_end_matches('/');
        match self.provider {
            CloudProvider::Anthropic => format!("{base}/v1/messages"),
            CloudProvider::OpenAiCompatible => format!("{base}/v1/chat/completions"),
        }
    }
}

/// Ask the cloud model. The tier decides first: a refusal happens before any connection is made.
pub async fn ask(
    folder: Option<&FolderPolicy>,
    cfg: &CloudConfig,
    action: &str,
    anonymized: bool,
    system: &str,
    user: &str,
    max_tokens: u32,
    cancel: &CancelToken,
    audit: &AuditLog,
) -> Result<String, String> {
    let permit: Permit = egress::check(folder, &cfg.endpoint(), action, anonymized).map_err(|EgressDenied(e)| e)?;
    let key = cfg.api_key.clone().ok_or_else(|| match cfg.provider {
        CloudProvider::Anthropic => "lokal: ANTHROPIC_API_KEY is not set".to_string(),
        CloudProvider::OpenAiCompatible => "lokal: OPENAI_API_KEY is not set".to_string(),
    })?;
    let http = reqwest::Client::builder().connect_timeout(std::time::Duration::from_secs(10)).build().map_err(|e| e.to_string())?;
    match cfg.provider {
        CloudProvider::Anthropic => {
            let body = json!({"model": cfg.model, "max_tokens": max_tokens, "system": system,
                              "messages": [{"role": "user", "content": user}]});
            let headers = [("x-api-key", key), ("anthropic-version", "2023-06-01".to_string())];
            let v = permit.post_json(&http, &headers, &body, cancel, audit).await?;
            let text: String = v["content"].as_array().into_iter().flatten().filter_map(|c| c["text"].as_str()).collect();
            if text.is_empty() {
                return Err(format!("lokal: the cloud model answered without text: {v}"));
            }
            Ok(text)
        }
        CloudProvider::OpenAiCompatible => {
            let body = json!({"model": cfg.model, "max_tokens": max_tokens,
                              "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}]});
            let headers = [("authorization", format!("Bearer {key}"))];
            let v = permit.post_json(&http, &headers, &body, cancel, audit).await?;
            v["choices"][0]["message"]["content"].as_str().map(str::to_string).ok_or_else(|| format!("lokal: unexpected cloud answer: {v}"))
        }
    }
}
