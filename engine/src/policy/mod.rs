//! Client tiers and everything that may cross the machine's boundary.
//!
//! * [`tier`]: which tier a workspace folder is in (`.lokal.toml`, user settings; fail closed to Tier 3).
//! * [`egress`]: the one choke point: [`egress::check`] issues a [`egress::Permit`] or refuses, before any
//!   socket is opened; permits do the HTTP and write the audit record.
//! * [`cloud`]: the cloud model clients (Anthropic Messages, OpenAI-compatible), only through a permit.
//! * [`anonymize`]: the Tier-2 payload: structure with synthetic values.
//! * [`audit`]: the append-only JSON-lines log of what left the machine.
pub mod anonymize;
pub mod audit;
pub mod cloud;
pub mod egress;
pub mod tier;
