//! The Tier-2 anonymizer: from a workspace's schema sources, a payload that keeps the structure (tables,
//! columns, types, keys, relations, JSON/YAML keys) and replaces every value with a synthetic one of the
//! same type and shape, consistently within the payload, so joins still line up. Secrets and personal data
//! never pass: values are never copied, only their shape.
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Default, Serialize)]
pub struct Table {
    pub name: String,
    /// (column, type) in order; type "" when only data names the column.
    pub columns: Vec<(String, String)>,
    pub primary_key: Vec<String>,
    /// (column, referenced table, referenced column)
    pub references: Vec<(String, String, String)>,
    /// Synthetic rows.
    pub rows: Vec<Vec<String>>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct AnonymizedPayload {
    pub tables: Vec<Table>,
    /// Other structured samples (JSON, YAML, .env), as synthetic documents keyed by file name.
    pub documents: BTreeMap<String, String>,
    pub sources: Vec<String>,
}

/// Keeps the real→synthetic mapping so the same value gets the same stand-in everywhere in a payload.
#[derive(Default)]
struct Synth {
    map: HashMap<String, String>,
    n: usize,
}

fn is_secret_name(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    ["password", "passwd", "secret", "token", "api_key", "apikey", "private_key", "dsn", "credential", "connection", "auth"]
        .iter()
        .any(|k| n.contains(k))
        || n == "key"
        || n.ends_with("_key")
}

impl Synth {
    fn value(&mut self, column: &str, raw: &str) -> String {
        let v = raw.trim();
        let unquoted = v.trim_matches(|c| c == '\'' || c == '"');
        if v.eq_ignore_ascii_case("null") || v.is_empty() {
            return v.to_string();
        }
        if is_secret_name(column) {
            return "<redacted>".into();
        }
        if v.eq_ignore_ascii_case("true") || v.eq_ignore_ascii_case("false") {
            return v.to_ascii_lowercase();
        }
        if let Some(s) = self.map.get(unquoted) {
            return s.clone();
        }
        self.n += 1;
        let n = self.n;
        let quoted = v.starts_with('\'') || v.starts_with('"');
        let s = shape(unquoted, n);
        let out = if quoted { format!("'{s}'") } else { s };
        self.map.insert(unquoted.to_string(), out.clone());
        out
    }
}

/// A synthetic value with the shape of `v`.
fn shape(v: &str, n: usize) -> String {
    let digits = v.chars().filter(|c| c.is_ascii_digit()).count();
    if v.contains('@') && v.contains('.') {
        return format!("user{n}@example.invalid");
    }
    let compact: String = v.chars().filter(|c| !c.is_whitespace()).collect();
    if compact.len() >= 15 && compact.len() <= 34 && compact[..2].chars().all(|c| c.is_ascii_uppercase()) && compact[2..4].chars().all(|c| c.is_ascii_digit()) {
        return format!("XX00{:0>width$}", n, width = compact.len() - 4);
    }
    if v.len() == 10 && v.as_bytes()[4] == b'-' && v.as_bytes()[7] == b'-' && digits == 8 {
        return format!("2000-{:02}-{:02}", 1 + n % 12, 1 + n % 28);
    }
    if let Some((int, frac)) = v.split_once('.') {
        if !int.is_empty() && int.trim_start_matches('-').chars().all(|c| c.is_ascii_digit()) && frac.chars().all(|c| c.is_ascii_digit()) {
            let width = int.trim_start_matches('-').len().max(1);
            return format!("{}.{:0>scale$}", (n % 10usize.pow(width.min(9) as u32)).max(1), n % 10usize.pow(frac.len().min(9) as u32), scale = frac.len());
        }
    }
    if !v.is_empty() && v.trim_start_matches('-').chars().all(|c| c.is_ascii_digit()) {
        let width = v.trim_start_matches('-').len().min(18);
        return format!("{}", 10u64.pow(width.saturating_sub(1) as u32) + n as u64);
    }
    if digits >= 7 && v.chars().all(|c| c.is_ascii_digit() || " +-()/".contains(c)) {
        return format!("+00 000 {n:07}");
    }
    // Free text (names, addresses, notes): a placeholder of about the same length.
    let words = v.split_whitespace().count().max(1);
    (0..words).map(|i| format!("text{n}{}", if i == 0 { String::new() } else { format!("_{i}") })).collect::<Vec<_>>().join(" ")
}

/// Split a SQL value list `a, 'b, c', 3` on top-level commas.
fn split_values(s: &str) -> Vec<String> {
    let (mut out, mut cur, mut quote, mut depth) = (Vec::new(), String::new(), None::<char>, 0i32);
    for c in s.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => {
                quote = None;
                cur.push(c)
            }
            (Some(_), c) => cur.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                cur.push(c)
            }
            (None, '(') => {
                depth += 1;
                cur.push(c)
            }
            (None, ')') => {
                depth -= 1;
                cur.push(c)
            }
            (None, ',') if depth == 0 => out.push(std::mem::take(&mut cur).trim().to_string()),
            (None, c) => cur.push(c),
        }
    }
    if !cur.trim().is_empty() {
        out.push(cur.trim().to_string());
    }
    out
}

fn ident(s: &str) -> String {
    s.trim().trim_matches(|c| c == '"' || c == '`' || c == '[' || c == ']').to_string()
}

/// Statements of a SQL file, split on `;` outside quotes.
fn statements(sql: &str) -> Vec<String> {
    let (mut out, mut cur, mut quote) = (Vec::new(), String::new(), false);
    for line in sql.lines() {
        let line = if quote { line } else { line.split("--").next().unwrap_or("") };
        for c in line.chars() {
            if c == '\'' {
                quote = !quote;
            }
            if c == ';' && !quote {
                out.push(std::mem::take(&mut cur));
            } else {
                cur.push(c);
            }
        }
        cur.push('\n');
    }
    if !cur.trim().is_empty() {
        out.push(cur);
    }
    out
}

#[derive(Default)]
pub struct Anonymizer {
    synth: Synth,
    tables: BTreeMap<String, Table>,
    documents: BTreeMap<String, String>,
    sources: Vec<String>,
}

impl Anonymizer {
    fn table(&mut self, name: &str) -> &mut Table {
        self.tables.entry(name.to_ascii_lowercase()).or_insert_with(|| Table { name: name.to_string(), ..Default::default() })
    }

    pub fn add_sql(&mut self, sql: &str) {
        // COPY ... FROM stdin carries its rows after the statement, up to a line "\.".
        let mut rest = String::new();
        let mut lines = sql.lines();
        while let Some(line) = lines.next() {
            let upper = line.trim_start().to_ascii_uppercase();
            if upper.starts_with("COPY ") && upper.contains("FROM STDIN") {
                let mut block = line.trim().trim_end_matches(';').to_string();
                for l in lines.by_ref() {
                    if l.trim() == "\\." {
                        break;
                    }
                    block.push('\n');
                    block.push_str(l);
                }
                self.copy(&block);
            } else {
                rest.push_str(line);
                rest.push('\n');
            }
        }
        for st in statements(&rest) {
            let t = st.trim();
            let upper = t.to_ascii_uppercase();
            if upper.starts_with("CREATE TABLE") {
                self.create_table(t);
            } else if upper.starts_with("INSERT INTO") {
                self.insert(t);
            } else if upper.starts_with("ALTER TABLE") && upper.contains("REFERENCES") {
                self.alter_fk(t);
            }
        }
    }

    fn create_table(&mut self, st: &str) {
        let Some(open) = st.find('(') else { return };
        let head = &st[..open];
        let name = ident(head.split_whitespace().last().unwrap_or(""));
        let body = &st[open + 1..st.rfind(')').unwrap_or(st.len())];
        let mut cols = Vec::new();
        let mut pk = Vec::new();
        let mut refs = Vec::new();
        for def in split_values(body) {
            let upper = def.to_ascii_uppercase();
            if upper.starts_with("PRIMARY KEY") {
                pk.extend(inner(&def).split(',').map(ident));
            } else if upper.starts_with("FOREIGN KEY") || upper.starts_with("CONSTRAINT") {
                if let Some((cols_part, rest)) = upper.find("REFERENCES").map(|i| (&def[..i], &def[i + 10..])) {
                    let c = inner(cols_part);
                    let target = ident(rest.split('(').next().unwrap_or(""));
                    refs.push((ident(&c), target, ident(&inner(rest))));
                }
            } else {
                let mut parts = def.split_whitespace();
                let col = ident(parts.next().unwrap_or(""));
                let ty = parts.next().unwrap_or("").to_string();
                if upper.contains("PRIMARY KEY") {
                    pk.push(col.clone());
                }
                if let Some(i) = upper.find("REFERENCES") {
                    let rest = &def[i + 10..];
                    refs.push((col.clone(), ident(rest.split('(').next().unwrap_or("")), ident(&inner(rest))));
                }
                cols.push((col, ty));
            }
        }
        let t = self.table(&name);
        t.columns = cols;
        t.primary_key = pk;
        t.references.extend(refs);
    }

    fn alter_fk(&mut self, st: &str) {
        let upper = st.to_ascii_uppercase();
        let name = ident(st.split_whitespace().nth(2).unwrap_or(""));
        if let (Some(fk), Some(r)) = (upper.find("FOREIGN KEY"), upper.find("REFERENCES")) {
            let col = ident(&inner(&st[fk..r]));
            let rest = &st[r + 10..];
            let target = ident(rest.split('(').next().unwrap_or(""));
            let tcol = ident(&inner(rest));
            self.table(&name).references.push((col, target, tcol));
        }
    }

    fn column_names(&mut self, table: &str, listed: Option<Vec<String>>) -> Vec<String> {
        let t = self.table(table);
        match listed {
            Some(cols) => {
                for c in &cols {
                    if !t.columns.iter().any(|(n, _)| n == c) {
                        t.columns.push((c.clone(), String::new()));
                    }
                }
                cols
            }
            None => t.columns.iter().map(|(n, _)| n.clone()).collect(),
        }
    }

    fn push_row(&mut self, table: &str, cols: &[String], values: &[String]) {
        let row: Vec<String> = values.iter().enumerate().map(|(i, v)| self.synth.value(cols.get(i).map(String::as_str).unwrap_or(""), v)).collect();
        let t = self.table(table);
        if t.rows.len() < 5 {
            t.rows.push(row);
        }
    }

    fn insert(&mut self, st: &str) {
        let upper = st.to_ascii_uppercase();
        let Some(vi) = upper.find("VALUES") else { return };
        let head = &st[11..vi];
        let (name, listed) = match head.find('(') {
            Some(i) => (ident(&head[..i]), Some(inner(&head[i..]).split(',').map(ident).collect())),
            None => (ident(head), None),
        };
        let cols = self.column_names(&name, listed);
        for tuple in split_values(&st[vi + 6..]) {
            let vals = split_values(&inner(&tuple));
            self.push_row(&name, &cols, &vals);
        }
    }

    fn copy(&mut self, st: &str) {
        let mut lines = st.lines();
        let head = lines.next().unwrap_or("");
        let after = &head[5..];
        let (name, listed) = match after.find('(') {
            Some(i) => (ident(&after[..i]), Some(inner(&after[i..]).split(',').map(ident).collect())),
            None => (ident(after.split_whitespace().next().unwrap_or("")), None),
        };
        let cols = self.column_names(&name, listed);
        for l in lines.filter(|l| !l.trim().is_empty()) {
            let vals: Vec<String> = l.split('\t').map(|v| if v == "\\N" { "NULL".into() } else { v.to_string() }).collect();
            self.push_row(&name, &cols, &vals);
        }
    }

    pub fn add_csv(&mut self, name: &str, text: &str) {
        let mut lines = text.lines().filter(|l| !l.trim().is_empty());
        let Some(header) = lines.next() else { return };
        let cols: Vec<String> = split_values(header).iter().map(|c| ident(c)).collect();
        let cols = self.column_names(name, Some(cols));
        for l in lines {
            let vals = split_values(l);
            self.push_row(name, &cols, &vals);
        }
    }

    pub fn add_json(&mut self, name: &str, text: &str) {
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(text) {
            let s = self.json_value("", &v);
            self.documents.insert(name.into(), serde_json::to_string_pretty(&s).unwrap_or_default());
        }
    }

    fn json_value(&mut self, key: &str, v: &serde_json::Value) -> serde_json::Value {
        use serde_json::Value as V;
        match v {
            V::Object(m) => V::Object(m.iter().map(|(k, v)| (k.clone(), self.json_value(k, v))).collect()),
            V::Array(a) => V::Array(a.iter().take(3).map(|v| self.json_value(key, v)).collect()),
            V::String(s) => V::String(self.synth.value(key, s)),
            V::Number(n) => serde_json::from_str(&self.synth.value(key, &n.to_string())).unwrap_or(V::Null),
            other => other.clone(),
        }
    }

    /// YAML samples and `.env` files: keys stay, values become synthetic (every `.env` value is redacted).
    pub fn add_key_values(&mut self, name: &str, text: &str, env: bool) {
        let mut out = String::new();
        for line in text.lines() {
            let t = line.trim_start();
            let sep = if env { '=' } else { ':' };
            match line.split_once(sep) {
                _ if t.starts_with('#') || t.is_empty() => {}
                Some((k, v)) if !v.trim().is_empty() => {
                    let val = if env { "<redacted>".to_string() } else { self.synth.value(k.trim().trim_start_matches("- "), v) };
                    out.push_str(&format!("{k}{sep} {val}\n"));
                }
                _ => {
                    out.push_str(line);
                    out.push('\n');
                }
            }
        }
        self.documents.insert(name.into(), out);
    }

    pub fn add_file(&mut self, rel: &str, text: &str) {
        let lower = rel.to_ascii_lowercase();
        let stem = Path::new(rel).file_stem().and_then(|s| s.to_str()).unwrap_or(rel);
        if lower.ends_with(".sql") {
            self.add_sql(text);
        } else if lower.ends_with(".csv") {
            self.add_csv(stem, text);
        } else if lower.ends_with(".json") {
            self.add_json(rel, text);
        } else if lower.ends_with(".yaml") || lower.ends_with(".yml") {
            self.add_key_values(rel, text, false);
        } else if Path::new(rel).file_name().and_then(|n| n.to_str()).is_some_and(|n| n == ".env" || n.starts_with(".env.") || n.ends_with(".env")) {
            self.add_key_values(rel, text, true);
        } else {
            return;
        }
        self.sources.push(rel.to_string());
    }

    pub fn finish(self) -> AnonymizedPayload {
        AnonymizedPayload { tables: self.tables.into_values().collect(), documents: self.documents, sources: self.sources }
    }
}

fn inner(s: &str) -> String {
    match (s.find('('), s.rfind(')')) {
        (Some(a), Some(b)) if b > a => s[a + 1..b].to_string(),
        _ => s.to_string(),
    }
}

impl AnonymizedPayload {
    /// Exactly the text that goes to the cloud model; the user can preview it before anything is sent.
    pub fn preview(&self) -> String {
        let mut out = String::from("-- Structure of the client's data. Every value below is synthetic.\n");
        for t in &self.tables {
            let cols: Vec<String> = t.columns.iter().map(|(c, ty)| if ty.is_empty() { c.clone() } else { format!("{c} {ty}") }).collect();
            out.push_str(&format!("TABLE {} ({})", t.name, cols.join(", ")));
            if !t.primary_key.is_empty() {
                out.push_str(&format!(" PRIMARY KEY ({})", t.primary_key.join(", ")));
            }
            out.push('\n');
            for (c, rt, rc) in &t.references {
                out.push_str(&format!("  {}.{c} -> {rt}.{rc}\n", t.name));
            }
            for r in &t.rows {
                out.push_str(&format!("  row: ({})\n", r.join(", ")));
            }
        }
        for (name, doc) in &self.documents {
            out.push_str(&format!("-- sample {name}\n{doc}\n"));
        }
        out
    }
}

/// Schema sources of a workspace (SQL, CSV, JSON, YAML, .env), skipping build output and anything large.
pub fn collect_schema_sources(root: &Path) -> Vec<(String, String)> {
    const SKIP: [&str; 6] = [".git", "target", "node_modules", ".venv", "dist", "build"];
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&dir) else { continue };
        let mut entries: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
        entries.sort();
        for p in entries {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if p.is_dir() {
                if !SKIP.contains(&name) {
                    stack.push(p);
                }
                continue;
            }
            let wanted = [".sql", ".csv", ".json", ".yaml", ".yml"].iter().any(|e| name.ends_with(e)) || name == ".env" || name.starts_with(".env.");
            if !wanted || name == "package-lock.json" || std::fs::metadata(&p).map(|m| m.len() > 2_000_000).unwrap_or(true) {
                continue;
            }
            if let Ok(text) = std::fs::read_to_string(&p) {
                let rel = p.strip_prefix(root).unwrap_or(&p).to_string_lossy().to_string();
                out.push((rel, text));
            }
        }
    }
    out
}

pub fn anonymize_workspace(root: &Path) -> AnonymizedPayload {
    let mut a = Anonymizer::default();
    for (rel, text) in collect_schema_sources(root) {
        a.add_file(&rel, &text);
    }
    a.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SQL: &str = "
CREATE TABLE customers (
  id integer PRIMARY KEY,
  full_name text NOT NULL,
  email text,
  iban varchar(34),
  phone text
);
CREATE TABLE invoices (
  id integer,
  customer_id integer REFERENCES customers(id),
  amount numeric(10,2),
  issued date,
  PRIMARY KEY (id)
);
INSERT INTO customers (id, full_name, email, iban, phone) VALUES
  (4711, 'Erika Mustermann', 'erika.mustermann@bank.de', 'DE89370400440532013000', '+49 30 1234567');
COPY invoices (id, customer_id, amount, issued) FROM stdin;
9001\t4711\t1234.56\t2024-03-15
\\.
";

    #[test]
    fn structure_stays_values_go_consistently() {
        let mut a = Anonymizer::default();
        a.add_sql(SQL);
        a.add_key_values(".env", "DATABASE_URL=postgres://admin:hunter2@db/prod\nAPI_TOKEN=sk-live-123\n", true);
        a.add_json("sample.json", r#"{"customer": {"name": "Erika Mustermann", "api_key": "sk-live-123", "balance": 1234.56}}"#);
        let p = a.finish().preview();
        for canary in ["Erika", "Mustermann", "erika.mustermann@bank.de", "DE89370400440532013000", "1234.56", "hunter2", "sk-live-123", "4711", "+49 30 1234567", "2024-03-15"] {
            assert!(!p.contains(canary), "{canary} leaked:\n{p}");
        }
        for structure in ["customers", "invoices", "full_name", "customer_id", "numeric(10,2)", "invoices.customer_id -> customers.id", "DATABASE_URL", "api_key", "balance"] {
            assert!(p.contains(structure), "{structure} missing:\n{p}");
        }
        // The customer id has the same stand-in in both tables, so the join still works.
        let id_in_customers = p.lines().find(|l| l.contains("row:") && l.contains("example.invalid")).unwrap();
        let synthetic_id = id_in_customers.trim().trim_start_matches("row: (").split(',').next().unwrap().to_string();
        assert!(p.lines().any(|l| l.contains("row:") && l.contains(&format!(", {synthetic_id},"))), "{p}");
    }

    #[test]
    fn csv_and_shapes() {
        let mut a = Anonymizer::default();
        a.add_csv("payments", "id,payer,amount,booked\n1,Max Mustermann,99.90,2024-01-02\n");
        let p = a.finish().preview();
        assert!(p.contains("TABLE payments (id, payer, amount, booked)"), "{p}");
        assert!(!p.contains("Max") && !p.contains("99.90"), "{p}");
        assert!(p.contains("2000-"), "dates stay dates: {p}");
    }
}
