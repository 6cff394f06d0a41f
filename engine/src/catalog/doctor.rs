//! `lokal doctor`: checks of the set-up, each with what to do about it.
//!
//! Checks, in order: the model file (exists, is a readable GGUF: [`super::gguf_meta`]), the llama.cpp
//! backend compiled in (the server passes `LlamaBackend::supports_gpu_offload()`), the GPU seen against that
//! backend, memory headroom for the model at the configured context, and the `.lokal.toml` tier file of each
//! workspace folder (present, parses as TOML, `tier` in 1..=3: a minimal check; the tier policy itself lives
//! elsewhere).
use super::fit::{fit, Class, FitConfig, RunsOn};
use super::hardware::Hardware;
use super::render::size;
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
                    format!("{}: {} ({}), {} layers, {}, {}{}", i.model.display(), e.name, e.family, e.n_layers, e.quant, size(e.file_bytes), if e.fim { ", FIM tokens" } else { "" }),
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
        if i.gpu_offload_supported { "llama.cpp with GPU offload (CUDA, Metal or Vulkan)" } else { "llama.cpp, CPU only" },
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
            out.push(finding("GPU", Status::Warn, format!("{} present, but this build runs on the CPU only", gpu_names.join(", ")), Some(fix)));
        }
        (true, true) => out.push(finding("GPU", Status::Ok, format!("{} (offload compiled in)", gpu_names.join(", ")), None)),
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
        out.extend(super::choice::doctor_hint(&i.model, hw, &FitConfig { ctx_per_sequence: i.ctx_per_sequence, sequences: i.sequences }));
    }

    for w in &i.workspaces {
        out.push(tier_file(w));
    }
    out
}

/// Minimal check of a workspace's `.lokal.toml`: present, parses, `tier` in 1..=3.
pub fn tier_file(root: &Path) -> Finding {
    let check = format!("tier file of {}", root.display());
    let fix = Some("write `tier = 1`, `2` or `3` in .lokal.toml (1: cloud allowed, 2: anonymized structure only, 3: nothing leaves)");
    if !root.is_dir() {
        return finding(&check, Status::Fail, format!("{} is not a folder", root.display()), Some("pass an existing workspace folder"));
    }
    let p = root.join(".lokal.toml");
    let text = match std::fs::read_to_string(&p) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return finding(&check, Status::Ok, "no .lokal.toml: the defaultTier setting applies (Tier 3 unless set)", None);
        }
        Err(e) => return finding(&check, Status::Fail, format!("{}: {e} (treated as Tier 3)", p.display()), Some("make the file readable")),
    };
    let doc = match text.parse::<toml::Table>() {
        Ok(d) => d,
        Err(e) => return finding(&check, Status::Fail, format!("{} does not parse (treated as Tier 3): {}", p.display(), e.message()), fix),
    };
    match doc.get("tier") {
        Some(toml::Value::Integer(t)) if (1..=3).contains(t) => finding(&check, Status::Ok, format!("Tier {t} from {}", p.display()), None),
        Some(v) => finding(&check, Status::Fail, format!("{}: tier = {v} is not 1, 2 or 3 (treated as Tier 3)", p.display()), fix),
        None => finding(&check, Status::Fail, format!("{} has no `tier` (treated as Tier 3)", p.display()), fix),
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
    let worst = findings.iter().map(|f| f.status).max().unwrap_or(Status::Ok);
    out.push_str(match worst {
        Status::Ok => "\nall checks passed\n",
        Status::Warn => "\nworks, with warnings above\n",
        Status::Fail => "\nsome checks failed: see the fixes above\n",
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("lokal-doctor-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn missing_model_and_broken_tier_files() {
        let dir = tmp("a");
        let (bad, garbled, none, good) = (dir.join("bad"), dir.join("garbled"), dir.join("none"), dir.join("good"));
        for d in [&bad, &garbled, &none, &good] {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::write(bad.join(".lokal.toml"), "tier = 9\n").unwrap();
        std::fs::write(garbled.join(".lokal.toml"), "tier = = 2\n").unwrap();
        std::fs::write(good.join(".lokal.toml"), "tier = 2\n[[endpoints]]\nurl = \"http://gpu-box.internal:8080\"\n").unwrap();
        let hw = Hardware::cpu_only(2, 24.0, 24.0);
        let out = run(&DoctorInput {
            model: "/nonexistent/model.gguf".into(),
            hardware: &hw,
            gpu_offload_supported: false,
            ctx_per_sequence: 2048,
            sequences: 8,
            workspaces: vec![bad.clone(), garbled.clone(), none.clone(), good.clone(), dir.join("missing")],
        });
        assert_eq!(out[0].check, "model file");
        assert_eq!(out[0].status, Status::Fail);
        assert!(out[0].fix.as_deref().unwrap().contains("fetch-model"));
        assert!(!out.iter().any(|f| f.check == "memory"), "no memory check without a model");
        let tier = |d: &Path| out.iter().find(|f| f.check == format!("tier file of {}", d.display())).unwrap().clone();
        assert_eq!(tier(&bad).status, Status::Fail);
        assert!(tier(&bad).detail.contains("not 1, 2 or 3"));
        assert_eq!(tier(&garbled).status, Status::Fail);
        assert!(tier(&garbled).detail.contains("does not parse"));
        assert_eq!(tier(&none).status, Status::Ok);
        assert_eq!(tier(&good).status, Status::Ok);
        assert!(tier(&good).detail.contains("Tier 2"));
        assert_eq!(tier(&dir.join("missing")).status, Status::Fail);
        let text = render(&out);
        assert!(text.contains("[FAIL] model file") && text.contains("fix:") && text.contains("some checks failed"), "{text}");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_broken_model_file_and_a_gpu_without_offload() {
        let dir = tmp("b");
        let m = dir.join("broken.gguf");
        std::fs::write(&m, b"GGUF\x03\x00\x00\x00").unwrap();
        let hw = Hardware::cpu_only(16, 64.0, 80.0).with_gpu("NVIDIA GeForce RTX 4090", 24.0);
        let out = run(&DoctorInput { model: m, hardware: &hw, gpu_offload_supported: false, ctx_per_sequence: 2048, sequences: 8, workspaces: vec![] });
        assert_eq!(out[0].status, Status::Fail);
        assert!(out[0].detail.contains("ends early"), "{}", out[0].detail);
        let gpu = out.iter().find(|f| f.check == "GPU").unwrap();
        assert_eq!(gpu.status, Status::Warn);
        assert!(gpu.fix.as_deref().unwrap().contains("--features lokal-engine/cuda"));
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn the_embedded_model_on_a_small_box() {
        let p = crate::config::default_model_dir().join(crate::config::DEFAULT_MODEL_FILE);
        if !p.exists() {
            eprintln!("SKIPPED doctor real-model test: no model at {}", p.display());
            return;
        }
        let hw = Hardware::cpu_only(2, 24.0, 24.0);
        let out = run(&DoctorInput { model: p, hardware: &hw, gpu_offload_supported: false, ctx_per_sequence: 2048, sequences: 8, workspaces: vec![] });
        print!("{}", render(&out));
        assert!(out.iter().all(|f| f.status == Status::Ok || f.check == "model choice"), "{out:?}");
        let hint = out.iter().find(|f| f.check == "model choice").expect("the demo model gets a hint");
        assert!(hint.fix.as_deref().unwrap().contains("lokal models pull "), "{hint:?}");
        let mem = out.iter().find(|f| f.check == "memory").unwrap();
        assert!(mem.detail.contains("great fit") && mem.detail.contains("in RAM"), "{}", mem.detail);
    }
}
