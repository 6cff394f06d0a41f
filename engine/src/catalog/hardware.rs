//! What this machine has: memory, cores, a GPU and how fast each can be read.
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Gpu {
    pub name: String,
    pub memory_gb: f64,
    pub bandwidth_gbs: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Hardware {
    pub cores: usize,
    pub ram_gb: f64,
    pub ram_available_gb: f64,
    /// System memory bandwidth estimate (GB/s).
    pub ram_bandwidth_gbs: f64,
    pub gpu: Option<Gpu>,
    /// Apple Silicon: the GPU uses system memory.
    pub unified: bool,
}

/// Published memory bandwidth by GPU name (GB/s); unknown GPUs get a conservative figure.
pub fn gpu_bandwidth(name: &str) -> f64 {
    let n = name.to_ascii_uppercase();
    let table: [(&str, f64); 12] = [
        ("H200", 4800.0),
        ("H100", 3350.0),
        ("A100", 2000.0),
        ("L40S", 864.0),
        ("L4", 300.0),
        ("RTX 5090", 1792.0),
        ("RTX 4090", 1008.0),
        ("RTX 3090", 936.0),
        ("M3 ULTRA", 819.0),
        ("M2 ULTRA", 800.0),
        ("M4 MAX", 546.0),
        ("M3 MAX", 400.0),
    ];
    table.iter().find(|(k, _)| n.contains(k)).map(|(_, v)| *v).unwrap_or(300.0)
}

fn meminfo(key: &str) -> Option<f64> {
    let s = std::fs::read_to_string("/proc/meminfo").ok()?;
    let l = s.lines().find(|l| l.starts_with(key))?;
    l.split_whitespace().nth(1)?.parse::<f64>().ok().map(|kb| kb * 1024.0 / 1e9)
}

fn nvidia() -> Option<Gpu> {
    let out = std::process::Command::new("nvidia-smi").args(["--query-gpu=name,memory.total", "--format=csv,noheader,nounits"]).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().next()?;
    let (name, mib) = line.rsplit_once(',')?;
    let memory_gb = mib.trim().parse::<f64>().ok()? * 1024.0 * 1024.0 / 1e9;
    Some(Gpu { name: name.trim().to_string(), memory_gb, bandwidth_gbs: gpu_bandwidth(name) })
}

fn apple() -> Option<(f64, Gpu)> {
    let out = std::process::Command::new("sysctl").args(["-n", "hw.memsize", "machdep.cpu.brand_string"]).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut l = text.lines();
    let mem = l.next()?.trim().parse::<f64>().ok()? / 1e9;
    let chip = l.next().unwrap_or("Apple").trim().to_string();
    chip.contains("Apple").then(|| (mem, Gpu { bandwidth_gbs: gpu_bandwidth(&chip).max(100.0), name: chip, memory_gb: mem }))
}

pub fn detect() -> Hardware {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    if cfg!(target_os = "macos") {
        if let Some((mem, gpu)) = apple() {
            return Hardware { cores, ram_gb: mem, ram_available_gb: mem, ram_bandwidth_gbs: gpu.bandwidth_gbs, gpu: Some(gpu), unified: true };
        }
    }
    let ram = meminfo("MemTotal:").unwrap_or(8.0);
    Hardware {
        cores,
        ram_gb: ram,
        ram_available_gb: meminfo("MemAvailable:").unwrap_or(ram),
        // Dual-channel DDR4/DDR5 desktops and small servers: 40-80 GB/s; take the low end.
        ram_bandwidth_gbs: 40.0,
        gpu: nvidia(),
        unified: false,
    }
}
