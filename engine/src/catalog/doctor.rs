//! `lokal doctor`: checks of the set-up, each with what to do about it.
use super::hardware::Hardware;
use serde::Serialize;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
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
    pub model: PathBuf,
    pub hardware: &'a Hardware,
    pub gpu_offload_compiled: bool,
    pub ctx_per_sequence: u32,
    pub sequences: u32,
    pub workspaces: Vec<PathBuf>,
}

fn f(check: &str, status: Status, detail: String, fix: Option<&str>) -> Finding {
    Finding { check: check.into(), status, detail, fix: fix.map(str::to_string) }
}

pub fn run(i: &DoctorInput) -> Vec<Finding> {
    let mut out = Vec::new();
    let entry = super::entry_from_gguf(&i.model);
    match (&entry, i.model.exists()) {
        (Ok(e), _) => out.push(f("model file", Status::Ok, format!("{} ({:.2} GB, {} layers)", i.model.display(), e.file_gb, e.n_layer), None)),
        (Err(_), false) => out.push(f("model file", Status::Fail, format!("{} does not exist", i.model.display()), Some("run scripts/fetch-model.sh, or set modelPath / LOKAL_MODEL to a GGUF file"))),
        (Err(e), true) => out.push(f("model file", Status::Fail, format!("{}: {e}", i.model.display()), Some("the file is corrupt or not GGUF: fetch it again"))),
    }
    match (&i.hardware.gpu, i.gpu_offload_compiled) {
        (Some(g), false) if !i.hardware.unified => out.push(f(
            "GPU",
            Status::Warn,
            format!("{} is present but this build of lokal runs on the CPU only", g.name),
            Some("rebuild with `cargo build --release --features lokal-engine/cuda` (or vulkan)"),
        )),
        (Some(g), _) => out.push(f("GPU", Status::Ok, format!("{} ({:.0} GB), offload compiled in", g.name, g.memory_gb), None)),
        (None, true) => out.push(f("GPU", Status::Warn, "a GPU backend is compiled in but no GPU was seen".into(), Some("check the driver (nvidia-smi)"))),
        (None, false) => out.push(f("GPU", Status::Ok, "none; CPU inference".into(), None)),
    }
    if let Ok(e) = &entry {
        let fit = super::fit(e, i.hardware, &super::FitConfig { ctx_per_sequence: i.ctx_per_sequence, sequences: i.sequences });
        let (status, fix) = match fit.class {
            super::Class::Great => (Status::Ok, None),
            super::Class::Tight => (Status::Warn, Some("lower sequences or ctxPerSequence, or pick a smaller quantization")),
            super::Class::WontFit => (Status::Fail, Some("pick a smaller model (`lokal models`)")),
        };
        out.push(f("memory", status, format!("needs {:.1} GB of {:.1} GB available ({:.2} GB KV cache)", fit.needed_gb, i.hardware.ram_available_gb, fit.kv_gb), fix));
    }
    for w in &i.workspaces {
        out.push(tier_file(w));
    }
    out
}

fn tier_file(root: &Path) -> Finding {
    let p = crate::policy::tier::resolve_folder(root, &Default::default());
    let what = format!("tier of {}", root.display());
    match p.diagnostics.first() {
        Some(d) => f(&what, Status::Fail, d.message.clone(), Some("fix .lokal.toml: `tier = 1`, `2` or `3`")),
        None => f(&what, Status::Ok, format!("{} ({:?})", p.tier.describe(), p.source).to_lowercase(), None),
    }
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
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_model_and_broken_tier_file_are_failures_with_fixes() {
        let dir = std::env::temp_dir().join(format!("lokal-doctor-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(".lokal.toml"), "tier = 9\n").unwrap();
        let hw = Hardware { cores: 2, ram_gb: 24.0, ram_available_gb: 20.0, ram_bandwidth_gbs: 40.0, gpu: None, unified: false };
        let out = run(&DoctorInput { model: "/nonexistent.gguf".into(), hardware: &hw, gpu_offload_compiled: false, ctx_per_sequence: 2048, sequences: 8, workspaces: vec![dir.clone()] });
        assert_eq!(out[0].status, Status::Fail);
        assert!(out[0].fix.as_deref().unwrap().contains("fetch-model"));
        let tier = out.iter().find(|x| x.check.starts_with("tier of")).unwrap();
        assert_eq!(tier.status, Status::Fail);
        assert!(render(&out).contains("fix:"));
        let _ = std::fs::remove_dir_all(dir);
    }
}
