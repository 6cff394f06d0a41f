//! Client tiers and everything that may cross the machine's boundary. Pure Rust, no LSP types: the server
//! maps these onto the protocol.
//!
//! * [`tier`]: which tier a workspace folder is in (`.lokal.toml`, user settings; fail closed to Tier 3).
//!   - `resolve_folder(root: &Path, user: &UserTierSettings) -> FolderPolicy`
//!   - `FolderPolicy { root, tier: Tier, source: TierSource, endpoints, local_hosts, diagnostics }`,
//!     `FolderPolicy::set_by() -> String`, `FolderPolicy::lists_host(host, port) -> bool`
//!   - `WorkspacePolicy::resolve(&[PathBuf], &UserTierSettings)`, `.folder_for(path) -> Option<&FolderPolicy>`
//!     (innermost root), `.policy_for(path) -> FolderPolicy` (Tier 3 outside every root), `.tier_for(path)`
//!   - `Tier::{Cloud = 1, Hybrid = 2, Local = 3}` (serialized as the number), `TierSource::{File, User,
//!     Default, Fallback}` (serialized lowercase), `TagDiagnostic { file, message, line, column, end_line,
//!     end_column }`, `UserTierSettings { default_tier, overrides, minimum_tier }` (camelCase in settings)
//!   - The tag file: `tier = 1|2|3`, optional `allowed_hosts = ["host", "host:port", "https://url"]` and
//!     `[[endpoints]] name = "…" url = "http://…"`; listed hosts count as local in every tier.
//! * [`egress`]: the one choke point. Nothing else here builds an HTTP client.
//!   - `Destination::parse(url)` (unlisted loopback counts as local in Tier 1 only; in Tiers 2 and 3 it
//!     must be listed, since a loopback port may be a tunnel) / `Destination::cloud(url)` (a cloud model's
//!     endpoint: loopback does not make it local)
//!   - `Egress::new(AuditLog)`, `Egress::from_env()`, `Egress::check(&self, Option<&FolderPolicy>,
//!     &Destination, action: &str, anonymized: bool) -> Result<Permit, EgressDenied>` (logs refusals
//!     outside Tier 3); `egress::check(Option<&FolderPolicy>, url, action, anonymized)` decides without
//!     logging
//!   - `Permit::post_json(self, headers, &Value, &CancelToken) -> Result<Value, EgressError>` and
//!     `Permit::post_json_streaming(self, headers, &Value, &CancelToken, on_chunk)`: one permit, one
//!     request, exactly one audit record (none for loopback, which does not leave the machine); no
//!     redirects, no proxy, no retries. `remote.rs` sends every request to an on-premises engine this way.
//! * [`cloud`]: `CloudClient::new(CloudConfig, Egress)`, `.complete(folder, action, anonymized,
//!   &CloudRequest, &CancelToken) -> Result<String, CloudError>`, `.stream(…, on_text)`; `CloudProvider::
//!   {Anthropic, OpenAiCompatible}`, `CloudConfig::from_env()` (`LOKAL_CLOUD_PROVIDER`,
//!   `LOKAL_CLOUD_BASE_URL`, `LOKAL_CLOUD_MODEL`, `ANTHROPIC_API_KEY` / `OPENAI_API_KEY`); `cloud::ask(…)`
//!   returns errors as text for the editor.
//! * [`anonymize`]: the Tier-2 payload: `collect_schema_sources(root) -> SchemaSources`,
//!   `anonymize(&SchemaSources) -> AnonymizedPayload`, `anonymize_workspace(root)`,
//!   `AnonymizedPayload::preview() -> String` (exactly the text that would be sent).
//! * [`payload`]: `payload::build(&PayloadInput { tier, root, requirement, selection, open_files }) ->
//!   Result<CloudPayload { system, user, anonymized, counts }, String>`: the exact cloud-design request; in
//!   Tier 2 every byte has passed `anonymize::pass::Pass::scrub` (detectors in `anonymize::detect`).
//! * [`audit`]: the append-only JSON-lines log of what left the machine: `AuditLog::default_location()`
//!   (`$LOKAL_AUDIT_LOG`, else `$XDG_DATA_HOME/lokal/audit.jsonl`, else `~/.local/share/lokal/audit.jsonl`),
//!   `.load()`, `.read()`, `.render_table(workspace)`, `audit::render(&[AuditRecord], workspace)`.
pub mod anonymize;
pub mod audit;
pub mod cloud;
pub mod egress;
pub mod payload;
// The one fake HTTP server: the engine's unit tests and, through `test-support`, the end-to-end tests.
#[cfg(any(test, feature = "test-support"))]
pub mod testing;
pub mod tier;
