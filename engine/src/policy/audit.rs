//! The egress audit log: one JSON line per permitted request (and per refusal outside Tier 3), appended to a
//! file outside any repository, so a reviewer can see what went where without the log itself becoming a
//! copy of what was sent: it keeps sizes and hashes, never payloads.
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// RFC 3339, UTC.
    pub time: String,
    pub workspace: String,
    pub tier: u8,
    pub action: String,
    /// `host:port` of the destination.
    pub host: String,
    pub bytes: usize,
    /// Hex SHA-256 of the exact bytes sent; empty when nothing was sent (a refusal).
    pub sha256: String,
    pub anonymized: bool,
    /// What the Tier-2 anonymizer replaced, per detector (counts only, never values); absent when nothing.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub counts: std::collections::BTreeMap<String, usize>,
    /// `ok`, `error: …` or `denied: …`.
    pub outcome: String,
    /// Whose editor session made the request, on a daemon that serves several Unix users (`lokal daemon
    /// --group`); absent for a user's own processes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

pub fn outcome_ok() -> String {
    "ok".into()
}

pub fn outcome_error(e: &str) -> String {
    format!("error: {e}")
}

pub fn outcome_denied(why: &str) -> String {
    format!("denied: {why}")
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditLog {
    path: PathBuf,
    /// Written into every record that does not name a user already.
    user: Option<String>,
}

/// An open handle on the log, taken before a request is made so that a log that cannot be written stops the
/// request instead of letting it leave unrecorded.
#[derive(Debug)]
pub struct AuditWriter {
    file: std::fs::File,
    path: PathBuf,
    user: Option<String>,
}

impl AuditWriter {
    pub fn write(&mut self, rec: &AuditRecord) -> std::io::Result<()> {
        let named;
        let rec = match (&rec.user, &self.user) {
            (None, Some(u)) => {
                named = AuditRecord { user: Some(u.clone()), ..rec.clone() };
                &named
            }
            _ => rec,
        };
        let mut line = serde_json::to_vec(rec).map_err(std::io::Error::other)?;
        line.push(b'\n');
        // One write per record on an O_APPEND file: concurrent writers never interleave within a line.
        self.file.write_all(&line)?;
        self.file.flush()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// What [`AuditLog::load`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditRecords {
    pub records: Vec<AuditRecord>,
    /// Lines that are not records (a torn write, a hand edit); counted so a reader notices.
    pub malformed: usize,
}

impl AuditLog {
    pub fn at(path: PathBuf) -> Self {
        Self { path, user: None }
    }

    /// The same log, with records naming `user` (the Unix user a daemon session belongs to).
    pub fn with_user(mut self, user: Option<String>) -> Self {
        self.user = user;
        self
    }

    pub fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }

    /// `$LOKAL_AUDIT_LOG`, else `$XDG_DATA_HOME/lokal/audit.jsonl`, else `~/.local/share/lokal/audit.jsonl`.
    pub fn default_location() -> Self {
        if let Some(p) = std::env::var_os("LOKAL_AUDIT_LOG").filter(|p| !p.is_empty()) {
            return Self::at(PathBuf::from(p));
        }
        let base = crate::config::xdg_dir("XDG_DATA_HOME", ".local/share");
        Self::at(base.join("lokal").join("audit.jsonl"))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn open(&self) -> std::io::Result<AuditWriter> {
        if let Some(d) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(d)?;
        }
        let mut opts = std::fs::OpenOptions::new();
        opts.create(true).append(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        Ok(AuditWriter { file: opts.open(&self.path)?, path: self.path.clone(), user: self.user.clone() })
    }

    pub fn append(&self, rec: &AuditRecord) -> std::io::Result<()> {
        self.open()?.write(rec)
    }

    /// Every record; a missing log is an empty one.
    pub fn load(&self) -> std::io::Result<AuditRecords> {
        let text = match std::fs::read_to_string(&self.path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(AuditRecords::default()),
            r => r?,
        };
        let mut out = AuditRecords::default();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            match serde_json::from_str(line) {
                Ok(r) => out.records.push(r),
                Err(_) => out.malformed += 1,
            }
        }
        Ok(out)
    }

    /// The records that parse; unreadable logs read as empty (use [`Self::load`] to tell the difference).
    pub fn read(&self) -> Vec<AuditRecord> {
        self.load().map(|r| r.records).unwrap_or_default()
    }

    /// The log as a table, for `lokal audit [--workspace W]`.
    pub fn render_table(&self, workspace: Option<&str>) -> std::io::Result<String> {
        let loaded = self.load()?;
        let mut out = render(&loaded.records, workspace);
        if loaded.malformed > 0 {
            out.push_str(&format!("{} line(s) of {} are not records\n", loaded.malformed, self.path.display()));
        }
        Ok(out)
    }
}

/// Whether a record belongs to the workspace the user asked about: the same folder, a folder inside it,
/// or (for convenience on the command line) any workspace whose path contains the text.
pub fn matches_workspace(rec: &AuditRecord, workspace: &str) -> bool {
    rec.workspace == workspace || Path::new(&rec.workspace).starts_with(workspace) || rec.workspace.contains(workspace)
}

/// The records as a plain-text table; `workspace` keeps only the records [`matches_workspace`] accepts.
pub fn render(records: &[AuditRecord], workspace: Option<&str>) -> String {
    const HEAD: [&str; 9] = ["time", "tier", "workspace", "action", "host", "bytes", "anon", "sha256", "outcome"];
    let rows: Vec<[String; 9]> = records
        .iter()
        .filter(|r| workspace.is_none_or(|w| matches_workspace(r, w)))
        .map(|r| {
            [
                r.time.clone(),
                r.tier.to_string(),
                match &r.user {
                    Some(u) => format!("{} ({u})", r.workspace),
                    None => r.workspace.clone(),
                },
                r.action.clone(),
                r.host.clone(),
                r.bytes.to_string(),
                if r.anonymized { "yes" } else { "no" }.to_string(),
                if r.sha256.is_empty() { "-".to_string() } else { r.sha256.chars().take(12).collect() },
                // One record, one line: an error text with newlines would break the table.
                r.outcome.replace(['\n', '\r'], " "),
            ]
        })
        .collect();
    let mut width = HEAD.map(|h| h.chars().count());
    for r in &rows {
        for (w, c) in width.iter_mut().zip(r.iter()) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else if i == 1 || i == 5 {
                s.push_str(&format!("{c:>w$}  ", w = width[i]));
            } else {
                s.push_str(&format!("{c:<w$}  ", w = width[i]));
            }
        }
        s.trim_end().to_string() + "\n"
    };
    let mut out = line(&HEAD.map(String::from));
    for r in &rows {
        out.push_str(&line(r));
    }
    out.push_str(&format!("{} record(s)\n", rows.len()));
    out
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// UTC time as RFC 3339 (whole seconds), without a date crate.
pub fn now_rfc3339() -> String {
    let secs =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
    rfc3339(secs)
}

/// Seconds since the Unix epoch as RFC 3339, UTC.
pub fn rfc3339(secs: i64) -> String {
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
pub(crate) mod tests {
    use super::*;

    /// A fresh log path under the temp dir, unique per test.
    pub(crate) fn temp_log(name: &str) -> AuditLog {
        let log = AuditLog::at(
            std::env::temp_dir().join(format!("lokal-audit-{}-{name}", std::process::id())).join("audit.jsonl"),
        );
        let _ = std::fs::remove_file(log.path());
        log
    }

    fn rec(w: &str, outcome: &str) -> AuditRecord {
        AuditRecord {
            time: now_rfc3339(),
            workspace: w.into(),
            tier: 1,
            action: "cloud design".into(),
            host: "api.example.com:443".into(),
            bytes: 10,
            sha256: sha256_hex(b"x"),
            anonymized: false,
            counts: Default::default(),
            outcome: outcome.into(),
            user: None,
        }
    }

    #[test]
    fn append_read_and_filter() {
        let log = temp_log("filter");
        assert_eq!(log.load().unwrap(), AuditRecords::default(), "a missing log is empty");
        log.append(&rec("/work/a", "ok")).unwrap();
        log.append(&rec("/work/b", "error: connection refused\nsecond line")).unwrap();
        log.append(&rec("/work/ab", "ok")).unwrap();
        assert_eq!(log.read().len(), 3);
        let t = render(&log.read(), Some("/work/b"));
        assert!(t.contains("/work/b") && !t.contains("/work/a ") && t.contains("1 record(s)"), "{t}");
        assert!(t.contains("connection refused second line"), "{t}");
        assert_eq!(t.lines().count(), 3, "{t}");
        let all = log.render_table(None).unwrap();
        assert!(all.starts_with("time") && all.contains("3 record(s)"), "{all}");
        let header = all.lines().next().unwrap();
        let row = all.lines().nth(1).unwrap();
        assert_eq!(header.find("workspace"), row.find("/work/a"), "columns line up:\n{all}");
    }

    #[test]
    fn malformed_lines_are_counted_not_fatal() {
        let log = temp_log("malformed");
        log.append(&rec("/w", "ok")).unwrap();
        std::fs::OpenOptions::new().append(true).open(log.path()).unwrap().write_all(b"{\"torn\n").unwrap();
        let l = log.load().unwrap();
        assert_eq!((l.records.len(), l.malformed), (1, 1));
        assert!(log.render_table(None).unwrap().contains("1 line(s)"));
    }

    #[cfg(unix)]
    #[test]
    fn the_log_is_private_to_the_user() {
        use std::os::unix::fs::PermissionsExt;
        let log = temp_log("mode");
        log.append(&rec("/w", "ok")).unwrap();
        assert_eq!(std::fs::metadata(log.path()).unwrap().permissions().mode() & 0o777, 0o600);
    }

    /// A daemon serving several Unix users names each session's user in its records; a record that names
    /// its own user keeps it, and logs without a user write none.
    #[test]
    fn a_log_for_a_user_names_that_user_in_every_record() {
        let log = temp_log("user").with_user(Some("alice".into()));
        log.append(&rec("/w", "ok")).unwrap();
        log.append(&AuditRecord { user: Some("bob".into()), ..rec("/w", "ok") }).unwrap();
        AuditLog::at(log.path().to_path_buf()).append(&rec("/w", "ok")).unwrap();
        let users: Vec<_> = log.read().into_iter().map(|r| r.user).collect();
        assert_eq!(users, [Some("alice".to_string()), Some("bob".to_string()), None]);
        let raw = std::fs::read_to_string(log.path()).unwrap();
        assert_eq!(raw.matches("\"user\"").count(), 2, "no user key where there is no user: {raw}");
        assert!(render(&log.read(), None).contains("/w (alice)"));
    }

    #[test]
    fn times_and_hashes() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_710_460_800 + 3661), "2024-03-15T01:01:01Z");
        assert_eq!(now_rfc3339().len(), 20);
        assert_eq!(sha256_hex(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
