//! What this machine has: memory, cores, GPUs, and how fast each can be read (decode speed is bound by
//! memory bandwidth). [`detect`] reads the machine; tests build a [`Hardware`] by hand.
//!
//! * Linux: `/proc/meminfo` (MemTotal, MemAvailable), bounded by the cgroup memory limit when one is set
//!   (containers); CPU name from `/proc/cpuinfo`; NVIDIA GPUs from `nvidia-smi`.
//! * macOS: `sysctl hw.memsize` and `machdep.cpu.brand_string`; Apple Silicon is unified memory, and its
//!   bandwidth comes from the chip table below.
//! * System memory bandwidth is not measurable cheaply; it comes from a table by platform (desktop
//!   dual-channel DDR5, server EPYC/Xeon, Apple chips), capped by what the available cores can stream, and can
//!   be set with `LOKAL_RAM_BANDWIDTH_GBS`.
//!
//! Only NVIDIA GPUs are detected (AMD/Intel GPUs through Vulkan are not seen here).
use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Gpu {
    pub name: String,
    /// Device memory; for unified memory, the system memory.
    pub memory_bytes: u64,
    /// Memory other processes already hold on the device.
    pub used_bytes: u64,
    /// Peak memory bandwidth, GB/s.
    pub bandwidth_gbs: f64,
}

impl Gpu {
    pub fn free_bytes(&self) -> u64 {
        self.memory_bytes.saturating_sub(self.used_bytes)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Hardware {
    /// `linux`, `macos`, …
    pub os: String,
    pub cpu: String,
    pub cores: usize,
    /// System memory (bounded by the cgroup limit on Linux).
    pub ram_bytes: u64,
    /// Memory available now, where the OS says.
    pub ram_available_bytes: Option<u64>,
    /// System memory bandwidth, GB/s (peak as far as the table knows, capped by the cores).
    pub ram_bandwidth_gbs: f64,
    /// Where the bandwidth figure came from.
    pub bandwidth_source: String,
    /// Discrete GPUs; on Apple Silicon one entry for the integrated GPU with `unified` set.
    pub gpus: Vec<Gpu>,
    /// The GPU uses system memory (Apple Silicon, NVIDIA GB10/Jetson).
    pub unified: bool,
}

impl Hardware {
    /// A machine without a GPU (tests and fallbacks).
    pub fn cpu_only(cores: usize, ram_gb: f64, bandwidth_gbs: f64) -> Hardware {
        let ram = (ram_gb * 1e9) as u64;
        Hardware {
            os: std::env::consts::OS.into(),
            cpu: "CPU".into(),
            cores,
            ram_bytes: ram,
            ram_available_bytes: Some(ram),
            ram_bandwidth_gbs: bandwidth_gbs,
            bandwidth_source: "given".into(),
            gpus: vec![],
            unified: false,
        }
    }
    pub fn with_gpu(mut self, name: &str, memory_gb: f64) -> Hardware {
        self.gpus.push(Gpu {
            name: name.into(),
            memory_bytes: (memory_gb * 1e9) as u64,
            used_bytes: 0,
            bandwidth_gbs: gpu_bandwidth(name),
        });
        self
    }
    /// Apple Silicon with `ram_gb` of unified memory.
    pub fn apple(chip: &str, ram_gb: f64) -> Hardware {
        let bw = apple_bandwidth(chip);
        let ram = (ram_gb * 1e9) as u64;
        Hardware {
            os: "macos".into(),
            cpu: chip.into(),
            cores: 12,
            ram_bytes: ram,
            ram_available_bytes: None,
            ram_bandwidth_gbs: bw,
            bandwidth_source: format!("{chip} (table)"),
            gpus: vec![Gpu { name: chip.into(), memory_bytes: ram, used_bytes: 0, bandwidth_gbs: bw }],
            unified: true,
        }
    }
    pub fn has_gpu(&self) -> bool {
        !self.gpus.is_empty()
    }
    /// Discrete GPU memory free for us, over all GPUs (llama.cpp splits layers across them).
    pub fn gpu_free_bytes(&self) -> u64 {
        self.gpus.iter().map(Gpu::free_bytes).sum()
    }
    /// Layers run one after another, so several GPUs read at the pace of the slowest.
    pub fn gpu_bandwidth_gbs(&self) -> f64 {
        self.gpus.iter().map(|g| g.bandwidth_gbs).fold(f64::INFINITY, f64::min).min(1e6)
    }
    pub fn describe(&self) -> String {
        let gb = |b: u64| b as f64 / 1e9;
        let mut s = format!("{} ({} cores), {:.0} GB RAM", self.cpu, self.cores, gb(self.ram_bytes));
        if let Some(a) = self.ram_available_bytes {
            s.push_str(&format!(" ({:.0} GB available)", gb(a)));
        }
        if self.unified {
            s.push_str(&format!(", unified memory, {:.0} GB/s", self.ram_bandwidth_gbs));
            return s;
        }
        s.push_str(&format!(", ~{:.0} GB/s [{}]", self.ram_bandwidth_gbs, self.bandwidth_source));
        if self.gpus.is_empty() {
            s.push_str(", no GPU seen");
        }
        for g in &self.gpus {
            s.push_str(&format!(
                "; GPU {} {:.0} GB ({:.0} GB free), {:.0} GB/s",
                g.name,
                gb(g.memory_bytes),
                gb(g.free_bytes()),
                g.bandwidth_gbs
            ));
        }
        s
    }
}

/// Published peak memory bandwidth by NVIDIA GPU name, GB/s. More specific names first.
const NVIDIA: &[(&str, f64)] = &[
    ("GB200", 8000.0),
    ("B200", 8000.0),
    ("B100", 8000.0),
    ("GH200", 4000.0),
    ("H200", 4800.0),
    ("H100 NVL", 3900.0),
    ("H100 PCIE", 2000.0),
    ("H100", 3350.0),
    ("H800", 3350.0),
    ("H20", 4000.0),
    ("A100-SXM4-80GB", 2039.0),
    ("A100 80GB", 1935.0),
    ("A100", 1555.0),
    ("A800", 2039.0),
    ("L40S", 864.0),
    ("L40", 864.0),
    ("L4", 300.0),
    ("A40", 696.0),
    ("A30", 933.0),
    ("A10G", 600.0),
    ("A10", 600.0),
    ("T4", 320.0),
    ("V100", 900.0),
    ("GB10", 273.0),
    ("RTX PRO 6000", 1792.0),
    ("RTX 6000 ADA", 960.0),
    ("RTX A6000", 768.0),
    ("RTX 5090", 1792.0),
    ("RTX 5080", 960.0),
    ("RTX 5070 TI", 896.0),
    ("RTX 5070", 672.0),
    ("RTX 5060 TI", 448.0),
    ("RTX 4090", 1008.0),
    ("RTX 4080 SUPER", 736.0),
    ("RTX 4080", 717.0),
    ("RTX 4070 TI SUPER", 672.0),
    ("RTX 4070 TI", 504.0),
    ("RTX 4070", 504.0),
    ("RTX 4060 TI", 288.0),
    ("RTX 4060", 272.0),
    ("RTX 3090 TI", 1008.0),
    ("RTX 3090", 936.0),
    ("RTX 3080 TI", 912.0),
    ("RTX 3080", 760.0),
    ("RTX 3070", 448.0),
    ("RTX 3060", 360.0),
];

/// Apple Silicon unified-memory bandwidth by chip, GB/s (the full-bandwidth configuration of each chip).
const APPLE: &[(&str, f64)] = &[
    ("M1 ULTRA", 800.0),
    ("M1 MAX", 400.0),
    ("M1 PRO", 200.0),
    ("M1", 68.0),
    ("M2 ULTRA", 800.0),
    ("M2 MAX", 400.0),
    ("M2 PRO", 200.0),
    ("M2", 100.0),
    ("M3 ULTRA", 819.0),
    ("M3 MAX", 400.0),
    ("M3 PRO", 150.0),
    ("M3", 100.0),
    ("M4 MAX", 546.0),
    ("M4 PRO", 273.0),
    ("M4", 120.0),
    ("M5 MAX", 614.0),
    ("M5 PRO", 307.0),
    ("M5", 153.0),
];

fn lookup(table: &[(&str, f64)], name: &str) -> Option<f64> {
    let n = name.to_ascii_uppercase();
    table.iter().find(|(k, _)| n.contains(k)).map(|(_, v)| *v)
}

/// GPU bandwidth by name; unknown GPUs get a conservative 300 GB/s.
pub fn gpu_bandwidth(name: &str) -> f64 {
    lookup(NVIDIA, name).or_else(|| lookup(APPLE, name)).unwrap_or(300.0)
}

pub fn apple_bandwidth(chip: &str) -> f64 {
    lookup(APPLE, chip).unwrap_or(100.0)
}

/// One core streams about this much memory (GB/s) in practice; a few cores cannot use a server's channels.
pub const PER_CORE_GBS: f64 = 12.0;

/// System memory bandwidth by CPU (GB/s) and where the figure comes from.
pub fn ram_bandwidth(cpu: &str, cores: usize) -> (f64, String) {
    if let Some(v) =
        std::env::var("LOKAL_RAM_BANDWIDTH_GBS").ok().and_then(|v| v.parse::<f64>().ok()).filter(|v| *v > 0.0)
    {
        return (v, "LOKAL_RAM_BANDWIDTH_GBS".into());
    }
    let c = cpu.to_ascii_uppercase();
    let (table, what) = if c.contains("APPLE") {
        (apple_bandwidth(cpu), "Apple chip table")
    } else if c.contains("EPYC") || c.contains("XEON") || c.contains("THREADRIPPER PRO") {
        // 8-channel DDR4-3200 to 12-channel DDR5: take the 8-channel figure.
        (200.0, "server, 8 memory channels")
    } else {
        (80.0, "desktop, dual-channel DDR5")
    };
    let cap = cores as f64 * PER_CORE_GBS;
    if cap < table {
        (cap, format!("{what}, capped at {cores} cores x {PER_CORE_GBS:.0} GB/s"))
    } else {
        (table, what.to_string())
    }
}

/// Run a probe command with a time limit (a wedged driver can make nvidia-smi hang). Its output is read on a
/// thread of its own while we wait: a child that fills the pipe before exiting would otherwise never exit.
fn probe(cmd: &str, args: &[&str]) -> Option<String> {
    use std::process::{Command, Stdio};
    let mut child =
        Command::new(cmd).args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().ok()?;
    let mut stdout = child.stdout.take()?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut out = String::new();
        let _ = tx.send(std::io::Read::read_to_string(&mut stdout, &mut out).map(|_| out));
    });
    match rx.recv_timeout(Duration::from_secs(5)) {
        Ok(Ok(out)) => child.wait().ok()?.success().then_some(out),
        _ => {
            let _ = child.kill();
            let _ = child.wait();
            None
        }
    }
}

/// `nvidia-smi --query-gpu=name,memory.total,memory.used --format=csv,noheader,nounits` output (MiB).
/// A GPU whose memory reads `[N/A]` shares system memory (GB10, Jetson): reported with `None` memory.
pub fn parse_nvidia_smi(text: &str) -> Vec<(String, Option<u64>, u64)> {
    const MIB: u64 = 1 << 20;
    text.lines()
        .filter_map(|l| {
            let mut parts = l.rsplitn(3, ',');
            let used = parts.next()?.trim();
            let total = parts.next()?.trim();
            let name = parts.next()?.trim();
            if name.is_empty() {
                return None;
            }
            let total = total.parse::<u64>().ok().map(|m| m * MIB);
            Some((name.to_string(), total, used.parse::<u64>().map(|m| m * MIB).unwrap_or(0)))
        })
        .collect()
}

fn meminfo() -> (Option<u64>, Option<u64>) {
    let s = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let kb = |key: &str| {
        s.lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            .map(|k| k * 1024)
    };
    (kb("MemTotal:"), kb("MemAvailable:"))
}

/// The cgroup memory limit of this process, if one is set (v2, then v1).
fn cgroup_limit() -> Option<u64> {
    for p in ["/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"] {
        if let Ok(s) = std::fs::read_to_string(p) {
            if let Ok(v) = s.trim().parse::<u64>() {
                // v1 reports "no limit" as a huge number.
                if v < (1u64 << 60) {
                    return Some(v);
                }
            }
        }
    }
    None
}

fn cpu_name() -> String {
    if cfg!(target_os = "macos") {
        if let Some(s) = probe("sysctl", &["-n", "machdep.cpu.brand_string"]) {
            return s.trim().to_string();
        }
    }
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string())
}

/// Look at this machine. Never fails: what cannot be read falls back to conservative figures.
pub fn detect() -> Hardware {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let cpu = cpu_name();
    if cfg!(target_os = "macos") {
        let mem = probe("sysctl", &["-n", "hw.memsize"]).and_then(|s| s.trim().parse::<u64>().ok()).unwrap_or(8 << 30);
        let mut hw = Hardware::apple(&cpu, mem as f64 / 1e9);
        hw.cores = cores;
        hw.ram_bytes = mem;
        if !cpu.contains("Apple") {
            // An Intel Mac: no unified memory worth offloading to.
            hw.unified = false;
            hw.gpus.clear();
            (hw.ram_bandwidth_gbs, hw.bandwidth_source) = ram_bandwidth(&cpu, cores);
        } else if let Ok(v) = std::env::var("LOKAL_RAM_BANDWIDTH_GBS").unwrap_or_default().parse::<f64>() {
            hw.ram_bandwidth_gbs = v;
            hw.gpus[0].bandwidth_gbs = v;
            hw.bandwidth_source = "LOKAL_RAM_BANDWIDTH_GBS".into();
        }
        return hw;
    }
    let (total, avail) = meminfo();
    let smi = probe("nvidia-smi", &["--query-gpu=name,memory.total,memory.used", "--format=csv,noheader,nounits"])
        .unwrap_or_default();
    from_probes(cpu, cores, total, avail, cgroup_limit(), &smi)
}

/// A Linux machine from what [`detect`] reads: CPU name, cores, MemTotal / MemAvailable (bytes), the cgroup
/// limit, and `nvidia-smi`'s CSV. Public so that a machine's probe output can be replayed in a test.
pub fn from_probes(
    cpu: String,
    cores: usize,
    mem_total: Option<u64>,
    mem_available: Option<u64>,
    cgroup_limit: Option<u64>,
    nvidia_smi_csv: &str,
) -> Hardware {
    let ram = match (mem_total, cgroup_limit) {
        (Some(t), Some(l)) => t.min(l),
        (Some(t), None) => t,
        (None, Some(l)) => l,
        (None, None) => 8 << 30,
    };
    let (bw, src) = ram_bandwidth(&cpu, cores);
    let mut hw = Hardware {
        os: std::env::consts::OS.into(),
        cpu,
        cores,
        ram_bytes: ram,
        ram_available_bytes: mem_available.map(|a| a.min(ram)),
        ram_bandwidth_gbs: bw,
        bandwidth_source: src,
        gpus: vec![],
        unified: false,
    };
    for (name, total, used) in parse_nvidia_smi(nvidia_smi_csv) {
        let bw = gpu_bandwidth(&name);
        match total {
            Some(t) => hw.gpus.push(Gpu { name, memory_bytes: t, used_bytes: used, bandwidth_gbs: bw }),
            None => {
                // Shares system memory: one pool, read at the GPU's bandwidth.
                hw.unified = true;
                hw.ram_bandwidth_gbs = bw;
                hw.gpus.push(Gpu { name, memory_bytes: ram, used_bytes: 0, bandwidth_gbs: bw });
            }
        }
    }
    hw
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn bandwidth_tables_pick_the_specific_name() {
        assert_eq!(gpu_bandwidth("NVIDIA H100 80GB HBM3"), 3350.0);
        assert_eq!(gpu_bandwidth("NVIDIA H100 PCIe"), 2000.0);
        assert_eq!(gpu_bandwidth("NVIDIA H200"), 4800.0);
        assert_eq!(gpu_bandwidth("NVIDIA GeForce RTX 4090"), 1008.0);
        assert_eq!(gpu_bandwidth("NVIDIA GeForce RTX 4070 Ti"), 504.0);
        assert_eq!(gpu_bandwidth("NVIDIA L4"), 300.0);
        assert_eq!(gpu_bandwidth("NVIDIA L40S"), 864.0);
        assert_eq!(gpu_bandwidth("Some New GPU"), 300.0);
        assert_eq!(apple_bandwidth("Apple M3 Ultra"), 819.0);
        assert_eq!(apple_bandwidth("Apple M4 Pro"), 273.0);
        assert_eq!(apple_bandwidth("Apple M2"), 100.0);
    }

    #[test]
    fn ram_bandwidth_is_capped_by_cores() {
        if std::env::var_os("LOKAL_RAM_BANDWIDTH_GBS").is_some() {
            return;
        }
        assert_eq!(ram_bandwidth("AMD EPYC", 2).0, 24.0);
        assert_eq!(ram_bandwidth("AMD EPYC 9654", 96).0, 200.0);
        assert_eq!(ram_bandwidth("AMD Ryzen 9 7950X", 16).0, 80.0);
    }

    #[test]
    fn parses_nvidia_smi() {
        let out = "NVIDIA H100 80GB HBM3, 81559, 4\nNVIDIA GB10, [N/A], [N/A]\n\n";
        let g = parse_nvidia_smi(out);
        assert_eq!(g.len(), 2);
        assert_eq!(g[0], ("NVIDIA H100 80GB HBM3".to_string(), Some(81559 << 20), 4 << 20));
        assert_eq!(g[1].1, None);
        assert!(parse_nvidia_smi("garbage").is_empty());
    }

    /// Probe output taken on the project's H100 device machine (nvidia-smi CSV verbatim).
    pub(crate) fn h100_device() -> Hardware {
        from_probes(
            "Intel(R) Xeon(R) Processor".into(),
            16,
            Some(131_981_020 * 1024),
            Some(130_735_804 * 1024),
            None,
            "NVIDIA H100 80GB HBM3, 81559, 0\n",
        )
    }

    #[test]
    fn replays_the_h100_device() {
        let hw = h100_device();
        assert_eq!(hw.gpus.len(), 1);
        assert_eq!((hw.gpus[0].memory_bytes, hw.gpus[0].bandwidth_gbs), (81559 << 20, 3350.0));
        assert!(!hw.unified);
        if std::env::var_os("LOKAL_RAM_BANDWIDTH_GBS").is_none() {
            assert_eq!(hw.ram_bandwidth_gbs, 192.0, "16 cores x 12 GB/s under the 8-channel server figure");
        }
        let gb10 = from_probes("ARM".into(), 20, Some(128 << 30), None, None, "NVIDIA GB10, [N/A], [N/A]\n");
        assert!(gb10.unified && gb10.gpus[0].memory_bytes == 128 << 30);
        let limited = from_probes("x".into(), 4, Some(64 << 30), Some(60 << 30), Some(8 << 30), "");
        assert_eq!(
            (limited.ram_bytes, limited.ram_available_bytes),
            (8 << 30, Some(8 << 30)),
            "the cgroup limit bounds RAM"
        );
    }

    #[test]
    fn detect_never_fails() {
        let hw = detect();
        assert!(hw.cores >= 1 && hw.ram_bytes > 0 && hw.ram_bandwidth_gbs > 0.0);
        eprintln!("{}", hw.describe());
    }
}
