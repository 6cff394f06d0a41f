//! `lokal doctor`: checks of the set-up, each with what to do about it.
//!
//! Checks, in order: the model file (exists, is a readable GGUF: [`super::gguf_meta`]), the llama.cpp
//! backend compiled in (the server passes `LlamaBackend::supports_gpu_offload()`), the GPU seen against that
//! backend, memory headroom for the model at the configured context, the tier of each workspace folder (as
//! the policy itself resolves it: [`crate::policy::tier::resolve_folder`], so doctor never approves what the
//! server refuses), the audit log (a request whose record cannot be written is not sent), and the cloud
//! model's settings.
use super::fit::{fit, Class, FitConfig, RunsOn};
use super::hardware::Hardware;
use super::render::size;
use crate::policy::audit::AuditLog;
use crate::policy::cloud::{CloudConfig, CloudProvider};
use crate::policy::tier::{resolve_folder, FolderPolicy, Tier, TierSource, UserTierSettings};
use serde::Serialize;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Warn,
    Fail,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    pub check: String,
    pub status: Status,
    pub detail: String,
    pub fix: Option<String>,
}

pub struct DoctorInput<'a> {
    /// The model the settings resolve to.
    pub model: PathBuf,
    pub hardware: &'a Hardware,
    /// `LlamaBackend::supports_gpu_offload()` of this build (CUDA, Metal or Vulkan compiled in).
    pub gpu_offload_supported: bool,
    pub ctx_per_sequence: u32,
    pub sequences: u32,
    /// Workspace folders whose tier files to check.
    pub workspaces: Vec<PathBuf>,
    pub setup: Setup,
}

/// What the policy checks read besides the workspace folders: tier settings, the audit log, the cloud model.
#[derive(Debug, Clone)]
pub struct Setup {
    pub tiers: UserTierSettings,
    pub audit_log: AuditLog,
    pub cloud: CloudConfig,
    /// The user chose a cloud model (`LOKAL_CLOUD_PROVIDER`, `LOKAL_CLOUD_BASE_URL` or `LOKAL_CLOUD_MODEL`
    /// set), so its settings must be complete; otherwise only Tier-1/2 folders make them matter.
    pub cloud_chosen: bool,
}

impl Setup {
    /// As the server reads them: the environment, and no tier settings (those come from the editor).
    pub fn from_env() -> Self {
        let set = |k: &str| std::env::var_os(k).is_some_and(|v| !v.is_empty());
        Setup {
            tiers: UserTierSettings::default(),
            audit_log: AuditLog::default_location(),
            cloud: CloudConfig::from_env(),
            cloud_chosen: ["LOKAL_CLOUD_PROVIDER", "LOKAL_CLOUD_BASE_URL", "LOKAL_CLOUD_MODEL"].into_iter().any(set),
        }
    }
}

fn finding(check: &str, status: Status, detail: impl Into<String>, fix: Option<&str>) -> Finding {
    Finding { check: check.into(), status, detail: detail.into(), fix: fix.map(str::to_string) }
}

pub fn run(i: &DoctorInput) -> Vec<Finding> {
    let hw = i.hardware;
    let mut out = Vec::new();

    // Model file.
    let entry = if !i.model.exists() {
        out.push(finding(
            "model file",
            Status::Fail,
            format!("{} does not exist", i.model.display()),
            Some("run scripts/fetch-model.sh for the embedded default, or set modelPath / LOKAL_MODEL to a GGUF file"),
        ));
        None
    } else {
        match super::gguf_meta::entry_from_gguf(&i.model) {
            Ok(e) => {
                out.push(finding(
                    "model file",
                    Status::Ok,
                    format!(
                        "{}: {} ({}), {} layers, {}, {}{}",
                        i.model.display(),
                        e.name,
                        e.family,
                        e.n_layers,
                        e.quant,
                        size(e.file_bytes),
                        if e.fim { ", FIM tokens" } else { "" }
                    ),
                    None,
                ));
                Some(e)
            }
            Err(err) => {
                out.push(finding("model file", Status::Fail, err, Some("the file is not a complete GGUF model: download it again (scripts/fetch-model.sh checks the checksum)")));
                None
            }
        }
    };

    // Backend compiled in.
    out.push(finding(
        "backend",
        Status::Ok,
        if i.gpu_offload_supported {
            "llama.cpp with GPU offload (CUDA, Metal or Vulkan)"
        } else {
            "llama.cpp, CPU only"
        },
        None,
    ));

    // GPU seen vs backend.
    let gpu_names: Vec<&str> = hw.gpus.iter().map(|g| g.name.as_str()).collect();
    match (hw.has_gpu(), i.gpu_offload_supported) {
        (true, false) => {
            let fix = if hw.unified {
                "rebuild with `cargo build --release --features lokal-engine/metal`"
            } else {
                "rebuild with `cargo build --release --features lokal-engine/cuda` (or lokal-engine/vulkan)"
            };
            out.push(finding(
                "GPU",
                Status::Warn,
                format!("{} present, but this build runs on the CPU only", gpu_names.join(", ")),
                Some(fix),
            ));
        }
        (true, true) => {
            out.push(finding("GPU", Status::Ok, format!("{} (offload compiled in)", gpu_names.join(", ")), None))
        }
        (false, true) => out.push(finding(
            "GPU",
            Status::Warn,
            "a GPU backend is compiled in but no GPU was seen (only NVIDIA GPUs are detected, with nvidia-smi)",
            Some("check the driver with `nvidia-smi`; AMD/Intel GPUs through Vulkan are used but not measured here"),
        )),
        (false, false) => out.push(finding("GPU", Status::Ok, "none seen; CPU inference", None)),
    }

    // Memory headroom at the configured context.
    if let Some(e) = &entry {
        let cfg = FitConfig { ctx_per_sequence: i.ctx_per_sequence, sequences: i.sequences };
        // Score with what the build can do: a CPU-only build runs everything in RAM whatever GPU is there.
        let mut hw_eff = hw.clone();
        if !i.gpu_offload_supported {
            hw_eff.gpus.clear();
            hw_eff.unified = false;
        }
        let f = fit(e, &hw_eff, &cfg);
        let where_ = match f.runs_on {
            RunsOn::Cpu => "in RAM".to_string(),
            RunsOn::Gpu | RunsOn::Unified => format!("{}/{} layers on the GPU", f.gpu_layers, e.n_layers),
            RunsOn::Split => format!("{}/{} layers on the GPU, the rest on the CPU", f.gpu_layers, e.n_layers),
        };
        let detail = format!(
            "needs {} ({} weights + {} KV cache for {} x {} cells + {} buffers) of {}, {}: {}{}",
            size(f.needed_bytes),
            size(f.weights_bytes),
            size(f.kv_bytes + f.state_bytes),
            i.sequences,
            i.ctx_per_sequence,
            size(f.working_bytes),
            size(f.budget_bytes),
            where_,
            f.class.label(),
            if f.slow && f.class != Class::WontFit { " + slow" } else { "" }
        );
        let (status, fix) = match (f.class, f.slow) {
            (Class::Great, false) => (Status::Ok, None),
            (Class::WontFit, _) => (Status::Fail, Some("pick a smaller model or quantization (`lokal models`), or lower sequences / ctxPerSequence")),
            (_, true) => (Status::Warn, Some("layers on the CPU are slow: lower sequences / ctxPerSequence, or pick a smaller quantization (`lokal models`)")),
            _ => (Status::Warn, Some("little headroom: lower sequences or ctxPerSequence, or pick a smaller quantization")),
        };
        out.push(Finding { check: "memory".into(), status, detail, fix: fix.map(str::to_string) });
        // Memory free right now (other programs count too).
        if let (RunsOn::Cpu, Some(avail)) = (f.runs_on, hw.ram_available_bytes) {
            if f.needed_bytes > avail {
                out.push(finding(
                    "memory available now",
                    Status::Warn,
                    format!("{} needed, {} available right now", size(f.needed_bytes), size(avail)),
                    Some("close memory-hungry programs, or lower sequences / ctxPerSequence"),
                ));
            }
        }
    }

    if entry.is_some() {
        out.extend(super::choice::doctor_hint(
            &i.model,
            hw,
            &FitConfig { ctx_per_sequence: i.ctx_per_sequence, sequences: i.sequences },
        ));
    }

    let mut policies = Vec::new();
    for w in &i.workspaces {
        match tier_file(w, &i.setup.tiers) {
            Ok((f, p)) => {
                out.push(f);
                policies.push(p);
            }
            Err(f) => out.push(f),
        }
    }
    out.push(audit_log(&i.setup.audit_log));
    out.push(cloud(&i.setup, &policies));
    out
}

/// A workspace folder's tier as the policy resolves it, with every diagnostic the policy has on the tier
/// file; the policy too, for the checks that depend on the tier. `Err` when the folder does not exist.
pub fn tier_file(root: &Path, tiers: &UserTierSettings) -> Result<(Finding, FolderPolicy), Finding> {
    let check = format!("tier file of {}", root.display());
    if !root.is_dir() {
        return Err(finding(
            &check,
            Status::Fail,
            format!("{} is not a folder", root.display()),
            Some("pass an existing workspace folder"),
        ));
    }
    let p = resolve_folder(root, tiers);
    let mut detail = format!("{}, set by {}", p.tier.describe(), p.set_by());
    for d in &p.diagnostics {
        detail.push_str(&format!("\n         {}:{}:{}: {}", d.file.display(), d.line + 1, d.column + 1, d.message));
    }
    let f = if p.source == TierSource::Fallback {
        finding(&check, Status::Fail, detail, Some("write `tier = 1`, `2` or `3` in .lokal.toml (1: cloud allowed, 2: anonymized structure only, 3: nothing leaves) and only known keys"))
    } else if !p.diagnostics.is_empty() {
        // The tier stands but the entries above are ignored: connections to the hosts they meant are refused.
        finding(&check, Status::Fail, detail, Some("fix or remove the entries above (allowed_hosts: a host name or address with an optional port; endpoints: an http(s) URL)"))
    } else {
        finding(&check, Status::Ok, detail, None)
    };
    Ok((f, p))
}

/// Opens the log as a request would (creating it, owner-only, if missing) without writing a record.
pub fn audit_log(log: &AuditLog) -> Finding {
    let check = "audit log";
    let path = log.path().display();
    match log.open() {
        Err(e) => finding(
            check,
            Status::Fail,
            format!("{path} cannot be written ({e}): every cloud or on-premises request would be refused, since a request whose record cannot be written is not sent"),
            Some("set LOKAL_AUDIT_LOG to a file you can write, or fix the folder's permissions"),
        ),
        Ok(w) => {
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let mode = std::fs::metadata(w.path()).map(|m| m.permissions().mode()).unwrap_or(0o600);
                if mode & 0o077 != 0 {
                    return finding(
                        check,
                        Status::Warn,
                        format!("{path} is readable by other users (mode {:o}); it names workspaces and hosts", mode & 0o777),
                        Some("chmod 600 the file"),
                    );
                }
            }
            finding(check, Status::Ok, format!("{path} is writable"), None)
        }
    }
}

/// The cloud model's settings, where a cloud model can be used: chosen by the user, or a Tier-1/2 folder
/// (where the cloud design action is offered).
pub fn cloud(setup: &Setup, folders: &[FolderPolicy]) -> Finding {
    let check = "cloud model";
    let c = &setup.cloud;
    let cloud_folders: Vec<String> =
        folders.iter().filter(|p| p.tier < Tier::Local).map(|p| p.root.display().to_string()).collect();
    if !setup.cloud_chosen && cloud_folders.is_empty() {
        return finding(check, Status::Ok, "none configured, and no folder here allows one", None);
    }
    let (key_var, fix_key) = match c.provider {
        CloudProvider::Anthropic => {
            ("ANTHROPIC_API_KEY", "set ANTHROPIC_API_KEY (or LOKAL_CLOUD_PROVIDER=openai with OPENAI_API_KEY)")
        }
        CloudProvider::OpenAiCompatible => ("OPENAI_API_KEY", "set OPENAI_API_KEY"),
    };
    // A chosen model must work; one only allowed by a folder's tier is not a failure to go unused.
    let missing = if setup.cloud_chosen { Status::Fail } else { Status::Warn };
    let whom = if setup.cloud_chosen {
        "the cloud model you configured".to_string()
    } else {
        format!("cloud design in {}", cloud_folders.join(", "))
    };
    if c.provider == CloudProvider::OpenAiCompatible && c.base_url.trim().is_empty() {
        return finding(
            check,
            missing,
            format!("LOKAL_CLOUD_PROVIDER=openai without LOKAL_CLOUD_BASE_URL: {whom} would be refused"),
            Some("set LOKAL_CLOUD_BASE_URL to the endpoint (https://host/v1)"),
        );
    }
    if c.api_key.is_none() {
        return finding(check, missing, format!("{key_var} is not set: {whom} would be refused"), Some(fix_key));
    }
    let endpoint = c.endpoint();
    if !endpoint.starts_with("https://") {
        return finding(
            check,
            Status::Warn,
            format!("{endpoint} is not https: it is refused unless a folder's .lokal.toml lists its host"),
            Some("use an https URL in LOKAL_CLOUD_BASE_URL"),
        );
    }
    finding(check, Status::Ok, format!("{} at {endpoint}, {key_var} set", c.model), None)
}

pub fn render(findings: &[Finding]) -> String {
    let mut out = String::new();
    for x in findings {
        let mark = match x.status {
            Status::Ok => "ok  ",
            Status::Warn => "WARN",
            Status::Fail => "FAIL",
        };
        out.push_str(&format!("[{mark}] {}: {}\n", x.check, x.detail));
        if let Some(fix) = &x.fix {
            out.push_str(&format!("       fix: {fix}\n"));
        }
    }
    let worst = findings.iter().map(|f| f.status).max().unwrap_or(Status::Ok);
    out.push_str(match worst {
        Status::Ok => "\nall checks passed\n",
        Status::Warn => "\nworks, with warnings above\n",
        Status::Fail => "\nsome checks failed: see the fixes above\n",
    });
    out
}

#[cfg(test)]
#[path = "doctor_tests.rs"]
mod tests;
