//! `lokal models` as a plain-text table and as JSON.
use super::fit::{Class, RunsOn};
use super::ModelsReport;

/// `253 MB`, `4.68 GB`, `241 GB`, `1.03 TB`.
pub fn size(bytes: u64) -> String {
    let b = bytes as f64;
    if b < 1e9 {
        format!("{:.0} MB", b / 1e6)
    } else if b < 1e10 {
        format!("{:.2} GB", b / 1e9)
    } else if b < 1e12 {
        format!("{:.0} GB", b / 1e9)
    } else {
        format!("{:.2} TB", b / 1e12)
    }
}

fn billions(p: u64) -> String {
    let b = p as f64 / 1e9;
    if b < 1.0 {
        format!("{:.0}M", b * 1e3)
    } else if b < 100.0 {
        format!("{}B", format!("{b:.1}").trim_end_matches(".0"))
    } else {
        format!("{b:.0}B")
    }
}

/// `7.6B`, `397B/17B` for MoE (total/active); `~` in front where the figures are approximate.
pub fn params(e: &super::Entry) -> String {
    let tilde = if e.approx { "~" } else { "" };
    match e.active_params {
        Some(a) => format!("{tilde}{}/{}", billions(e.params), billions(a)),
        None => format!("{tilde}{}", billions(e.params)),
    }
}

impl ModelsReport {
    pub fn render_text(&self) -> String {
        let mut out = String::new();
        out.push_str(&format!("hardware: {}\n", self.hardware.describe()));
        out.push_str(&format!(
            "context:  {} cells x {} sequences ({} cells; KV cache f16)\n\n",
            self.config.ctx_per_sequence,
            self.config.sequences,
            self.config.cells()
        ));
        out.push_str(&format!(
            "  {:<32} {:>11} {:<7} {:>8} {:>8}  {:<18} {:>6}  {}\n",
            "model", "params", "quant", "file", "needs", "runs on", "tok/s", "fit"
        ));
        for f in &self.models {
            let e = &f.entry;
            let runs = match (f.class, f.runs_on) {
                (Class::WontFit, _) => "-".to_string(),
                (_, RunsOn::Cpu) => "CPU".to_string(),
                (_, RunsOn::Unified) => format!("GPU {}/{} (unified)", f.gpu_layers, e.n_layers),
                (_, RunsOn::Gpu | RunsOn::Split) => format!("GPU {}/{} layers", f.gpu_layers, e.n_layers),
            };
            let toks = match f.tokens_per_s {
                Some(t) if t >= 10.0 => format!("{t:.0}"),
                Some(t) => format!("{t:.1}"),
                None => "-".into(),
            };
            let mut fit = f.class.label().to_string();
            if f.slow && f.class != Class::WontFit {
                fit.push_str(" + slow");
            }
            if f.entry.path.is_some() {
                fit.push_str(" [on disk]");
            }
            if f.recommended {
                fit.push_str("  <- recommended");
            }
            let approx = if e.approx { "~" } else { "" };
            let mark = if f.recommended { "*" } else { " " };
            let mut name: String = e.name.chars().take(32).collect();
            if e.source == super::Source::File {
                name = format!("{} (file)", e.name.chars().take(25).collect::<String>());
            }
            out.push_str(&format!(
                "{mark} {:<32} {:>11} {:<7} {:>8} {:>8}  {:<18} {:>6}  {}\n",
                name,
                params(e),
                e.quant,
                size(e.file_bytes),
                format!("{approx}{}", size(f.needed_bytes)),
                runs,
                toks,
                fit
            ));
            if let Some(m) = &f.measured {
                out.push_str(&format!("    measured: {}\n", m.describe()));
            }
        }
        out.push('\n');
        for n in &self.notes {
            out.push_str(&format!("note: {n}\n"));
        }
        out
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_well() {
        assert_eq!(size(253_113_024), "253 MB");
        assert_eq!(size(4_680_000_000), "4.68 GB");
        assert_eq!(size(241_000_000_000), "241 GB");
        assert_eq!(size(1_030_000_000_000), "1.03 TB");
    }
}
