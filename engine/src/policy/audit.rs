//! The egress audit log: one JSON line per request that left the client's network, appended to a file
//! outside any repository, so a reviewer can see what went where.
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub time: String,
    pub workspace: String,
    pub tier: u8,
    pub action: String,
    pub host: String,
    pub bytes: usize,
    pub sha256: String,
    pub anonymized: bool,
    pub outcome: String,
}

#[derive(Debug, Clone)]
pub struct AuditLog {
    path: PathBuf,
}

impl AuditLog {
    pub fn at(path: PathBuf) -> Self {
        Self { path }
    }

    /// `$LOKAL_AUDIT_LOG`, else `$XDG_DATA_HOME/lokal/audit.jsonl`, else `~/.local/share/lokal/audit.jsonl`.
    pub fn default_location() -> Self {
        if let Some(p) = std::env::var_os("LOKAL_AUDIT_LOG") {
            return Self::at(PathBuf::from(p));
        }
        let base = crate::config::xdg_dir("XDG_DATA_HOME", ".local/share");
        Self::at(base.join("lokal").join("audit.jsonl"))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn append(&self, rec: &AuditRecord) -> std::io::Result<()> {
        if let Some(d) = self.path.parent() {
            std::fs::create_dir_all(d)?;
        }
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(&self.path)?;
        let mut line = serde_json::to_vec(rec).map_err(std::io::Error::other)?;
        line.push(b'\n');
        // One write per record, so concurrent writers never interleave within a line.
        f.write_all(&line)
    }

    pub fn read(&self) -> Vec<AuditRecord> {
        std::fs::read_to_string(&self.path)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

/// The log as a table; `workspace` keeps only records whose workspace contains that text.
pub fn render(records: &[AuditRecord], workspace: Option<&str>) -> String {
    let rows: Vec<&AuditRecord> = records.iter().filter(|r| workspace.is_none_or(|w| r.workspace.contains(w))).collect();
    let mut out = format!("{:<20} {:<4} {:<16} {:<28} {:>8} {:<5} {:<12} {}\n", "time", "tier", "action", "host", "bytes", "anon", "sha256", "workspace / outcome");
    for r in &rows {
        out.push_str(&format!(
            "{:<20} {:<4} {:<16} {:<28} {:>8} {:<5} {:<12} {} / {}\n",
            r.time,
            r.tier,
            r.action,
            r.host,
            r.bytes,
            if r.anonymized { "yes" } else { "no" },
            &r.sha256[..r.sha256.len().min(12)],
            r.workspace,
            r.outcome
        ));
    }
    out.push_str(&format!("{} record(s)\n", rows.len()));
    out
}

/// UTC time as RFC 3339, without a date crate.
pub fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil-from-days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn append_read_and_filter() {
        let log = AuditLog::at(std::env::temp_dir().join(format!("lokal-audit-{}.jsonl", std::process::id())));
        let _ = std::fs::remove_file(log.path());
        let rec = |w: &str| AuditRecord {
            time: now_rfc3339(),
            workspace: w.into(),
            tier: 1,
            action: "cloudDesign".into(),
            host: "api.example.com:443".into(),
            bytes: 10,
            sha256: "ab".repeat(32),
            anonymized: false,
            outcome: "ok".into(),
        };
        log.append(&rec("/work/a")).unwrap();
        log.append(&rec("/work/b")).unwrap();
        assert_eq!(log.read().len(), 2);
        let t = render(&log.read(), Some("/work/b"));
        assert!(t.contains("/work/b") && !t.contains("/work/a") && t.contains("1 record(s)"), "{t}");
        assert_eq!(now_rfc3339().len(), 20);
    }
}
